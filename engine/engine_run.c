/* engine_run.c - running an engine (resnetd/engine.h). A batch runs as
 * consecutive sub-batches, each on the cached plan for its size; when some
 * image asks for features, they are read back from the arena after its
 * sub-batch (engine_run_outputs), never otherwise. INT8 or BF16
 * with a recheck margin: an image whose two highest logits are closer than
 * the margin (a multiple of the precision's logit error bound, engine.c)
 * runs again in FP32, so that it answers the top-1 FP32 would; the FP32
 * plans are built on first use and share the arena with the fast ones.
 *
 * THREADS: one run at a time per engine (the plans share one activation
 * arena); engine_rechecked may be read from any thread. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* The optional outputs a sub-batch must read back. */
typedef struct {
    bool pooled, map;
} want_t;

/* OpenMP's thread count is per calling thread, so set it on every entry: plan
 * building (oneDNN sizes its blocking by it) and running. */
static void set_threads(const engine_t *eng)
{
    if (eng->n_threads != ENGINE_THREADS_PER_CORE) /* else OpenMP's own: one per core */
        omp_set_num_threads(eng->n_threads);
}

static rd_status_t plan_for(engine_t *eng, int n_images, unsigned flags, plan_t **out,
                            rd_error_t *err)
{
    for (int i = 0; i < eng->n_plans; i++)
        if (plan_batch(eng->plans[i].plan) == n_images && eng->plans[i].flags == flags) {
            *out = eng->plans[i].plan;
            return RD_OK;
        }
    engine_plan_t *plans = realloc(eng->plans, (size_t)(eng->n_plans + 1) * sizeof *plans);
    if (!plans)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for a batch-%d plan", n_images);
    eng->plans = plans;
    rd_status_t st = plan_create(eng->ctx, eng->net, n_images, eng->info.preproc.input_h,
                                 eng->info.preproc.input_w, flags, out, err);
    if (st == RD_OK)
        eng->plans[eng->n_plans++] = (engine_plan_t){*out, flags};
    return st;
}

static size_t input_floats(const engine_t *eng)
{
    return (size_t)3 * (size_t)eng->info.preproc.input_h * (size_t)eng->info.preproc.input_w;
}

/* Highest logit minus the second highest; *amax = max |logit|. */
static float top2_gap(const float *logits, int n, float *amax)
{
    float a = -INFINITY, b = -INFINITY;
    *amax = 0;
    for (int i = 0; i < n; i++) {
        *amax = fmaxf(*amax, fabsf(logits[i]));
        if (logits[i] > a) {
            b = a;
            a = logits[i];
        } else if (logits[i] > b) {
            b = logits[i];
        }
    }
    return a - b;
}

/* Whether the image's fast logits are too close to call. */
static int too_close(const engine_t *eng, const float *logits, int n)
{
    float amax, gap = top2_gap(logits, n, &amax);
    return gap < eng->recheck_margin + eng->recheck_rel * amax;
}

/* The features of rechecked images: the FP32 plan's, which replace the fast
 * plan's rows which[0..k) in the engine's scratch (a rare path, so its
 * buffers are allocated per call). */
static rd_status_t recheck_features(engine_t *eng, plan_t *plan, const int *which, int k,
                                    const want_t *want, rd_error_t *err)
{
    engine_feature_shape_t fs = engine_feature_shape(eng);
    size_t pooled_n = (size_t)fs.channels, map_n = pooled_n * (size_t)(fs.height * fs.width);
    float *pooled = want->pooled ? malloc((size_t)k * pooled_n * sizeof *pooled) : NULL;
    float *map = want->map ? malloc((size_t)k * map_n * sizeof *map) : NULL;
    rd_status_t st = RD_OK;
    if ((want->pooled && !pooled) || (want->map && !map))
        st = rd_error_set(err, RD_ERR_NOMEM, "out of memory for the rechecked features");
    if (st == RD_OK)
        st = plan_read_features(plan, pooled, map, err);
    for (int j = 0; st == RD_OK && j < k; j++) {
        if (pooled)
            memcpy(eng->feat_pooled + (size_t)which[j] * pooled_n, pooled + (size_t)j * pooled_n,
                   pooled_n * sizeof *pooled);
        if (map)
            memcpy(eng->feat_map + (size_t)which[j] * map_n, map + (size_t)j * map_n,
                   map_n * sizeof *map);
    }
    free(pooled);
    free(map);
    return st;
}

/* Reruns in FP32 the images of a fast sub-batch (n <= sub_batch) whose top
 * two logits are within the margin, and replaces their logits (and their
 * features in the scratch, when wanted). */
static rd_status_t recheck(engine_t *eng, const float *input, int n, float *logits,
                           const want_t *want, rd_error_t *err)
{
    int c = eng->info.n_classes, k = 0, which[ENGINE_SUB_BATCH_MAX];
    size_t per = input_floats(eng);
    for (int i = 0; i < n; i++)
        if (too_close(eng, logits + (size_t)i * c, c))
            which[k++] = i;
    if (!k)
        return RD_OK;
    if (!eng->recheck_in) {
        eng->recheck_in = malloc((size_t)eng->sub_batch * per * sizeof(float));
        eng->recheck_logits = malloc((size_t)eng->sub_batch * (size_t)c * sizeof(float));
        if (!eng->recheck_in || !eng->recheck_logits)
            return rd_error_set(err, RD_ERR_NOMEM, "out of memory for the FP32 recheck");
    }
    for (int j = 0; j < k; j++)
        memcpy(eng->recheck_in + (size_t)j * per, input + (size_t)which[j] * per,
               per * sizeof(float));
    plan_t *plan;
    rd_status_t st = plan_for(eng, k, eng->plan_flags & ~(PLAN_INT8 | PLAN_BF16), &plan, err);
    if (st == RD_OK)
        st = plan_run(plan, eng->recheck_in, eng->recheck_logits, err);
    if (st == RD_OK && (want->pooled || want->map))
        st = recheck_features(eng, plan, which, k, want, err);
    if (st != RD_OK)
        return st;
    for (int j = 0; j < k; j++)
        memcpy(logits + (size_t)which[j] * c, eng->recheck_logits + (size_t)j * c,
               (size_t)c * sizeof(float));
    atomic_fetch_add_explicit(&eng->rechecked, (uint64_t)k, memory_order_relaxed);
    return RD_OK;
}

/* Which optional outputs images [first, first + n) ask for. */
static want_t wants(const engine_outputs_t *outs, int first, int n)
{
    want_t w = {false, false};
    for (int i = first; outs && i < first + n; i++) {
        w.pooled |= outs->features && outs->features[i];
        w.map |= outs->feature_map && outs->feature_map[i];
    }
    return w;
}

/* The engine's scratch for one sub-batch's features, allocated on the first
 * request that asks (engines never asked hold none). */
static rd_status_t features_scratch(engine_t *eng, rd_error_t *err)
{
    if (eng->feat_pooled)
        return RD_OK;
    engine_feature_shape_t fs = engine_feature_shape(eng);
    size_t per = (size_t)fs.channels * (size_t)eng->sub_batch;
    eng->feat_pooled = malloc(per * sizeof(float));
    eng->feat_map = malloc(per * (size_t)(fs.height * fs.width) * sizeof(float));
    if (eng->feat_pooled && eng->feat_map)
        return RD_OK;
    free(eng->feat_pooled);
    free(eng->feat_map);
    eng->feat_pooled = eng->feat_map = NULL;
    return rd_error_set(err, RD_ERR_NOMEM, "out of memory for the features of %d images",
                        eng->sub_batch);
}

/* Copies the sub-batch's features from the scratch to the images that asked. */
static void scatter_features(const engine_t *eng, const engine_outputs_t *outs, int first, int n)
{
    engine_feature_shape_t fs = engine_feature_shape(eng);
    size_t pooled_n = (size_t)fs.channels, map_n = pooled_n * (size_t)(fs.height * fs.width);
    for (int i = 0; i < n; i++) {
        if (outs->features && outs->features[first + i])
            memcpy(outs->features[first + i], eng->feat_pooled + (size_t)i * pooled_n,
                   pooled_n * sizeof(float));
        if (outs->feature_map && outs->feature_map[first + i])
            memcpy(outs->feature_map[first + i], eng->feat_map + (size_t)i * map_n,
                   map_n * sizeof(float));
    }
}

/* One sub-batch of n images on its plan: logits, the recheck, the features. */
static rd_status_t run_sub_batch(engine_t *eng, const float *in, int n, float *out,
                                 const engine_outputs_t *outs, int first,
                                 plan_observer_t observe, void *user, rd_error_t *err)
{
    want_t want = wants(outs, first, n);
    bool any = want.pooled || want.map;
    plan_t *plan;
    rd_status_t st = any ? features_scratch(eng, err) : RD_OK;
    if (st == RD_OK)
        st = plan_for(eng, n, eng->plan_flags, &plan, err);
    if (st == RD_OK)
        st = plan_run_observed(plan, in, out, observe, user, err);
    if (st == RD_OK && any) /* before the recheck reuses the arena */
        st = plan_read_features(plan, want.pooled ? eng->feat_pooled : NULL,
                                want.map ? eng->feat_map : NULL, err);
    if (st == RD_OK && (eng->recheck_margin > 0 || eng->recheck_rel > 0))
        st = recheck(eng, in, n, out, &want, err);
    if (st == RD_OK && any)
        scatter_features(eng, outs, first, n);
    return st;
}

static rd_status_t run_batches(engine_t *eng, const float *input, int n_images, float *logits,
                               const engine_outputs_t *outs, plan_observer_t observe, void *user,
                               rd_error_t *err)
{
    if (!eng || !input || !logits)
        return rd_error_set(err, RD_ERR_ARG, "engine_run: NULL engine, input or logits");
    if (n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "engine_run: %d images (must be >= 1)", n_images);
    set_threads(eng);
    size_t per = input_floats(eng), c = (size_t)eng->info.n_classes;
    for (int done = 0; done < n_images;) {
        int n = n_images - done < eng->sub_batch ? n_images - done : eng->sub_batch;
        rd_status_t st = run_sub_batch(eng, input + (size_t)done * per, n,
                                       logits + (size_t)done * c, outs, done, observe, user, err);
        if (st != RD_OK)
            return st;
        done += n;
    }
    return RD_OK;
}

rd_status_t engine_run(engine_t *eng, const float *input, int n_images, float *logits,
                       rd_error_t *err)
{
    return run_batches(eng, input, n_images, logits, NULL, NULL, NULL, err);
}

rd_status_t engine_run_outputs(engine_t *eng, const float *input, int n_images, float *logits,
                               const engine_outputs_t *outs, rd_error_t *err)
{
    return run_batches(eng, input, n_images, logits, outs, NULL, NULL, err);
}

rd_status_t engine_run_observed(engine_t *eng, const float *input, int n_images, float *logits,
                                plan_observer_t observe, void *user, rd_error_t *err)
{
    return run_batches(eng, input, n_images, logits, NULL, observe, user, err);
}
uint64_t engine_rechecked(const engine_t *eng)
{
    return eng ? atomic_load_explicit(&eng->rechecked, memory_order_relaxed) : 0;
}

int engine_sub_batch(const engine_t *eng) { return eng->sub_batch; }

int engine_n_points(const engine_t *eng) { return eng->net->n_points; }

int engine_point_signed(const engine_t *eng, int p) { return eng->net->points[p].is_signed; }
