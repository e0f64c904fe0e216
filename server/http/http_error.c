/* http_error.c - an HTTP error status -> its code and error JSON (the
 * rd_status_t -> status table is server/core/status_map.c). */
#include "http_error.h"

#include <stdbool.h>
#include <string.h>

const char *http_error_code(int http_status)
{
    switch (http_status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 411: return "length_required";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "invalid_tensor";
    case 429: return "too_many_requests";
    case 499: return "client_closed_request";
    case 500: return "internal_error";
    case 501: return "not_implemented";
    case 503: return "unavailable";
    case 504: return "deadline_exceeded";
    case 505: return "http_version_not_supported";
    default: return http_status >= 500 ? "internal_error" : "error";
    }
}

json_t *http_error_object(int http_status, const char *message)
{
    return json_pack("{s:s, s:s}", "code", http_error_code(http_status), "message",
                     message ? message : "");
}

int http_error_retryable(int http_status)
{
    return http_status == 503 || http_status == 429;
}

/* True when path is prefix itself or continues it with a '/'. */
static bool under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return !strncmp(path, prefix, n) && (path[n] == 0 || path[n] == '/');
}

http_shape_t http_error_shape(const char *path)
{
    if (under(path, "/v2"))
        return HTTP_SHAPE_KSERVE;
    if (under(path, "/predictions") || !strcmp(path, "/ping"))
        return HTTP_SHAPE_TORCHSERVE;
    if (under(path, "/v1"))
        return HTTP_SHAPE_TFSERVING;
    return HTTP_SHAPE_RESNETD;
}

const char *http_error_torchserve_type(int http_status)
{
    switch (http_status) {
    case 400: return "BadRequestException";
    case 401: return "InvalidKeyException"; /* TorchServe's name for a refused token */
    case 404: return "ModelNotFoundException";
    case 405: return "MethodNotAllowedException";
    case 411: return "BadRequestException";
    case 413: return "RequestEntityTooLargeException";
    case 415: return "BadRequestException";
    case 422: return "BadRequestException";
    case 503: return "ServiceUnavailableException";
    case 504: return "RequestTimeoutException";
    default: return http_status < 500 ? "BadRequestException" : "InternalServerException";
    }
}

json_t *http_error_body(http_shape_t shape, int http_status, const char *message)
{
    message = message ? message : "";
    switch (shape) {
    case HTTP_SHAPE_KSERVE:
    case HTTP_SHAPE_TFSERVING:
        return json_pack("{s:s}", "error", message);
    case HTTP_SHAPE_TORCHSERVE:
        return json_pack("{s:i, s:s, s:s}", "code", http_status, "type",
                         http_error_torchserve_type(http_status), "message", message);
    case HTTP_SHAPE_RESNETD:
        break;
    }
    json_t *err = http_error_object(http_status, message);
    return err ? json_pack("{s:o}", "error", err) : NULL;
}
