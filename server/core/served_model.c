/* served_model.c - a model being served: engine + batcher + metadata (see
 * served_model.h). */
#include "served_model.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct served_model {
    /* read-only after served_model_create */
    char name[128];
    engine_t *engine;
    model_preproc_t preproc;
    batcher_t *batcher; /* thread-safe itself */
    int version;        /* set by the owner before publishing (served_model_set_version) */
    atomic_int refs;    /* the registry's and every request's that holds it */
    model_stats_t stats; /* atomics: the batcher records, /metrics and /stats read */
    batcher_params_t batching; /* as created (read-only) */
};

rd_status_t served_model_create(engine_t *engine, const char *name,
                                const model_preproc_t *preproc, const batcher_params_t *bp,
                                metrics_t *metrics, served_model_t **out, rd_error_t *err)
{
    *out = NULL;
    served_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        engine_free(engine);
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    }
    m->engine = engine;
    m->version = 1;
    atomic_init(&m->refs, 1);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->preproc = *preproc;
    m->batching = *bp;
    batcher_params_t own = *bp;
    own.stats = &m->stats;
    rd_status_t st = batcher_create(engine, &own, metrics, &m->batcher, err);
    if (st != RD_OK) {
        served_model_destroy(m);
        return st;
    }
    *out = m;
    return RD_OK;
}

const char *served_model_name(const served_model_t *m)
{
    return m->name;
}

int served_model_version(const served_model_t *m)
{
    return m->version;
}

void served_model_set_version(served_model_t *m, int version)
{
    m->version = version;
}

served_model_t *served_model_ref(served_model_t *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

static void *reap(void *m)
{
    served_model_destroy(m);
    return NULL;
}

void served_model_unref(served_model_t *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    /* The last reference of a retired version can be a request freed by its
     * own worker's done() (its client had gone); that thread cannot join
     * itself, so a short-lived thread frees the model then. */
    pthread_t t;
    pthread_attr_t attr;
    if (m->batcher && batcher_on_worker(m->batcher) && !pthread_attr_init(&attr)) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, reap, m);
        pthread_attr_destroy(&attr);
        if (!rc)
            return;
    }
    served_model_destroy(m); /* the one place a served model is freed */
}

int served_model_refs(const served_model_t *m)
{
    return atomic_load(&((served_model_t *)m)->refs);
}

const batcher_params_t *served_model_batching(const served_model_t *m)
{
    return &m->batching;
}

model_stats_t *served_model_stats(served_model_t *m)
{
    return &m->stats;
}

const model_info_t *served_model_info(const served_model_t *m)
{
    return engine_info(m->engine);
}

const model_preproc_t *served_model_preproc(const served_model_t *m)
{
    return &m->preproc;
}

rd_status_t served_model_submit(served_model_t *m, batcher_item_t **items, int n,
                                rd_error_t *err)
{
    return batcher_submit_many(m->batcher, items, n, err);
}

void served_model_producer_enter(served_model_t *m)
{
    batcher_producer_enter(m->batcher);
}

void served_model_producer_leave(served_model_t *m)
{
    batcher_producer_leave(m->batcher);
}

int served_model_queue_depth(served_model_t *m)
{
    return batcher_queue_depth(m->batcher);
}

rd_status_t served_model_drain(served_model_t *m, int64_t timeout_ms, rd_error_t *err)
{
    return batcher_drain(m->batcher, timeout_ms, err);
}

void served_model_destroy(served_model_t *m)
{
    if (!m)
        return;
    batcher_destroy(m->batcher); /* drains first: every queued item gets its done() */
    engine_free(m->engine);
    free(m);
}

engine_feature_shape_t served_model_feature_shape(const served_model_t *m)
{
    return engine_feature_shape(m->engine);
}

rd_status_t served_model_cam(const served_model_t *m, const float *feature_map, int class_index,
                             float *cam, rd_error_t *err)
{
    return engine_cam(m->engine, feature_map, class_index, cam, err);
}
