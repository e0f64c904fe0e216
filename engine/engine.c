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

engine_params_t engine_default_params(void) { return (engine_params_t){0}; }

/* The INT8 recheck margin: params->int8_recheck (0: the default) times the
 * INT8 logit error that calibration measured; 0 (never) without one. */
static rd_status_t load_recheck(const safetensors_t *file, const engine_params_t *params,
                                engine_t *eng, rd_error_t *err)
{
    const char *rms_text = safetensors_metadata(file, CALIB_RMS_KEY);
    if (!rms_text || params->int8_recheck < 0)
        return RD_OK;
    char *end;
    float rms = strtof(rms_text, &end);
    if (*end || !(rms >= 0 && rms < 1e6f))
        return rd_error_set(err, RD_ERR_FORMAT, "metadata %s: '%s' is not a number >= 0",
                            CALIB_RMS_KEY, rms_text);
    eng->recheck_margin = rms * (params->int8_recheck > 0 ? params->int8_recheck
                                                          : ENGINE_RECHECK_DEFAULT);
    return RD_OK;
}

/* Numbers the quantization points and, for INT8, quantizes the net with the
 * file's calibration. */
static rd_status_t load_quant(const safetensors_t *file, const engine_params_t *params,
                              engine_t *eng, rd_error_t *err)
{
    rd_precision_t precision = params->precision;
    rd_status_t st = quant_number_points(eng->net, err);
    const safetensors_tensor_t *t = safetensors_find(file, QUANT_TENSOR);
    eng->info.calibrated = t != NULL;
    eng->info.precision = precision;
    if (st != RD_OK || precision != RD_INT8)
        return st;
    if ((st = load_recheck(file, params, eng, err)) != RD_OK)
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
    if (params->precision != RD_FP32 && params->precision != RD_INT8)
        return rd_error_set(err, RD_ERR_ARG, "precision %d: unknown", (int)params->precision);
    engine_t *eng = calloc(1, sizeof *eng);
    if (!eng)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory loading %s", path);
    eng->n_threads = params->n_threads;
    eng->sub_batch = params->sub_batch                ? params->sub_batch
                     : params->precision == RD_INT8 ? ENGINE_SUB_BATCH_INT8
                                                    : ENGINE_SUB_BATCH;
    eng->plan_flags = (params->no_winograd ? 0 : PLAN_WINOGRAD) |
                      (params->precision == RD_INT8 ? PLAN_INT8 : 0);
    safetensors_t *st_file = NULL;
    rd_status_t st = safetensors_open(path, &st_file, err);
    if (st == RD_OK) {
        /* The loader copies (and folds) every tensor, so the mapping can go. */
        st = loader_build(st_file, path, params, &eng->net, &eng->info, err);
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

void engine_free(engine_t *eng)
{
    if (!eng)
        return;
    for (int i = 0; i < eng->n_plans; i++)
        plan_free(eng->plans[i].plan);
    free(eng->plans);
    free(eng->recheck_in);
    free(eng->recheck_logits);
    plan_ctx_free(eng->ctx);
    net_free(eng->net);
    model_info_clear(&eng->info);
    free(eng);
}
