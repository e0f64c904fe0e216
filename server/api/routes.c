/* routes.c - the routing table. Paths are matched segment by segment; "{}"
 * matches one non-empty segment: the first is the model name, the second
 * (after /versions/ or TorchServe's /predictions/{name}/) the version, which
 * http_request_model looks up in the registry (404 when that model has no
 * such version). GET routes answer HEAD too (libmicrohttpd then sends the
 * headers only). "{}" also stops at ':' (TF Serving's
 * "/v1/models/NAME:predict"). */
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
    {"/models/{}/classify", M_POST, METRICS_EP_CLASSIFY, &route_classify},
    {"/healthz", M_GET, METRICS_EP_HEALTHZ, &route_healthz},
    {"/readyz", M_GET, METRICS_EP_READYZ, &route_readyz},
    {"/metrics", M_GET, METRICS_EP_METRICS, &route_metrics},
    {"/v2", M_GET, METRICS_EP_V2_SERVER, &route_v2_server},
    {"/v2/health/live", M_GET, METRICS_EP_V2_LIVE, &route_v2_live},
    {"/v2/health/ready", M_GET, METRICS_EP_V2_READY, &route_v2_ready},
    {"/v2/models/{}", M_GET, METRICS_EP_V2_MODEL, &route_v2_model},
    {"/v2/models/{}/ready", M_GET, METRICS_EP_V2_MODEL_READY, &route_v2_model_ready},
    {"/v2/models/{}/infer", M_POST, METRICS_EP_V2_INFER, &route_v2_infer},
    {"/v2/models/{}/versions/{}", M_GET, METRICS_EP_V2_MODEL, &route_v2_model},
    {"/v2/models/{}/config", M_GET, METRICS_EP_V2_MODEL, &route_v2_model_config},
    {"/v2/models/{}/versions/{}/config", M_GET, METRICS_EP_V2_MODEL, &route_v2_model_config},
    {"/v2/models/{}/stats", M_GET, METRICS_EP_V2_MODEL, &route_v2_model_stats},
    {"/v2/models/{}/versions/{}/stats", M_GET, METRICS_EP_V2_MODEL, &route_v2_model_stats},
    {"/v2/models/{}/versions/{}/ready", M_GET, METRICS_EP_V2_MODEL_READY, &route_v2_model_ready},
    {"/v2/models/{}/versions/{}/infer", M_POST, METRICS_EP_V2_INFER, &route_v2_infer},
    /* Triton's model repository extension */
    {"/v2/repository/index", M_POST, METRICS_EP_REPOSITORY, &route_repository_index},
    {"/v2/repository/models/{}/load", M_POST, METRICS_EP_REPOSITORY, &route_repository_load},
    {"/v2/repository/models/{}/unload", M_POST, METRICS_EP_REPOSITORY, &route_repository_unload},
    /* TorchServe: `curl -T file` sends PUT, which TorchServe accepts too */
    {"/ping", M_GET, METRICS_EP_TS_PING, &route_ts_ping},
    {"/predictions/{}", M_POST | M_PUT, METRICS_EP_TS_PREDICT, &route_ts_predict},
    {"/predictions/{}/{}", M_POST | M_PUT, METRICS_EP_TS_PREDICT, &route_ts_predict},
    /* TF Serving REST */
    {"/v1/models/{}", M_GET, METRICS_EP_TF_STATUS, &route_tf_status},
    {"/v1/models/{}/versions/{}", M_GET, METRICS_EP_TF_STATUS, &route_tf_status},
    {"/v1/models/{}:predict", M_POST, METRICS_EP_TF_PREDICT, &route_tf_predict},
    {"/v1/models/{}/versions/{}:predict", M_POST, METRICS_EP_TF_PREDICT, &route_tf_predict},
};

/* Matches path against pattern; copies the first "{}" segment into param,
 * the second into version. */
static bool match(const char *pattern, const char *path, char *param, size_t param_size,
                  char *version, size_t version_size)
{
    int copied = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/:");
            char *to = copied ? version : param;
            if (n == 0 || n >= (copied ? version_size : param_size))
                return false;
            memcpy(to, path, n);
            to[n] = 0;
            copied++;
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
                                char *version, size_t version_size, const char **allow)
{
    *endpoint = METRICS_EP_OTHER;
    *allow = NULL;
    param[0] = 0;
    version[0] = 0;
    unsigned bit = method_bit(method);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char seg[128] = "", ver[16] = "";
        if (!match(table[i].pattern, path, seg, param_size < sizeof seg ? param_size : sizeof seg,
                   ver, version_size < sizeof ver ? version_size : sizeof ver))
            continue;
        *endpoint = table[i].endpoint;
        if (!(table[i].methods & bit)) {
            *allow = table[i].methods == (M_POST | M_PUT) ? "POST, PUT"
                     : table[i].methods == M_POST         ? "POST"
                                                          : "GET, HEAD";
            return NULL;
        }
        snprintf(param, param_size, "%s", seg);
        snprintf(version, version_size, "%s", ver);
        return table[i].route;
    }
    return NULL;
}
