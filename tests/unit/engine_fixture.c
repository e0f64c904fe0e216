/* engine_fixture.c - shared fixtures of the test_engine suites (see engine_fixture.h). */
#include "engine_fixture.h"

/* ---- a seeded tensor store, written to a safetensors file ---- */

float uniform(store_t *s, float lo, float hi)
{
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((s->rng >> 40) / 16777216.0);
}

float *add(store_t *s, const char *name, int ndim, const int64_t *shape, float lo, float hi)
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

const float *get(const store_t *s, const char *prefix, const char *suffix)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name))
            return s->t[i].data;
    return NULL;
}

/* A conv (weights scaled to keep activations near 1) plus its BN. */
void add_conv_bn(store_t *s, const char *conv, const char *bn, int oc, int ic, int k,
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

const int stem_width = 8, widths[4] = {8, 16, 32, 64};

void build_store(store_t *s, const arch_t *a)
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

void write_store(const store_t *s, const arch_t *a, const char *path)
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

void free_store(store_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->t[i].data);
}

/* ---- the naive reference: one image at a time, CHW, from unfolded tensors ---- */

fmap_t fmap(int c, int h, int w)
{
    fmap_t m = {c, h, w, calloc((size_t)c * h * w, sizeof(float))};
    ck_assert_ptr_nonnull(m.d);
    return m;
}

fmap_t ref_conv(const fmap_t *x, const float *w, const float *bias, int oc, int k,
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
fmap_t ref_conv_bn(const store_t *s, const char *conv, const char *bn, const fmap_t *x,
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

fmap_t ref_maxpool(const fmap_t *x)
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

fmap_t ref_block(const store_t *s, const arch_t *a, int st, int i, fmap_t x)
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

void ref_forward(const store_t *s, const arch_t *a, const float *img, int h, int w,
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

void temp_path(char *path, size_t size)
{
    snprintf(path, size, "/tmp/test_engine_%d.safetensors", (int)getpid());
}

/* Runs the engine on batches of n_images (each batch different images) and
 * compares every image's logits with the reference. */
void check_batch(engine_t *eng, const store_t *s, const arch_t *a, int h, int w,
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
void check_arch_batches(const arch_t *a, int h, int w, const int *sizes, int n_sizes,
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
void check_arch(const arch_t *a, int h, int w)
{
    static const int sizes[] = {1, 3, 1, 6};
    check_arch_batches(a, h, w, sizes, 4, 0, false);
}
