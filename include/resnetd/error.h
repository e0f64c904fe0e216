/* error.h - the status codes and the caller-owned error record shared by every
 * resnetd module. Functions that can fail return an rd_status_t and, when given
 * a non-NULL rd_error_t, fill it with the same code and a message that names
 * what failed (a tensor, a file, a oneDNN call). Nothing here allocates. */
#ifndef RESNETD_ERROR_H
#define RESNETD_ERROR_H

typedef enum {
    RD_OK = 0,
    RD_ERR_ARG,         /* a caller passed an invalid argument */
    RD_ERR_IO,          /* open/read/write/mmap failed */
    RD_ERR_FORMAT,      /* a file or body is malformed (bad header, truncated, bad JSON) */
    RD_ERR_SHAPE,       /* a tensor has the wrong shape, or the architecture is inconsistent */
    RD_ERR_UNSUPPORTED, /* well-formed, but not something resnetd runs (dtype, layer type) */
    RD_ERR_NOMEM,       /* an allocation failed */
    RD_ERR_DNNL,        /* oneDNN refused or failed */
    RD_ERR_LIMIT,       /* a configured limit was exceeded (size, pixels, queue) */
    RD_ERR_TIMEOUT,     /* a deadline passed */
    RD_ERR_INTERNAL,    /* a bug: should never happen */
    RD_ERR_NONFINITE,   /* a result is NaN or infinite (an input overflowed inside the net) */
} rd_status_t;

#define RD_ERROR_MSG_MAX 512

typedef struct {
    rd_status_t code;
    char msg[RD_ERROR_MSG_MAX];
} rd_error_t;

/* A static, human-readable name for a status ("format error", ...). Never NULL. */
const char *rd_status_str(rd_status_t status);

/* Records code and a printf-style message in err (if err is not NULL) and
 * returns code, so that callers can write `return rd_error_set(err, ...)`. */
rd_status_t rd_error_set(rd_error_t *err, rd_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with a printf-style context ("model.safetensors: ...").
 * Keeps err->code. Returns err->code (RD_OK if err is NULL). */
rd_status_t rd_error_prefix(rd_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
