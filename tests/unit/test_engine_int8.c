/* test_engine_int8.c - test_engine's int8 runs against fp32, calibration and the recheck.
 * Fixtures: engine_fixture.c. */
#include "engine_fixture.h"

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
    /* The default margin (ENGINE_RECHECK_DEFAULT calibrated errors) rechecks some of 20 images
     * of these 10-class random nets, not all. */
    eng = load_recheck(out, h, w, RD_INT8, engine_default_params().int8_recheck);
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

void engine_int8_tests(TCase *tc)
{
    tcase_add_test(tc, int8_basic_follows_fp32);
    tcase_add_test(tc, int8_bottleneck_v1_follows_fp32);
    tcase_add_test(tc, int8_needs_a_good_calibration);
}
