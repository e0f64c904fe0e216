/* test_batcher_engine.c - test_batcher's batches of a real seeded engine against single runs,
 * logits and (mixed within a batch) the optional features.
 * Fixtures: batcher_fixture.c. */
#include "batcher_fixture.h"

/* ---- a real engine: a seeded ResNet with one basic block per stage ---- */

static uint64_t rng_state;

static float uniform(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) / 16777216.0);
}

static void put_tensor(safetensors_writer_t *w, const char *name, int ndim, const int64_t *shape,
                       float lo, float hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *data = malloc((size_t)n * sizeof *data);
    ck_assert_ptr_nonnull(data);
    for (int64_t i = 0; i < n; i++)
        data[i] = uniform(lo, hi);
    rd_error_t err;
    ck_assert_msg(safetensors_writer_add(w, name, ndim, shape, data, &err) == RD_OK, "%s", err.msg);
    free(data);
}

static void put_conv_bn(safetensors_writer_t *w, const char *conv, const char *bn, int oc, int ic,
                        int k)
{
    char name[96];
    float a = sqrtf(3.0f / (float)(ic * k * k));
    snprintf(name, sizeof name, "%s.weight", conv);
    put_tensor(w, name, 4, (int64_t[]){oc, ic, k, k}, -a, a);
    static const char *const parts[] = {"weight", "bias", "running_mean", "running_var"};
    static const float lo[] = {0.5f, -0.2f, -0.2f, 0.5f}, hi[] = {1.5f, 0.2f, 0.2f, 1.5f};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        put_tensor(w, name, 1, (int64_t[]){oc}, lo[i], hi[i]);
    }
}

/* Writes a ResNet with basic blocks {1,1,1,1}, widths 8..64 and 10 classes. */
static void write_tiny_model(const char *path)
{
    safetensors_writer_t *w;
    rd_error_t err;
    rng_state = 42;
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    put_conv_bn(w, "conv1", "bn1", 8, 3, 7);
    int in = 8;
    for (int st = 0; st < 4; st++) {
        int out = 8 << st;
        char c[64], b[64];
        for (int j = 0; j < 2; j++) {
            snprintf(c, sizeof c, "layer%d.0.conv%d", st + 1, j + 1);
            snprintf(b, sizeof b, "layer%d.0.bn%d", st + 1, j + 1);
            put_conv_bn(w, c, b, out, j ? out : in, 3);
        }
        if (st > 0) {
            snprintf(c, sizeof c, "layer%d.0.downsample.0", st + 1);
            snprintf(b, sizeof b, "layer%d.0.downsample.1", st + 1);
            put_conv_bn(w, c, b, out, in, 1);
        }
        in = out;
    }
    put_tensor(w, "fc.weight", 2, (int64_t[]){10, in}, -0.2f, 0.2f);
    put_tensor(w, "fc.bias", 1, (int64_t[]){10}, -0.5f, 0.5f);
    ck_assert_int_eq(safetensors_writer_meta(w, "input_size", "32", &err), RD_OK);
    ck_assert_msg(safetensors_writer_save(w, path, &err) == RD_OK, "%s", err.msg);
    safetensors_writer_free(w);
}

#define N_REAL 6
#define REAL_IMG (3 * 32 * 32)

START_TEST(real_engine_batches_match_single_runs)
{
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_batcher_%d.safetensors", (int)getpid());
    write_tiny_model(path);
    engine_params_t ep = engine_default_params();
    ep.n_threads = 1;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(path, &ep, &eng, &err) == RD_OK, "%s", err.msg);
    unlink(path);
    const model_info_t *mi = engine_info(eng);
    ck_assert_int_eq(mi->n_classes, 10);
    ck_assert_int_eq(mi->preproc.input_h, 32);

    static float in[N_REAL][REAL_IMG], want[N_REAL][10], got[N_REAL][10];
    for (int i = 0; i < N_REAL; i++) {
        for (int j = 0; j < REAL_IMG; j++)
            in[i][j] = uniform(-1.5f, 1.5f);
        ck_assert_int_eq(engine_run(eng, in[i], 1, want[i], &err), RD_OK); /* alone, before the worker */
    }
    pthread_mutex_lock(&done_mu);
    total_done = 0;
    pthread_mutex_unlock(&done_mu);
    batcher_params_t bp = batcher_default_params();
    bp.max_batch_size = 3;
    bp.max_queue_delay_us = 10000000; /* only full batches start: two batches of 3 */
    batcher_t *b;
    ck_assert_msg(batcher_create(eng, &bp, NULL, &b, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(batcher_params(b)->n_classes, 10);
    req_t r[N_REAL]; /* the fixture's request: its own input and logits unused here */
    batcher_item_t *items[N_REAL];
    for (int i = 0; i < N_REAL; i++) {
        atomic_init(&r[i].n_done, 0);
        batcher_item_init(&r[i].item, in[i], got[i], 0, on_done, &r[i]);
        items[i] = &r[i].item;
    }
    ck_assert_int_eq(batcher_submit_many(b, items, N_REAL, &err), RD_OK);
    wait_done(N_REAL);
    ck_assert_int_eq(batcher_drain(b, 10000, &err), RD_OK);
    batcher_destroy(b);
    for (int i = 0; i < N_REAL; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        ck_assert_int_eq(r[i].item.batch_size, 3);
        float max_abs = 0, max_diff = 0;
        for (int k = 0; k < 10; k++) {
            max_abs = fmaxf(max_abs, fabsf(want[i][k]));
            max_diff = fmaxf(max_diff, fabsf(want[i][k] - got[i][k]));
        }
        ck_assert_float_gt(max_abs, 1e-3f);
        ck_assert_msg(max_diff <= 1e-4f * max_abs, "image %d: max diff %g of %g", i, (double)max_diff,
                      (double)max_abs);
    }
    engine_free(eng);
}
END_TEST

/* Batches of 3 that mix items asking for features, for the feature map, for
 * both and for neither: each gets what a single engine_run_outputs gives,
 * and nothing is written where nothing was asked. */
START_TEST(real_engine_batches_mix_features)
{
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_batcher_f_%d.safetensors", (int)getpid());
    write_tiny_model(path);
    engine_params_t ep = engine_default_params();
    ep.n_threads = 1;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(path, &ep, &eng, &err) == RD_OK, "%s", err.msg);
    unlink(path);
    engine_feature_shape_t fs = engine_feature_shape(eng);
    ck_assert_int_eq(fs.channels, 64);
    enum { C = 64, MAP = 64 * 1 * 1 };
    ck_assert_int_eq(fs.channels * fs.height * fs.width, MAP);
    static float in[N_REAL][REAL_IMG], logits[N_REAL][10], got_logits[N_REAL][10];
    static float want_f[N_REAL][C], want_m[N_REAL][MAP], got_f[N_REAL][C], got_m[N_REAL][MAP];
    for (int i = 0; i < N_REAL; i++) {
        for (int j = 0; j < REAL_IMG; j++)
            in[i][j] = uniform(-1.5f, 1.5f);
        float *f[1] = {want_f[i]}, *m[1] = {want_m[i]};
        engine_outputs_t outs = {.features = f, .feature_map = m};
        ck_assert_int_eq(engine_run_outputs(eng, in[i], 1, logits[i], &outs, &err), RD_OK);
    }
    memset(got_f, 0xff, sizeof got_f); /* NaN: not written */
    memset(got_m, 0xff, sizeof got_m);
    pthread_mutex_lock(&done_mu);
    total_done = 0;
    pthread_mutex_unlock(&done_mu);
    batcher_params_t bp = batcher_default_params();
    bp.max_batch_size = 3;
    bp.max_queue_delay_us = 10000000;
    batcher_t *b;
    ck_assert_msg(batcher_create(eng, &bp, NULL, &b, &err) == RD_OK, "%s", err.msg);
    req_t r[N_REAL]; /* the fixture's request: its own input and logits unused here */
    batcher_item_t *items[N_REAL];
    for (int i = 0; i < N_REAL; i++) {
        atomic_init(&r[i].n_done, 0);
        batcher_item_init(&r[i].item, in[i], got_logits[i], 0, on_done, &r[i]);
        r[i].item.features = i % 2 ? got_f[i] : NULL; /* 1, 3, 5 */
        r[i].item.feature_map = i % 3 ? got_m[i] : NULL; /* 1, 2, 4, 5 */
        items[i] = &r[i].item;
    }
    ck_assert_int_eq(batcher_submit_many(b, items, N_REAL, &err), RD_OK);
    wait_done(N_REAL);
    ck_assert_int_eq(batcher_drain(b, 10000, &err), RD_OK);
    batcher_destroy(b);
    for (int i = 0; i < N_REAL; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        for (int k = 0; k < C; k++) {
            if (i % 2)
                ck_assert_msg(fabsf(got_f[i][k] - want_f[i][k]) <= 1e-4f * (1 + fabsf(want_f[i][k])),
                              "image %d feature %d: %g, alone %g", i, k, (double)got_f[i][k],
                              (double)want_f[i][k]);
            else
                ck_assert_msg(isnan(got_f[i][k]), "image %d: features written unasked", i);
        }
        for (int k = 0; k < MAP; k++) {
            if (i % 3)
                ck_assert_msg(fabsf(got_m[i][k] - want_m[i][k]) <= 1e-4f * (1 + fabsf(want_m[i][k])),
                              "image %d map %d: %g, alone %g", i, k, (double)got_m[i][k],
                              (double)want_m[i][k]);
            else
                ck_assert_msg(isnan(got_m[i][k]), "image %d: map written unasked", i);
        }
    }
    engine_free(eng);
}
END_TEST

void batcher_engine_tests(TCase *tc)
{
    tcase_add_test(tc, real_engine_batches_match_single_runs);
    tcase_add_test(tc, real_engine_batches_mix_features);
}
