/* route_model_control.c - Triton's model repository extension:
 * POST /v2/repository/index lists the registry (every model and version,
 * READY / LOADING / UNAVAILABLE, with the reason of a failed load), and
 * POST /v2/repository/models/{name}/load|unload ask the model loader
 * (model_loader.h) in model_control_mode explicit. A load or unload runs on
 * the loader thread; the request waits suspended (one expected item, done
 * by the loader's callback) and answers 200 {} or 400 {"error": ...}, as
 * Triton does. The bearer token applies as on every model route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_loader.h"
#include "routes.h"

typedef struct {
    rd_status_t status;
    char message[RD_ERROR_MSG_MAX];
} control_state_t;

static http_step_t index_start(http_request_t *req)
{
    json_t *rows = registry_index(http_request_deps(req)->registry);
    if (!rows) {
        http_respond_kserve_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_respond_json(req, 200, rows);
    return HTTP_DONE;
}

/* The loader thread: the command is done. */
static void control_done(void *ctx, rd_status_t status, const rd_error_t *err)
{
    http_request_t *req = ctx;
    control_state_t *s = http_request_state(req);
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", status == RD_OK ? "" : err->msg);
    http_request_item_done(req);
}

static http_step_t control_start(http_request_t *req, model_op_t op)
{
    model_loader_t *loader = http_request_deps(req)->control;
    control_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        http_respond_kserve_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_request_set_state(req, s);
    rd_error_t err = {0};
    http_request_expect(req, 1);
    if (!loader || model_loader_request(loader, op, http_request_param(req), control_done, req,
                                        &err) != RD_OK) {
        http_request_expect(req, 0);
        http_respond_kserve_error(req, loader && err.code == RD_ERR_LIMIT ? 503 : 400,
                                  loader ? err.msg : "the repository API needs "
                                                     "model_control_mode explicit");
        return HTTP_DONE;
    }
    return HTTP_PENDING;
}

static http_step_t load_start(http_request_t *req)
{
    return control_start(req, MODEL_LOAD);
}

static http_step_t unload_start(http_request_t *req)
{
    return control_start(req, MODEL_UNLOAD);
}

static void control_finish(http_request_t *req)
{
    const control_state_t *s = http_request_state(req);
    if (s->status == RD_OK)
        http_respond_json(req, 200, json_object());
    else
        http_respond_kserve_error(req, s->status == RD_ERR_TIMEOUT ? 503 : 400, s->message);
}

const http_route_t route_repository_index = {
    .name = "repository_index", .needs_model = true, .start = index_start};
const http_route_t route_repository_load = {
    .name = "repository_load", .needs_model = true, .start = load_start,
    .finish = control_finish};
const http_route_t route_repository_unload = {
    .name = "repository_unload", .needs_model = true, .start = unload_start,
    .finish = control_finish};
