/* engine.c - the public engine (resnetd/engine.h): a loaded net_t, its
 * model_info_t, and one cached plan per batch size seen so far.
 *
 * THREADS: one engine_run at a time per engine (the plans share one
 * activation arena); engine_info is read-only after load. */
#include "resnetd/engine.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "net.h"
#include "engine_internal.h"
#include "plan.h"
#include "quant.h"
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
    unsigned plan_flags;
};

engine_params_t engine_default_params(void) { return (engine_params_t){0}; }

/* OpenMP's thread count is per calling thread, so set it on every entry: plan
 * building (oneDNN sizes its blocking by it) and running. */
static void set_threads(const engine_t *eng)
{
    if (eng->n_threads > 0)
        omp_set_num_threads(eng->n_threads);
}

/* Numbers the quantization points and, for INT8, quantizes the net with the
 * file's calibration. */
static rd_status_t load_quant(const safetensors_t *file, rd_precision_t precision, engine_t *eng,
                              rd_error_t *err)
{
    rd_status_t st = quant_number_points(eng->net, err);
    const safetensors_tensor_t *t = safetensors_find(file, QUANT_TENSOR);
    eng->info.calibrated = t != NULL;
    eng->info.precision = precision;
    if (st != RD_OK || precision != RD_INT8)
        return st;
    if (!t)
        return rd_error_set(err, RD_ERR_FORMAT, "no INT8 calibration (tensor %s); make it with "
                            "`resnetd calibrate`", QUANT_TENSOR);
    if ((st = safetensors_check_float(t, err)) != RD_OK)
        return st;
    if (t->ndim != 1 || t->n_elems != eng->net->n_points)
        return rd_error_set(err, RD_ERR_SHAPE, "tensor %s: %lld values for %d quantization "
                            "points", QUANT_TENSOR, (long long)t->n_elems, eng->net->n_points);
    float *amax = malloc((size_t)t->n_elems * sizeof *amax);
    if (!amax)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %s", QUANT_TENSOR);
    safetensors_to_f32(t, amax);
    st = quant_apply(eng->net, amax, (int)t->n_elems, err);
    free(amax);
    return st;
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
    if (params->precision != RD_FP32 && params->precision != RD_INT8)
        return rd_error_set(err, RD_ERR_ARG, "precision %d: unknown", (int)params->precision);
    engine_t *eng = calloc(1, sizeof *eng);
    if (!eng)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory loading %s", path);
    eng->n_threads = params->n_threads;
    eng->sub_batch = params->sub_batch ? params->sub_batch : ENGINE_SUB_BATCH;
    eng->plan_flags = (params->no_winograd ? 0 : PLAN_WINOGRAD) |
                      (params->precision == RD_INT8 ? PLAN_INT8 : 0);
    safetensors_t *st_file = NULL;
    rd_status_t st = safetensors_open(path, &st_file, err);
    if (st == RD_OK) {
        /* The loader copies (and folds) every tensor, so the mapping can go. */
        st = loader_build(st_file, path, params, &eng->net, &eng->info, err);
        if (st == RD_OK)
            st = load_quant(st_file, params->precision, eng, err);
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

static const char *const precision_names[] = {[RD_FP32] = "fp32", [RD_INT8] = "int8"};

const char *engine_precision_name(rd_precision_t precision)
{
    return precision == RD_INT8 ? precision_names[RD_INT8] : precision_names[RD_FP32];
}

int engine_precision_parse(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof precision_names / sizeof *precision_names); i++)
        if (strcmp(s, precision_names[i]) == 0)
            return i;
    return -1;
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
                                 eng->info.preproc.input_w, eng->plan_flags, out, err);
    if (st == RD_OK)
        eng->plans[eng->n_plans++] = *out;
    return st;
}

rd_status_t engine_run(engine_t *eng, const float *input, int n_images, float *logits,
                       rd_error_t *err)
{
    return engine_run_observed(eng, input, n_images, logits, NULL, NULL, err);
}

int engine_n_points(const engine_t *eng) { return eng->net->n_points; }

int engine_point_signed(const engine_t *eng, int p) { return eng->net->points[p].is_signed; }

rd_status_t engine_run_observed(engine_t *eng, const float *input, int n_images, float *logits,
                                plan_observer_t observe, void *user, rd_error_t *err)
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
            st = plan_run_observed(plan, input + (size_t)done * in_per,
                                   logits + (size_t)done * (size_t)mi->n_classes, observe, user,
                                   err);
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
