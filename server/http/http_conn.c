/* http_conn.c - per-connection state and the deadlines for a request's head
 * and body. libmicrohttpd's connection_timeout_s restarts on every byte, so a
 * client that sends a header line every 15 s would hold its slot forever: here
 * the first request's head must be complete header_timeout_s after accept,
 * and every body body_timeout_s after its head. A sweeper thread checks the
 * open connections four times a second and shuts the socket of one past its
 * deadline down; libmicrohttpd (poll mode) then sees the end of the stream and
 * closes it as if the client had left.
 *
 * THREADS: http_conn_open/close run on the HTTP thread that accepts/closes
 * the connection, http_conn_set_phase on the connection's HTTP thread, the
 * sweeper on its own; all of them take cs->lock for the list and the phase
 * fields. A socket is shut down only under that lock and only while its
 * connection is on the list: libmicrohttpd notifies CLOSED (which unlinks it)
 * before it closes the socket, so the descriptor is never a reused one. */
#include "http_conn.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SWEEP_NS 250000000LL

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void http_conns_init(http_conns_t *cs, int header_timeout_s, int body_timeout_s, const log_t *log)
{
    *cs = (http_conns_t){.header_timeout_ns = (int64_t)header_timeout_s * 1000000000LL,
                         .body_timeout_ns = (int64_t)body_timeout_s * 1000000000LL,
                         .log = log};
    pthread_mutex_init(&cs->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cs->wake, &ca);
    pthread_condattr_destroy(&ca);
}

/* The deadline c has passed at now, if any: "head" or "body"; NULL if none. */
static const char *past_deadline(const http_conns_t *cs, const http_conn_t *c, int64_t now)
{
    if (c->dropped)
        return NULL;
    if (c->phase == HTTP_CONN_HEAD && cs->header_timeout_ns > 0 &&
        now - c->phase_ns > cs->header_timeout_ns)
        return "header_timeout_s";
    if (c->phase == HTTP_CONN_BODY && cs->body_timeout_ns > 0 &&
        now - c->phase_ns > cs->body_timeout_ns)
        return "body_timeout_s";
    return NULL;
}

static void sweep(http_conns_t *cs, int64_t now)
{
    for (http_conn_t *c = cs->head; c; c = c->next) {
        const char *which = past_deadline(cs, c, now);
        if (!which)
            continue;
        c->dropped = true;
        shutdown(c->fd, SHUT_RDWR);
        log_msg(cs->log, LOG_LEVEL_DEBUG, "connection closed: %s passed", which);
    }
}

static void *sweeper(void *arg)
{
    http_conns_t *cs = arg;
    pthread_mutex_lock(&cs->lock);
    while (!cs->stop) {
        int64_t now = now_ns();
        sweep(cs, now);
        int64_t at = now + SWEEP_NS;
        struct timespec ts = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
        pthread_cond_timedwait(&cs->wake, &cs->lock, &ts);
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

bool http_conns_start(http_conns_t *cs)
{
    if (cs->header_timeout_ns <= 0 && cs->body_timeout_ns <= 0)
        return true;
    cs->started = pthread_create(&cs->thread, NULL, sweeper, cs) == 0;
    return cs->started;
}

void http_conns_stop(http_conns_t *cs)
{
    if (!cs->started)
        return;
    pthread_mutex_lock(&cs->lock);
    cs->stop = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
    pthread_join(cs->thread, NULL);
    cs->started = false;
}

void http_conns_destroy(http_conns_t *cs)
{
    http_conns_stop(cs);
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->lock);
}

http_conn_t *http_conn_open(http_conns_t *cs, struct MHD_Connection *conn, bool over_limit)
{
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->over_limit = over_limit;
    c->accept_ns = c->phase_ns = now_ns();
    c->phase = c->fd >= 0 ? HTTP_CONN_HEAD : HTTP_CONN_IDLE;
    pthread_mutex_lock(&cs->lock);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    pthread_mutex_unlock(&cs->lock);
    return c;
}

void http_conn_close(http_conns_t *cs, http_conn_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->lock);
    free(c);
}

http_conn_t *http_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void http_conn_set_phase(http_conns_t *cs, http_conn_t *c, http_conn_phase_t phase)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->phase = phase;
    c->phase_ns = now_ns();
    pthread_mutex_unlock(&cs->lock);
}
