/* log.h - resnetd's two kinds of log line, both JSON, one per line, on stderr
 * by default:
 *   - leveled messages:   {"ts":"2026-11-27T03:00:00.123Z","level":"info","msg":"listening on 127.0.0.1:8080"}
 *     (bytes of a string that are not well-formed UTF-8 are written %XX)
 *   - one access record per HTTP request (log_access), never with bodies,
 *     query strings or headers, so no image data or token reaches the log:
 *     {"ts":"...","type":"access","method":"POST","path":"/classify","status":200,
 *      "model":"resnet50","version":"1","bytes_in":123456,"bytes_out":789,"images":1,"decode_ms":3.1,"queue_ms":0.4,
 *      "inference_ms":21.7,"total_ms":25.9,"cpu_ms":14.2}
 * There is no global logger: main creates a log_t and passes it around, as it
 * does the metrics. A NULL log_t * is valid everywhere and means "stderr, level
 * info, access log on", so that library code and tests need no setup.
 *
 * THREADS: a log_t is immutable after log_create, and each line is formatted
 * into a local buffer and written with one fwrite, which stdio locks, so lines
 * from concurrent threads never interleave. Every function here is thread-safe. */
#ifndef RESNETD_LOG_H
#define RESNETD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "resnetd/error.h"

typedef enum {
    LOG_LEVEL_ERROR = 0, /* something failed and was not recovered (a request got a 5xx) */
    LOG_LEVEL_WARN = 1,  /* something odd that the server survived */
    LOG_LEVEL_INFO = 2,  /* start-up, shutdown, configuration: a few lines per run */
    LOG_LEVEL_DEBUG = 3, /* per-batch and per-request detail */
} log_level_t;

typedef struct log log_t;

typedef struct {
    FILE *out;         /* where lines go; NULL = stderr. Not closed by log_destroy. */
    log_level_t level; /* messages above this level are dropped; default LOG_LEVEL_INFO */
    bool access_log;   /* write log_access records; default true */
} log_params_t;

/* One HTTP request, as log_access writes it. Strings are borrowed for the
 * call only. A negative duration or count is left out of the line. */
typedef struct {
    const char *method;  /* "GET", "POST", ...; NULL = "-" */
    const char *path;    /* the URL path; anything from '?' on is cut off */
    int status;          /* HTTP status code sent */
    int64_t bytes_in;    /* request body bytes received */
    int64_t bytes_out;   /* response body bytes sent */
    int images;          /* images in the request (0 for non-image endpoints) */
    double decode_ms;    /* JPEG decode + preprocessing, summed over the images */
    double queue_ms;     /* time in the batching queue (the longest of the images) */
    double inference_ms; /* engine time of the batch(es) that ran the images (the longest) */
    double total_ms;     /* from the first byte of the request to the response */
    double cpu_ms;       /* server CPU time spent for it (HTTP thread, decodes, its images'
                            shares of their batches); 0 or less = left out */
    const char *model;   /* the served model the route found; NULL = left out */
    const char *version; /* its version; NULL = left out */
} log_access_t;

/* Defaults: stderr, LOG_LEVEL_INFO, access log on. */
log_params_t log_default_params(void);

/* Creates a logger. params may be NULL (defaults). Returns NULL only when out
 * of memory. Free with log_destroy. */
log_t *log_create(const log_params_t *params);

/* Frees the logger (does not close params.out). NULL is a no-op. */
void log_destroy(log_t *log);

/* Writes one leveled message line if level <= the logger's level. fmt is
 * printf-style; the formatted text is JSON-escaped and cut at 4 KiB.
 * log may be NULL (see above). Thread-safe. */
void log_msg(const log_t *log, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_msg at whatever level the logger is set to: for the few lines that
 * scripts wait for ("ready: listening on HOST:PORT"), which must appear at
 * log_level warn and error too. Thread-safe. */
void log_msg_always(const log_t *log, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes one access record line, unless the access log is off. rec may not be
 * NULL. log may be NULL. Thread-safe. */
void log_access(const log_t *log, const log_access_t *rec);

/* True when a message at level would be written (to skip costly formatting). */
bool log_enabled(const log_t *log, log_level_t level);

/* "error", "warn", "info", "debug"; "unknown" for anything else. */
const char *log_level_name(log_level_t level);

/* Parses "error", "warn" (or "warning"), "info", "debug" (case-insensitive)
 * into *out. Returns RD_ERR_ARG with a message listing the valid names. */
rd_status_t log_level_parse(const char *name, log_level_t *out, rd_error_t *err);

#endif
