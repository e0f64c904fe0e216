/* route_metrics.c - GET /metrics: the metrics registry in Prometheus text
 * format, then the per-model series of every served version. */
#include <stdlib.h>

#include "model_metrics.h"
#include "routes.h"

static http_step_t metrics_start(http_request_t *req)
{
    char *text = NULL;
    size_t len = 0;
    rd_error_t err = {0};
    registry_t *models = http_request_deps(req)->registry;
    if (metrics_render(http_request_deps(req)->metrics, &text, &len, &err) != RD_OK ||
        (models && model_metrics_render(models, &text, &len, &err) != RD_OK)) {
        free(text);
        http_respond_error(req, 503, err.msg);
        return HTTP_DONE;
    }
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    return HTTP_DONE;
}

const http_route_t route_metrics = {.name = "metrics", .start = metrics_start};
