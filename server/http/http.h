/* http.h - resnetd's HTTP front end on libmicrohttpd: the daemon, and the
 * opaque request that route handlers (server/api/route_*.c) read and answer
 * through the accessors below. Nothing outside server/http/ includes
 * microhttpd.h or touches a connection: handlers fill the request's answer
 * (http_respond*) and http_request.c queues it.
 *
 * A route handler runs when the whole body has arrived (bodies are buffered up
 * to max_body_bytes). It either answers at once (returns HTTP_DONE after
 * http_respond*) or submits batcher items and returns HTTP_PENDING after
 * calling http_request_expect(req, n); each item's done() callback then calls
 * http_request_item_done(req), and when the last one has, the route's
 * finish() runs on an HTTP thread to build the answer.
 *
 * THREADS and the request's lifecycle: see the top of http_request.c. A
 * handler's calls on its request are made on the request's HTTP thread; only
 * http_request_item_done and http_client_gone may be called from the
 * batcher's worker. */
#ifndef RESNETD_HTTP_H
#define RESNETD_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "decode_pool.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "resnetd/error.h"
#include "resnetd/model.h"

typedef struct http http_t;
typedef struct http_request http_request_t;

/* The request limits and defaults the routes apply, derived once from the
 * config (http_limits_of), so that routes never see the config itself (which
 * holds the token and the TLS paths). */
typedef struct {
    int64_t max_body_bytes;      /* request body bytes (413 beyond) */
    int64_t max_buffered_body_bytes; /* body bytes of all requests together (503 beyond) */
    int max_images_per_request;  /* images in one request (413 beyond) */
    image_limits_t image;        /* pixels, scans, scan work, decode time, formats
                                    (config_image_limits); each request adds its stop hook */
    int64_t request_timeout_ms;  /* deadline from the request's start; 0 = none */
    int topk_default;            /* top-k when the request gives none */
    int retry_after_s;           /* Retry-After on 503/429 */
    bool ignore_client_abort;    /* a client whose socket reads as closed is not gone */
} http_limits_t;

/* What the routes need from the rest of the server. All borrowed; they must
 * outlive the http_t. The registry is NULL at http_create, so that the server
 * answers probes while the model loads; http_set_registry fills it in, and
 * routes with needs_model are refused with 503 until then. */
typedef struct {
    const http_limits_t *limits;
    registry_t *registry;        /* the models served; NULL until loaded */
    void *control;               /* the model loader (model_loader_t), for the repository
                                    API; NULL when there is none */
    metrics_t *metrics;          /* may be NULL */
    const log_t *log;            /* may be NULL */
    decode_pool_t *decode_pool;  /* where routes decode images; NULL = on the HTTP thread */
} http_deps_t;

typedef enum { HTTP_DONE = 0, HTTP_PENDING = 1 } http_step_t;

/* What a route's body() hook did with a chunk. */
typedef enum {
    HTTP_BODY_TAKEN = 0,  /* consumed (streamed into the route's own state) */
    HTTP_BODY_BUFFER = 1, /* not wanted streamed: buffer it for http_request_body */
    HTTP_BODY_FAIL = 2,   /* out of memory: the connection is dropped */
} http_body_t;

typedef struct {
    const char *name;                          /* for logs */
    bool takes_body;                           /* POST routes: body buffered, 411 without length */
    bool feeds_batcher;                        /* submits images: counts as a batcher producer
                                                  from its headers until start() returns */
    bool needs_model;                          /* 503 until http_set_registry */
    /* optional: sees each body chunk as it arrives (within max_body_bytes), so
     * that a route can parse a body without it being buffered first */
    http_body_t (*body)(http_request_t *req, const uint8_t *data, size_t size);
    http_step_t (*start)(http_request_t *req); /* body complete; answer or go pending */
    void (*finish)(http_request_t *req);       /* after the last item is done; must answer */
    void (*cleanup)(http_request_t *req);      /* frees the route state; NULL = free() */
    void (*cancel)(http_request_t *req);       /* cancels queued items (client gone); may be NULL */
} http_route_t;

/* The routing table's lookup (server/api/routes.c's routes_find), handed in
 * so that this layer does not depend on the routes above it. */
typedef const http_route_t *(*http_find_route_fn)(const char *path, const char *method,
                                                  metrics_endpoint_t *endpoint, char *param,
                                                  size_t param_size, char *version,
                                                  size_t version_size, const char **allow);

typedef struct {
    http_deps_t deps;
    const config_t *cfg;    /* the daemon's own settings: auth_token, tls_cert, tls_key */
    http_find_route_fn find_route;
    const char *bind;       /* IPv4 or IPv6 literal, or a host name */
    int port;               /* 0 = any free port (see http_port) */
    int threads;            /* libmicrohttpd worker threads, >= 1 */
    int max_connections;    /* >= 1 (config key max_connections) */
    int connection_timeout_s;
    int header_timeout_s;   /* the first request's head within this of accept; 0 = none */
    int body_timeout_s;     /* a body within this of its head; 0 = none */
} http_params_t;

/* Creates and starts the daemon: listening when it returns RD_OK. Fails with
 * RD_ERR_ARG (bad bind address), RD_ERR_IO (cannot bind/listen; the message
 * names the address), RD_ERR_NOMEM. *out is NULL on failure.
 * With cfg->tls_cert set it serves HTTPS only: both PEM files are read
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


/* The limits routes apply, from cfg. */
http_limits_t http_limits_of(const config_t *cfg);

/* Publishes the models to the routes: requests that arrive afterwards see
 * deps with this registry and the model loader (control, for the repository
 * API; may be NULL), limits, metrics and log as given to http_create. Call
 * once, from the thread that loaded the first models, with a registry that
 * outlives the http_t (it changes afterwards under its own lock as the loader
 * publishes and retires versions). Thread-safe with respect to requests in
 * progress (they keep the deps they started with). */
void http_set_registry(http_t *h, registry_t *registry, void *control);

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

/* What the request's route may use (borrowed, valid for the request's life). */
const http_deps_t *http_request_deps(const http_request_t *req);

/* The daemon serving the request (for http_ready / http_draining). */
const http_t *http_request_server(const http_request_t *req);

/* The model the request is for: the one its URL names ({name}, else the
 * query's ?model=, else the registry's default) at the URL's version
 * (/versions/{v}, else ?version=, else the newest ready one). Looked up once
 * per request, which then holds it until it is freed (a version replaced
 * meanwhile finishes this request). NULL when there is no such model or
 * version, or it is not ready: http_request_model_miss says which. */
served_model_t *http_request_model(http_request_t *req);

/* After http_request_model gave NULL: 404 (unknown model, with the names
 * served; unknown version) or 503 (known, no version ready; Retry-After is
 * set), with the message in msg. */
int http_request_model_miss(http_request_t *req, char *msg, size_t size);

/* The complete request body (NUL-terminated, so a JSON parser may read it as
 * text); *len excludes the NUL. Empty for routes without takes_body, and
 * without the chunks a body() hook took. */
const uint8_t *http_request_body(const http_request_t *req, size_t *len);

/* The {version} segment of a versioned URL, else "". */
const char *http_request_version(const http_request_t *req);

/* The {name} segment of a KServe URL, else "". */
const char *http_request_param(const http_request_t *req);

/* The route's own state: set once in start(), freed by the route's cleanup()
 * (free() when it has none) when the request is freed. */
void *http_request_state(const http_request_t *req);
void http_request_set_state(http_request_t *req, void *state);

/* The access log record's per-image figures: images in the request, and one
 * image's timings (decode adds up; queue and inference keep the largest). A
 * negative timing is ignored. */
void http_request_set_images(http_request_t *req, int n);
void http_request_add_timings(http_request_t *req, double decode_ms, double queue_ms,
                              double inference_ms);

/* The access log record's model and version: the route has found the model
 * it serves. Borrowed: the request holds it (http_request_model). */
void http_request_set_model(http_request_t *req, const served_model_t *model);
/* CLOCK_MONOTONIC at the request's first byte (deadlines count from it). */
int64_t http_request_start_ns(const http_request_t *req);

/* Adds one response header (name and value up to 47 bytes). */
void http_set_header(http_request_t *req, const char *name, const char *value);

/* Adds response headers of any length: pairs is name, value, name, value,
 * ..., NULL, and must outlive the request (static data). */
void http_set_static_headers(http_request_t *req, const char *const *pairs);

/* True when the request's client can no longer receive its answer: the
 * request has completed, or the peer has closed its side of the connection
 * (an orderly shutdown or a reset). An orderly shutdown reads the same
 * whether the client hung up or only half-closed (shutdown(SHUT_WR)) and still
 * reads; with limits.ignore_client_abort only a reset counts (nginx's
 * proxy_ignore_client_abort). libmicrohttpd does not watch suspended
 * connections, so the batcher asks this before spending compute on a queued
 * image. A non-blocking peek at the socket; thread-safe (takes the request's
 * lock). */
bool http_client_gone(http_request_t *req);

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

/* Declares that n more items are about to be submitted (batcher items, or
 * one for a batch of decodes on the decode pool): each takes a reference on
 * the request, so it stays allocated until its done(). Call before the
 * submit; call again with -n if the submit fails (no done() will come; the
 * references are dropped). Thread-safe, but a negative n only from a thread
 * that still holds a reference of its own (the HTTP thread, or a pending
 * item's done path before its http_request_item_done). */
void http_request_expect(http_request_t *req, int n);

/* In start(): the body (http_request_body and what points into it) stays
 * until http_request_drop_body, because the route's images decode after
 * start() returns. Without it the body is freed when start() returns. */
void http_request_keep_body(http_request_t *req);

/* Frees the body kept by http_request_keep_body and gives back its share of
 * max_buffered_body_bytes: every image has been decoded. Call once, from any
 * thread, while a pending item holds the request. */
void http_request_drop_body(http_request_t *req);

/* Adds CPU time spent for req (for the access log's cpu_ms and
 * resnetd_cpu_seconds_total{part}). Thread-safe. The request's own HTTP
 * thread callbacks are counted by http_request.c. */
void http_request_add_cpu(http_request_t *req, metrics_cpu_part_t part, int64_t ns);

/* An item of req is done; call from the item's done() callback (the batcher's
 * worker thread). When it was the last, the request is resumed and its route's
 * finish() runs on an HTTP thread. Drops the item's reference (which may free
 * the request, when its client has gone). Thread-safe. */
void http_request_item_done(http_request_t *req);

/* Milliseconds since the request's first byte. */
double http_request_elapsed_ms(const http_request_t *req);

#endif
