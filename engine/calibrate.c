/* calibrate.c - INT8 calibration (resnetd/calibrate.h). Each quantization
 * point keeps a histogram of |x| over every image seen. The histogram has a
 * fixed number of bins; when a larger value arrives its range doubles, pairs
 * of bins merging, so one pass over the images suffices and the bins stay at
 * least half as fine as the final range. Exact zeros (half of every ReLU
 * output) are left out: they quantize exactly whatever the range.
 * Every second image (up to CALIB_KEEP) is held out of the histograms: on
 * those, saving measures how far INT8 and BF16 logits land from FP32's, so
 * the error bound that sets the recheck margin (engine_run.c) comes from
 * images the ranges were not fitted to. The bound is the largest per-image
 * error of the top-1's gaps to the top-5 classes (gap_error), not an RMS: an
 * RMS over 1000 logits is dominated by the many small ones and undershoots
 * the errors of the top classes, and on 7 photos it let 2% of unseen photos
 * flip (docs/performance.md). */
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
/* The error bound is this quantile of the held-out images' errors: one odd
 * photo in 32 (an INT8 outlier at 4x the next) sets no margin for all, and
 * the recheck's factor (ENGINE_RECHECK_DEFAULT) covers those above it. */
#define BOUND_PERCENTILE 0.9

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

/* Whether the image with this index (over all calib_add calls) is held out. */
static int held_out(const calib_t *c, int index)
{
    return index % 2 == 1 && c->n_kept < CALIB_KEEP;
}

rd_status_t calib_add(calib_t *c, const float *input, int n_images, rd_error_t *err)
{
    if (n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "calib_add: %d images", n_images);
    size_t per = input_floats(c);
    float *fit = malloc((size_t)n_images * per * sizeof *fit);
    float *logits = malloc((size_t)n_images * (size_t)engine_info(c->eng)->n_classes *
                           sizeof *logits);
    if (!c->kept)
        c->kept = malloc((size_t)CALIB_KEEP * per * sizeof *c->kept);
    rd_status_t st = RD_OK;
    if (!fit || !logits || !c->kept)
        st = rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d calibration images", n_images);
    int n_fit = 0;
    for (int i = 0; st == RD_OK && i < n_images; i++) {
        const float *x = input + (size_t)i * per;
        int keep = held_out(c, c->n_images + i);
        memcpy(keep ? c->kept + (size_t)c->n_kept * per : fit + (size_t)n_fit * per, x,
               per * sizeof *x);
        *(keep ? &c->n_kept : &n_fit) += 1;
    }
    if (st == RD_OK && n_fit > 0)
        st = engine_run_observed(c->eng, fit, n_fit, logits, observe, c, err);
    if (st == RD_OK)
        c->n_images += n_images;
    free(logits);
    free(fit);
    return st;
}

int calib_images(const calib_t *c) { return c->n_images; }

int calib_held_out(const calib_t *c) { return c->n_kept; }

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
 * metadata note and (when not NULL) the n_meta key/value pairs of meta to
 * out_path. */
static rd_status_t write_model(const calib_t *c, const float *amax, const char *note,
                               const char *const (*meta)[2], int n_meta, const char *model_path,
                               const char *out_path, rd_error_t *err)
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
    for (int i = 0; st == RD_OK && meta && i < n_meta; i++)
        st = safetensors_writer_meta(w, meta[i][0], meta[i][1], err);
    if (st == RD_OK)
        st = safetensors_writer_save(w, out_path, err);
    safetensors_writer_free(w);
    safetensors_close(src);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0 < q <= 1) of v[0..n), n >= 1, nearest rank; sorts v. */
static double percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The k <= TOP_K largest of l[0..n) into idx, largest first; returns k. */
#define TOP_K 5
static int top_k(const float *l, int n, int *idx)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int j = k < TOP_K ? k++ : TOP_K;
        if (j == TOP_K && l[i] <= l[idx[TOP_K - 1]])
            continue;
        if (j == TOP_K)
            j = TOP_K - 1;
        while (j > 0 && l[idx[j - 1]] < l[i]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return k;
}

/* How far a fast top-two gap can be from FP32's: with t the fast top-1, the
 * largest |(fast_t - fast_j) - (fp32_t - fp32_j)| over the classes j of
 * either top 5. A top-1 flips only when the fast gap is under this, and
 * shifts common to all logits (which change no answer) cancel in it. */
static double gap_error(const float *fp32, const float *fast, int n)
{
    int ia[TOP_K], ib[TOP_K], na = top_k(fp32, n, ia), nb = top_k(fast, n, ib), t = ib[0];
    double e = 0;
    for (int j = 0; j < na + nb; j++) {
        int c = j < na ? ia[j] : ib[j - na];
        double d = ((double)fast[t] - fast[c]) - ((double)fp32[t] - fp32[c]);
        e = fmax(e, fabs(d));
    }
    return e;
}

/* How far the logits of the model at path in precision land from the FP32
 * engine's over the held-out images: per image e = gap_error;
 * r->*_bound = the BOUND_PERCENTILE of e, r->*_max its max, r->*_rel that
 * percentile of e / max_k |fast_k|, and for INT8 the RMS over all logits (the
 * metadata older resnetd versions read). */
static rd_status_t measure(const calib_t *c, const char *path, rd_precision_t prec,
                           calib_report_t *r, rd_error_t *err)
{
    const model_info_t *mi = engine_info(c->eng);
    engine_params_t p = engine_default_params();
    p.n_threads = c->eng->n_threads;
    p.input_h = mi->preproc.input_h;
    p.input_w = mi->preproc.input_w;
    p.precision = prec;
    p.int8_recheck = -1;
    size_t nc = (size_t)mi->n_classes, n = (size_t)c->n_kept * nc;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    engine_t *fast = NULL;
    rd_status_t st = a && b ? engine_load(path, &p, &fast, err)
                            : rd_error_set(err, RD_ERR_NOMEM, "out of memory for logits");
    if (st == RD_OK)
        st = engine_run(c->eng, c->kept, c->n_kept, a, err);
    if (st == RD_OK)
        st = engine_run(fast, c->kept, c->n_kept, b, err);
    double sum = 0, e_img[CALIB_KEEP], rel_img[CALIB_KEEP];
    for (size_t i = 0; st == RD_OK && i < (size_t)c->n_kept; i++) {
        const float *fa = a + i * nc, *fb = b + i * nc;
        double scale = 0;
        for (size_t k = 0; k < nc; k++) {
            sum += ((double)fa[k] - fb[k]) * ((double)fa[k] - fb[k]);
            scale = fmax(scale, fabs((double)fb[k]));
        }
        e_img[i] = gap_error(fa, fb, (int)nc);
        rel_img[i] = scale > 0 ? e_img[i] / scale : 0;
    }
    if (st == RD_OK && prec == RD_INT8) {
        r->int8_bound = percentile(e_img, c->n_kept, BOUND_PERCENTILE);
        r->int8_max = percentile(e_img, c->n_kept, 1);
        r->int8_rel = percentile(rel_img, c->n_kept, BOUND_PERCENTILE);
        r->int8_rms = sqrt(sum / (double)n);
    } else if (st == RD_OK) {
        r->bf16_bound = percentile(e_img, c->n_kept, BOUND_PERCENTILE);
        r->bf16_max = percentile(e_img, c->n_kept, 1);
        r->bf16_rel = percentile(rel_img, c->n_kept, BOUND_PERCENTILE);
    }
    engine_free(fast);
    free(a);
    free(b);
    return st;
}

/* Writes out_path with the ranges and, when r is set, the measured bounds. */
static rd_status_t write_with(const calib_t *c, const float *amax, const char *note,
                              const calib_report_t *r, const char *model_path,
                              const char *out_path, rd_error_t *err)
{
    char text[3][32];
    if (r) {
        snprintf(text[0], sizeof text[0], "%.6g", r->int8_rms);
        snprintf(text[1], sizeof text[1], "%.6g", r->int8_bound);
        snprintf(text[2], sizeof text[2], "%.6g", r->bf16_bound);
    }
    const char *meta[3][2] = {{CALIB_RMS_KEY, text[0]},
                              {CALIB_INT8_BOUND_KEY, text[1]},
                              {CALIB_BF16_BOUND_KEY, text[2]}};
    return write_model(c, amax, note, r ? meta : NULL, r && r->bf16_measured ? 3 : 2,
                       model_path, out_path, err);
}

rd_status_t calib_save(const calib_t *c, calib_method_t method, const char *model_path,
                       const char *out_path, rd_error_t *err)
{
    calib_report_t r;
    return calib_save_report(c, method, model_path, out_path, &r, err);
}

rd_status_t calib_save_report(const calib_t *c, calib_method_t method, const char *model_path,
                              const char *out_path, calib_report_t *r, rd_error_t *err)
{
    *r = (calib_report_t){.n_fit = c->n_images - c->n_kept, .n_held_out = c->n_kept};
    if (c->n_images < 1)
        return rd_error_set(err, RD_ERR_ARG, "no calibration images were added");
    if (method < CALIB_MAX || method > CALIB_MSE)
        return rd_error_set(err, RD_ERR_ARG, "calibration method %d: unknown", (int)method);
    float *amax = malloc((size_t)c->n_points * sizeof *amax);
    if (!amax)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d ranges", c->n_points);
    for (int p = 0; p < c->n_points; p++)
        amax[p] = choose_range(&c->hist[p], method, engine_point_signed(c->eng, p));
    char note[128];
    snprintf(note, sizeof note, "%s over %d images, error bounds over %d others",
             calib_method_name(method), r->n_fit, r->n_held_out);
    /* Written twice: the INT8 engine that measures the error loads the first.
     * Without held-out images there is no bound, and no recheck. */
    rd_status_t st = write_with(c, amax, note, NULL, model_path, out_path, err);
    if (st == RD_OK && c->n_kept > 0)
        st = measure(c, out_path, RD_INT8, r, err);
    /* Without AMX BF16, oneDNN's BF16 convolutions may be its reference code
     * (~20x slower than FP32): no BF16 bound then, and BF16 would use the
     * relative default (engine.c). */
    r->bf16_measured = engine_isa_fast_bf16();
    if (st == RD_OK && c->n_kept > 0 && r->bf16_measured)
        st = measure(c, out_path, RD_BF16, r, err);
    if (st == RD_OK && c->n_kept > 0)
        st = write_with(c, amax, note, r, model_path, out_path, err);
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
