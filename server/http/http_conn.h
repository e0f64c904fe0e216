/* http_conn.h - per-connection state (libmicrohttpd's socket context): the
 * accept time, the over-limit mark, and the deadlines for receiving a request's
 * head and body, enforced by one sweeper thread (http_conn.c). Private to
 * server/http/. */
#ifndef RESNETD_HTTP_CONN_H
#define RESNETD_HTTP_CONN_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"

/* What a connection is waiting for; the deadline of each phase runs from its start. */
typedef enum {
    HTTP_CONN_HEAD = 0, /* the first request's head: header_timeout_s from accept */
    HTTP_CONN_BODY,     /* a request's body: body_timeout_s from its head */
    HTTP_CONN_IDLE,     /* handling, answering, or kept alive (connection_timeout_s) */
} http_conn_phase_t;

typedef struct http_conn {
    struct http_conn *prev, *next; /* the list, under http_conns_t.lock */
    int fd;                        /* the socket, shut down when a deadline passes */
    bool over_limit;               /* accepted over max_connections (set once, at accept) */
    int64_t accept_ns;             /* CLOCK_MONOTONIC at accept (set once) */
    int requests;                  /* requests begun (its HTTP thread only) */
    int64_t line_ns;               /* when its latest request line was read, 0 = none
                                      (libmicrohttpd's URI log callback; its HTTP thread only) */
    /* under http_conns_t.lock */
    http_conn_phase_t phase;
    int64_t phase_ns;
    bool dropped;
} http_conn_t;

/* All open connections and the sweeper. lock guards the list and each
 * connection's phase fields; the rest is set before the sweeper starts. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    http_conn_t *head;
    bool stop, started;
    pthread_t thread;
    int64_t header_timeout_ns, body_timeout_ns; /* 0 = none */
    const log_t *log;                            /* for the drop lines */
} http_conns_t;

void http_conns_init(http_conns_t *cs, int header_timeout_s, int body_timeout_s, const log_t *log);
/* Starts the sweeper (a no-op when both deadlines are 0); false if it cannot. */
bool http_conns_start(http_conns_t *cs);
/* Stops the sweeper; then the list may be freed with the daemon. */
void http_conns_stop(http_conns_t *cs);
void http_conns_destroy(http_conns_t *cs);

/* libmicrohttpd's NOTIFY_CONNECTION: STARTED makes the context (NULL if out
 * of memory: such a connection gets no deadlines), CLOSED frees it. */
http_conn_t *http_conn_open(http_conns_t *cs, struct MHD_Connection *conn, bool over_limit);
void http_conn_close(http_conns_t *cs, http_conn_t *c);

/* The context of conn, or NULL. */
http_conn_t *http_conn_of(struct MHD_Connection *conn);
/* Moves c (may be NULL) to phase, from now. */
void http_conn_set_phase(http_conns_t *cs, http_conn_t *c, http_conn_phase_t phase);

#endif
