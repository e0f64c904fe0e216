/* http.h - resnetd's HTTP front end on libmicrohttpd: the daemon, the routing
 * table, per-request state and the helpers that route handlers (route_*.c)
 * use to read a request and answer it. Handlers never call libmicrohttpd to
 * answer; they fill req->response and http.c queues it.
 *
 * A route handler runs when the whole body has arrived (bodies are buffered up
 * to max_body_bytes). It either answers at once (returns HTTP_DONE after
 * http_respond*) or submits batcher items and returns HTTP_PENDING after
 * calling http_request_expect(req, n); each item's done() callback then calls
 * http_request_item_done(req), and when the last one has, http.c calls the
 * route's finish() on an HTTP thread to build the answer.
 *
 * THREADS: see the paragraph at the top of http.c. Everything in
 * http_request_t belongs to one request and is touched by one HTTP thread at a
 * time, except `lock`/`pending`/`suspended`/`closed`, which the batcher's
 * worker also touches through http_request_item_done. */
#ifndef RESNETD_HTTP_H
#define RESNETD_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "batcher.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "resnetd/error.h"
#include "resnetd/model.h"

struct MHD_Connection;

typedef struct http http_t;
typedef struct http_request http_request_t;

/* What the routes need from the rest of the server. All borrowed; they must
 * outlive the http_t. The model fields may be NULL at http_create, so that
 * the server answers probes while the model loads; http_set_model fills them
 * in, and routes with needs_model are refused with 503 until then. */
typedef struct {
    const config_t *cfg;         /* limits, timeouts, topk default, retry_after_s */
    const model_info_t *model;   /* classes and labels; NULL until loaded */
    const model_preproc_t *preproc; /* effective preprocessing (config overrides applied) */
    const char *model_name;      /* name in responses and KServe URLs */
    batcher_t *batcher;
    metrics_t *metrics;          /* may be NULL */
    const log_t *log;            /* may be NULL */
} http_deps_t;

typedef enum { HTTP_DONE = 0, HTTP_PENDING = 1 } http_step_t;

typedef struct {
    const char *name;                          /* for logs */
    bool takes_body;                           /* POST routes: body buffered, 411 without length */
    bool feeds_batcher;                        /* submits images: counts as a batcher producer
                                                  from its headers until start() returns */
    bool needs_model;                          /* 503 until http_set_model */
    http_step_t (*start)(http_request_t *req); /* body complete; answer or go pending */
    void (*finish)(http_request_t *req);       /* after the last item is done; must answer */
    void (*cleanup)(http_request_t *req);      /* frees req->route_data; NULL = free() */
    void (*cancel)(http_request_t *req);       /* cancels queued items (client gone); may be NULL */
} http_route_t;

struct http_request {
    /* set by http.c */
    http_t *http;
    const http_deps_t *deps;
    struct MHD_Connection *conn;
    int fd;                      /* the connection's socket (http_client_gone), or -1 */
    const char *method;          /* "GET", "POST", ... (libmicrohttpd's string) */
    char path[256];              /* URL path, truncated (logs) */
    char param[128];             /* the {name} segment of a KServe URL, else "" */
    const http_route_t *route;   /* NULL while unrouted */
    metrics_endpoint_t endpoint;
    int64_t start_ns;            /* CLOCK_MONOTONIC at the first callback */
    uint8_t *body;               /* request body (NUL-terminated), owned by http.c */
    size_t body_len;
    size_t body_cap;
    int64_t bytes_in;            /* body bytes received (counted past the limit too) */
    bool body_too_large;
    bool producing;              /* between batcher_producer_enter and _leave (feeds_batcher) */
    void *route_data;            /* the route's state; freed by route->cleanup */
    /* the answer, filled by http_respond*; status 0 = none yet */
    int status;
    char *response;              /* malloc'd body, handed to libmicrohttpd */
    size_t response_len;
    const char *content_type;
    int retry_after_s;           /* > 0 adds Retry-After */
    const char *allow;           /* non-NULL adds Allow (405) */
    char header_name[48];        /* one extra response header when non-empty */
    char header_value[48];
    /* the access log record's per-image figures, filled by routes */
    int images;
    double decode_ms, queue_ms, inference_ms;
    /* completion handshake with the batcher's worker (see http.c) */
    pthread_mutex_t lock;
    int pending;                 /* items submitted and not yet done */
    bool suspended;              /* the connection is suspended waiting for them */
    bool closed;                 /* libmicrohttpd has completed the request */
    bool finished;               /* route->finish ran */
    bool queued;                 /* the answer was handed to libmicrohttpd */
};

typedef struct {
    http_deps_t deps;
    const char *bind;       /* IPv4 or IPv6 literal, or a host name */
    int port;               /* 0 = any free port (see http_port) */
    int threads;            /* libmicrohttpd worker threads, >= 1 */
    int max_connections;
    int connection_timeout_s;
} http_params_t;

/* Creates and starts the daemon: listening when it returns RD_OK. Fails with
 * RD_ERR_ARG (bad bind address), RD_ERR_IO (cannot bind/listen; the message
 * names the address), RD_ERR_NOMEM. *out is NULL on failure.
 * With deps.cfg->tls_cert set it serves HTTPS only: both PEM files are read
 * here (RD_ERR_IO naming the unreadable one, RD_ERR_FORMAT for a malformed
 * file or a key that is not the certificate's; RD_ERR_ARG when libmicrohttpd
 * lacks TLS), and the key text is wiped once libmicrohttpd has loaded it. */
rd_status_t http_create(const http_params_t *params, http_t **out, rd_error_t *err);

/* The port actually bound (the answer to port 0). */
int http_port(const http_t *h);

/* Begins a graceful shutdown: /readyz answers 503 from now on, the listening
 * socket stops listening (new connections are refused; it is closed by
 * http_destroy, after libmicrohttpd's threads), and every later response
 * carries "Connection: close". Requests already accepted are still served.
 * Idempotent. Thread-safe (but call it from the owner, not a handler). */
void http_begin_drain(http_t *h);

/* True once http_begin_drain has been called. Thread-safe. */
bool http_draining(const http_t *h);

/* Asks the work still running (JPEG decodes, through their stop hook) to give
 * up: the drain deadline has passed or the server is stopping. Idempotent.
 * http_stopping is true afterwards. Thread-safe. */
void http_stop_work(http_t *h);
bool http_stopping(const http_t *h);

/* True when the request's client can no longer receive its answer: the
 * request has completed, or the peer has closed its side of the connection
 * (an orderly shutdown or a reset; libmicrohttpd treats a half-close as
 * gone too). libmicrohttpd does not watch suspended connections, so the
 * batcher asks this before spending compute on a queued image. A non-blocking
 * peek at the socket; thread-safe (takes req->lock). */
bool http_client_gone(http_request_t *req);

/* Publishes the loaded model to the routes: requests that arrive afterwards
 * see these deps (cfg, metrics and log as given to http_create). Call once,
 * from the thread that loaded the model; everything must outlive the http_t.
 * Thread-safe with respect to requests in progress (they keep the deps they
 * started with). */
void http_set_model(http_t *h, const model_info_t *model, const model_preproc_t *preproc,
                    const char *model_name, batcher_t *batcher);

/* True when the model is loaded and the server is not draining: /readyz.
 * Thread-safe. */
bool http_ready(const http_t *h);

/* Requests between their first byte and the end of their response. Thread-safe. */
int http_inflight(const http_t *h);

/* Stops the daemon (closing idle connections) and frees it. Call only when no
 * connection waits on the batcher (after batcher_drain), since libmicrohttpd
 * must not be stopped with a suspended connection. NULL is a no-op. */
void http_destroy(http_t *h);

/* --- for route handlers --- */

/* A request header (case-insensitive name) or NULL. */
const char *http_header(const http_request_t *req, const char *name);

/* A query argument (already URL-decoded) or NULL. */
const char *http_query(const http_request_t *req, const char *key);

/* Sets the answer. body is malloc'd and ownership passes to the request (NULL
 * with len 0 for an empty body). A second call replaces the first. */
void http_respond(http_request_t *req, int status, const char *content_type, char *body,
                  size_t len);

/* Sets a JSON answer from a jansson value (consumed: json_decref'd). Answers
 * 500 if it cannot be serialised. */
void http_respond_json(http_request_t *req, int status, json_t *doc);

/* Sets the {"error":{"code","message"}} answer for status (with Retry-After
 * when the status is retryable). */
void http_respond_error(http_request_t *req, int status, const char *message);

/* The same for KServe routes, in KServe's flat {"error":"message"} style. */
void http_respond_kserve_error(http_request_t *req, int status, const char *message);

/* Adds Retry-After (config retry_after_s) to the answer when status is
 * retryable (503, 429). */
void http_set_retry_after(http_request_t *req, int status);

/* Declares that n items are about to be submitted. Call before the submit;
 * call again with 0 if the submit fails (no done() will come). */
void http_request_expect(http_request_t *req, int n);

/* An item of req is done; call from the item's done() callback (the batcher's
 * worker thread). When it was the last, the request is resumed and its route's
 * finish() runs on an HTTP thread. Thread-safe. */
void http_request_item_done(http_request_t *req);

/* Milliseconds since the request's first byte. */
double http_request_elapsed_ms(const http_request_t *req);

#endif
