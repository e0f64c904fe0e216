/* http_error.c - an HTTP error status -> its code and error JSON (the
 * rd_status_t -> status table is server/core/status_map.c). */
#include "http_error.h"

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
