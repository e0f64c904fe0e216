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
/* route_repository.c: Triton's model repository extension */
extern const http_route_t route_v2_repository_index;
/* route_torchserve.c: TorchServe's inference API */
extern const http_route_t route_ts_ping;
extern const http_route_t route_ts_predict;
extern const http_route_t route_ts_no_version;
/* route_tfserving.c: TF Serving's REST API (KServe v1) */
extern const http_route_t route_tf_status;
extern const http_route_t route_tf_predict;
extern const http_route_t route_tf_no_version;        /* predict */
extern const http_route_t route_tf_no_version_status; /* status (no body) */

/* Finds the route for method and path (the URL path without the query).
 * On a match returns it, sets *endpoint, and copies a "{name}" path segment
 * into param (else ""). When the path exists but not for this method, returns
 * NULL with *allow set to the Allow header value ("GET, HEAD", "POST" or "POST, PUT");
 * when the path does not exist, returns NULL with *allow NULL and *endpoint
 * METRICS_EP_OTHER. Pure; thread-safe. */
const http_route_t *routes_find(const char *path, const char *method,
                                metrics_endpoint_t *endpoint, char *param, size_t param_size,
                                const char **allow);

#endif
