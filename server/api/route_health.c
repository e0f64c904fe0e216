/* route_health.c - liveness and readiness. /healthz and /v2/health/live
 * answer 200 while the process serves HTTP at all, model loading included;
 * /readyz and /v2/health/ready answer 200 when the model is loaded and the
 * server is not draining, else 503. */
#include <string.h>

#include "routes.h"

static http_step_t healthz_start(http_request_t *req)
{
    http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
    return HTTP_DONE;
}

static http_step_t readyz_start(http_request_t *req)
{
    const char *status = http_draining(http_request_server(req)) ? "draining"
                         : http_ready(http_request_server(req))   ? "ready"
                                                   : "loading";
    http_respond_json(req, strcmp(status, "ready") ? 503 : 200,
                      json_pack("{s:s}", "status", status));
    return HTTP_DONE;
}

static http_step_t v2_live_start(http_request_t *req)
{
    http_respond_json(req, 200, json_pack("{s:b}", "live", 1));
    return HTTP_DONE;
}

static http_step_t v2_ready_start(http_request_t *req)
{
    bool ready = http_ready(http_request_server(req));
    http_respond_json(req, ready ? 200 : 503, json_pack("{s:b}", "ready", ready));
    return HTTP_DONE;
}

const http_route_t route_healthz = {.name = "healthz", .start = healthz_start};
const http_route_t route_readyz = {.name = "readyz", .start = readyz_start};
const http_route_t route_v2_live = {.name = "v2_live", .start = v2_live_start};
const http_route_t route_v2_ready = {.name = "v2_ready", .start = v2_ready_start};
