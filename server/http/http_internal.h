/* http_internal.h - the daemon and request structs, private to server/http/
 * (http.c runs the daemon, http_request.c owns a request's life,
 * http_respond.c builds answers). Who may touch each field is written beside
 * it; the rules are explained at the top of http_request.c. */
#ifndef RESNETD_HTTP_INTERNAL_H
#define RESNETD_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "auth.h"
#include "http.h"
#include "http_conn.h"

struct http {
    struct MHD_Daemon *daemon;
    http_deps_t deps;        /* as created: no registry yet */
    http_deps_t loaded;      /* deps with the registry, once http_set_registry ran */
    _Atomic(const http_deps_t *) live; /* &loaded after http_set_registry, else NULL */
    http_find_route_fn find_route;
    auth_t auth;             /* cfg->auth_token, padded for the constant-time check */
    int port;
    atomic_bool draining;
    atomic_bool stopping;        /* http_stop_work: running decodes give up */
    atomic_int inflight;
    pthread_mutex_t drain_lock; /* makes http_begin_drain idempotent */
    bool quiesced;
    MHD_socket quiesced_fd;      /* the listening socket MHD_quiesce_daemon handed back:
                                    closed only after MHD_stop_daemon (see http_destroy) */
    int max_connections;         /* above it a connection is answered 503 and closed */
    atomic_int connections;      /* open connections, the refused ones included */
    _Atomic int64_t refused_warn_ns; /* the last over-limit warning, for its rate limit */
    atomic_long refused_unlogged;    /* refusals since that warning */
    http_conns_t conns;          /* open connections and their deadlines (http_conn.c) */
    _Atomic int64_t buffered;    /* body bytes reserved by all requests (max_buffered_body_bytes) */
};

/* The stages of a request, in on_request's order (see http_request.c). */
typedef enum {
    RQ_RECEIVING = 0, /* routed; body chunks (if any) are being appended */
    RQ_REFUSED,       /* answered at the header stage; any body is discarded */
    RQ_WAITING,       /* suspended until its queued items are done */
    RQ_SENT,          /* the answer was handed to libmicrohttpd */
} http_state_t;

struct http_request {
    /* set at creation, then read-only */
    http_t *http;
    const http_deps_t *deps;
    struct MHD_Connection *conn;
    int fd;                      /* the connection's socket (http_client_gone), or -1 */
    const char *method;          /* "GET", "POST", ... (libmicrohttpd's string) */
    char path[256];              /* URL path, truncated (logs) */
    int64_t start_ns;            /* CLOCK_MONOTONIC at accept (a connection's first request)
                                    or when its request line was read (later ones) */
    int64_t wait_ns;             /* from accept to the first callback (first request), else 0 */

    /* the request's HTTP thread only (one at a time: libmicrohttpd calls a
     * connection's callbacks on its own thread) */
    http_state_t state;
    char param[128];             /* the {name} segment of a KServe URL, else "" */
    char version[16];            /* the {version} segment of a versioned URL, else "" */
    served_model_t *model;       /* acquired at the first http_request_model, one reference,
                                    dropped in request_free */
    bool model_looked_up;
    registry_lookup_t lookup;    /* what that lookup found */
    const http_route_t *route;   /* NULL while unrouted */
    metrics_endpoint_t endpoint;
    uint8_t *body;               /* request body (NUL-terminated) */
    size_t body_len;
    size_t body_cap;
    int64_t bytes_in;            /* body bytes received (counted past the limit too) */
    bool body_too_large;
    bool close;            /* answer with Connection: close (a framing refusal) */
    bool body_over_budget;       /* max_buffered_body_bytes was reached: 503 at the end */
    bool body_kept;              /* http_request_keep_body: decodes read the body after start() */
    int64_t reserved;            /* this request's share of http->buffered */
    served_model_t *producing;   /* the model between served_model_producer_enter and _leave
                                    (feeds_batcher routes), else NULL */
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
    const char *const *static_headers; /* name, value, ..., NULL (string literals), or NULL */
    /* the access log record's per-image figures, filled by routes */
    int images;
    double decode_ms, queue_ms, inference_ms;
    const served_model_t *logged_model; /* http_request_set_model; NULL = none found */

    /* guarded by lock: the handshake with the batcher's worker */
    pthread_mutex_t lock;
    int pending;                 /* items submitted and not yet done */
    bool suspended;              /* the connection is suspended waiting for them */
    bool closed;                 /* libmicrohttpd has completed the request */
    pthread_cond_t none_pending; /* pending reached 0 (a half-closed client's HTTP thread
                                    waits on it instead of suspending) */

    atomic_int refs;             /* libmicrohttpd's one + one per pending item */
    _Atomic int64_t cpu_ns[METRICS_N_CPU_PARTS]; /* CPU spent for it, by part (any thread) */
};

/* libmicrohttpd's callbacks for a request: http_on_request (http_cpu.c)
 * times each call of http_request_handle (http_request.c). */
enum MHD_Result http_request_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);

/* The header stage (http_admit.c): true when req may go on to its body;
 * else a refusal was queued and *refused is what libmicrohttpd gets back. */
bool http_admit(http_request_t *req, const char *url, const char *version,
                enum MHD_Result *refused);
/* An early refusal in the error shape of req's protocol, with Retry-After on
 * 503 (http_admit.c); the 503 for a full body budget. */
void http_refuse(http_request_t *req, int status, const char *message);
void http_refuse_over_budget(http_request_t *req);
/* Queues req's answer, once (http_request.c). */
enum MHD_Result http_queue_answer(http_request_t *req);

/* The body budget (http_body_budget.c): reserve up to `total` body bytes
 * for req (false, nothing more reserved, past max_buffered_body_bytes); give
 * req's share back; free req's buffered body and give its share back. */
bool http_body_budget_take(http_request_t *req, int64_t total);
void http_body_budget_release(http_request_t *req);
void http_body_drop(http_request_t *req);

/* req's CPU time so far, ms; each part is added to resnetd_cpu_seconds_total
 * and the sum observed in resnetd_request_cpu_seconds (http_cpu.c). Call
 * once, when the request completes. */
double http_request_cpu_report(http_request_t *req, metrics_t *metrics);

/* True for a connection accepted over max_connections (its http_conn_t). */
bool http_over_limit(struct MHD_Connection *conn);

#endif
