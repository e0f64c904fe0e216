/* routes.c - the routing table. Paths are matched segment by segment; "{}"
 * matches one non-empty segment (the model name of KServe URLs). GET routes
 * answer HEAD too (libmicrohttpd then sends the headers only). KServe's
 * optional /versions/{version} segment is accepted for the one version a
 * model has here, "1" (its metadata lists versions ["1"]); any other version
 * is 404 like any other unknown path. TorchServe's and TF Serving's URLs take
 * the same version "1"; for any other version they have a catch-all route
 * that answers 404 in that protocol's error shape. "{}" also stops at ':'
 * (TF Serving's "/v1/models/NAME:predict"); only the first "{}" is copied. */
#include "routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum { M_GET = 1, M_POST = 2, M_PUT = 4 };

typedef struct {
    const char *pattern;
    unsigned methods;
    metrics_endpoint_t endpoint;
    const http_route_t *route;
} route_entry_t;

static const route_entry_t table[] = {
    {"/", M_GET, METRICS_EP_UI, &route_ui},
    {"/ui/{}", M_GET, METRICS_EP_UI, &route_ui},
    {"/classify", M_POST, METRICS_EP_CLASSIFY, &route_classify},
    {"/healthz", M_GET, METRICS_EP_HEALTHZ, &route_healthz},
    {"/readyz", M_GET, METRICS_EP_READYZ, &route_readyz},
    {"/metrics", M_GET, METRICS_EP_METRICS, &route_metrics},
    {"/v2", M_GET, METRICS_EP_V2_SERVER, &route_v2_server},
    {"/v2/health/live", M_GET, METRICS_EP_V2_LIVE, &route_v2_live},
    {"/v2/health/ready", M_GET, METRICS_EP_V2_READY, &route_v2_ready},
    {"/v2/models/{}", M_GET, METRICS_EP_V2_MODEL, &route_v2_model},
    {"/v2/models/{}/ready", M_GET, METRICS_EP_V2_MODEL_READY, &route_v2_model_ready},
    {"/v2/models/{}/infer", M_POST, METRICS_EP_V2_INFER, &route_v2_infer},
    {"/v2/models/{}/versions/1", M_GET, METRICS_EP_V2_MODEL, &route_v2_model},
    {"/v2/models/{}/versions/1/ready", M_GET, METRICS_EP_V2_MODEL_READY, &route_v2_model_ready},
    {"/v2/models/{}/versions/1/infer", M_POST, METRICS_EP_V2_INFER, &route_v2_infer},
    {"/v2/repository/index", M_POST, METRICS_EP_V2_REPO_INDEX, &route_v2_repository_index},
    /* TorchServe: `curl -T file` sends PUT, which TorchServe accepts too */
    {"/ping", M_GET, METRICS_EP_TS_PING, &route_ts_ping},
    {"/predictions/{}", M_POST | M_PUT, METRICS_EP_TS_PREDICT, &route_ts_predict},
    {"/predictions/{}/1", M_POST | M_PUT, METRICS_EP_TS_PREDICT, &route_ts_predict},
    {"/predictions/{}/{}", M_POST | M_PUT, METRICS_EP_TS_PREDICT, &route_ts_no_version},
    /* TF Serving REST */
    {"/v1/models/{}", M_GET, METRICS_EP_TF_STATUS, &route_tf_status},
    {"/v1/models/{}/versions/1", M_GET, METRICS_EP_TF_STATUS, &route_tf_status},
    {"/v1/models/{}/versions/{}", M_GET, METRICS_EP_TF_STATUS, &route_tf_no_version_status},
    {"/v1/models/{}:predict", M_POST, METRICS_EP_TF_PREDICT, &route_tf_predict},
    {"/v1/models/{}/versions/1:predict", M_POST, METRICS_EP_TF_PREDICT, &route_tf_predict},
    {"/v1/models/{}/versions/{}:predict", M_POST, METRICS_EP_TF_PREDICT, &route_tf_no_version},
};

/* Matches path against pattern; copies the first "{}" segment into param. */
static bool match(const char *pattern, const char *path, char *param, size_t param_size)
{
    bool copied = false;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/:");
            if (n == 0 || n >= param_size)
                return false;
            if (!copied) {
                memcpy(param, path, n);
                param[n] = 0;
                copied = true;
            }
            path += n;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    if (!strcmp(path, "/") && *pattern == 0)
        return true; /* tolerate one trailing slash */
    return *pattern == 0 && *path == 0;
}

static unsigned method_bit(const char *method)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return M_GET;
    if (!strcmp(method, "POST"))
        return M_POST;
    if (!strcmp(method, "PUT"))
        return M_PUT;
    return 0;
}

const http_route_t *routes_find(const char *path, const char *method,
                                metrics_endpoint_t *endpoint, char *param, size_t param_size,
                                const char **allow)
{
    *endpoint = METRICS_EP_OTHER;
    *allow = NULL;
    param[0] = 0;
    unsigned bit = method_bit(method);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char seg[128] = "";
        if (!match(table[i].pattern, path, seg, param_size < sizeof seg ? param_size : sizeof seg))
            continue;
        *endpoint = table[i].endpoint;
        if (!(table[i].methods & bit)) {
            *allow = table[i].methods == (M_POST | M_PUT) ? "POST, PUT"
                     : table[i].methods == M_POST         ? "POST"
                                                          : "GET, HEAD";
            return NULL;
        }
        snprintf(param, param_size, "%s", seg);
        return table[i].route;
    }
    return NULL;
}
