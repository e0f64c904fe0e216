/* served_model.c - a model being served: engine + batcher + metadata (see
 * served_model.h). */
#include "served_model.h"

#include <stdio.h>
#include <stdlib.h>

struct served_model {
    /* read-only after served_model_create */
    char name[128];
    engine_t *engine;
    model_preproc_t preproc;
    batcher_t *batcher; /* thread-safe itself */
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
    snprintf(m->name, sizeof m->name, "%s", name);
    m->preproc = *preproc;
    rd_status_t st = batcher_create(engine, bp, metrics, &m->batcher, err);
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
