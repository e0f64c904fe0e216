/* http_error.h - an HTTP status into the error body's code and JSON; the
 * mapping of a resnetd status to an HTTP status (and a gRPC code) lives one
 * layer down, in server/core/status_map.h, so that server/grpc shares it. Routes map a
 * failure's rd_status_t through http_error_status (with where it happened),
 * so a given failure always gets the same code wherever it happens:
 *     {"error":{"code":"bad_request","message":"image 2: not a JPEG ..."}}
 * KServe routes use the same status with KServe's flat {"error":"..."} body. */
#ifndef RESNETD_HTTP_ERROR_H
#define RESNETD_HTTP_ERROR_H

#include <jansson.h>

#include "status_map.h"

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
