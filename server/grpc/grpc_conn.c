/* grpc_conn.c - one gRPC connection: a libnghttp2 server session over a
 * non-blocking socket, on its own thread. Streams gather their headers
 * (path, content-type, authorization, grpc-timeout; the header list bounded)
 * and one length-prefixed message (bounded by max_body_bytes), then the call
 * is dispatched (grpc_service.c) and answered with the message and a
 * grpc-status trailer, or Trailers-Only on an error.
 * Bounds: SETTINGS_MAX_CONCURRENT_STREAMS = grpc_max_streams, the header list,
 * the message size, the request bytes all streams hold together
 * (max_buffered_body_bytes, shared with nothing else), connection_timeout_s without a byte received and nothing
 * queued; nghttp2's own flood protections (rapid reset, SETTINGS/PING/empty
 * frame floods, outbound ACK queue) stay at their defaults.
 * THREADS: everything here runs on the connection thread, except
 * grpc_conn_complete (the batcher's worker): it pushes onto c->done under
 * c->mu and writes the eventfd. The connection is freed only after every
 * call it queued has come back (c->outstanding == 0). */
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "grpc_internal.h"
#include "grpc_parse.h"

#define HEADER_LIST_MAX 16384
#define POLL_TICK_MS 100

typedef struct stream {
    struct stream *prev, *next; /* c->streams */
    int32_t id;
    char path[128];
    char auth[AUTH_TOKEN_MAX + 32];
    bool has_auth, grpc_ct, bad_header;
    int64_t timeout_ns; /* grpc-timeout; -1 = none */
    size_t header_bytes;
    uint8_t *body;
    size_t len, cap;
    bool too_large, over_budget, dispatched, inflight;
    grpc_infer_t *infer; /* queued ModelInfer, until it comes back */
    uint8_t *out;        /* the framed response message */
    size_t out_len, out_off;
} stream_t;

struct grpc_conn {
    grpc_t *g;
    int fd, evfd;
    nghttp2_session *s;
    stream_t *streams;
    int outstanding;         /* infers queued and not yet come back */
    int64_t last_active_ns;
    int64_t closing_ns;      /* GOAWAY queued at; 0 = not closing */
    pthread_mutex_t mu;      /* guards done */
    grpc_infer_t *done;
};

void grpc_conn_complete(grpc_conn_t *c, grpc_infer_t *inf)
{
    /* the write is under the lock too: once the connection thread has taken
     * inf (under the lock) it may free c, evfd included */
    pthread_mutex_lock(&c->mu);
    *grpc_infer_next(inf) = c->done;
    c->done = inf;
    uint64_t one = 1;
    ssize_t w = write(c->evfd, &one, sizeof one);
    (void)w; /* the counter only saturates, and then the thread is awake anyway */
    pthread_mutex_unlock(&c->mu);
}

static void stream_free(grpc_conn_t *c, stream_t *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (st->infer) /* orphaned: freed when it comes back */
        grpc_infer_cancel(st->infer);
    if (st->inflight)
        atomic_fetch_sub(&c->g->inflight, 1);
    atomic_fetch_sub(&c->g->buffered, (long long)st->cap);
    free(st->body);
    free(st->out);
    free(st);
}

/* grpc-message is percent-encoded (the gRPC HTTP/2 spec). */
static void pct_encode(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < size; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

static ssize_t read_out(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    stream_t *st = src->ptr;
    size_t n = st->out_len - st->out_off;
    if (n > length)
        n = length;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr[] = {NV("grpc-status", "0")};
        if (nghttp2_submit_trailer(s, id, tr, 1) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* Sends reply on st (which stays until nghttp2 closes it); frees reply's body. */
static void send_reply(grpc_conn_t *c, stream_t *st, grpc_reply_t *r)
{
    if (st->inflight) {
        st->inflight = false;
        atomic_fetch_sub(&c->g->inflight, 1);
    }
    int rv;
    if (r->status == GRPC_STATUS_OK) {
        st->out = malloc(r->len + 5);
        if (!st->out) {
            free(r->body);
            grpc_reply_error(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            send_reply(c, st, r);
            return;
        }
        st->out[0] = 0;
        for (int i = 0; i < 4; i++)
            st->out[1 + i] = (uint8_t)(r->len >> (24 - 8 * i));
        if (r->len)
            memcpy(st->out + 5, r->body, r->len);
        free(r->body);
        r->body = NULL;
        st->out_len = r->len + 5;
        nghttp2_nv h[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
        nghttp2_data_provider prov = {.source.ptr = st, .read_callback = read_out};
        rv = nghttp2_submit_response(c->s, st->id, h, 2, &prov);
    } else {
        char code[16], msg[GRPC_MSG_MAX * 3 + 1];
        snprintf(code, sizeof code, "%d", (int)r->status);
        pct_encode(r->message, msg, sizeof msg);
        nghttp2_nv h[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                          NV("grpc-status", code), NV("grpc-message", msg)};
        rv = nghttp2_submit_response(c->s, st->id, h, 4, NULL);
    }
    if (rv != 0)
        nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

/* The stream's request is complete: check it, then dispatch it. */
static void dispatch(grpc_conn_t *c, stream_t *st)
{
    grpc_t *g = c->g;
    grpc_reply_t r = {0};
    st->dispatched = true;
    st->inflight = true;
    atomic_fetch_add(&g->inflight, 1);
    uint32_t mlen = st->len >= 5 ? (uint32_t)st->body[1] << 24 | (uint32_t)st->body[2] << 16 |
                                       (uint32_t)st->body[3] << 8 | st->body[4]
                                 : 0;
    if (g->auth.enabled && auth_check(&g->auth, st->has_auth ? st->auth : NULL) != AUTH_OK)
        grpc_reply_error(&r, GRPC_STATUS_UNAUTHENTICATED,
                         "a valid 'authorization: Bearer TOKEN' is required");
    else if (!st->grpc_ct)
        grpc_reply_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "content-type must be application/grpc");
    else if (st->over_budget)
        grpc_reply_error(&r, GRPC_STATUS_RESOURCE_EXHAUSTED,
                         "the server holds max_buffered_body_bytes of requests; retry later");
    else if (st->too_large)
        grpc_reply_error(&r, GRPC_STATUS_RESOURCE_EXHAUSTED,
                         "message larger than max_body_bytes (%lld bytes)",
                         (long long)g->cfg.max_body_bytes);
    else if (st->len < 5 || (size_t)mlen != st->len - 5)
        grpc_reply_error(&r, GRPC_STATUS_INVALID_ARGUMENT,
                         "a unary call carries exactly one length-prefixed message");
    else if (st->body[0] != 0)
        grpc_reply_error(&r, GRPC_STATUS_UNIMPLEMENTED, "compressed messages are not supported");
    else if (atomic_load(&g->draining))
        grpc_reply_error(&r, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
    if (r.status != GRPC_STATUS_OK) {
        send_reply(c, st, &r);
        return;
    }
    int64_t timeout = g->cfg.request_timeout_ms * 1000000;
    if (st->timeout_ns >= 0 && st->timeout_ns < timeout)
        timeout = st->timeout_ns;
    grpc_call_in_t in = {.path = st->path, .msg = st->body + 5, .len = st->len - 5,
                         .deadline_ns = clock_now_ns() + timeout, .stream = st->id};
    st->infer = grpc_service_dispatch(g, c, &in, &r);
    if (st->infer)
        c->outstanding++;
    else
        send_reply(c, st, &r);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    grpc_conn_t *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = f->hd.stream_id;
    st->timeout_ns = -1;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static bool is(const uint8_t *a, size_t alen, const char *b)
{
    return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    (void)user;
    stream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* a client's trailers change nothing */
    st->header_bytes += namelen + valuelen + 32; /* as SETTINGS_MAX_HEADER_LIST_SIZE counts */
    if (st->header_bytes > HEADER_LIST_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (is(name, namelen, ":path")) {
        if (valuelen >= sizeof st->path)
            valuelen = 0; /* no method is that long: unknown */
        memcpy(st->path, value, valuelen);
        st->path[valuelen] = 0;
    } else if (is(name, namelen, "content-type")) {
        st->grpc_ct = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                      (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (is(name, namelen, "authorization") && valuelen < sizeof st->auth) {
        memcpy(st->auth, value, valuelen);
        st->auth[valuelen] = 0;
        st->has_auth = true;
    } else if (is(name, namelen, "grpc-timeout")) {
        st->timeout_ns = grpc_parse_timeout(value, valuelen);
    }
    return 0;
}

/* Frees what st buffered (its request will be refused). */
static void drop_body(grpc_conn_t *c, stream_t *st)
{
    atomic_fetch_sub(&c->g->buffered, (long long)st->cap);
    free(st->body);
    st->body = NULL;
    st->len = st->cap = 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user)
{
    (void)flags;
    grpc_conn_t *c = user;
    stream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->too_large || st->over_budget || st->dispatched)
        return 0;
    size_t max = (size_t)c->g->cfg.max_body_bytes + 5;
    if (len > max - st->len) {
        st->too_large = true; /* answered when the stream ends; the rest is dropped */
        drop_body(c, st);
        return 0;
    }
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + len)
            cap *= 2;
        cap = cap < max ? cap : max;
        long long grow = (long long)(cap - st->cap);
        if (atomic_fetch_add(&c->g->buffered, grow) + grow > c->g->cfg.max_buffered_body_bytes) {
            atomic_fetch_sub(&c->g->buffered, grow);
            st->over_budget = true;
            drop_body(c, st);
            return 0;
        }
        uint8_t *b = realloc(st->body, cap);
        if (!b) {
            atomic_fetch_sub(&c->g->buffered, grow);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->body = b;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, len);
    st->len += len;
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    stream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st && !st->dispatched)
        dispatch(user, st);
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)code;
    stream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(user, st);
    }
    return 0;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)s;
    (void)flags;
    grpc_conn_t *c = user;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? NGHTTP2_ERR_WOULDBLOCK
                                                                      : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Calls that came back from the batcher: answer the ones whose stream is
 * still open, free the others. */
static void take_done(grpc_conn_t *c)
{
    uint64_t v;
    ssize_t rd = read(c->evfd, &v, sizeof v);
    (void)rd;
    pthread_mutex_lock(&c->mu);
    grpc_infer_t *list = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (list) {
        grpc_infer_t *inf = list;
        list = *grpc_infer_next(inf);
        c->outstanding--;
        stream_t *st = c->s ? nghttp2_session_get_stream_user_data(c->s, grpc_infer_stream(inf))
                            : NULL;
        if (st && st->infer == inf) {
            st->infer = NULL;
            grpc_reply_t r = {0};
            grpc_infer_finish(inf, &r);
            send_reply(c, st, &r);
        }
        grpc_infer_free(inf);
    }
}

static rd_status_t session_start(grpc_conn_t *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return RD_ERR_NOMEM;
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rv = nghttp2_session_server_new(&c->s, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        return RD_ERR_NOMEM;
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)c->g->cfg.grpc_max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEADER_LIST_MAX},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    return nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, set, 3) == 0 ? RD_OK : RD_ERR_NOMEM;
}

/* One poll round: false when the connection is over. */
static bool step(grpc_conn_t *c)
{
    grpc_t *g = c->g;
    struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->evfd, .events = POLLIN}};
    if (nghttp2_session_want_write(c->s))
        p[0].events |= POLLOUT;
    if (poll(p, 2, POLL_TICK_MS) < 0 && errno != EINTR)
        return false;
    if (p[1].revents & POLLIN)
        take_done(c);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (n > 0) {
            c->last_active_ns = clock_now_ns();
            if (nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0)
                return false;
        }
    }
    if (nghttp2_session_send(c->s) != 0)
        return false;
    bool busy = c->outstanding > 0 || g->cfg.connection_timeout_s == 0;
    int64_t now = clock_now_ns();
    if (!c->closing_ns &&
        ((atomic_load(&g->draining) && !c->streams) || atomic_load(&g->stopping) ||
         (!busy && now - c->last_active_ns > (int64_t)g->cfg.connection_timeout_s * 1000000000))) {
        /* GOAWAY after what is queued; a peer that reads nothing gets 2 s */
        nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
        c->closing_ns = now;
        if (nghttp2_session_send(c->s) != 0)
            return false;
    }
    if (c->closing_ns && now - c->closing_ns > 2000000000LL)
        return false;
    return nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s) ||
           c->outstanding > 0;
}

void grpc_conn_run(grpc_t *g, int fd)
{
    grpc_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->g = g;
    c->fd = fd;
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->last_active_ns = clock_now_ns();
    pthread_mutex_init(&c->mu, NULL);
    int fl = fcntl(fd, F_GETFL);
    if (c->evfd >= 0 && fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
        session_start(c) == RD_OK)
        while (step(c)) {
        }
    /* the peer is gone or the server stops: drop what it queued, wait for it */
    while (c->streams) {
        if (c->s)
            nghttp2_session_set_stream_user_data(c->s, c->streams->id, NULL);
        stream_free(c, c->streams);
    }
    nghttp2_session_del(c->s);
    c->s = NULL;
    while (c->outstanding > 0) {
        struct pollfd p = {.fd = c->evfd, .events = POLLIN};
        poll(&p, 1, POLL_TICK_MS);
        take_done(c);
    }
    close(fd);
    if (c->evfd >= 0)
        close(c->evfd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
