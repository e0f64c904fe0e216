/* server.h - `resnetd serve` as one object: it ties the config, the logger,
 * the metrics registry, the model registry (engine and batcher) and the HTTP
 * daemon together, creates them in dependency order and tears them down in
 * reverse.
 *
 *     server_t *srv;
 *     if (server_create(&cfg, &srv, &err) != RD_OK) ...    // listening on return
 *     ... wait for SIGTERM/SIGINT ...
 *     server_drain(srv, &err);                              // graceful
 *     server_destroy(srv);
 *
 * THREADS: server_create/drain/destroy are called from one thread (main's);
 * the components' own THREADS notes say how they share work. */
#ifndef RESNETD_SERVER_H
#define RESNETD_SERVER_H

#include "config.h"
#include "resnetd/error.h"

typedef struct server server_t;

/* Loads the model and starts the batcher and the HTTP daemon per cfg (copied).
 * Logs "listening on ADDR:PORT" (the real port when cfg->port is 0). On
 * failure everything already started is stopped and err names the step. */
rd_status_t server_create(const config_t *cfg, server_t **out, rd_error_t *err);

/* server_create in three steps, so that a signal can be heard while the
 * model loads (a model on a slow disk or a FIFO can block for ever):
 * server_start starts the logger, the metrics and the HTTP daemon (probes
 * answer, model routes 503); server_load loads the model and starts the
 * batcher, and touches neither the daemon nor anything server_start's caller
 * uses, so it may run on a thread of its own; server_ready (on the caller's
 * thread, after server_load returned RD_OK) publishes the model and turns
 * ready. On failure call server_destroy. */
rd_status_t server_start(const config_t *cfg, server_t **out, rd_error_t *err);
rd_status_t server_load(server_t *srv, rd_error_t *err);
void server_ready(server_t *srv);

/* For a signal while server_load is still running on another thread: stops
 * the HTTP daemon (which server_load never touches) and leaves the rest,
 * which the loader may still be using, to the process's exit. The caller
 * returns from main next. */
void server_abandon(server_t *srv);

/* The bound TCP port. */
int server_port(const server_t *srv);

/* Graceful shutdown: /readyz turns 503, the listening socket closes, every
 * accepted request is answered and the queue drains, all within
 * cfg->drain_timeout_s. Returns RD_ERR_TIMEOUT if requests were still queued
 * or in flight when the time ran out (they were answered 503), else RD_OK. */
rd_status_t server_drain(server_t *srv, rd_error_t *err);

/* Stops and frees everything (drains with no grace if server_drain was not
 * called). NULL is a no-op. */
void server_destroy(server_t *srv);

#endif
