/* http.c - the libmicrohttpd daemon: request state, routing, body buffering,
 * the suspend/resume handshake with the batcher, responses, access log.
 *
 * THREADS: libmicrohttpd runs an internal pool of `threads` worker threads
 * (MHD_OPTION_THREAD_POOL_SIZE); each owns a share of the connections and runs
 * their callbacks, so request parsing, JPEG decoding and preprocessing happen on
 * these threads, in parallel with inference. A route that needs the engine
 * submits batcher items and returns HTTP_PENDING; the HTTP thread then suspends
 * the connection (MHD_suspend_connection) and goes on serving other
 * connections instead of blocking. The batcher's single inference worker calls
 * each item's done(), which calls http_request_item_done(); the last one
 * resumes the connection (MHD_resume_connection is thread-safe), and
 * libmicrohttpd calls our handler again on the connection's own HTTP thread,
 * where the route's finish() builds the answer. So an HTTP thread never waits
 * for inference, and the engine is only ever touched by the worker.
 * A request on a feeds_batcher route is a batcher "producer" from its headers
 * (the body and decoding are still to come) until its route's start() has
 * submitted, or until it completes without getting that far, so the worker
 * waits for company only while some request may still bring it.
 * req->lock orders "suspend" before "resume": the handler suspends only while
 * items are pending, under the lock, and the worker resumes only a suspended
 * request, after dropping the lock. Request state is allocated on the first
 * callback and freed in the request-completed callback; the one exception is
 * a request completed while items are still queued (only at daemon stop after
 * a drain timeout): its items are cancelled and the last done() frees it.
 * Shared across threads: the `draining` flag, the `inflight` and `connections`
 * counters and the over-limit warning's rate limit (atomics),
 * and the `live` deps pointer, published once by http_set_model with release
 * ordering after the model has loaded; each request keeps the deps it saw at its
 * first callback, so a request never sees half a model. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "http_error.h"
#include "http_tls.h"
#include "routes.h"

struct http {
    struct MHD_Daemon *daemon;
    http_deps_t deps;        /* as created: the model fields may be NULL */
    http_deps_t loaded;      /* deps with the model, once http_set_model ran */
    _Atomic(const http_deps_t *) live; /* &loaded after http_set_model, else NULL */
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
};

/* The socket context of a connection accepted over max_connections. */
static char over_limit_tag;

static bool over_limit(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci && ci->socket_context == &over_limit_tag;
}

static void request_free(http_request_t *req)
{
    if (req->route && req->route->cleanup)
        req->route->cleanup(req);
    else
        free(req->route_data);
    pthread_mutex_destroy(&req->lock);
    free(req->body);
    free(req->response);
    free(req);
}

static http_request_t *request_new(http_t *h, struct MHD_Connection *conn, const char *url,
                                   const char *method)
{
    http_request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    if (pthread_mutex_init(&req->lock, NULL) != 0) {
        free(req);
        return NULL;
    }
    req->http = h;
    const http_deps_t *live = atomic_load_explicit(&h->live, memory_order_acquire);
    req->deps = live ? live : &h->deps;
    req->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req->fd = ci ? ci->connect_fd : -1;
    req->method = method;
    snprintf(req->path, sizeof req->path, "%s", url);
    req->endpoint = METRICS_EP_OTHER;
    req->start_ns = batcher_now_ns();
    return req;
}

/* --- answering --- */

void http_respond(http_request_t *req, int status, const char *content_type, char *body,
                  size_t len)
{
    free(req->response);
    req->status = status;
    req->content_type = content_type;
    req->response = body;
    req->response_len = body ? len : 0;
}

void http_respond_json(http_request_t *req, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        http_respond(req, 500, "application/json", strdup(oom), sizeof oom - 1);
        return;
    }
    http_respond(req, status, "application/json", text, strlen(text));
}

void http_set_retry_after(http_request_t *req, int status)
{
    if (http_error_retryable(status))
        req->retry_after_s = req->deps->cfg->retry_after_s > 0 ? req->deps->cfg->retry_after_s : 1;
}

void http_respond_error(http_request_t *req, int status, const char *message)
{
    json_t *err = http_error_object(status, message);
    http_respond_json(req, status, err ? json_pack("{s:o}", "error", err) : NULL);
    http_set_retry_after(req, status);
}

void http_respond_kserve_error(http_request_t *req, int status, const char *message)
{
    http_respond_json(req, status, json_pack("{s:s}", "error", message));
    http_set_retry_after(req, status);
}

static enum MHD_Result queue_answer(http_request_t *req)
{
    if (req->queued)
        return MHD_YES;
    req->queued = true;
    if (!req->status)
        http_respond_error(req, 500, "internal error: the route gave no answer");
    struct MHD_Response *resp;
    if (req->response)
        resp = MHD_create_response_from_buffer_with_free_callback(req->response_len, req->response,
                                                                  free);
    else
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    req->response = NULL; /* libmicrohttpd frees it now */
    if (req->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    if (req->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", req->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (req->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (req->header_name[0])
        MHD_add_response_header(resp, req->header_name, req->header_value);
    if (atomic_load(&req->http->draining) || over_limit(req->conn))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    double seconds = (double)(batcher_now_ns() - req->start_ns) / 1e9;
    metrics_count_request(req->deps->metrics, req->endpoint, req->status);
    metrics_observe(req->deps->metrics, METRICS_H_REQUEST, seconds);
    return ret;
}

/* --- the request header stage: routing and early refusals --- */

/* An early refusal in the error shape of the path's protocol. */
static void refuse(http_request_t *req, int status, const char *message)
{
    if (!strncmp(req->path, "/v2", 3) && (req->path[3] == '/' || !req->path[3]))
        http_respond_kserve_error(req, status, message);
    else
        http_respond_error(req, status, message);
}

/* The bearer token check, on headers alone: a refused client's body is
 * discarded unread, so it can make the server neither buffer nor decode.
 * /healthz and /readyz stay open for probes (any method: they answer 405 to
 * POST as usual); every other path, unknown ones included, needs the token,
 * so routes are not revealed to strangers. False after answering 401. */
static bool auth_stage(http_request_t *req)
{
    if (req->endpoint == METRICS_EP_HEALTHZ || req->endpoint == METRICS_EP_READYZ)
        return true;
    auth_result_t a = auth_check(&req->http->auth, http_header(req, MHD_HTTP_HEADER_AUTHORIZATION));
    if (a == AUTH_OK)
        return true;
    snprintf(req->header_name, sizeof req->header_name, "%s", MHD_HTTP_HEADER_WWW_AUTHENTICATE);
    snprintf(req->header_value, sizeof req->header_value, "Bearer realm=\"resnetd\"%s",
             a == AUTH_INVALID ? ", error=\"invalid_token\"" : "");
    const char *msg = a == AUTH_INVALID ? "invalid bearer token"
                                        : "this endpoint needs an Authorization: Bearer token";
    refuse(req, 401, msg);
    return false;
}

static bool header_stage(http_request_t *req, const char *url)
{
    const char *allow = NULL;
    req->route = routes_find(url, req->method, &req->endpoint, req->param, sizeof req->param,
                             &allow);
    if (over_limit(req->conn)) { /* before auth: it reveals nothing but the limit */
        req->route = NULL;
        char msg[128];
        snprintf(msg, sizeof msg, "too many connections (max_connections %d); retry later",
                 req->http->max_connections);
        refuse(req, 503, msg);
        return false;
    }
    if (!auth_stage(req)) {
        req->route = NULL; /* no route ran, so none cleans up */
        return false;
    }
    if (!req->route) {
        if (allow) {
            req->allow = allow;
            char msg[160];
            snprintf(msg, sizeof msg, "method %s not allowed on %.80s (allowed: %s)",
                     req->method, req->path, allow);
            http_respond_error(req, 405, msg);
        } else {
            http_respond_error(req, 404, "no such endpoint");
        }
        return false;
    }
    if (req->route->needs_model && !req->deps->model) {
        refuse(req, 503, "the model is still loading; try again shortly");
        return false;
    }
    if (!req->route->takes_body)
        return true;
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!len && !te) {
        refuse(req, 411, "a body with Content-Length (or chunked encoding) is required");
        return false;
    }
    int64_t max = req->deps->cfg->max_body_bytes;
    if (len && strtoll(len, NULL, 10) > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %.20s bytes exceeds max_body_bytes %lld", len,
                 (long long)max);
        refuse(req, 413, msg);
        return false;
    }
    return true;
}

static bool append_body(http_request_t *req, const char *data, size_t size)
{
    req->bytes_in += (int64_t)size;
    if (req->body_too_large) /* discarding up to twice the limit, then hanging up */
        return req->bytes_in <= 2 * req->deps->cfg->max_body_bytes;
    if (req->bytes_in > req->deps->cfg->max_body_bytes) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return true;
    }
    if (req->body_len + size + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 65536;
        while (cap < req->body_len + size + 1)
            cap *= 2;
        uint8_t *p = realloc(req->body, cap);
        if (!p)
            return false;
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    req->body[req->body_len] = 0;
    return true;
}

/* Ends the request's producer span; idempotent, so every exit path may call it. */
static void producer_leave(http_request_t *req)
{
    if (!req->producing)
        return;
    req->producing = false;
    batcher_producer_leave(req->deps->batcher);
}

/* Runs the route once the body is complete. Returns true when the connection
 * was suspended (the answer comes later). */
static bool run_route(http_request_t *req)
{
    if (req->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "body exceeds max_body_bytes %lld",
                 (long long)req->deps->cfg->max_body_bytes);
        refuse(req, 413, msg);
        return false;
    }
    if (req->route->takes_body && !req->body && !append_body(req, "", 0)) {
        refuse(req, 503, "out of memory");
        return false;
    }
    if (req->route->start(req) == HTTP_PENDING) {
        pthread_mutex_lock(&req->lock);
        bool wait = req->pending > 0;
        if (wait) {
            req->suspended = true;
            MHD_suspend_connection(req->conn);
        }
        pthread_mutex_unlock(&req->lock);
        if (wait)
            return true;
        req->finished = true;
        req->route->finish(req);
    }
    return false;
}

/* libmicrohttpd closes the connection after an answer queued at the header
 * stage, as it cannot know that no body follows. A request that declares no
 * body loses nothing by waiting for the next call (made at once), so a 401,
 * 404 or 405 to it keeps the connection open for the client's next, perhaps
 * pipelined, request. The rest still close: 411 and 413 may have unread bytes
 * behind them, and a 503 refusal is there to shed connections. */
static enum MHD_Result early_answer(http_request_t *req)
{
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool body = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) || (len && strcmp(len, "0"));
    if (!body && (req->status == 401 || req->status == 404 || req->status == 405))
        return MHD_YES; /* the next call finds req->status set and queues it */
    return queue_answer(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_t *h = cls;
    http_request_t *req = *con_cls;
    if (!req) {
        req = request_new(h, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        atomic_fetch_add(&h->inflight, 1);
        metrics_gauge_add(h->deps.metrics, METRICS_G_INFLIGHT, 1);
        if (!header_stage(req, url))
            return early_answer(req);
        if (req->route->feeds_batcher && req->deps->batcher) {
            req->producing = true;
            batcher_producer_enter(req->deps->batcher);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (req->route && req->route->takes_body && !req->status)
            return append_body(req, upload_data, size) ? MHD_YES : MHD_NO;
        req->bytes_in += (int64_t)size; /* a body nobody wants: discard */
        /* ... but not forever: past twice the limit, drop the connection */
        return req->bytes_in > 2 * h->deps.cfg->max_body_bytes ? MHD_NO : MHD_YES;
    }
    if (req->status) /* decided early, or by a resumed finish() */
        return queue_answer(req);
    if (req->suspended) { /* only this thread sets it */
        pthread_mutex_lock(&req->lock);
        int pending = req->pending;
        pthread_mutex_unlock(&req->lock);
        if (pending > 0)
            return MHD_YES; /* a spurious call before the resume */
        req->finished = true; /* resumed: every item is done */
        req->route->finish(req);
        return queue_answer(req);
    }
    bool suspended = run_route(req);
    producer_leave(req); /* after start()'s submit, so its items wait for other producers */
    return suspended ? MHD_YES : queue_answer(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_t *h = cls;
    http_request_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    producer_leave(req); /* the client went away before start(), or an early answer */
    log_access_t rec = {
        .method = req->method,
        .path = req->path,
        .status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || req->status ? req->status : 499,
        .bytes_in = req->bytes_in,
        .bytes_out = (int64_t)req->response_len,
        .images = req->images,
        .decode_ms = req->images ? req->decode_ms : -1,
        .queue_ms = req->images ? req->queue_ms : -1,
        .inference_ms = req->images ? req->inference_ms : -1,
        .total_ms = http_request_elapsed_ms(req),
    };
    if (rec.status == 0)
        rec.status = 499;
    log_access(h->deps.log, &rec);
    atomic_fetch_sub(&h->inflight, 1);
    metrics_gauge_add(h->deps.metrics, METRICS_G_INFLIGHT, -1);

    pthread_mutex_lock(&req->lock);
    req->closed = true;
    bool orphaned = req->pending > 0;
    pthread_mutex_unlock(&req->lock);
    if (!orphaned) {
        request_free(req);
        return;
    }
    if (req->route->cancel)
        req->route->cancel(req); /* the last http_request_item_done frees it */
}

bool http_client_gone(http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool gone = req->closed;
    if (!gone && req->fd >= 0) {
        /* the socket stays open while the request is not closed: a suspended
         * connection is neither read nor closed by libmicrohttpd */
        struct pollfd p = {.fd = req->fd, .events = POLLRDHUP};
        gone = poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    }
    pthread_mutex_unlock(&req->lock);
    return gone;
}

void http_request_expect(http_request_t *req, int n)
{
    pthread_mutex_lock(&req->lock);
    req->pending = n;
    pthread_mutex_unlock(&req->lock);
}

void http_request_item_done(http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool last = --req->pending == 0;
    bool resume = last && req->suspended && !req->closed;
    bool orphan = last && req->closed;
    struct MHD_Connection *conn = req->conn;
    pthread_mutex_unlock(&req->lock);
    if (resume)
        MHD_resume_connection(conn); /* still suspended, so conn is valid */
    else if (orphan)
        request_free(req);
}

/* --- helpers for routes --- */

const char *http_header(const http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_request_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

double http_request_elapsed_ms(const http_request_t *req)
{
    return (double)(batcher_now_ns() - req->start_ns) / 1e6;
}

/* --- the daemon --- */

/* Counts open connections. libmicrohttpd's own limit stops accepting (new
 * connections then wait, silent, in the kernel's backlog), so the daemon's
 * limit is set above max_connections and a connection accepted over
 * max_connections is marked here, then answered 503 + Retry-After +
 * Connection: close at its first request (header_stage): a client learns why,
 * and when to come back. The count includes the marked connections, so a burst
 * of refusals does not let more in. The warning is rate-limited to one per 10 s
 * so that a flood does not flood the log too. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    http_t *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&h->connections, 1);
        return;
    }
    if (atomic_fetch_add(&h->connections, 1) < h->max_connections)
        return;
    *socket_context = &over_limit_tag;
    metrics_count_connection_refused(h->deps.metrics);
    atomic_fetch_add(&h->refused_unlogged, 1);
    int64_t now = batcher_now_ns();
    int64_t last = atomic_load(&h->refused_warn_ns);
    if ((last == 0 || now - last >= 10000000000LL) &&
        atomic_compare_exchange_strong(&h->refused_warn_ns, &last, now))
        log_msg(h->deps.log, LOG_WARN,
                "max_connections (%d) reached: %ld connections answered 503 since the last "
                "warning (at most one every 10 s)",
                h->max_connections, atomic_exchange(&h->refused_unlogged, 0));
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    log_msg(cls, LOG_WARN, "libmicrohttpd: %s", line);
}

static rd_status_t resolve(const char *bind, int port, struct sockaddr_storage *ss,
                           rd_error_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(bind && *bind ? bind : NULL, service, &hints, &res);
    if (rc != 0 || !res)
        return rd_error_set(err, RD_ERR_ARG, "bind address '%s': %s", bind ? bind : "",
                            gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return RD_OK;
}

rd_status_t http_create(const http_params_t *params, http_t **out, rd_error_t *err)
{
    *out = NULL;
    struct sockaddr_storage ss = {0};
    rd_status_t st = resolve(params->bind, params->port, &ss, err);
    if (st != RD_OK)
        return st;
    const config_t *cfg = params->deps.cfg;
    tls_pem_t tls = {0};
    if (cfg && cfg->tls_cert[0] && (st = tls_load(cfg, &tls, err)) != RD_OK)
        return st;
    http_t *h = calloc(1, sizeof *h);
    if (!h) {
        tls_pem_free(&tls);
        return rd_error_set(err, RD_ERR_NOMEM, "http: out of memory");
    }
    h->deps = params->deps;
    auth_init(&h->auth, params->deps.cfg ? params->deps.cfg->auth_token : NULL);
    pthread_mutex_init(&h->drain_lock, NULL);
    /* poll(), not the epoll that MHD_USE_AUTO picks on Linux: in epoll mode
     * libmicrohttpd 0.9.75 never notices a client that sent half a request and
     * closed (the slot stays taken until connection_timeout_s), and its
     * quiesce/stop path can abort with "Failed to remove listen FD from epoll
     * set" (docs/reliability.md) */
    unsigned flags = MHD_USE_POLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* an option array, so that plain HTTP passes the same call an empty one
     * (tls_opts + 2); libmicrohttpd loads the PEM texts during the start */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls.key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, tls.cert},
        {MHD_OPTION_END, 0, NULL},
    };
    if (tls.key)
        flags |= MHD_USE_TLS;
    unsigned threads = params->threads > 1 ? (unsigned)params->threads : 0;
    h->max_connections = params->max_connections > 0 ? params->max_connections : 256;
    /* room above max_connections for the connections refused with a 503;
     * libmicrohttpd splits its limit between the pool threads, hence 2 each */
    int reserve = h->max_connections / 4;
    if (reserve < 2 * (int)(threads ? threads : 1))
        reserve = 2 * (int)(threads ? threads : 1);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        (void *)params->deps.log, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(h->max_connections + reserve), MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(params->connection_timeout_s > 0 ? params->connection_timeout_s : 0),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_ARRAY,
        tls.key ? tls_opts : tls_opts + 2, MHD_OPTION_END);
    bool tls_on = tls.key != NULL;
    tls_pem_free(&tls); /* GnuTLS copied them at the start; wipe our copy of the key */
    if (!h->daemon) {
        pthread_mutex_destroy(&h->drain_lock);
        free(h);
        return rd_error_set(err, RD_ERR_IO, "cannot listen on %s port %d (in use? permitted?%s)",
                            params->bind, params->port,
                            tls_on ? " or TLS refused: see libmicrohttpd's log line" : "");
    }
    if (tls_on) /* that it is on and which certificate, never key material */
        log_msg(params->deps.log, LOG_INFO, "tls: serving HTTPS only, certificate %s",
                cfg->tls_cert);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : params->port;
    *out = h;
    return RD_OK;
}

int http_port(const http_t *h)
{
    return h->port;
}

void http_begin_drain(http_t *h)
{
    atomic_store(&h->draining, true);
    pthread_mutex_lock(&h->drain_lock);
    if (!h->quiesced) {
        h->quiesced = true;
        /* libmicrohttpd's threads may still look at the socket until the
         * daemon stops, so it is closed only then (its documented contract);
         * shutdown() takes it out of LISTEN now, so new connections are
         * refused and the ones in the backlog reset */
        h->quiesced_fd = MHD_quiesce_daemon(h->daemon);
        if (h->quiesced_fd != MHD_INVALID_SOCKET)
            shutdown(h->quiesced_fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&h->drain_lock);
}

bool http_draining(const http_t *h)
{
    return atomic_load(&h->draining);
}

void http_stop_work(http_t *h)
{
    atomic_store(&h->stopping, true);
}

bool http_stopping(const http_t *h)
{
    return atomic_load(&h->stopping);
}

void http_set_model(http_t *h, const model_info_t *model, const model_preproc_t *preproc,
                    const char *model_name, batcher_t *batcher)
{
    h->loaded = h->deps;
    h->loaded.model = model;
    h->loaded.preproc = preproc;
    h->loaded.model_name = model_name;
    h->loaded.batcher = batcher;
    atomic_store_explicit(&h->live, &h->loaded, memory_order_release);
}

bool http_ready(const http_t *h)
{
    return atomic_load_explicit(&h->live, memory_order_acquire) && !http_draining(h);
}

int http_inflight(const http_t *h)
{
    return atomic_load(&h->inflight);
}

void http_destroy(http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    if (h->quiesced && h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    pthread_mutex_destroy(&h->drain_lock);
    free(h);
}
