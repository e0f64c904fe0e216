/* http.c - the libmicrohttpd daemon: start-up (address, TLS, thread pool,
 * connection limit), connection counting, drain, publishing the loaded models,
 * stop. A request's own life is http_request.c's.
 *
 * THREADS: libmicrohttpd runs an internal pool of `threads` worker threads
 * (MHD_OPTION_THREAD_POOL_SIZE); each owns a share of the connections and runs
 * their callbacks, so request parsing, JPEG decoding and preprocessing happen on
 * these threads, in parallel with inference. A route that needs the engine
 * submits batcher items and the connection is suspended until they are done
 * (see http_request.c), so an HTTP thread never waits for inference, and the
 * engine is only ever touched by the batcher's worker.
 * Shared across threads: the `draining` flag, the `inflight` and `connections`
 * counters and the over-limit warning's rate limit (atomics),
 * and the `live` deps pointer, published once by http_set_registry with release
 * ordering after the model has loaded; each request keeps the deps it saw at its
 * first callback, so a request never sees half a model. */
#include "http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "image.h"
#include "http_tls.h"


/* --- the daemon --- */

/* libmicrohttpd's URI log callback: a request line has been read, before its
 * headers. A kept-alive connection's later requests count their time from it
 * (http_request.c), the nearest libmicrohttpd gets to their first byte.
 * Returns NULL, so the request's context stays unset for http_on_request. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)uri;
    http_conn_t *c = http_conn_of(conn);
    if (c)
        c->line_ns = clock_now_ns();
    return NULL;
}

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
    http_t *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_conn_close(&h->conns, *socket_context);
        *socket_context = NULL;
        atomic_fetch_sub(&h->connections, 1);
        return;
    }
    bool over = atomic_fetch_add(&h->connections, 1) >= h->max_connections;
    *socket_context = http_conn_open(&h->conns, conn, over);
    if (!over)
        return;
    metrics_count_connection_refused(h->deps.metrics);
    atomic_fetch_add(&h->refused_unlogged, 1);
    int64_t now = clock_now_ns();
    int64_t last = atomic_load(&h->refused_warn_ns);
    if ((last == 0 || now - last >= 10000000000LL) &&
        atomic_compare_exchange_strong(&h->refused_warn_ns, &last, now))
        log_msg(h->deps.log, LOG_LEVEL_WARN,
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
    log_msg(cls, LOG_LEVEL_WARN, "libmicrohttpd: %s", line);
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
    const config_t *cfg = params->cfg;
    tls_pem_t tls = {0};
    if (cfg && cfg->tls_cert[0] && (st = tls_load(cfg, &tls, err)) != RD_OK)
        return st;
    http_t *h = calloc(1, sizeof *h);
    if (!h) {
        tls_pem_free(&tls);
        return rd_error_set(err, RD_ERR_NOMEM, "http: out of memory");
    }
    h->deps = params->deps;
    h->find_route = params->find_route;
    auth_init(&h->auth, cfg ? cfg->auth_token : NULL);
    pthread_mutex_init(&h->drain_lock, NULL);
    http_conns_init(&h->conns, params->header_timeout_s, params->body_timeout_s, params->deps.log);
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
    h->max_connections = params->max_connections;
    /* room above max_connections for the connections refused with a 503;
     * libmicrohttpd splits its limit between the pool threads, hence 2 each */
    int reserve = h->max_connections / 4;
    if (reserve < 2 * (int)(threads ? threads : 1))
        reserve = 2 * (int)(threads ? threads : 1);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, http_on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        (void *)params->deps.log, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(h->max_connections + reserve), MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(params->connection_timeout_s > 0 ? params->connection_timeout_s : 0),
        MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, h, MHD_OPTION_URI_LOG_CALLBACK,
        on_request_line, h, MHD_OPTION_ARRAY,
        tls.key ? tls_opts : tls_opts + 2, MHD_OPTION_END);
    bool tls_on = tls.key != NULL;
    tls_pem_free(&tls); /* GnuTLS copied them at the start; wipe our copy of the key */
    if (!h->daemon) {
        http_conns_destroy(&h->conns);
        pthread_mutex_destroy(&h->drain_lock);
        free(h);
        return rd_error_set(err, RD_ERR_IO, "cannot listen on %s port %d (in use? permitted?%s)",
                            params->bind, params->port,
                            tls_on ? " or TLS refused: see libmicrohttpd's log line" : "");
    }
    if (tls_on) /* that it is on and which certificate, never key material */
        log_msg(params->deps.log, LOG_LEVEL_INFO, "tls: serving HTTPS only, certificate %s",
                cfg->tls_cert);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : params->port;
    if (!http_conns_start(&h->conns)) {
        http_destroy(h);
        return rd_error_set(err, RD_ERR_NOMEM, "http: cannot start the deadline thread");
    }
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

http_limits_t http_limits_of(const config_t *cfg)
{
    return (http_limits_t){
        .max_body_bytes = cfg->max_body_bytes,
        .max_buffered_body_bytes = cfg->max_buffered_body_bytes,
        .max_images_per_request = cfg->max_images_per_request,
        .image = config_image_limits(cfg),
        .request_timeout_ms = cfg->request_timeout_ms,
        .topk_default = cfg->topk_default,
        .retry_after_s = cfg->retry_after_s,
        .ignore_client_abort = cfg->ignore_client_abort,
    };
}

void http_set_registry(http_t *h, registry_t *registry, void *control)
{
    h->loaded = h->deps;
    h->loaded.registry = registry;
    h->loaded.control = control;
    atomic_store_explicit(&h->live, &h->loaded, memory_order_release);
}

bool http_ready(const http_t *h)
{
    const http_deps_t *live = atomic_load_explicit(&h->live, memory_order_acquire);
    return live && registry_all_ready(live->registry) && !http_draining(h);
}

int http_inflight(const http_t *h)
{
    return atomic_load(&h->inflight);
}

void http_destroy(http_t *h)
{
    if (!h)
        return;
    http_conns_stop(&h->conns); /* before the daemon frees the connections */
    MHD_stop_daemon(h->daemon);
    http_conns_destroy(&h->conns);
    if (h->quiesced && h->quiesced_fd != MHD_INVALID_SOCKET)
        close(h->quiesced_fd);
    pthread_mutex_destroy(&h->drain_lock);
    free(h);
}
