/* grpc.c - the gRPC listener (see grpc.h): binding, the accept thread, one
 * detached thread per connection counted under g->mu, and the drain/stop
 * flags the connection threads poll.
 * THREADS: g->conns and g->cond under g->mu; registry, draining, stopping and
 * inflight are atomics; the rest is set before the accept thread starts. */
#include "grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_internal.h"

typedef struct {
    grpc_t *g;
    int fd;
} conn_start_t;

static void *conn_thread(void *arg)
{
    conn_start_t cs = *(conn_start_t *)arg;
    free(arg);
    grpc_conn_run(cs.g, cs.fd);
    pthread_mutex_lock(&cs.g->mu);
    if (--cs.g->conns == 0)
        pthread_cond_broadcast(&cs.g->cond);
    pthread_mutex_unlock(&cs.g->mu);
    return NULL;
}

/* Starts a thread for fd, or closes it when over grpc_max_connections. */
static void spawn(grpc_t *g, int fd)
{
    pthread_mutex_lock(&g->mu);
    bool room = g->conns < g->cfg.grpc_max_connections;
    if (room)
        g->conns++;
    pthread_mutex_unlock(&g->mu);
    conn_start_t *cs = room ? malloc(sizeof *cs) : NULL;
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (cs && pthread_attr_init(&attr) == 0) {
        *cs = (conn_start_t){g, fd};
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, conn_thread, cs) == 0;
        pthread_attr_destroy(&attr);
    }
    if (started)
        return;
    free(cs);
    close(fd);
    metrics_count_connection_refused(g->metrics);
    if (room) {
        pthread_mutex_lock(&g->mu);
        if (--g->conns == 0)
            pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
    }
}

static void *accept_thread(void *arg)
{
    grpc_t *g = arg;
    while (!atomic_load(&g->stopping)) {
        struct pollfd pfd = {.fd = g->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(g->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        spawn(g, fd);
    }
    return NULL;
}

static rd_status_t bind_listener(grpc_t *g, rd_error_t *err)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int port = g->cfg.grpc_port > 0 ? g->cfg.grpc_port : 0;
    bool v6 = strchr(g->cfg.bind, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, g->cfg.bind, &a->sin6_addr) != 1)
            return rd_error_set(err, RD_ERR_ARG, "bind: '%s' is not an IP address", g->cfg.bind);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, g->cfg.bind, &a->sin_addr) != 1)
            return rd_error_set(err, RD_ERR_ARG, "bind: '%s' is not an IP address", g->cfg.bind);
        sl = sizeof *a;
    }
    g->listen_fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (g->listen_fd < 0 ||
        setsockopt(g->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(g->listen_fd, (struct sockaddr *)&ss, sl) != 0 || listen(g->listen_fd, 64) != 0)
        return rd_error_set(err, RD_ERR_IO, "grpc_port: cannot listen on %s port %d: %s",
                            g->cfg.bind, port, strerror(errno));
    if (getsockname(g->listen_fd, (struct sockaddr *)&ss, &sl) != 0)
        return rd_error_set(err, RD_ERR_IO, "grpc_port: getsockname: %s", strerror(errno));
    g->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return RD_OK;
}

rd_status_t grpc_create(const grpc_params_t *p, grpc_t **out, rd_error_t *err)
{
    *out = NULL;
    grpc_t *g = calloc(1, sizeof *g);
    if (!g)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    g->cfg = *p->cfg;
    g->image = config_image_limits(p->cfg);
    auth_init(&g->auth, p->cfg->auth_token);
    g->metrics = p->metrics;
    g->log = p->log;
    g->listen_fd = -1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    rd_status_t st = bind_listener(g, err);
    if (st == RD_OK && pthread_create(&g->accept_thread, NULL, accept_thread, g) != 0)
        st = rd_error_set(err, RD_ERR_INTERNAL, "grpc: cannot start the accept thread");
    if (st != RD_OK) {
        grpc_destroy(g);
        return st;
    }
    g->accept_started = true;
    *out = g;
    return RD_OK;
}

int grpc_port(const grpc_t *g)
{
    return g->port;
}

void grpc_set_registry(grpc_t *g, registry_t *registry)
{
    atomic_store(&g->registry, registry);
}

void grpc_begin_drain(grpc_t *g)
{
    if (g)
        atomic_store(&g->draining, true);
}

int grpc_inflight(const grpc_t *g)
{
    return g ? atomic_load(&((grpc_t *)g)->inflight) : 0;
}

void grpc_destroy(grpc_t *g)
{
    if (!g)
        return;
    atomic_store(&g->draining, true);
    atomic_store(&g->stopping, true);
    if (g->accept_started)
        pthread_join(g->accept_thread, NULL);
    pthread_mutex_lock(&g->mu);
    while (g->conns > 0) /* each notices `stopping` within its poll tick */
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
    free(g);
}
