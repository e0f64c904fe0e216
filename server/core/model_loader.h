/* model_loader.h - loading the model repository into the registry, off the
 * request path: at start (every model, before ready), then by the control
 * mode (Triton's names): "none" loads nothing more, "poll" rescans the
 * repository every repository_poll_s and loads, reloads or unloads what
 * changed (a new version, a replaced file, a removed folder), "explicit"
 * loads and unloads what POST /v2/repository/models/NAME/load|unload ask.
 *
 * A version is loaded (engine_load), warmed up (warmup.c: every sub-batch
 * plan built) and only then published; requests switch to it, those queued
 * on the version it replaces finish there, and the last of them frees that
 * one (registry.h). A failed load keeps what was serving, logs the error and
 * shows it in the repository index.
 *
 *     model_loader_t *l;
 *     model_loader_create(&params, &l, &err);
 *     model_loader_load_all(l, &err);       at start, on the caller's thread
 *     model_loader_start(l);                poll / explicit: the loader thread
 *     model_loader_request(l, MODEL_LOAD, "resnet18", done, ctx);   HTTP threads
 *     model_loader_destroy(l);
 *
 * THREADS: after model_loader_start, one loader thread does every load and
 * unload; model_loader_request only queues a command under `mu` and signals
 * `wake`. The loader's bookkeeping (which file each version came from) is
 * the loader thread's alone. */
#ifndef RESNETD_MODEL_LOADER_H
#define RESNETD_MODEL_LOADER_H

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "resnetd/error.h"

typedef struct model_loader model_loader_t;

typedef struct {
    const config_t *cfg;  /* model, model_repository, default_model, control mode, ... */
    registry_t *registry; /* where versions are published */
    metrics_t *metrics;   /* may be NULL */
    const log_t *log;     /* may be NULL */
} model_loader_params_t;

typedef enum { MODEL_LOAD = 0, MODEL_UNLOAD } model_op_t;

/* Called on the loader thread when a request is done: status RD_OK, or the
 * error (message in err). */
typedef void (*model_done_fn)(void *ctx, rd_status_t status, const rd_error_t *err);

/* All borrowed; they must outlive the loader. RD_ERR_NOMEM. */
rd_status_t model_loader_create(const model_loader_params_t *params, model_loader_t **out,
                                rd_error_t *err);

/* Loads every model of the repository (or the one `model` file) on the
 * calling thread, in every mode (explicit too, as Triton's
 * --load-model=* does); the first failure is returned, naming the model and
 * the file. */
rd_status_t model_loader_load_all(model_loader_t *l, rd_error_t *err);

/* poll and explicit modes: starts the loader thread (RD_ERR_NOMEM otherwise). */
rd_status_t model_loader_start(model_loader_t *l, rd_error_t *err);

/* Queues op for model name; done(ctx, ...) runs on the loader thread when
 * it is done. RD_ERR_ARG when the mode is not explicit or the name is not a
 * plain folder name, RD_ERR_LIMIT when too many commands wait. Thread-safe. */
rd_status_t model_loader_request(model_loader_t *l, model_op_t op, const char *name,
                                 model_done_fn done, void *ctx, rd_error_t *err);

/* True in explicit mode (the repository API is on). */
bool model_loader_explicit(const model_loader_t *l);

/* Stops the thread (a load in progress finishes first; queued commands are
 * answered RD_ERR_TIMEOUT); later requests are refused. Idempotent; the
 * owner's, on drain. */
void model_loader_stop(model_loader_t *l);

/* model_loader_stop, then frees the loader. NULL is a no-op. */
void model_loader_destroy(model_loader_t *l);

#endif
