/* engine.c - the public engine (resnetd/engine.h): a loaded net_t, its
 * model_info_t, and one cached plan per batch size seen so far.
 *
 * THREADS: one engine_run at a time per engine (the plans share one
 * activation arena); engine_info is read-only after load. */
#include "resnetd/engine.h"

#include <omp.h>
#include <stdlib.h>

#include "loader.h"
#include "net.h"
#include "plan.h"
#include "safetensors.h"

/* Larger batches run as consecutive sub-batches of this many images, each with
 * the cached plan for its size. Per image, sub-batches of 2 to 32 ran equally
 * fast on the 2-core machines measured, 4 is where Winograd starts to pay
 * (plan.c), and activation memory grows with the sub-batch: ResNet-18 at
 * batch 32 peaks at ~180 MB instead of ~250 MB (docs/performance.md).
 * engine_params_t.sub_batch overrides it, for tuning on other machines. */
#define ENGINE_SUB_BATCH 4
#define ENGINE_SUB_BATCH_MAX 1024

struct engine {
    model_info_t info;
    net_t *net;
    plan_ctx_t *ctx;
    plan_t **plans; /* one per batch size, in creation order */
    int n_plans;
    int n_threads;
    int sub_batch;
    bool winograd;
};

engine_params_t engine_default_params(void) { return (engine_params_t){0}; }

/* OpenMP's thread count is per calling thread, so set it on every entry: plan
 * building (oneDNN sizes its blocking by it) and running. */
static void set_threads(const engine_t *eng)
{
    if (eng->n_threads > 0)
        omp_set_num_threads(eng->n_threads);
}

rd_status_t engine_load(const char *path, const engine_params_t *params, engine_t **out,
                        rd_error_t *err)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return rd_error_set(err, RD_ERR_ARG, "engine_load: NULL path or out");
    engine_params_t defaults = engine_default_params();
    if (!params)
        params = &defaults;
    if (params->n_threads < 0)
        return rd_error_set(err, RD_ERR_ARG, "n_threads %d: must be >= 0", params->n_threads);
    if (params->sub_batch < 0 || params->sub_batch > ENGINE_SUB_BATCH_MAX)
        return rd_error_set(err, RD_ERR_ARG, "sub_batch %d: must be 0..%d", params->sub_batch,
                            ENGINE_SUB_BATCH_MAX);
    engine_t *eng = calloc(1, sizeof *eng);
    if (!eng)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory loading %s", path);
    eng->n_threads = params->n_threads;
    eng->sub_batch = params->sub_batch ? params->sub_batch : ENGINE_SUB_BATCH;
    eng->winograd = !params->no_winograd;
    safetensors_t *st_file = NULL;
    rd_status_t st = safetensors_open(path, &st_file, err);
    if (st == RD_OK) {
        /* The loader copies (and folds) every tensor, so the mapping can go. */
        st = loader_build(st_file, path, params, &eng->net, &eng->info, err);
        safetensors_close(st_file);
    }
    if (st == RD_OK)
        st = plan_ctx_create(&eng->ctx, err);
    if (st != RD_OK) {
        engine_free(eng);
        return st;
    }
    *out = eng;
    return RD_OK;
}

const model_info_t *engine_info(const engine_t *eng) { return eng ? &eng->info : NULL; }

static rd_status_t plan_for(engine_t *eng, int n_images, plan_t **out, rd_error_t *err)
{
    for (int i = 0; i < eng->n_plans; i++)
        if (plan_batch(eng->plans[i]) == n_images) {
            *out = eng->plans[i];
            return RD_OK;
        }
    plan_t **plans = realloc(eng->plans, (size_t)(eng->n_plans + 1) * sizeof *plans);
    if (!plans)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for a batch-%d plan", n_images);
    eng->plans = plans;
    rd_status_t st = plan_create(eng->ctx, eng->net, n_images, eng->info.preproc.input_h,
                                 eng->info.preproc.input_w, eng->winograd, out, err);
    if (st == RD_OK)
        eng->plans[eng->n_plans++] = *out;
    return st;
}

rd_status_t engine_run(engine_t *eng, const float *input, int n_images, float *logits,
                       rd_error_t *err)
{
    if (!eng || !input || !logits)
        return rd_error_set(err, RD_ERR_ARG, "engine_run: NULL engine, input or logits");
    if (n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "engine_run: %d images (must be >= 1)", n_images);
    set_threads(eng);
    const model_info_t *mi = &eng->info;
    size_t in_per = (size_t)3 * (size_t)mi->preproc.input_h * (size_t)mi->preproc.input_w;
    for (int done = 0; done < n_images;) {
        int n = n_images - done < eng->sub_batch ? n_images - done : eng->sub_batch;
        plan_t *plan;
        rd_status_t st = plan_for(eng, n, &plan, err);
        if (st == RD_OK)
            st = plan_run(plan, input + (size_t)done * in_per,
                          logits + (size_t)done * (size_t)mi->n_classes, err);
        if (st != RD_OK)
            return st;
        done += n;
    }
    return RD_OK;
}

void engine_free(engine_t *eng)
{
    if (!eng)
        return;
    for (int i = 0; i < eng->n_plans; i++)
        plan_free(eng->plans[i]);
    free(eng->plans);
    plan_ctx_free(eng->ctx);
    net_free(eng->net);
    model_info_clear(&eng->info);
    free(eng);
}
