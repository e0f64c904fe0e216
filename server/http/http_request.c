/* http_request.c - one HTTP request's life, from libmicrohttpd's first
 * callback to the one place that frees it.
 *
 * STATES: on_request is called by libmicrohttpd once for the headers, once per
 * body chunk, once when the body is complete, and again after each resume.
 * The request's state says which stage it is in, so every call does one thing:
 *
 *   (first call) -- headers --> RQ_RECEIVING   routed, body chunks appended
 *                           \-> RQ_REFUSED     refused at the header stage
 *                                              (bad route, 401, 411, 413, 503);
 *                                              a small body is read and discarded
 *                                              first (early_answer)
 *                           \-> RQ_SENT        the same, answer queued at once
 *   RQ_RECEIVING -- body complete: route->start() --> RQ_WAITING  (items queued)
 *                                                \-> RQ_SENT      (answered)
 *   RQ_REFUSED   -- next call --> RQ_SENT
 *   RQ_WAITING   -- resumed, every item done: route->finish() --> RQ_SENT
 *   RQ_SENT      -- (body chunks discarded; libmicrohttpd completes it)
 *
 * OWNERSHIP: a request is reference counted. libmicrohttpd holds one
 * reference from the first callback until its completion callback
 * (on_completed); each image queued on the batcher holds one, from
 * http_request_expect until its http_request_item_done, and so does a
 * request's batch of decodes on the decode pool, as one pending item. request_release drops
 * one, and the last one frees the request and its route state there, in
 * request_free, and nowhere else. So a request whose client went away while
 * its images are still queued (possible only when a drain times out) lives
 * until the worker has completed the last of them.
 *
 * THREADS: libmicrohttpd calls a connection's callbacks on the one HTTP
 * thread that owns it, one at a time, so the fields under "the request's HTTP
 * thread only" in http_internal.h need no lock, even though a suspended
 * request may resume on a later call. The batcher's worker and the decode
 * pool's threads call http_request_item_done, http_request_expect and
 * http_client_gone; they touch only `pending`, `suspended`, `closed` and
 * `none_pending` (under req->lock), the socket, the reference count and the
 * CPU counts (atomic). A route that decodes on the pool keeps its body
 * (http_request_keep_body): then the pool's last thread frees it
 * (http_request_drop_body) and the HTTP thread does not touch it after
 * start(). req->lock orders "suspend" before "resume": the handler
 * suspends only while items are pending, under the lock, and the worker
 * resumes only a suspended request, after dropping the lock
 * (MHD_resume_connection is thread-safe; the connection stays valid because a
 * suspended connection is not completed before the daemon stops, which the
 * server does only after the batcher has drained).
 * A request on a feeds_batcher route is a batcher "producer" from its headers
 * until its route's start() has submitted or handed its images to the decode
 * pool (which then holds a producer span of its own until it submits), or
 * until it completes without getting that far, so the worker waits for
 * company only while some request may still bring it.
 * CPU time: see http_cpu.c. */
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "http_framing.h"
#include "http_internal.h"

#define HTTP_TRIM_BYTES (1u << 20) /* a request this large is followed by malloc_trim */

static void request_free(http_request_t *req)
{
    if (req->route && req->route->cleanup)
        req->route->cleanup(req);
    else
        free(req->route_data);
    pthread_cond_destroy(&req->none_pending);
    pthread_mutex_destroy(&req->lock);
    served_model_unref(req->model); /* its queue has answered every item of this request */
    free(req->body);
    free(req->response);
    bool large = req->bytes_in >= (int64_t)HTTP_TRIM_BYTES;
    http_body_budget_release(req);
    free(req);
    if (large) /* the body, its parse tree and its decodes are freed: give them back */
        malloc_trim(0);
}

/* Drops one reference; the last one frees the request (the only free site). */
static void request_release(http_request_t *req)
{
    if (atomic_fetch_sub(&req->refs, 1) == 1)
        request_free(req);
}

/* When req began: its connection's accept for the connection's first request
 * (so the time it waited for an HTTP thread counts), else when its request
 * line was read (so a slowly sent head counts), else now. */
static int64_t request_began_ns(struct MHD_Connection *conn, int64_t now, bool *first)
{
    http_conn_t *c = http_conn_of(conn);
    *first = c && c->requests == 0;
    if (!c)
        return now;
    int64_t began = c->requests++ > 0 ? c->line_ns : c->accept_ns;
    return began > 0 && began < now ? began : now;
}

/* The connection waits for req's body, or for nothing (the deadlines of http_conn.c). */
static void request_phase(http_request_t *req, bool body)
{
    http_conn_set_phase(&req->http->conns, http_conn_of(req->conn),
                        body ? HTTP_CONN_BODY : HTTP_CONN_IDLE);
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
    if (pthread_cond_init(&req->none_pending, NULL) != 0) {
        pthread_mutex_destroy(&req->lock);
        free(req);
        return NULL;
    }
    atomic_init(&req->refs, 1); /* libmicrohttpd's, until on_completed */
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
    int64_t now = clock_now_ns();
    bool first;
    req->start_ns = request_began_ns(conn, now, &first);
    req->wait_ns = first ? now - req->start_ns : 0; /* resnetd_request_wait_seconds */
    req->state = RQ_RECEIVING;
    return req;
}

/* The socket context of a connection accepted over max_connections (http.c). */
bool http_over_limit(struct MHD_Connection *conn)
{
    const http_conn_t *c = http_conn_of(conn);
    return c && c->over_limit;
}

static enum MHD_Result queue_answer(http_request_t *req)
{
    if (req->state == RQ_SENT)
        return MHD_YES;
    req->state = RQ_SENT;
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
    for (const char *const *h = req->static_headers; h && h[0]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    if (req->close || atomic_load(&req->http->draining) || http_over_limit(req->conn))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    double seconds = (double)(clock_now_ns() - req->start_ns) / 1e9;
    metrics_count_request(req->deps->metrics, req->endpoint, req->status);
    metrics_observe(req->deps->metrics, METRICS_H_REQUEST, seconds);
    return ret;
}

/* --- the header stage: routing and early refusals --- */

/* An early refusal in the error shape of the path's protocol (KServe,
 * TorchServe, TF Serving or resnetd's own). */
static void refuse(http_request_t *req, int status, const char *message)
{
    http_respond_json(req, status, http_error_body(http_error_shape(req->path), status, message));
    http_set_retry_after(req, status);
}

/* The bearer token check, on headers alone: a refused client's body is
 * discarded unread, so it can make the server neither buffer nor decode.
 * /healthz and /readyz stay open for probes (any method: they answer 405 to
 * POST as usual), and the page (/ and /ui/: static files, no data; it asks
 * for the token); every other path, unknown ones included, needs the token,
 * so routes are not revealed to strangers. False after answering 401. */
static bool is_probe(const http_request_t *req)
{
    return req->endpoint == METRICS_EP_HEALTHZ || req->endpoint == METRICS_EP_READYZ ||
           req->endpoint == METRICS_EP_TS_PING; /* TorchServe's probe, like /readyz */
}

static bool auth_stage(http_request_t *req)
{
    if (is_probe(req) || req->endpoint == METRICS_EP_UI)
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

/* 503 + Retry-After: the bodies being received already fill max_buffered_body_bytes. */
static void refuse_over_budget(http_request_t *req)
{
    char msg[160];
    snprintf(msg, sizeof msg, "the server is buffering max_buffered_body_bytes %lld of request "
             "bodies; retry later", (long long)req->deps->limits->max_buffered_body_bytes);
    refuse(req, 503, msg);
}

static bool header_stage(http_request_t *req, const char *url)
{
    const char *allow = NULL;
    req->route = req->http->find_route(url, req->method, &req->endpoint, req->param,
                                       sizeof req->param, req->version, sizeof req->version,
                                       &allow);
    if (http_over_limit(req->conn) && !is_probe(req)) { /* before auth: it reveals nothing but the limit */
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
    if (req->route->needs_model && !req->deps->registry) {
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
    int64_t max = req->deps->limits->max_body_bytes;
    if (len && strtoll(len, NULL, 10) > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %.20s bytes exceeds max_body_bytes %lld", len,
                 (long long)max);
        refuse(req, 413, msg);
        return false;
    }
    if (len && !http_body_budget_take(req, strtoll(len, NULL, 10))) {
        refuse_over_budget(req);
        return false;
    }
    return true;
}

/* Request line and framing (http_framing.c), before routing or auth: a
 * request a proxy could frame differently is refused and its connection
 * closed. False after answering. */
static bool framing_stage(http_request_t *req, const char *version)
{
    char msg[160];
    int status = http_framing_check(req->conn, version, msg, sizeof msg);
    if (!status)
        return true;
    req->state = RQ_REFUSED;
    req->close = true;
    refuse(req, status, msg);
    return false;
}

/* libmicrohttpd closes the connection after an answer queued at the header
 * stage, as it cannot know that no body follows. A request that declares no
 * body loses nothing by waiting for the next call (made at once), so a 401,
 * 404 or 405 to it keeps the connection open for the client's next, perhaps
 * pipelined, request. So does one with a small body (Content-Length up to
 * HTTP_REFUSED_DRAIN_BYTES, no Expect: 100-continue): its body is read and
 * discarded, never buffered, before the answer. Answering it at the headers
 * would close the socket while the body is still arriving, and a close with
 * unread bytes sends a TCP reset that can destroy the answer before the
 * client reads it (curl then fails with "connection reset" instead of
 * showing the 401; seen under TSan's slowdown). The rest still close: 411
 * and 413 may have unread bytes behind them, a 503 refusal is there to shed
 * connections, a large or chunked body is not worth reading, and a client
 * that asked for 100-continue waits for the answer instead of sending. */
#define HTTP_REFUSED_DRAIN_BYTES (1 << 20)

static enum MHD_Result early_answer(http_request_t *req)
{
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool chunked = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    bool body = chunked || (len && strcmp(len, "0"));
    bool small = !chunked && (!body || strtoll(len, NULL, 10) <= HTTP_REFUSED_DRAIN_BYTES) &&
                 !http_header(req, MHD_HTTP_HEADER_EXPECT);
    req->state = RQ_REFUSED;
    if (small && (req->status == 401 || req->status == 404 || req->status == 405))
        return MHD_YES; /* the call after the body (or the next one) queues it */
    return queue_answer(req);
}

/* The first call: a new request, routed and checked on its headers. */
static enum MHD_Result on_headers(http_t *h, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, void **con_cls)
{
    http_request_t *req = request_new(h, conn, url, method);
    if (!req)
        return MHD_NO;
    *con_cls = req;
    atomic_fetch_add(&h->inflight, 1);
    metrics_gauge_add(h->deps.metrics, METRICS_G_INFLIGHT, 1);
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    request_phase(req, http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
                           (len && strcmp(len, "0")));
    metrics_observe(h->deps.metrics, METRICS_H_WAIT, (double)req->wait_ns / 1e9);
    if (!framing_stage(req, version))
        return queue_answer(req); /* closes: the body, if any, cannot be framed */
    if (!header_stage(req, url))
        return early_answer(req);
    if (req->route->feeds_batcher && (req->producing = http_request_model(req)))
        served_model_producer_enter(req->producing);
    return MHD_YES;
}

/* --- the body stage --- */

/* Appends a chunk to the buffered body (kept NUL-terminated). */
static bool buffer_body(http_request_t *req, const char *data, size_t size)
{
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

/* A chunk of a wanted body: counted against max_body_bytes, then handed to
 * the route's body() hook or buffered. */
static bool take_body(http_request_t *req, const char *data, size_t size)
{
    req->bytes_in += (int64_t)size;
    if (req->body_too_large) /* discarding up to twice the limit, then hanging up */
        return req->bytes_in <= 2 * req->deps->limits->max_body_bytes;
    if (req->body_over_budget)
        return req->bytes_in <= 2 * req->deps->limits->max_body_bytes;
    if (req->bytes_in > req->deps->limits->max_body_bytes) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return true;
    }
    if (!http_body_budget_take(req, req->bytes_in)) { /* chunked: 503 at the end, rest discarded */
        req->body_over_budget = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return true;
    }
    http_body_t b = req->route->body ? req->route->body(req, (const uint8_t *)data, size)
                                     : HTTP_BODY_BUFFER;
    if (b == HTTP_BODY_BUFFER)
        return buffer_body(req, data, size);
    return b == HTTP_BODY_TAKEN;
}

static enum MHD_Result on_body_chunk(http_request_t *req, const char *data, size_t size)
{
    if (req->state == RQ_RECEIVING && req->route->takes_body)
        return take_body(req, data, size) ? MHD_YES : MHD_NO;
    req->bytes_in += (int64_t)size; /* a body nobody wants: discard */
    /* ... but not forever: past twice the limit, drop the connection */
    return req->bytes_in > 2 * req->http->deps.limits->max_body_bytes ? MHD_NO : MHD_YES;
}

/* Ends the request's producer span; idempotent, so every exit path may call it. */
static void producer_leave(http_request_t *req)
{
    if (!req->producing)
        return;
    served_model_producer_leave(req->producing);
    req->producing = NULL;
}

/* Whether the answer is waited for on the HTTP thread instead of suspending
 * the connection: with ignore_client_abort. libmicrohttpd closes a resumed
 * connection whose FIN it reads before the answer is queued, and a client
 * that half-closes right after its body (nc -N) may send its FIN after the
 * route's start() has returned, so no check at that moment would do: the
 * thread waits (at most request_timeout_ms, after which the batcher drops the
 * images) and queues the answer from the same callback. */
static bool waits_on_thread(const http_request_t *req)
{
    return req->deps->limits->ignore_client_abort;
}

/* Runs the route once the body is complete. Returns true when the connection
 * was suspended (state RQ_WAITING: the answer comes later). */
static bool run_route(http_request_t *req)
{
    if (req->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "body exceeds max_body_bytes %lld",
                 (long long)req->deps->limits->max_body_bytes);
        refuse(req, 413, msg);
        return false;
    }
    if (req->body_over_budget) {
        refuse_over_budget(req);
        return false;
    }
    if (req->route->takes_body && !req->body && !buffer_body(req, "", 0)) {
        refuse(req, 503, "out of memory");
        return false;
    }
    http_step_t step = req->route->start(req);
    if (step == HTTP_DONE || !req->body_kept) /* else the decodes drop it when done */
        http_body_drop(req);
    if (step == HTTP_PENDING) {
        pthread_mutex_lock(&req->lock);
        bool wait = req->pending > 0;
        if (wait && waits_on_thread(req)) {
            while (req->pending > 0)
                pthread_cond_wait(&req->none_pending, &req->lock);
            wait = false;
        }
        if (wait) {
            req->suspended = true;
            req->state = RQ_WAITING;
            MHD_suspend_connection(req->conn);
        }
        pthread_mutex_unlock(&req->lock);
        if (wait)
            return true;
        req->route->finish(req);
    }
    return false;
}

static enum MHD_Result on_body_complete(http_request_t *req)
{
    request_phase(req, false);
    bool suspended = run_route(req);
    producer_leave(req); /* after start()'s submit, so its items wait for other producers */
    return suspended ? MHD_YES : queue_answer(req);
}

/* A call on a suspended request: after the resume, or a spurious one before. */
static enum MHD_Result on_resumed(http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    int pending = req->pending;
    pthread_mutex_unlock(&req->lock);
    if (pending > 0)
        return MHD_YES;
    req->route->finish(req);
    return queue_answer(req);
}

enum MHD_Result http_request_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    http_request_t *req = *con_cls;
    if (!req)
        return on_headers(cls, conn, url, method, version, con_cls);
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        return on_body_chunk(req, upload_data, size);
    }
    switch (req->state) {
    case RQ_RECEIVING:
        return on_body_complete(req);
    case RQ_REFUSED:
        request_phase(req, false);
        return queue_answer(req);
    case RQ_WAITING:
        return on_resumed(req);
    case RQ_SENT:
        break;
    }
    return MHD_YES;
}

void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_t *h = cls;
    http_request_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    producer_leave(req); /* the client went away before start(), or an early answer */
    request_phase(req, false); /* kept alive: connection_timeout_s from now on */
    char version[16] = "";
    if (req->logged_model)
        snprintf(version, sizeof version, "%d", served_model_version(req->logged_model));
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
        .cpu_ms = http_request_cpu_report(req, h->deps.metrics),
        .model = req->logged_model ? served_model_name(req->logged_model) : NULL,
        .version = req->logged_model ? version : NULL,
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
    if (orphaned && req->route->cancel)
        req->route->cancel(req); /* under libmicrohttpd's reference: req is still ours */
    request_release(req);
}

/* --- the handshake with the batcher's worker --- */

bool http_client_gone(http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool gone = req->closed;
    if (!gone && req->fd >= 0) {
        /* the socket stays open while the request is not closed: a suspended
         * connection is neither read nor closed by libmicrohttpd */
        short ended = POLLHUP | POLLERR;
        if (!req->deps->limits->ignore_client_abort)
            ended |= POLLRDHUP;
        struct pollfd p = {.fd = req->fd, .events = POLLRDHUP};
        gone = poll(&p, 1, 0) > 0 && (p.revents & ended);
    }
    pthread_mutex_unlock(&req->lock);
    return gone;
}

void http_request_expect(http_request_t *req, int n)
{
    pthread_mutex_lock(&req->lock);
    req->pending += n;
    pthread_mutex_unlock(&req->lock);
    /* a negative n comes from a holder of another reference (see http.h), so
     * it never frees the request here */
    atomic_fetch_add(&req->refs, n);
}


void http_request_item_done(http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool last = --req->pending == 0;
    bool resume = last && req->suspended && !req->closed;
    struct MHD_Connection *conn = req->conn;
    if (last)
        pthread_cond_signal(&req->none_pending);
    pthread_mutex_unlock(&req->lock);
    if (resume)
        MHD_resume_connection(conn); /* still suspended, so conn is valid */
    request_release(req);            /* this item's reference */
}
