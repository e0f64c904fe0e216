/* test_registry.c - the model registry: lookup by name, the default model,
 * duplicate names refused (and the refused model freed: valgrind/ASan see a
 * leak otherwise). The models are served_model_t with a stand-in runner
 * instead of an engine. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static rd_status_t fake_run(void *ctx, const float *input, int n, float *logits, rd_error_t *err)
{
    (void)ctx, (void)input, (void)err;
    memset(logits, 0, (size_t)n * 2 * sizeof *logits);
    return RD_OK;
}

static served_model_t *model(const char *name)
{
    batcher_params_t bp = batcher_default_params();
    bp.run_fn = fake_run;
    bp.input_h = bp.input_w = 4;
    bp.n_classes = 2;
    model_preproc_t pp = {.input_h = 4, .input_w = 4};
    served_model_t *m = NULL;
    rd_error_t err = {0};
    ck_assert_int_eq(served_model_create(NULL, name, &pp, &bp, NULL, &m, &err), RD_OK);
    ck_assert_str_eq(served_model_name(m), name);
    ck_assert_int_eq(served_model_preproc(m)->input_w, 4);
    return m;
}

START_TEST(find_by_name_and_default)
{
    registry_t *r = registry_create();
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(registry_default(r));
    ck_assert_ptr_null(registry_find(r, "a"));
    rd_error_t err = {0};
    served_model_t *a = model("a"), *b = model("b");
    ck_assert_int_eq(registry_add(r, a, &err), RD_OK);
    ck_assert_int_eq(registry_add(r, b, &err), RD_OK);
    ck_assert_int_eq(registry_count(r), 2);
    ck_assert_ptr_eq(registry_find(r, "a"), a);
    ck_assert_ptr_eq(registry_find(r, "b"), b);
    ck_assert_ptr_null(registry_find(r, "c"));
    ck_assert_ptr_null(registry_find(r, "a "));
    ck_assert_ptr_eq(registry_default(r), a);
    ck_assert_ptr_eq(registry_at(r, 1), b);
    ck_assert_int_eq(registry_add(r, model("a"), &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "'a' is already served"));
    ck_assert_int_eq(registry_count(r), 2);
    registry_destroy(r);
    registry_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("lookup");
    tcase_add_test(tc, find_by_name_and_default);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
