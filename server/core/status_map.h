/* status_map.h - the one place that turns a resnetd status into an HTTP
 * status code, and an HTTP status into a gRPC status code. Both front ends
 * (server/http for REST, server/grpc) map a failure's rd_status_t through
 * http_error_status (with where it happened), so a given failure always gets
 * the same code wherever and however it is asked; gRPC then takes
 * status_map_grpc of that HTTP status. Pure; thread-safe. */
#ifndef RESNETD_STATUS_MAP_H
#define RESNETD_STATUS_MAP_H

#include "metrics.h"
#include "resnetd/error.h"

/* Where the failure happened: the same rd_status_t means different things
 * for an image, a request body, a tensor or the queue. */
typedef enum {
    HTTP_CTX_IMAGE = 0, /* decoding one JPEG: FORMAT -> 400, LIMIT (pixels) -> 413 */
    HTTP_CTX_BODY,      /* parsing the request: FORMAT/ARG -> 400, LIMIT -> 413,
                           UNSUPPORTED (content type) -> 415 */
    HTTP_CTX_TENSOR,    /* a KServe tensor: FORMAT -> 400, SHAPE/ARG/UNSUPPORTED -> 422,
                           LIMIT -> 413 */
    HTTP_CTX_QUEUE,     /* submitting to the batcher: LIMIT -> 503 (Retry-After) */
    HTTP_CTX_INFERENCE, /* the batch's result: TIMEOUT -> 504, LIMIT (shutdown) -> 503 */
} http_ctx_t;

/* The HTTP status for status in ctx. NOMEM -> 503, IO/DNNL/INTERNAL -> 500,
 * TIMEOUT -> 504 everywhere, RD_OK -> 200. Pure; thread-safe. */
int http_error_status(rd_status_t status, http_ctx_t ctx);

/* The HTTP status of an image that will not run, for why it stopped (the
 * batcher's drop reasons; a decode stopped for the same reasons answers the
 * same): DEADLINE -> 504, CANCELLED -> 499 (nginx's "client closed request":
 * only the access log sees it), SHUTDOWN -> 503. Pure; thread-safe. */
int http_error_drop_status(metrics_drop_t reason);

/* gRPC status codes (grpc/doc/statuscodes.md) that resnetd answers. */
typedef enum {
    GRPC_STATUS_OK = 0,
    GRPC_STATUS_CANCELLED = 1,
    GRPC_STATUS_UNKNOWN = 2,
    GRPC_STATUS_INVALID_ARGUMENT = 3,
    GRPC_STATUS_DEADLINE_EXCEEDED = 4,
    GRPC_STATUS_NOT_FOUND = 5,
    GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
    GRPC_STATUS_UNIMPLEMENTED = 12,
    GRPC_STATUS_INTERNAL = 13,
    GRPC_STATUS_UNAVAILABLE = 14,
    GRPC_STATUS_UNAUTHENTICATED = 16,
} grpc_status_t;

/* The gRPC code of an HTTP error status: 400/415/422 INVALID_ARGUMENT, 401
 * UNAUTHENTICATED, 404 NOT_FOUND, 413/429 RESOURCE_EXHAUSTED, 499 CANCELLED,
 * 501 UNIMPLEMENTED, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, 2xx OK, other
 * 5xx INTERNAL, anything else UNKNOWN. */
grpc_status_t status_map_grpc(int http_status);

#endif
