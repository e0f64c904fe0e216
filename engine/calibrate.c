/* calibrate.c - INT8 calibration (resnetd/calibrate.h). Each quantization
 * point keeps a histogram of |x| over every image seen. The histogram has a
 * fixed number of bins; when a larger value arrives its range doubles, pairs
 * of bins merging, so one pass over the images suffices and the bins stay at
 * least half as fine as the final range. Exact zeros (half of every ReLU
 * output) are left out: they quantize exactly whatever the range.
 * Saving also measures how far the INT8 logits land from FP32's on the first
 * CALIB_KEEP calibration images, which sets the INT8 recheck margin
 * (engine_run.c). */
#include "resnetd/calibrate.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "quant.h"
#include "safetensors.h"

#define HIST_BINS 2048
#define PERCENTILE 0.9999
#define CALIB_KEEP 64

typedef struct {
    double width; /* of one bin; 0 until a nonzero value is seen */
    float max;
    uint64_t bins[HIST_BINS];
} hist_t;

struct calib {
    engine_t *eng;
    int n_points;
    hist_t *hist;
    int n_images;
    float *kept; /* the first n_kept <= CALIB_KEEP inputs */
    int n_kept;
};

static const char *const method_names[] = {
    [CALIB_MAX] = "max", [CALIB_PERCENTILE] = "percentile", [CALIB_MSE] = "mse"};

const char *calib_method_name(calib_method_t m)
{
    return m >= CALIB_MAX && m <= CALIB_MSE ? method_names[m] : "?";
}

int calib_method_parse(const char *s)
{
    for (int i = 0; s && i <= CALIB_MSE; i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}

rd_status_t calib_create(engine_t *eng, calib_t **out, rd_error_t *err)
{
    *out = NULL;
    if (engine_info(eng)->precision != RD_FP32)
        return rd_error_set(err, RD_ERR_ARG, "calibration needs the FP32 engine");
    calib_t *c = calloc(1, sizeof *c);
    if (c)
        c->hist = calloc((size_t)engine_n_points(eng), sizeof *c->hist);
    if (!c || !c->hist) {
        free(c);
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for calibration histograms");
    }
    c->eng = eng;
    c->n_points = engine_n_points(eng);
    *out = c;
    return RD_OK;
}

/* Widens h until its range holds m. */
static void hist_cover(hist_t *h, float m)
{
    if (h->width == 0) {
        h->width = (double)m * 1.0001 / HIST_BINS;
        return;
    }
    while (m >= h->width * HIST_BINS) {
        for (int i = 0; i < HIST_BINS / 2; i++)
            h->bins[i] = h->bins[2 * i] + h->bins[2 * i + 1];
        memset(h->bins + HIST_BINS / 2, 0, HIST_BINS / 2 * sizeof *h->bins);
        h->width *= 2;
    }
}

static void observe(void *user, int point, const float *data, size_t count)
{
    hist_t *h = &((calib_t *)user)->hist[point];
    float m = 0;
    for (size_t i = 0; i < count; i++)
        m = fmaxf(m, fabsf(data[i]));
    if (m == 0)
        return;
    hist_cover(h, m);
    h->max = fmaxf(h->max, m);
    double inv = 1.0 / h->width;
    for (size_t i = 0; i < count; i++) {
        float a = fabsf(data[i]);
        if (a == 0)
            continue;
        size_t b = (size_t)(a * inv);
        h->bins[b < HIST_BINS ? b : HIST_BINS - 1]++;
    }
}

static size_t input_floats(const calib_t *c)
{
    const model_preproc_t *pp = &engine_info(c->eng)->preproc;
    return (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
}

/* Copies inputs up to CALIB_KEEP images in all, for measure_rms. */
static rd_status_t keep(calib_t *c, const float *input, int n_images, rd_error_t *err)
{
    int n = n_images < CALIB_KEEP - c->n_kept ? n_images : CALIB_KEEP - c->n_kept;
    size_t per = input_floats(c);
    if (n <= 0)
        return RD_OK;
    if (!c->kept && !(c->kept = malloc((size_t)CALIB_KEEP * per * sizeof *c->kept)))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory keeping calibration images");
    memcpy(c->kept + (size_t)c->n_kept * per, input, (size_t)n * per * sizeof *input);
    c->n_kept += n;
    return RD_OK;
}

rd_status_t calib_add(calib_t *c, const float *input, int n_images, rd_error_t *err)
{
    if (n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "calib_add: %d images", n_images);
    float *logits = malloc((size_t)n_images * (size_t)engine_info(c->eng)->n_classes *
                           sizeof *logits);
    if (!logits)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d images' logits", n_images);
    rd_status_t st = engine_run_observed(c->eng, input, n_images, logits, observe, c, err);
    free(logits);
    if (st == RD_OK)
        c->n_images += n_images;
    return st == RD_OK ? keep(c, input, n_images, err) : st;
}

int calib_images(const calib_t *c) { return c->n_images; }

static double percentile_range(const hist_t *h)
{
    uint64_t total = 0, cum = 0;
    for (int i = 0; i < HIST_BINS; i++)
        total += h->bins[i];
    for (int i = 0; i < HIST_BINS; i++)
        if ((cum += h->bins[i]) >= (double)total * PERCENTILE)
            return fmin((i + 1) * h->width, h->max);
    return h->max;
}

/* Expected squared error of quantizing to `levels` steps over [0, t]: values
 * below t round (step^2 / 12 each), values above clip to t. */
static double mse_at(const hist_t *h, double t, int levels)
{
    double step = t / levels, rounding = step * step / 12, e = 0;
    for (int i = 0; i < HIST_BINS; i++) {
        if (!h->bins[i])
            continue;
        double x = (i + 0.5) * h->width;
        e += (double)h->bins[i] * (x <= t ? rounding : (x - t) * (x - t));
    }
    return e;
}

static double mse_range(const hist_t *h, int levels)
{
    double best_t = h->max, best = mse_at(h, best_t, levels);
    int last = (int)ceil(h->max / h->width);
    for (int k = 1; k < last && k < HIST_BINS; k++) {
        double e = mse_at(h, k * h->width, levels);
        if (e < best) {
            best = e;
            best_t = k * h->width;
        }
    }
    return best_t;
}

/* A point that never saw a nonzero value gets range 1: any positive range
 * quantizes all-zeros exactly. */
static float choose_range(const hist_t *h, calib_method_t m, int is_signed)
{
    if (h->width == 0)
        return 1.0f;
    double t = m == CALIB_PERCENTILE ? percentile_range(h)
               : m == CALIB_MSE      ? mse_range(h, is_signed ? 127 : 255)
                                     : h->max;
    return (float)fmax(t, 1e-6);
}

/* Writes every tensor and metadata entry of model_path, the ranges, and the
 * metadata note and (when not NULL) rms to out_path. */
static rd_status_t write_model(const calib_t *c, const float *amax, const char *note,
                               const char *rms, const char *model_path, const char *out_path,
                               rd_error_t *err)
{
    safetensors_t *src = NULL;
    safetensors_writer_t *w = NULL;
    rd_status_t st = safetensors_open(model_path, &src, err);
    if (st == RD_OK)
        st = safetensors_writer_create(&w, err);
    if (st == RD_OK)
        st = safetensors_writer_add_file(w, src, QUANT_TENSOR, err);
    if (st == RD_OK)
        st = safetensors_writer_add(w, QUANT_TENSOR, 1, (int64_t[]){c->n_points}, amax, err);
    if (st == RD_OK)
        st = safetensors_writer_meta(w, "calibration", note, err);
    if (st == RD_OK && rms)
        st = safetensors_writer_meta(w, CALIB_RMS_KEY, rms, err);
    if (st == RD_OK)
        st = safetensors_writer_save(w, out_path, err);
    safetensors_writer_free(w);
    safetensors_close(src);
    return st;
}

/* The RMS difference between the logits of the INT8 model at path and of the
 * FP32 engine, over the kept calibration images. */
static rd_status_t measure_rms(const calib_t *c, const char *path, double *rms, rd_error_t *err)
{
    const model_info_t *mi = engine_info(c->eng);
    engine_params_t p = engine_default_params();
    p.n_threads = c->eng->n_threads;
    p.input_h = mi->preproc.input_h;
    p.input_w = mi->preproc.input_w;
    p.precision = RD_INT8;
    p.int8_recheck = -1;
    size_t n = (size_t)c->n_kept * (size_t)mi->n_classes;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    engine_t *int8 = NULL;
    rd_status_t st = a && b ? engine_load(path, &p, &int8, err)
                            : rd_error_set(err, RD_ERR_NOMEM, "out of memory for logits");
    if (st == RD_OK)
        st = engine_run(c->eng, c->kept, c->n_kept, a, err);
    if (st == RD_OK)
        st = engine_run(int8, c->kept, c->n_kept, b, err);
    double sum = 0;
    for (size_t i = 0; st == RD_OK && i < n; i++)
        sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    *rms = sqrt(sum / (double)n);
    engine_free(int8);
    free(a);
    free(b);
    return st;
}

rd_status_t calib_save(const calib_t *c, calib_method_t method, const char *model_path,
                       const char *out_path, rd_error_t *err)
{
    if (c->n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "no calibration images were added");
    if (method < CALIB_MAX || method > CALIB_MSE)
        return rd_error_set(err, RD_ERR_ARG, "calibration method %d: unknown", (int)method);
    float *amax = malloc((size_t)c->n_points * sizeof *amax);
    if (!amax)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d ranges", c->n_points);
    for (int p = 0; p < c->n_points; p++)
        amax[p] = choose_range(&c->hist[p], method, engine_point_signed(c->eng, p));
    char note[96], rms_text[32];
    snprintf(note, sizeof note, "%s over %d images", calib_method_name(method), c->n_images);
    double rms = 0;
    /* Written twice: the INT8 engine that measures the error loads the first. */
    rd_status_t st = write_model(c, amax, note, NULL, model_path, out_path, err);
    if (st == RD_OK)
        st = measure_rms(c, out_path, &rms, err);
    snprintf(rms_text, sizeof rms_text, "%.6g", rms);
    if (st == RD_OK)
        st = write_model(c, amax, note, rms_text, model_path, out_path, err);
    free(amax);
    return st;
}

void calib_free(calib_t *c)
{
    if (!c)
        return;
    free(c->hist);
    free(c->kept);
    free(c);
}
