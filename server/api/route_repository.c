/* route_repository.c - Triton's model repository extension: POST
 * /v2/repository/index lists the served models as
 * [{"name": ..., "version": "1", "state": "READY"}], from the registry (the
 * page's model picker reads it). The request body (Triton's optional
 * {"ready": bool}) is not needed: every model in the registry is ready. Not
 * listed in GET /v2's extensions until load and unload are there too. */
#include "routes.h"

static http_step_t repository_index_start(http_request_t *req)
{
    const registry_t *r = http_request_deps(req)->registry;
    json_t *list = json_array();
    for (int i = 0; list && i < registry_count(r); i++)
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name",
                                                  served_model_name(registry_at(r, i)),
                                                  "version", HTTP_MODEL_VERSION,
                                                  "state", "READY"))) {
            json_decref(list);
            list = NULL;
        }
    if (!list) {
        http_respond_kserve_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_respond_json(req, 200, list);
    return HTTP_DONE;
}

const http_route_t route_v2_repository_index = {
    .name = "v2_repository_index",
    .needs_model = true,
    .start = repository_index_start,
};
