/* routes.h - the routing table: which handler (route_*.c) serves which
 * method and path. One route object per handler; the table is in routes.c. */
#ifndef RESNETD_ROUTES_H
#define RESNETD_ROUTES_H

#include <stddef.h>

#include "http.h"
#include "metrics.h"

/* route_classify.c */
extern const http_route_t route_classify;
/* route_health.c: liveness and readiness, plain and KServe */
extern const http_route_t route_healthz;
extern const http_route_t route_readyz;
extern const http_route_t route_v2_live;
extern const http_route_t route_v2_ready;
/* route_metrics.c */
extern const http_route_t route_metrics;
/* route_kserve.c */
extern const http_route_t route_v2_server;
extern const http_route_t route_v2_model;
extern const http_route_t route_v2_model_ready;
extern const http_route_t route_v2_infer;
/* route_ui.c: the page at / and its files under /ui/ */
extern const http_route_t route_ui;
/* route_model_control.c: Triton's model repository extension */
extern const http_route_t route_repository_index;
extern const http_route_t route_repository_load;
extern const http_route_t route_repository_unload;
/* route_triton.c: Triton's model configuration and statistics */
extern const http_route_t route_v2_model_config;
extern const http_route_t route_v2_model_stats;
/* route_torchserve.c: TorchServe's inference API */
extern const http_route_t route_ts_ping;
extern const http_route_t route_ts_predict;
/* route_tfserving.c: TF Serving's REST API (KServe v1) */
extern const http_route_t route_tf_status;
extern const http_route_t route_tf_predict;

/* Finds the route for method and path (the URL path without the query).
 * On a match returns it, sets *endpoint, and copies a "{name}" path segment
 * into param (else "") and a "{version}" segment into version. When the path exists but not for this method, returns
 * NULL with *allow set to the Allow header value ("GET, HEAD", "POST" or "POST, PUT");
 * when the path does not exist, returns NULL with *allow NULL and *endpoint
 * METRICS_EP_OTHER. Pure; thread-safe. */
const http_route_t *routes_find(const char *path, const char *method,
                                metrics_endpoint_t *endpoint, char *param, size_t param_size,
                                char *version, size_t version_size, const char **allow);

#endif
