/* engine.c - the public engine (resnetd/engine.h): loading a model into a
 * net_t and its model_info_t (quantized for INT8), and freeing it. Running
 * it is engine_run.c.
 *
 * THREADS: engine_info is read-only after load. */
#include "resnetd/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "loader.h"
#include "quant.h"
#include "safetensors.h"

engine_params_t engine_default_params(void)
{
    return (engine_params_t){
        .n_threads = ENGINE_THREADS_PER_CORE,
        .input_h = ENGINE_INPUT_FROM_MODEL,
        .input_w = ENGINE_INPUT_FROM_MODEL,
        .labels_path = NULL,
        .sub_batch = ENGINE_SUB_BATCH_BY_PRECISION,
        .no_winograd = false,
        .precision = RD_FP32,
        .int8_recheck = ENGINE_RECHECK_DEFAULT,
    };
}

/* A metadata number >= 0, or -1 when the key is absent. */
static rd_status_t meta_bound(const safetensors_t *file, const char *key, double *out,
                              rd_error_t *err)
{
    const char *text = safetensors_metadata(file, key);
    *out = -1;
    if (!text)
        return RD_OK;
    char *end;
    double v = strtod(text, &end);
    if (*end || end == text || !(v >= 0 && v < 1e6))
        return rd_error_set(err, RD_ERR_FORMAT, "metadata %s: '%s' is not a number >= 0", key,
                            text);
    *out = v;
    return RD_OK;
}

/* The recheck margin of a fast precision (engine_run.c): params->int8_recheck
 * (<= 0: none) times the precision's logit error bound. calibrate.c
 * measures the bound on held-out calibration images and stores it; a BF16
 * run of a file without one uses a bound relative to each image's logits
 * (ENGINE_BF16_REL_BOUND). INT8 files calibrated before bounds existed carry
 * an RMS instead, used as before. */
static rd_status_t load_recheck(const safetensors_t *file, const engine_params_t *params,
                                engine_t *eng, rd_error_t *err)
{
    rd_precision_t prec = eng->info.precision;
    if (!(params->int8_recheck > 0) || prec == RD_FP32)
        return RD_OK;
    double k = params->int8_recheck;
    double bound, rms;
    rd_status_t st = meta_bound(file, prec == RD_INT8 ? CALIB_INT8_BOUND_KEY : CALIB_BF16_BOUND_KEY,
                                &bound, err);
    if (st == RD_OK && prec == RD_INT8)
        st = meta_bound(file, CALIB_RMS_KEY, &rms, err);
    if (st != RD_OK)
        return st;
    if (bound >= 0)
        eng->recheck_margin = (float)(k * bound);
    else if (prec == RD_INT8 && rms >= 0)
        eng->recheck_margin = (float)(k * rms);
    else if (prec == RD_BF16)
        eng->recheck_rel = (float)(k * ENGINE_BF16_REL_BOUND);
    return RD_OK;
}

/* What RD_AUTO means on this machine, and the note the log prints. */
static rd_precision_t resolve_precision(rd_precision_t want, char *note, size_t n)
{
    const char *isa = engine_isa_name();
    int fast = engine_isa_fast_bf16();
    note[0] = 0;
    if (want == RD_AUTO && fast)
        snprintf(note, n, "auto chose bf16: the effective ISA %s has AMX BF16 (about 3x fp32 "
                 "here); close calls rerun in fp32", isa);
    else if (want == RD_AUTO)
        snprintf(note, n, "auto chose fp32: the effective ISA %s has no AMX BF16, and BF16 "
                 "convolutions without it run slower than fp32", isa);
    else if (want == RD_BF16 && !fast)
        snprintf(note, n, "warning: bf16 on %s, which has no AMX BF16: BF16 runs slower than "
                 "fp32 here (use fp32 or auto)", isa);
    if (want != RD_AUTO)
        return want;
    return fast ? RD_BF16 : RD_FP32;
}

int engine_sub_batch_default(rd_precision_t precision)
{
    char note[256];
    return resolve_precision(precision, note, sizeof note) == RD_FP32 ? ENGINE_SUB_BATCH_FP32
                                                                       : ENGINE_SUB_BATCH_FAST;
}

/* Where the defaults that depend on something else become values: the
 * precision (RD_AUTO by the ISA) and the sub-batch (by that precision). The
 * thread count (ENGINE_THREADS_PER_CORE) is left to OpenMP (engine_run.c) and
 * the input size (ENGINE_INPUT_FROM_MODEL) to the metadata (loader_meta.c). */
static void resolve_params(const engine_params_t *params, engine_t *eng)
{
    rd_precision_t prec = resolve_precision(params->precision, eng->precision_note,
                                            sizeof eng->precision_note);
    eng->info.precision = prec;
    eng->n_threads = params->n_threads;
    eng->sub_batch = params->sub_batch != ENGINE_SUB_BATCH_BY_PRECISION ? params->sub_batch
                     : engine_sub_batch_default(prec);
    eng->plan_flags = (params->no_winograd ? 0 : PLAN_WINOGRAD) |
                      (prec == RD_INT8 ? PLAN_INT8 : prec == RD_BF16 ? PLAN_BF16 : 0);
}

/* Numbers the quantization points and, for INT8, quantizes the net with the
 * file's calibration. */
static rd_status_t load_quant(const safetensors_t *file, const engine_params_t *params,
                              engine_t *eng, rd_error_t *err)
{
    rd_precision_t precision = eng->info.precision;
    rd_status_t st = quant_number_points(eng->net, err);
    const safetensors_tensor_t *t = safetensors_find(file, QUANT_TENSOR);
    eng->info.calibrated = t != NULL;
    if (st == RD_OK)
        st = load_recheck(file, params, eng, err);
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
    if (!(params->int8_recheck < 1000))
        return rd_error_set(err, RD_ERR_ARG, "int8_recheck %g: must be < 1000",
                            (double)params->int8_recheck);
    if (params->precision < RD_FP32 || params->precision > RD_AUTO)
        return rd_error_set(err, RD_ERR_ARG, "precision %d: unknown", (int)params->precision);
    engine_t *eng = calloc(1, sizeof *eng);
    if (!eng)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory loading %s", path);
    resolve_params(params, eng);
    rd_precision_t prec = eng->info.precision;
    safetensors_t *st_file = NULL;
    rd_status_t st = safetensors_open(path, &st_file, err);
    if (st == RD_OK) {
        /* The loader copies (and folds) every tensor, so the mapping can go. */
        st = loader_build(st_file, path, params, &eng->net, &eng->info, err);
        eng->info.precision = prec;
        if (st == RD_OK)
            st = load_quant(st_file, params, eng, err);
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

static const char *const precision_names[] = {
    [RD_FP32] = "fp32", [RD_INT8] = "int8", [RD_BF16] = "bf16", [RD_AUTO] = "auto"};

const char *engine_precision_name(rd_precision_t precision)
{
    return precision >= RD_FP32 && precision <= RD_AUTO ? precision_names[precision]
                                                        : precision_names[RD_FP32];
}

const char *engine_precision_note(const engine_t *eng) { return eng ? eng->precision_note : ""; }

int engine_precision_parse(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof precision_names / sizeof *precision_names); i++)
        if (strcmp(s, precision_names[i]) == 0)
            return i;
    return -1;
}

const model_info_t *engine_info(const engine_t *eng) { return eng ? &eng->info : NULL; }

void engine_free(engine_t *eng)
{
    if (!eng)
        return;
    for (int i = 0; i < eng->n_plans; i++)
        plan_free(eng->plans[i].plan);
    free(eng->plans);
    free(eng->recheck_in);
    free(eng->recheck_logits);
    free(eng->feat_pooled);
    free(eng->feat_map);
    plan_ctx_free(eng->ctx);
    net_free(eng->net);
    model_info_clear(&eng->info);
    free(eng);
}
