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

/* True when the status asks the client to retry later (503, 429), i.e.
 * when a Retry-After header belongs on the answer. */
int http_error_retryable(int http_status);

#endif
