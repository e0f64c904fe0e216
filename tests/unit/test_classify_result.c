/* test_classify_result.c - the /classify document's shape and partial-failure
 * rule (softmax and top-k: test_scores.c). */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "classify_result.h"

START_TEST(result_json_has_labels_and_timings)
{
    char *labels[3] = {"cat", "dog", "fox"};
    model_info_t mi = {.n_classes = 3, .labels = labels};
    float logits[3] = {0.0f, 2.0f, 1.0f};
    classify_timings_t t = {1.5, 0.25, -1};
    json_t *e = classify_result_json(&mi, 4, "a.jpg", logits, 9, &t);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(e, "filename")), "a.jpg");
    json_t *preds = json_object_get(e, "predictions");
    ck_assert_int_eq(json_array_size(preds), 3); /* k clamped to n_classes */
    json_t *p0 = json_array_get(preds, 0);
    ck_assert_str_eq(json_string_value(json_object_get(p0, "label")), "dog");
    ck_assert_int_eq(json_integer_value(json_object_get(p0, "index")), 1);
    double z = 1 + exp(2.0) + exp(1.0);
    ck_assert_double_eq_tol(json_real_value(json_object_get(p0, "probability")), exp(2.0) / z, 1e-6);
    json_t *tm = json_object_get(e, "timings_ms");
    ck_assert_double_eq(json_real_value(json_object_get(tm, "decode")), 1.5);
    ck_assert_ptr_null(json_object_get(tm, "inference"));
    json_decref(e);
}
END_TEST

START_TEST(request_status_rule)
{
    int some[3] = {400, 200, 504};
    ck_assert_int_eq(classify_request_status(some, 3), 200);
    int none[2] = {413, 400};
    ck_assert_int_eq(classify_request_status(none, 2), 413);
    json_t *results = json_array();
    json_array_append_new(results, classify_error_json(0, NULL, 413, "too big"));
    json_t *doc = classify_document("m", results, 413, 1.0);
    json_t *err = json_object_get(doc, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "payload_too_large");
    ck_assert_str_eq(json_string_value(json_object_get(err, "message")), "too big");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "model")), "m");
    json_decref(doc);
    results = json_array();
    doc = classify_document("m", results, 200, 1.0);
    ck_assert_ptr_null(json_object_get(doc, "error"));
    json_decref(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("classify_result");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, result_json_has_labels_and_timings);
    tcase_add_test(tc, request_status_rule);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
