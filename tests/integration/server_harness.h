/* server_harness.h - starts the real resnetd binary on an ephemeral loopback
 * port and talks HTTP to it with libcurl, for the integration tests.
 * The binary is $RESNETD_BIN; its stderr (log lines) goes to a file, from which
 * the "listening on 127.0.0.1:PORT" line gives the port. Every wait is bounded. */
#ifndef RESNETD_SERVER_HARNESS_H
#define RESNETD_SERVER_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;
    char log_path[256];
    const char *ca_file; /* non-NULL: harness_http speaks https, trusting this CA file only */
} harness_server_t;

typedef struct {
    long status;     /* 0 when the transfer failed */
    CURLcode curl;   /* the transfer's result */
    char *body;      /* NUL-terminated, owned */
    size_t len;
    char headers[4096];
} harness_resp_t;

/* Starts `resnetd serve --port 0 --bind 127.0.0.1 ARGS...` (args NULL-terminated)
 * and waits up to 120 s for it to be ready ("listening on HOST:PORT", logged
 * once the model is loaded). Fails the test on error. */
void harness_start(harness_server_t *s, const char *const *args);

/* harness_start, waiting instead for the first log line containing marker and
 * taking the port from its end ("accepting connections on " is logged before
 * the model loads). */
void harness_spawn(harness_server_t *s, const char *const *args, const char *marker);

/* Starts the server as harness_start does and returns at once (s->port 0),
 * for a server expected to exit by itself (harness_wait_exit). */
void harness_launch(harness_server_t *s, const char *const *args);

/* Waits up to timeout_s for the server to exit by itself: its exit status,
 * -1 if a signal ended it, -2 if it is still running (s->pid is kept). */
int harness_wait_exit(harness_server_t *s, int timeout_s);

/* SIGTERM, then waits up to 60 s; returns the exit status (or -1 on a signal /
 * timeout, after SIGKILL). */
int harness_stop(harness_server_t *s);

/* One request. ctype/body may be NULL; files (NULL-terminated paths) makes a
 * multipart/form-data body with one "image" part per file; extra headers may be NULL. */
harness_resp_t harness_http(const harness_server_t *s, const char *method, const char *path,
                            const char *ctype, const void *body, size_t len,
                            const char *const *files, struct curl_slist *extra);
void harness_resp_free(harness_resp_t *r);

/* The body as JSON (fails the test if it is not). Caller json_decrefs. */
json_t *harness_json(const harness_resp_t *r);

/* True when the response headers contain "name: " (case-insensitive). */
bool harness_has_header(const harness_resp_t *r, const char *name);

/* A metric's value from /metrics text (first sample whose line starts with
 * prefix), or -1 when absent. */
double harness_metric(const harness_server_t *s, const char *prefix);

/* The value of the first sample line "PREFIX VALUE" in a Prometheus text
 * body, or -1 when there is none. */
double harness_metric_in(const char *text, const char *prefix);


/* Runs argv (argv[0] looked up in PATH unless it has a '/') with env
 * ("NAME=VALUE", NULL-terminated, may be NULL) added, and waits for it; its
 * stdout (up to out_size - 1 bytes, NUL-terminated) in out. Returns the exit
 * status, -1 on a signal. */
int harness_run(const char *const *argv, const char *const *env, char *out, size_t out_size);

/* True when the server has exited (it is not reaped, so harness_stop still
 * works); then why (why_size bytes) says how it ended and ends with the last
 * lines of its log. harness_http calls it when a transfer fails and fails the
 * test with that text, so a crashed server is named, never a bare exit 1. */
bool harness_died(const harness_server_t *s, char *why, size_t why_size);

/* $VAR or fallback. */
const char *harness_env(const char *var, const char *fallback);

#endif
