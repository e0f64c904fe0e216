/* status_map.c - rd_status_t + context -> HTTP status -> gRPC code (see
 * status_map.h for the tables). */
#include "status_map.h"

int http_error_status(rd_status_t status, http_ctx_t ctx)
{
    switch (status) {
    case RD_OK:
        return 200;
    case RD_ERR_TIMEOUT:
        return 504;
    case RD_ERR_NOMEM:
        return 503;
    case RD_ERR_IO:
    case RD_ERR_DNNL:
    case RD_ERR_INTERNAL:
        return 500;
    case RD_ERR_LIMIT:
        return (ctx == HTTP_CTX_QUEUE || ctx == HTTP_CTX_INFERENCE) ? 503 : 413;
    case RD_ERR_UNSUPPORTED:
        if (ctx == HTTP_CTX_BODY)
            return 415;
        return ctx == HTTP_CTX_TENSOR ? 422 : 400;
    case RD_ERR_SHAPE:
    case RD_ERR_ARG:
        return ctx == HTTP_CTX_TENSOR ? 422 : 400;
    case RD_ERR_NONFINITE: /* weights are finite (engine_load), so the input overflowed */
        return 422;
    case RD_ERR_FORMAT:
        return ctx == HTTP_CTX_QUEUE || ctx == HTTP_CTX_INFERENCE ? 500 : 400;
    }
    return 500;
}

int http_error_drop_status(metrics_drop_t reason)
{
    switch (reason) {
    case METRICS_DROP_DEADLINE:
        return 504;
    case METRICS_DROP_CANCELLED:
        return 499;
    case METRICS_DROP_SHUTDOWN:
    case METRICS_N_DROP_REASONS:
        break;
    }
    return 503;
}

grpc_status_t status_map_grpc(int http_status)
{
    switch (http_status) {
    case 400:
    case 415:
    case 422:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case 401:
        return GRPC_STATUS_UNAUTHENTICATED;
    case 404:
        return GRPC_STATUS_NOT_FOUND;
    case 413:
    case 429:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case 499:
        return GRPC_STATUS_CANCELLED;
    case 501:
        return GRPC_STATUS_UNIMPLEMENTED;
    case 503:
        return GRPC_STATUS_UNAVAILABLE;
    case 504:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    default:
        break;
    }
    if (http_status >= 200 && http_status < 300)
        return GRPC_STATUS_OK;
    return http_status >= 500 ? GRPC_STATUS_INTERNAL : GRPC_STATUS_UNKNOWN;
}
