/* served_model.h - one model as the server serves it: its engine, its
 * batching queue, its metadata (name, classes, labels, the preprocessing in
 * effect) and the counters it records into. Routes reach a model through the
 * registry (registry.h) and submit through it; they never touch the engine or
 * the batcher themselves.
 *
 *     served_model_t *m;
 *     served_model_create(engine, name, &preproc, &bp, metrics, &m, &err);  // takes the engine
 *     served_model_submit(m, items, n, &err);       HTTP threads
 *     served_model_drain(m, timeout_ms, &err);  served_model_destroy(m);
 *
 * Lifetime: reference-counted. served_model_create returns one reference;
 * the registry keeps it, each request that looks the model up takes one
 * more (registry_acquire), and the last served_model_unref frees the model:
 * by then no request holds it, so its queue is empty.
 *
 * THREADS: the metadata is read-only after publication; submit, the producer
 * calls, queue_depth, ref and unref are thread-safe (the batcher's, atomics).
 * drain is the owner's. */
#ifndef RESNETD_SERVED_MODEL_H
#define RESNETD_SERVED_MODEL_H

#include "batcher.h"
#include "metrics.h"
#include "resnetd/engine.h"
#include "resnetd/error.h"
#include "resnetd/model.h"

typedef struct served_model served_model_t;

/* Starts serving engine (ownership passes to the model, also on failure)
 * under name, with preproc (copied: the engine's own, config overrides
 * applied) and the batching parameters bp; the batcher records into metrics
 * (borrowed; may be NULL). RD_ERR_NOMEM or the batcher's errors; *out is NULL
 * then. */
rd_status_t served_model_create(engine_t *engine, const char *name,
                                const model_preproc_t *preproc, const batcher_params_t *bp,
                                metrics_t *metrics, served_model_t **out, rd_error_t *err);

/* The engine's last feature map shape (engine_feature_shape). Any thread. */
engine_feature_shape_t served_model_feature_shape(const served_model_t *m);

/* engine_cam on the model's engine: reads only the weights. Any thread. */
rd_status_t served_model_cam(const served_model_t *m, const float *feature_map, int class_index,
                             float *cam, rd_error_t *err);

/* The name in responses and KServe URLs. */
const char *served_model_name(const served_model_t *m);

/* The version number (1 unless set before publication). */
int served_model_version(const served_model_t *m);
void served_model_set_version(served_model_t *m, int version);

/* Takes a reference (returns m) / drops one; the last unref frees the model
 * (served_model_destroy). unref(NULL) is a no-op. Thread-safe. */
served_model_t *served_model_ref(served_model_t *m);
void served_model_unref(served_model_t *m);
/* References held now (tests, the loader's wait for a retired version). */
int served_model_refs(const served_model_t *m);

/* The batching parameters its queue was created with. */
const batcher_params_t *served_model_batching(const served_model_t *m);

/* This version's counters (model_stats.h). Thread-safe (atomics). */
model_stats_t *served_model_stats(served_model_t *m);

/* Classes, labels, architecture, precision (the engine's). */
const model_info_t *served_model_info(const served_model_t *m);

/* The preprocessing requests are decoded with. */
const model_preproc_t *served_model_preproc(const served_model_t *m);

/* Queues n items all or none (batcher_submit_many). Thread-safe. */
rd_status_t served_model_submit(served_model_t *m, batcher_item_t **items, int n,
                                rd_error_t *err);

/* A request begins / ends bringing images (batcher_producer_enter/leave). */
void served_model_producer_enter(served_model_t *m);
void served_model_producer_leave(served_model_t *m);

/* Images waiting in its queue. Thread-safe. */
int served_model_queue_depth(served_model_t *m);

/* Stops accepting and finishes the queue within timeout_ms (batcher_drain). */
rd_status_t served_model_drain(served_model_t *m, int64_t timeout_ms, rd_error_t *err);

/* Drains with no grace if needed, then frees the batcher, the engine and the
 * model, whatever the references. NULL is a no-op. Only served_model_unref
 * and a model never published call it. */
void served_model_destroy(served_model_t *m);

#endif
