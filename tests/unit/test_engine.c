/* test_engine.c - the engine end to end on tiny ResNets: writes seeded
 * torchvision-named weights with safetensors_writer, loads them with
 * engine_load, and compares engine_run's logits with a naive C forward pass
 * computed here from the UNFOLDED tensors (conv, BN, ReLU, max pool with -inf
 * padding, add, average pool, fc), so BN folding, layouts, fused post-ops and
 * the in-place residual sums are all checked against plain maths. INT8: a
 * calibrated copy of the same weights must stay within a few percent of the
 * same reference. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnetd/calibrate.h"
#include "resnetd/engine.h"
#include "safetensors.h"

#define MAX_TENSORS 160

/* ---- a seeded tensor store, written to a safetensors file ---- */

typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    float *data;
} tensor_t;

typedef struct {
    tensor_t t[MAX_TENSORS];
    int n;
    uint64_t rng;
} store_t;

static float uniform(store_t *s, float lo, float hi)
{
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((s->rng >> 40) / 16777216.0);
}

static float *add(store_t *s, const char *name, int ndim, const int64_t *shape, float lo, float hi)
{
    ck_assert_int_lt(s->n, MAX_TENSORS);
    tensor_t *t = &s->t[s->n++];
    ck_assert_uint_lt(strlen(name), sizeof t->name);
    memcpy(t->name, name, strlen(name) + 1);
    t->ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (t->shape[i] = shape[i]);
    t->data = malloc((size_t)n * sizeof *t->data);
    ck_assert_ptr_nonnull(t->data);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = uniform(s, lo, hi);
    return t->data;
}

static const float *get(const store_t *s, const char *prefix, const char *suffix)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name))
            return s->t[i].data;
    return NULL;
}

/* A conv (weights scaled to keep activations near 1) plus its BN. */
static void add_conv_bn(store_t *s, const char *conv, const char *bn, int oc, int ic, int k,
                        int bias)
{
    char name[128];
    float a = sqrtf(3.0f / (float)(ic * k * k));
    snprintf(name, sizeof name, "%s.weight", conv);
    add(s, name, 4, (int64_t[]){oc, ic, k, k}, -a, a);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", conv);
        add(s, name, 1, (int64_t[]){oc}, -0.2f, 0.2f);
    }
    static const char *parts[] = {"weight", "bias", "running_mean", "running_var"};
    static const float lo[] = {0.5f, -0.2f, -0.2f, 0.5f}, hi[] = {1.5f, 0.2f, 0.2f, 1.5f};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        add(s, name, 1, (int64_t[]){oc}, lo[i], hi[i]);
    }
}

typedef struct {
    int bottleneck;
    int blocks[4];
    int bias;     /* every conv has a bias (Keras style) */
    int v1;       /* stride on the first 1x1 conv of a bottleneck */
    float eps;
    int n_classes;
} arch_t;

static const int stem_width = 8, widths[4] = {8, 16, 32, 64};

static void build_store(store_t *s, const arch_t *a)
{
    memset(s, 0, sizeof *s);
    s->rng = 12345;
    add_conv_bn(s, "conv1", "bn1", stem_width, 3, 7, a->bias);
    int in = stem_width, exp = a->bottleneck ? 4 : 1;
    char c[64], b[64];
    for (int st = 0; st < 4; st++)
        for (int i = 0; i < a->blocks[st]; i++) {
            int w = widths[st], out = w * exp, n = a->bottleneck ? 3 : 2;
            for (int j = 0; j < n; j++) {
                int k = a->bottleneck && j != 1 ? 1 : 3;
                int ic = j == 0 ? in : w, oc = j == n - 1 ? out : w;
                snprintf(c, sizeof c, "layer%d.%d.conv%d", st + 1, i, j + 1);
                snprintf(b, sizeof b, "layer%d.%d.bn%d", st + 1, i, j + 1);
                add_conv_bn(s, c, b, oc, ic, k, a->bias);
            }
            if (i == 0 && (st > 0 || in != out)) {
                snprintf(c, sizeof c, "layer%d.%d.downsample.0", st + 1, i);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", st + 1, i);
                add_conv_bn(s, c, b, out, in, 1, a->bias);
            }
            in = out;
        }
    float fa = sqrtf(3.0f / (float)in);
    add(s, "fc.weight", 2, (int64_t[]){a->n_classes, in}, -fa, fa);
    add(s, "fc.bias", 1, (int64_t[]){a->n_classes}, -0.5f, 0.5f);
}

static void write_store(const store_t *s, const arch_t *a, const char *path)
{
    safetensors_writer_t *w;
    rd_error_t err;
    char eps[32];
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    for (int i = 0; i < s->n; i++)
        ck_assert_int_eq(safetensors_writer_add(w, s->t[i].name, s->t[i].ndim, s->t[i].shape,
                                                s->t[i].data, &err), RD_OK);
    snprintf(eps, sizeof eps, "%g", (double)a->eps);
    ck_assert_int_eq(safetensors_writer_meta(w, "bn_eps", eps, &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_meta(w, "stride", a->v1 ? "v1" : "v1.5", &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_save(w, path, &err), RD_OK);
    safetensors_writer_free(w);
}

static void free_store(store_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->t[i].data);
}

/* ---- the naive reference: one image at a time, CHW, from unfolded tensors ---- */

typedef struct {
    int c, h, w;
    float *d;
} fmap_t;

static fmap_t fmap(int c, int h, int w)
{
    fmap_t m = {c, h, w, calloc((size_t)c * h * w, sizeof(float))};
    ck_assert_ptr_nonnull(m.d);
    return m;
}

#define AT(m, ch, y, x) ((m).d[((size_t)(ch) * (m).h + (y)) * (m).w + (x)])

static fmap_t ref_conv(const fmap_t *x, const float *w, const float *bias, int oc, int k,
                       int stride, int pad)
{
    fmap_t y = fmap(oc, (x->h + 2 * pad - k) / stride + 1, (x->w + 2 * pad - k) / stride + 1);
    for (int o = 0; o < oc; o++)
        for (int oy = 0; oy < y.h; oy++)
            for (int ox = 0; ox < y.w; ox++) {
                double acc = bias ? bias[o] : 0.0;
                for (int i = 0; i < x->c; i++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy >= 0 && iy < x->h && ix >= 0 && ix < x->w)
                                acc += (double)w[((o * x->c + i) * k + ky) * k + kx] * AT(*x, i, iy, ix);
                        }
                AT(y, o, oy, ox) = (float)acc;
            }
    return y;
}

/* conv + BN (+ ReLU) with the tensors named prefix "conv"/"bn"; frees nothing. */
static fmap_t ref_conv_bn(const store_t *s, const char *conv, const char *bn, const fmap_t *x,
                          int oc, int k, int stride, int pad, float eps, int relu)
{
    fmap_t y = ref_conv(x, get(s, conv, ".weight"), get(s, conv, ".bias"), oc, k, stride, pad);
    const float *g = get(s, bn, ".weight"), *b = get(s, bn, ".bias");
    const float *mean = get(s, bn, ".running_mean"), *var = get(s, bn, ".running_var");
    for (int c = 0; c < oc; c++)
        for (int i = 0; i < y.h * y.w; i++) {
            float *v = &y.d[(size_t)c * y.h * y.w + i];
            *v = (float)((*v - mean[c]) / sqrt((double)var[c] + eps) * g[c] + b[c]);
            if (relu && *v < 0)
                *v = 0;
        }
    return y;
}

static fmap_t ref_maxpool(const fmap_t *x)
{
    fmap_t y = fmap(x->c, (x->h + 2 - 3) / 2 + 1, (x->w + 2 - 3) / 2 + 1);
    for (int c = 0; c < x->c; c++)
        for (int oy = 0; oy < y.h; oy++)
            for (int ox = 0; ox < y.w; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                        if (iy >= 0 && iy < x->h && ix >= 0 && ix < x->w && AT(*x, c, iy, ix) > m)
                            m = AT(*x, c, iy, ix);
                    }
                AT(y, c, oy, ox) = m;
            }
    return y;
}

static fmap_t ref_block(const store_t *s, const arch_t *a, int st, int i, fmap_t x)
{
    int w = widths[st], n = a->bottleneck ? 3 : 2, out = w * (a->bottleneck ? 4 : 1);
    int stride = i == 0 && st > 0 ? 2 : 1;
    char c[64], b[64];
    fmap_t cur = x;
    for (int j = 0; j < n; j++) {
        int k = a->bottleneck && j != 1 ? 1 : 3;
        int sj = a->bottleneck ? (a->v1 ? j == 0 : j == 1) : j == 0;
        snprintf(c, sizeof c, "layer%d.%d.conv%d", st + 1, i, j + 1);
        snprintf(b, sizeof b, "layer%d.%d.bn%d", st + 1, i, j + 1);
        fmap_t y = ref_conv_bn(s, c, b, &cur, j == n - 1 ? out : w, k, sj ? stride : 1, k / 2,
                               a->eps, j < n - 1);
        if (cur.d != x.d)
            free(cur.d);
        cur = y;
    }
    fmap_t sc = x;
    snprintf(c, sizeof c, "layer%d.%d.downsample.0", st + 1, i);
    snprintf(b, sizeof b, "layer%d.%d.downsample.1", st + 1, i);
    if (get(s, c, ".weight"))
        sc = ref_conv_bn(s, c, b, &x, out, 1, stride, 0, a->eps, 0);
    for (size_t k = 0; k < (size_t)cur.c * cur.h * cur.w; k++)
        cur.d[k] = fmaxf(cur.d[k] + sc.d[k], 0.0f);
    if (sc.d != x.d)
        free(sc.d);
    free(x.d);
    return cur;
}

static void ref_forward(const store_t *s, const arch_t *a, const float *img, int h, int w,
                        float *logits)
{
    fmap_t x = fmap(3, h, w);
    memcpy(x.d, img, (size_t)3 * h * w * sizeof *img);
    fmap_t y = ref_conv_bn(s, "conv1", "bn1", &x, stem_width, 7, 2, 3, a->eps, 1);
    free(x.d);
    x = ref_maxpool(&y);
    free(y.d);
    for (int st = 0; st < 4; st++)
        for (int i = 0; i < a->blocks[st]; i++)
            x = ref_block(s, a, st, i, x);
    const float *fw = get(s, "fc", ".weight"), *fb = get(s, "fc", ".bias");
    for (int k = 0; k < a->n_classes; k++) {
        double acc = fb[k];
        for (int c = 0; c < x.c; c++) {
            double mean = 0;
            for (int p = 0; p < x.h * x.w; p++)
                mean += x.d[(size_t)c * x.h * x.w + p];
            acc += fw[k * x.c + c] * mean / (x.h * x.w);
        }
        logits[k] = (float)acc;
    }
    free(x.d);
}

/* ---- the checks ---- */

static void temp_path(char *path, size_t size)
{
    snprintf(path, size, "/tmp/test_engine_%d.safetensors", (int)getpid());
}

/* Runs the engine on batches of n_images (each batch different images) and
 * compares every image's logits with the reference. */
static void check_batch(engine_t *eng, const store_t *s, const arch_t *a, int h, int w,
                        int n_images, uint64_t seed)
{
    size_t per = (size_t)3 * h * w;
    float *in = malloc(per * n_images * sizeof *in);
    float *got = malloc((size_t)n_images * a->n_classes * sizeof *got);
    float want[16];
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(got);
    store_t rng = {.rng = seed};
    for (size_t i = 0; i < per * n_images; i++)
        in[i] = uniform(&rng, -1.5f, 1.5f);
    rd_error_t err;
    ck_assert_msg(engine_run(eng, in, n_images, got, &err) == RD_OK, "engine_run: %s", err.msg);
    for (int n = 0; n < n_images; n++) {
        ref_forward(s, a, in + per * n, h, w, want);
        float max_abs = 0, max_diff = 0;
        for (int k = 0; k < a->n_classes; k++) {
            max_abs = fmaxf(max_abs, fabsf(want[k]));
            max_diff = fmaxf(max_diff, fabsf(want[k] - got[n * a->n_classes + k]));
        }
        ck_assert_float_gt(max_abs, 1e-3f);
        ck_assert_msg(max_diff <= 1e-4f * max_abs, "image %d of %d at %dx%d: max diff %g, max |logit| %g",
                      n, n_images, h, w, (double)max_diff, (double)max_abs);
    }
    free(in);
    free(got);
}

/* Loads a, then checks batches of the given sizes in order (each once). */
static void check_arch_batches(const arch_t *a, int h, int w, const int *sizes, int n_sizes,
                               int sub_batch, bool no_winograd)
{
    store_t *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    build_store(s, a);
    char path[96];
    temp_path(path, sizeof path);
    write_store(s, a, path);
    engine_params_t p = engine_default_params();
    p.input_h = h;
    p.input_w = w;
    p.n_threads = 2;
    p.sub_batch = sub_batch;
    p.no_winograd = no_winograd;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(path, &p, &eng, &err) == RD_OK, "engine_load: %s", err.msg);
    unlink(path);
    ck_assert_int_eq(engine_info(eng)->n_classes, a->n_classes);
    for (int i = 0; i < n_sizes; i++)
        check_batch(eng, s, a, h, w, sizes[i], (uint64_t)i + 1);
    engine_free(eng);
    free_store(s);
    free(s);
}

/* 1, 3, then 1 again (a cached plan after a bigger one grew the shared
 * buffers), then 6: more than a sub-batch, so it runs as 4 + 2. */
static void check_arch(const arch_t *a, int h, int w)
{
    static const int sizes[] = {1, 3, 1, 6};
    check_arch_batches(a, h, w, sizes, 4, 0, false);
}

START_TEST(basic_1111_square)
{
    arch_t a = {.blocks = {1, 1, 1, 1}, .eps = 1e-5f, .n_classes = 5};
    /* 128: stage 2's 16x16 maps of 16 channels take the Winograd path at batch >= 4. */
    check_arch(&a, 128, 128);
}
END_TEST

START_TEST(basic_2111_bias_nonsquare)
{
    arch_t a = {.blocks = {2, 1, 1, 1}, .bias = 1, .eps = 1e-5f, .n_classes = 3};
    check_arch(&a, 64, 96);
}
END_TEST

START_TEST(bottleneck_1111_square)
{
    arch_t a = {.bottleneck = 1, .blocks = {1, 1, 1, 1}, .eps = 1e-5f, .n_classes = 4};
    check_arch(&a, 64, 64);
}
END_TEST

START_TEST(bottleneck_v1_2111_bias_nonsquare)
{
    arch_t a = {.bottleneck = 1, .blocks = {2, 1, 1, 1}, .bias = 1, .v1 = 1, .eps = 1e-3f,
                .n_classes = 7};
    check_arch(&a, 64, 96);
}
END_TEST

START_TEST(sub_batches_from_the_params)
{
    static const int sizes[] = {5, 2, 1};
    arch_t a = {.blocks = {1, 1, 1, 1}, .eps = 1e-5f, .n_classes = 5};
    check_arch_batches(&a, 48, 40, sizes, 3, 2, false);
}
END_TEST

/* Batches of 4 and 8 at 64x64 would take Winograd in stages 1-3; this checks
 * the direct path of the same plans. */
START_TEST(direct_convolutions_without_winograd)
{
    static const int sizes[] = {4, 8};
    arch_t a = {.blocks = {2, 1, 1, 1}, .eps = 1e-5f, .n_classes = 3};
    check_arch_batches(&a, 64, 64, sizes, 2, 0, true);
}
END_TEST

START_TEST(run_rejects_bad_arguments)
{
    arch_t a = {.blocks = {1, 1, 1, 1}, .eps = 1e-5f, .n_classes = 2};
    store_t *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    build_store(s, &a);
    char path[96];
    temp_path(path, sizeof path);
    write_store(s, &a, path);
    engine_params_t p = engine_default_params();
    p.input_h = p.input_w = 32;
    engine_t *eng;
    rd_error_t err;
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_OK);
    unlink(path);
    float in[3 * 32 * 32] = {0}, out[2];
    ck_assert_int_eq(engine_run(eng, in, 0, out, &err), RD_ERR_ARG);
    ck_assert_int_eq(err.code, RD_ERR_ARG);
    ck_assert_int_eq(engine_run(eng, in, -3, out, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_run(NULL, in, 1, out, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_run(eng, NULL, 1, out, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_run(eng, in, 1, NULL, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_run(eng, in, 1, out, NULL), RD_OK);
    ck_assert(isfinite(out[0]) && isfinite(out[1]));
    engine_free(eng);
    free_store(s);
    free(s);
}
END_TEST

START_TEST(load_errors_leave_nothing)
{
    engine_t *eng = (engine_t *)&eng;
    rd_error_t err;
    ck_assert_int_ne(engine_load("/nonexistent/model.safetensors", NULL, &eng, &err), RD_OK);
    ck_assert_ptr_null(eng);
    ck_assert_int_ne(err.code, RD_OK);
    engine_params_t p = engine_default_params();
    p.n_threads = -1;
    ck_assert_int_eq(engine_load("/nonexistent", &p, &eng, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_load(NULL, NULL, &eng, &err), RD_ERR_ARG);
    ck_assert_ptr_null(engine_info(NULL));
    engine_free(NULL);
}
END_TEST

/* Seeded images in [-1.5, 1.5). */
static float *random_images(int n, int h, int w, uint64_t seed)
{
    size_t count = (size_t)n * 3 * h * w;
    float *x = malloc(count * sizeof *x);
    ck_assert_ptr_nonnull(x);
    store_t rng = {.rng = seed};
    for (size_t i = 0; i < count; i++)
        x[i] = uniform(&rng, -1.5f, 1.5f);
    return x;
}

static engine_t *load_recheck(const char *path, int h, int w, rd_precision_t precision,
                              float recheck)
{
    engine_params_t p = engine_default_params();
    p.int8_recheck = recheck;
    p.input_h = h;
    p.input_w = w;
    p.n_threads = 2;
    p.precision = precision;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(path, &p, &eng, &err) == RD_OK, "engine_load: %s", err.msg);
    return eng;
}

/* Pure INT8 (no FP32 recheck) unless said otherwise. */
static engine_t *load(const char *path, int h, int w, rd_precision_t precision)
{
    return load_recheck(path, h, w, precision, -1);
}

/* Calibrates the FP32 model at path on 12 seeded images into out. */
static void calibrate(const char *path, const char *out, int h, int w, calib_method_t method)
{
    engine_t *eng = load(path, h, w, RD_FP32);
    calib_t *c;
    rd_error_t err;
    float *x = random_images(12, h, w, 99);
    ck_assert_int_eq(calib_create(eng, &c, &err), RD_OK);
    ck_assert_int_eq(calib_save(c, method, path, out, &err), RD_ERR_ARG); /* nothing seen yet */
    ck_assert_msg(calib_add(c, x, 12, &err) == RD_OK, "calib_add: %s", err.msg);
    ck_assert_int_eq(calib_images(c), 12);
    ck_assert_msg(calib_save(c, method, path, out, &err) == RD_OK, "calib_save: %s", err.msg);
    calib_free(c);
    free(x);
    engine_free(eng);
}

/* INT8 logits of 5 other images against the FP32 reference: the error's
 * norm within 8% of the logits' norm (symmetric 8-bit steps compound over
 * the layers of these random nets to a few percent). */
static void check_int8(const store_t *s, const arch_t *a, const char *path, int h, int w)
{
    engine_t *eng = load(path, h, w, RD_INT8);
    ck_assert_int_eq(engine_info(eng)->precision, RD_INT8);
    ck_assert(engine_info(eng)->calibrated);
    const int n = 5;
    float *x = random_images(n, h, w, 7), got[5 * 16], want[16];
    rd_error_t err;
    ck_assert_msg(engine_run(eng, x, n, got, &err) == RD_OK, "engine_run: %s", err.msg);
    for (int i = 0; i < n; i++) {
        ref_forward(s, a, x + (size_t)i * 3 * h * w, h, w, want);
        double e2 = 0, w2 = 0;
        for (int k = 0; k < a->n_classes; k++) {
            e2 += (got[i * a->n_classes + k] - want[k]) * (got[i * a->n_classes + k] - want[k]);
            w2 += want[k] * want[k];
        }
        ck_assert_msg(sqrt(e2) <= 0.08 * sqrt(w2), "image %d: |error| %g, |logits| %g", i,
                      sqrt(e2), sqrt(w2));
    }
    free(x);
    engine_free(eng);
}

static void check_calibrated(const arch_t *a, int h, int w)
{
    store_t *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    build_store(s, a);
    char path[96], out[112];
    temp_path(path, sizeof path);
    snprintf(out, sizeof out, "%s.int8", path);
    write_store(s, a, path);
    for (calib_method_t m = CALIB_MAX; m <= CALIB_MSE; m++) {
        calibrate(path, out, h, w, m);
        check_int8(s, a, out, h, w);
    }
    /* The calibrated file keeps the FP32 weights exactly. */
    engine_t *eng = load(out, h, w, RD_FP32);
    ck_assert(engine_info(eng)->calibrated);
    check_batch(eng, s, a, h, w, 2, 3);
    ck_assert_uint_eq(engine_rechecked(eng), 0);
    engine_free(eng);
    /* A recheck margin beyond any logit gap sends every image to FP32, whose
     * logits then match the reference as closely as an FP32 engine's. */
    eng = load_recheck(out, h, w, RD_INT8, 999);
    check_batch(eng, s, a, h, w, 6, 4);
    ck_assert_uint_eq(engine_rechecked(eng), 6);
    engine_free(eng);
    /* The default margin (3 calibrated errors) rechecks some of 20 images
     * of these 10-class random nets, not all. */
    eng = load_recheck(out, h, w, RD_INT8, 0);
    float *x = random_images(20, h, w, 11), got[20 * 16];
    rd_error_t err;
    ck_assert_int_eq(engine_run(eng, x, 20, got, &err), RD_OK);
    ck_assert_uint_lt(engine_rechecked(eng), 20);
    free(x);
    engine_free(eng);
    unlink(path);
    unlink(out);
    free_store(s);
    free(s);
}

START_TEST(int8_basic_follows_fp32)
{
    arch_t a = {.blocks = {2, 1, 1, 1}, .eps = 1e-5f, .n_classes = 10};
    check_calibrated(&a, 40, 36);
}
END_TEST

START_TEST(int8_bottleneck_v1_follows_fp32)
{
    arch_t a = {.bottleneck = 1, .blocks = {2, 1, 1, 1}, .bias = 1, .v1 = 1, .eps = 1e-3f,
                .n_classes = 10};
    check_calibrated(&a, 32, 32);
}
END_TEST

/* Writes a's weights plus an activation-range tensor of n values, all v. */
static void write_with_ranges(const arch_t *a, const char *path, int n, float v)
{
    store_t *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    build_store(s, a);
    ck_assert_int_lt(s->n, MAX_TENSORS);
    float *r = malloc((size_t)n * sizeof *r);
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < n; i++)
        r[i] = v;
    s->t[s->n++] = (tensor_t){"resnetd.activation_max", 1, {n}, r};
    write_store(s, a, path);
    free_store(s);
    free(s);
}

START_TEST(int8_needs_a_good_calibration)
{
    arch_t a = {.blocks = {1, 1, 1, 1}, .eps = 1e-5f, .n_classes = 2};
    char path[96];
    temp_path(path, sizeof path);
    engine_params_t p = engine_default_params();
    p.input_h = p.input_w = 32;
    p.precision = RD_INT8;
    engine_t *eng;
    rd_error_t err;
    /* 1 + 1 stem + 4 blocks x 2 convs + 3 downsamples = 13 points */
    write_with_ranges(&a, path, 13, 2.0f);
    ck_assert_msg(engine_load(path, &p, &eng, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(engine_info(eng)->precision, RD_INT8);
    ck_assert_int_eq(calib_create(eng, &(calib_t *){NULL}, &err), RD_ERR_ARG);
    engine_free(eng);
    write_with_ranges(&a, path, 12, 2.0f);
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_ERR_SHAPE);
    ck_assert_ptr_null(eng);
    write_with_ranges(&a, path, 13, 0.0f);
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_ERR_FORMAT);
    write_with_ranges(&a, path, 0, 0.0f);
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_ERR_SHAPE);
    store_t *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    build_store(s, &a);
    write_store(s, &a, path);
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "resnetd calibrate"));
    p.precision = (rd_precision_t)7;
    ck_assert_int_eq(engine_load(path, &p, &eng, &err), RD_ERR_ARG);
    unlink(path);
    free_store(s);
    free(s);
    ck_assert_str_eq(engine_precision_name(RD_INT8), "int8");
    ck_assert_int_eq(engine_precision_parse("fp32"), RD_FP32);
    ck_assert_int_eq(engine_precision_parse("int4"), -1);
    ck_assert_int_eq(calib_method_parse("mse"), CALIB_MSE);
    ck_assert_int_eq(calib_method_parse("kl"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, basic_1111_square);
    tcase_add_test(tc, basic_2111_bias_nonsquare);
    tcase_add_test(tc, bottleneck_1111_square);
    tcase_add_test(tc, bottleneck_v1_2111_bias_nonsquare);
    tcase_add_test(tc, sub_batches_from_the_params);
    tcase_add_test(tc, direct_convolutions_without_winograd);
    tcase_add_test(tc, run_rejects_bad_arguments);
    tcase_add_test(tc, load_errors_leave_nothing);
    tcase_add_test(tc, int8_basic_follows_fp32);
    tcase_add_test(tc, int8_bottleneck_v1_follows_fp32);
    tcase_add_test(tc, int8_needs_a_good_calibration);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
