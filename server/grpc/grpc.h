/* grpc.h - the KServe v2 gRPC front end: a plain-TCP HTTP/2 (h2c, prior
 * knowledge) listener on libnghttp2 serving GRPCInferenceService
 * (grpc_service.proto) with protobuf-c messages. It is another front end of
 * the same server, not another server: it shares the registry (and so the
 * batching queues), the metrics, the auth token and the limits with the REST
 * daemon (server/http), and never uses libmicrohttpd.
 *
 *     grpc_params_t gp = {.cfg = &cfg, .metrics = m, .log = log};
 *     grpc_create(&gp, &g, &err);      listening; calls needing the model: UNAVAILABLE
 *     grpc_set_registry(g, registry);  the model is loaded
 *     grpc_begin_drain(g);             new calls UNAVAILABLE; in-flight ones finish
 *     grpc_inflight(g) ... 0
 *     grpc_destroy(g);                 after the batchers have finished every item
 *
 * THREADS: one accept thread, one thread per connection (at most
 * grpc_max_connections). The batcher's worker calls back into a connection
 * only through its completion list (grpc_conn.c says how). grpc_set_registry,
 * grpc_begin_drain, grpc_inflight and grpc_port are thread-safe. */
#ifndef RESNETD_GRPC_H
#define RESNETD_GRPC_H

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "resnetd/error.h"

typedef struct grpc grpc_t;

typedef struct {
    const config_t *cfg; /* bind, grpc_* keys, limits, auth_token (copied) */
    metrics_t *metrics;  /* borrowed */
    log_t *log;          /* borrowed */
} grpc_params_t;

/* Binds cfg->bind:cfg->grpc_port (-1 = any free port) and starts the accept
 * thread. RD_ERR_IO (bind/listen, naming the address), RD_ERR_NOMEM,
 * RD_ERR_INTERNAL (thread). */
rd_status_t grpc_create(const grpc_params_t *p, grpc_t **out, rd_error_t *err);

/* The bound port. */
int grpc_port(const grpc_t *g);

/* Publishes the served models (borrowed until grpc_destroy); each call looks
 * its model up there (registry_acquire) and holds it until answered. */
void grpc_set_registry(grpc_t *g, registry_t *registry);

/* New calls get UNAVAILABLE; connections get GOAWAY once idle. */
void grpc_begin_drain(grpc_t *g);

/* Calls accepted and not yet answered. */
int grpc_inflight(const grpc_t *g);

/* Stops accepting, closes every connection (cancelling their queued images)
 * and joins the threads. Every batcher item a call queued must have been
 * completed or must complete meanwhile (the batchers still run). NULL-safe. */
void grpc_destroy(grpc_t *g);

#endif
