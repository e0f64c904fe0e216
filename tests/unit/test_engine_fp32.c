/* test_engine_fp32.c - test_engine's fp32 forward passes against the naive reference, and argument and load errors.
 * Fixtures: engine_fixture.c. */
#include "engine_fixture.h"

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

void engine_fp32_tests(TCase *tc)
{
    tcase_add_test(tc, basic_1111_square);
    tcase_add_test(tc, basic_2111_bias_nonsquare);
    tcase_add_test(tc, bottleneck_1111_square);
    tcase_add_test(tc, bottleneck_v1_2111_bias_nonsquare);
    tcase_add_test(tc, sub_batches_from_the_params);
    tcase_add_test(tc, direct_convolutions_without_winograd);
    tcase_add_test(tc, run_rejects_bad_arguments);
    tcase_add_test(tc, load_errors_leave_nothing);
}
