/* http_error.h - the one place that turns a resnetd status into an HTTP
 * status code, and an HTTP status into the error body's code. Routes map a
 * failure's rd_status_t through http_error_status (with where it happened),
 * so a given failure always gets the same code wherever it happens:
 *     {"error":{"code":"bad_request","message":"image 2: not a JPEG ..."}}
 * KServe routes use the same status with KServe's flat {"error":"..."} body. */
#ifndef RESNETD_HTTP_ERROR_H
#define RESNETD_HTTP_ERROR_H

#include <jansson.h>

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

/* A stable machine-readable code for an HTTP error status ("bad_request",
 * "unauthorized" (401: missing or wrong bearer token), "payload_too_large",
 * "unavailable" (503), "deadline_exceeded", ...). Never NULL. */
const char *http_error_code(int http_status);

/* {"code": http_error_code(http_status), "message": message} as a new
 * reference (NULL only when out of memory). */
json_t *http_error_object(int http_status, const char *message);

/* The error body shapes of the protocols served, one per family of paths. */
typedef enum {
    HTTP_SHAPE_RESNETD = 0, /* /classify, probes, ...: {"error":{"code","message"}} */
    HTTP_SHAPE_KSERVE,      /* /v2, /v2/...: {"error":"message"} */
    HTTP_SHAPE_TORCHSERVE,  /* /predictions/..., /ping: {"code":N,"type":"...","message":"..."} */
    HTTP_SHAPE_TFSERVING,   /* /v1/...: {"error":"message"} */
} http_shape_t;

/* The shape of the protocol that path (the URL path, no query) belongs to,
 * for the answers the HTTP layer gives before any route runs (401, 411, 413,
 * 503, framing). Pure; thread-safe. */
http_shape_t http_error_shape(const char *path);

/* TorchServe's exception name for an HTTP status ("BadRequestException",
 * "ServiceUnavailableException", ...). Never NULL. */
const char *http_error_torchserve_type(int http_status);

/* The whole error body for status and message in shape, as a new reference
 * (NULL only when out of memory). */
json_t *http_error_body(http_shape_t shape, int http_status, const char *message);

/* True when the status asks the client to retry later (503, 429), i.e.
 * when a Retry-After header belongs on the answer. */
int http_error_retryable(int http_status);

#endif
