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

static served_model_t *acquire(registry_t *r, const char *name, int version)
{
    served_model_t *m = NULL;
    registry_acquire(r, name, version, &m);
    if (m)
        served_model_unref(m); /* the registry still holds it */
    return m;
}

START_TEST(find_by_name_and_default)
{
    registry_t *r = registry_create();
    ck_assert_ptr_nonnull(r);
    served_model_t *got;
    ck_assert_int_eq(registry_acquire(r, NULL, 0, &got), REGISTRY_NO_MODEL);
    ck_assert_int_eq(registry_acquire(r, "a", 0, &got), REGISTRY_NO_MODEL);
    rd_error_t err = {0};
    served_model_t *a = model("a"), *b = model("b");
    ck_assert_int_eq(registry_add(r, a, &err), RD_OK);
    ck_assert_int_eq(registry_add(r, b, &err), RD_OK);
    ck_assert_int_eq(registry_count(r), 2);
    ck_assert_ptr_eq(acquire(r, "a", 0), a);
    ck_assert_ptr_eq(acquire(r, "b", 0), b);
    ck_assert_ptr_null(acquire(r, "c", 0));
    ck_assert_ptr_null(acquire(r, "a ", 0));
    ck_assert_ptr_eq(acquire(r, NULL, 0), a);
    ck_assert_ptr_eq(acquire(r, "", 0), a);
    registry_set_default(r, "b");
    ck_assert_ptr_eq(acquire(r, NULL, 0), b);
    ck_assert_int_eq(registry_add(r, model("a"), &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "'a' is already served"));
    ck_assert_int_eq(registry_count(r), 2);
    char names[64];
    registry_names(r, names, sizeof names);
    ck_assert_str_eq(names, "'a', 'b'");
    ck_assert(registry_all_ready(r));
    registry_destroy(r);
    registry_destroy(NULL);
}
END_TEST

static served_model_t *version(const char *name, int v)
{
    served_model_t *m = model(name);
    served_model_set_version(m, v);
    return m;
}

/* Unversioned lookups reach the newest version; a replaced version stays
 * alive while a request holds it and is freed by that request's unref
 * (ASan/valgrind see a leak or a use after free otherwise). */
START_TEST(versions_and_references)
{
    registry_t *r = registry_create();
    rd_error_t err = {0};
    served_model_t *v1 = version("m", 1), *v3 = version("m", 3), *v2 = version("m", 2);
    ck_assert_int_eq(registry_publish(r, v1, &err), RD_OK);
    ck_assert_int_eq(registry_publish(r, v3, &err), RD_OK);
    ck_assert_int_eq(registry_publish(r, v2, &err), RD_OK);
    int vs[4];
    ck_assert_int_eq(registry_versions(r, "m", vs, 4), 3);
    ck_assert(vs[0] == 1 && vs[1] == 2 && vs[2] == 3);
    ck_assert_ptr_eq(acquire(r, "m", 0), v3);
    ck_assert_ptr_eq(acquire(r, "m", 2), v2);
    served_model_t *held;
    ck_assert_int_eq(registry_acquire(r, "m", 4, &held), REGISTRY_NO_VERSION);
    ck_assert_int_eq(registry_acquire(r, "m", 3, &held), REGISTRY_FOUND);
    ck_assert_int_eq(served_model_refs(held), 2);
    served_model_t *v3b = version("m", 3); /* a replaced file: same version */
    ck_assert_int_eq(registry_publish(r, v3b, &err), RD_OK);
    ck_assert_ptr_eq(acquire(r, "m", 0), v3b);
    ck_assert_int_eq(served_model_refs(held), 1); /* only the request's now */
    ck_assert_str_eq(served_model_name(held), "m");
    served_model_unref(held); /* frees the old version 3 */
    registry_retire(r, "m", 3, false, NULL);
    ck_assert_ptr_eq(acquire(r, "m", 0), v2);
    registry_retire(r, "m", 0, false, "unloaded");
    ck_assert_int_eq(registry_acquire(r, "m", 0, &held), REGISTRY_UNAVAILABLE);
    ck_assert(!registry_all_ready(r));
    json_t *index = registry_index(r);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(index, 0), "state")),
                     "UNAVAILABLE");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(index, 0), "reason")),
                     "unloaded");
    json_decref(index);
    registry_retire(r, "m", 0, true, NULL);
    ck_assert_int_eq(registry_acquire(r, "m", 0, &held), REGISTRY_NO_MODEL);
    ck_assert_int_eq(registry_count(r), 0);
    registry_destroy(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("lookup");
    tcase_add_test(tc, find_by_name_and_default);
    tcase_add_test(tc, versions_and_references);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
