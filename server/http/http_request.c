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
 *                                              first (early_answer, http_admit.c)
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

enum MHD_Result http_queue_answer(http_request_t *req)
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
    enum MHD_Result refused;
    if (!http_admit(req, url, version, &refused))
        return refused;
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
        http_refuse(req, 413, msg);
        return false;
    }
    if (req->body_over_budget) {
        http_refuse_over_budget(req);
        return false;
    }
    if (req->route->takes_body && !req->body && !buffer_body(req, "", 0)) {
        http_refuse(req, 503, "out of memory");
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
    return suspended ? MHD_YES : http_queue_answer(req);
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
    return http_queue_answer(req);
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
        return http_queue_answer(req);
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
