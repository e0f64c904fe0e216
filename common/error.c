/* error.c - status names and the formatted error record (see resnetd/error.h). */
#include "resnetd/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *rd_status_str(rd_status_t status)
{
    switch (status) {
    case RD_OK: return "ok";
    case RD_ERR_ARG: return "invalid argument";
    case RD_ERR_IO: return "I/O error";
    case RD_ERR_FORMAT: return "format error";
    case RD_ERR_SHAPE: return "shape error";
    case RD_ERR_UNSUPPORTED: return "unsupported";
    case RD_ERR_NOMEM: return "out of memory";
    case RD_ERR_DNNL: return "oneDNN error";
    case RD_ERR_LIMIT: return "limit exceeded";
    case RD_ERR_TIMEOUT: return "timeout";
    case RD_ERR_INTERNAL: return "internal error";
    case RD_ERR_NONFINITE: return "non-finite result";
    }
    return "unknown status";
}

rd_status_t rd_error_set(rd_error_t *err, rd_status_t code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

rd_status_t rd_error_prefix(rd_error_t *err, const char *fmt, ...)
{
    if (!err)
        return RD_OK;
    char old[RD_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %.*s",
                 (int)(sizeof err->msg - (size_t)n), old);
    return err->code;
}
