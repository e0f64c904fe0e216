/* server.c - assembling resnetd serve (see server.h). Creation order is
 * logger, metrics, the decode pool, HTTP, then the model loader, which loads
 * every model of the repository (or the one file) into the registry: the
 * daemon listens before the model loads, so probes get
 * /healthz 200 and /readyz 503 during a long load instead of connection
 * refused, and the routes that need the model answer 503 until
 * http_set_registry publishes it. Destruction stops the decodes first (their
 * requests' images are queued or refused), then the batchers' work, the HTTP
 * daemon only after they have answered every item (a suspended connection
 * must not outlive the daemon's stop), and frees the pool last, once no HTTP
 * thread can submit to it. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cpu_quota.h"
#include "batcher.h"
#include "decode_pool.h"
#include "grpc.h"
#include "http.h"
#include "registry.h"
#include "log.h"
#include "metrics.h"
#include "resnetd/engine.h"
#include "model_loader.h"
#include "routes.h"

struct server {
    config_t cfg;
    http_limits_t limits; /* from cfg, for the routes */
    log_t *log;
    metrics_t *metrics;
    registry_t *registry; /* the served models; published to the routes when ready */
    model_loader_t *loader; /* fills the registry: at start, then by the control mode */
    decode_pool_t *decode_pool; /* the routes' image decoding, apart from the HTTP threads */
    http_t *http;
    grpc_t *grpc;         /* the KServe v2 gRPC front end; NULL when grpc_port is 0 */
    bool drained;
};

/* "HOST:PORT" of the daemon, with brackets for IPv6. */
static void listen_address(const server_t *srv, char *out, size_t size)
{
    bool v6 = strchr(srv->cfg.bind, ':') != NULL;
    snprintf(out, size, "%s%s%s:%d", v6 ? "[" : "", srv->cfg.bind, v6 ? "]" : "",
             http_port(srv->http));
}

/* The gRPC listener beside the daemon, when grpc_port is set; "grpc:
 * listening on HOST:PORT" names its port (the one chosen for -1). */
static rd_status_t start_grpc(server_t *srv, rd_error_t *err)
{
    if (srv->cfg.grpc_port == 0)
        return RD_OK;
    grpc_params_t gp = {.cfg = &srv->cfg, .metrics = srv->metrics, .log = srv->log};
    rd_status_t st = grpc_create(&gp, &srv->grpc, err);
    if (st != RD_OK)
        return st;
    bool v6 = strchr(srv->cfg.bind, ':') != NULL;
    log_msg_always(srv->log, LOG_LEVEL_INFO, "grpc: listening on %s%s%s:%d", v6 ? "[" : "",
                   srv->cfg.bind, v6 ? "]" : "", grpc_port(srv->grpc));
    return RD_OK;
}

/* The daemon without a model yet: probes and /metrics work, the model routes
 * answer 503 (see http_set_registry). */
static rd_status_t start_http(server_t *srv, rd_error_t *err)
{
    srv->limits = http_limits_of(&srv->cfg);
    int threads = srv->cfg.decode_threads > 0 ? srv->cfg.decode_threads
                                              : decode_pool_default_threads();
    int per_request = srv->cfg.max_decodes_per_request > 0 ? srv->cfg.max_decodes_per_request
                                                           : decode_pool_default_per_group();
    rd_status_t st = decode_pool_create(threads, per_request < threads ? per_request : threads,
                                        &srv->decode_pool, err);
    if (st != RD_OK)
        return st;
    http_params_t hp = {
        .deps = {.limits = &srv->limits, .metrics = srv->metrics, .log = srv->log,
                 .decode_pool = srv->decode_pool},
        .cfg = &srv->cfg,
        .find_route = routes_find,
        .bind = srv->cfg.bind,
        .port = srv->cfg.port,
        .threads = srv->cfg.http_threads,
        .max_connections = srv->cfg.max_connections,
        .connection_timeout_s = srv->cfg.connection_timeout_s,
        .header_timeout_s = srv->cfg.header_timeout_s,
        .body_timeout_s = srv->cfg.body_timeout_s,
    };
    st = http_create(&hp, &srv->http, err);
    if (st != RD_OK)
        return st;
    log_msg(srv->log, LOG_LEVEL_INFO, "decode pool: %d threads, at most %d per request", threads,
            per_request < threads ? per_request : threads);
    char conflict[256];
    if (auth_env_conflict(conflict, sizeof conflict))
        log_msg(srv->log, LOG_LEVEL_WARN, "auth: %s", conflict);
    if (srv->cfg.auth_token[0]) /* that it is on, never the token itself */
        log_msg(srv->log, LOG_LEVEL_INFO, "auth: a bearer token is required on every endpoint except "
                                    "/healthz and /readyz");
    char addr[300];
    listen_address(srv, addr, sizeof addr);
    log_msg(srv->log, LOG_LEVEL_INFO, "loading the model; accepting connections on %s", addr);
    return start_grpc(srv, err);
}

/* The model is loaded: publish it to the routes and turn ready. "listening
 * on HOST:PORT" is the ready line that scripts and tests wait for. */
static void go_ready(server_t *srv)
{
    served_model_t *m;
    if (registry_acquire(srv->registry, NULL, 0, &m) == REGISTRY_FOUND) {
        const model_info_t *mi = served_model_info(m);
        metrics_set_model(srv->metrics, served_model_name(m), mi->arch,
                          engine_precision_name(mi->precision));
        served_model_unref(m);
    }
    metrics_set_isa(srv->metrics, engine_isa_name());
    rd_error_t err = {0};
    if (model_loader_start(srv->loader, &err) != RD_OK)
        log_msg(srv->log, LOG_LEVEL_ERROR, "%s: the repository is not watched", err.msg);
    http_set_registry(srv->http, srv->registry, srv->loader);
    if (srv->grpc)
        grpc_set_registry(srv->grpc, srv->registry);
    metrics_gauge_set(srv->metrics, METRICS_G_READY, 1);
    char addr[300];
    listen_address(srv, addr, sizeof addr);
    log_msg_always(srv->log, LOG_LEVEL_INFO, "ready: listening on %s", addr);
}

/* inference_threads 0: one per CPU this process may really use (the
 * affinity mask and the cgroup quota), not one per core of the machine;
 * unless OMP_NUM_THREADS says how many, which OpenMP users expect to win (and
 * which the ThreadSanitizer runs set to 1: libgomp's barriers are invisible
 * to it). */
static void size_threads(server_t *srv)
{
    cpu_quota_t q;
    cpu_quota_read("/", cpu_quota_affinity(), &q);
    if (q.quota > 0)
        log_msg(srv->log, LOG_LEVEL_INFO, "cpus: %d in the affinity mask, cgroup quota %.2f (%s)",
                q.affinity, q.quota, q.source);
    else
        log_msg(srv->log, LOG_LEVEL_INFO, "cpus: %d in the affinity mask, no cgroup quota",
                q.affinity);
    const char *omp = getenv("OMP_NUM_THREADS");
    if (srv->cfg.inference_threads == 0 && omp && atoi(omp) > 0) {
        log_msg(srv->log, LOG_LEVEL_INFO, "inference_threads from OMP_NUM_THREADS=%s", omp);
    } else if (srv->cfg.inference_threads == 0) {
        srv->cfg.inference_threads = q.cpus;
        log_msg(srv->log, LOG_LEVEL_INFO, "inference_threads %d (from the cpus above)", q.cpus);
    }
}

rd_status_t server_start(const config_t *cfg, server_t **out, rd_error_t *err)
{
    *out = NULL;
    server_t *srv = calloc(1, sizeof *srv);
    if (!srv)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    srv->cfg = *cfg;
    log_params_t lp = log_default_params();
    lp.level = cfg->log_level;
    lp.access_log = cfg->access_log;
    srv->log = log_create(&lp);
    rd_status_t st = srv->log ? metrics_create(NULL, &srv->metrics, err)
                              : rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    if (st == RD_OK)
        size_threads(srv);
    if (st == RD_OK)
        st = start_http(srv, err);
    if (st != RD_OK) {
        server_destroy(srv);
        return st;
    }
    *out = srv;
    return RD_OK;
}

rd_status_t server_load(server_t *srv, rd_error_t *err)
{
    if (!(srv->registry = registry_create()))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    model_loader_params_t lp = {.cfg = &srv->cfg, .registry = srv->registry,
                                .metrics = srv->metrics, .log = srv->log};
    rd_status_t st = model_loader_create(&lp, &srv->loader, err);
    return st == RD_OK ? model_loader_load_all(srv->loader, err) : st;
}

void server_ready(server_t *srv)
{
    go_ready(srv);
}

void server_abandon(server_t *srv)
{
    log_msg(srv->log, LOG_LEVEL_WARN, "signal while the model loads: stopping without it");
    http_begin_drain(srv->http);
    grpc_begin_drain(srv->grpc);
    grpc_destroy(srv->grpc);
    srv->grpc = NULL;
    http_destroy(srv->http);
    srv->http = NULL;
}

rd_status_t server_create(const config_t *cfg, server_t **out, rd_error_t *err)
{
    rd_status_t st = server_start(cfg, out, err);
    if (st == RD_OK && (st = server_load(*out, err)) != RD_OK) {
        server_destroy(*out);
        *out = NULL;
    }
    if (st == RD_OK)
        server_ready(*out);
    return st;
}

int server_port(const server_t *srv)
{
    return http_port(srv->http);
}

static int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - clock_now_ns()) / 1000000;
    return left > 0 ? left : 0;
}

/* Waits (bounded) until no request is in flight. */
static bool wait_idle(server_t *srv, int64_t deadline_ns)
{
    struct timespec tick = {0, 5 * 1000000};
    while (http_inflight(srv->http) > 0 || grpc_inflight(srv->grpc) > 0) {
        if (clock_now_ns() >= deadline_ns)
            return false;
        nanosleep(&tick, NULL);
    }
    return true;
}

rd_status_t server_drain(server_t *srv, rd_error_t *err)
{
    if (srv->drained)
        return RD_OK;
    srv->drained = true;
    int64_t deadline = clock_now_ns() + (int64_t)srv->cfg.drain_timeout_s * 1000000000;
    metrics_gauge_set(srv->metrics, METRICS_G_READY, 0);
    http_begin_drain(srv->http);
    grpc_begin_drain(srv->grpc);
    model_loader_stop(srv->loader); /* nothing is loaded or swapped while draining */
    served_model_t *models[REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS];
    int n = srv->registry ? registry_snapshot(srv->registry, models, REGISTRY_MAX_MODELS *
                                                                      REGISTRY_MAX_VERSIONS)
                          : 0;
    int queued = 0;
    for (int i = 0; i < n; i++)
        queued += served_model_queue_depth(models[i]);
    log_msg(srv->log, LOG_LEVEL_INFO, "draining: %d requests in flight, %d images queued",
            http_inflight(srv->http), queued);
    bool idle = wait_idle(srv, deadline);
    if (!idle) /* a decode still running stops at its next check */
        http_stop_work(srv->http);
    decode_pool_stop(srv->decode_pool); /* what is queued ends (and queues its images) first */
    rd_error_t berr = {0};
    rd_status_t st = RD_OK;
    for (int i = 0; i < n; i++)
        if (served_model_drain(models[i], ms_left(deadline), &berr) != RD_OK)
            st = berr.code;
    for (int i = 0; i < n; i++)
        served_model_unref(models[i]);
    /* answers to items completed by the drain still have to be written */
    if (!wait_idle(srv, clock_now_ns() + 1000000000LL + ms_left(deadline) * 1000000))
        idle = false;
    if (st != RD_OK || !idle) {
        log_msg(srv->log, LOG_LEVEL_WARN, "drain_timeout_s (%d s) passed with work left",
                srv->cfg.drain_timeout_s);
        return rd_error_set(err, RD_ERR_TIMEOUT, "drain_timeout_s (%d s) passed with work left",
                            srv->cfg.drain_timeout_s);
    }
    log_msg(srv->log, LOG_LEVEL_INFO, "drained");
    return RD_OK;
}

void server_destroy(server_t *srv)
{
    if (!srv)
        return;
    model_loader_destroy(srv->loader); /* answers the load/unload requests still waiting */
    if (srv->http)
        http_stop_work(srv->http);
    decode_pool_stop(srv->decode_pool); /* the decodes end quickly, their images queued or not */
    served_model_t *models[REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS];
    int n = srv->registry ? registry_snapshot(srv->registry, models, REGISTRY_MAX_MODELS *
                                                                      REGISTRY_MAX_VERSIONS)
                          : 0;
    for (int i = 0; i < n; i++) {
        rd_error_t err;
        served_model_drain(models[i], 0, &err);
        served_model_unref(models[i]);
    }
    grpc_destroy(srv->grpc); /* every item is done: no call waits on a batcher */
    http_destroy(srv->http); /* no connection is suspended now: every item is done */
    decode_pool_destroy(srv->decode_pool); /* after the HTTP threads, which submit to it */
    registry_destroy(srv->registry);
    metrics_destroy(srv->metrics);
    log_destroy(srv->log);
    free(srv);
}
