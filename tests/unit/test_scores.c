/* test_scores.c - softmax and top-k against naive double-precision maths. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "scores.h"

START_TEST(softmax_matches_naive_double)
{
    float logits[6] = {1.5f, -2.0f, 88.0f, 87.5f, 0.0f, 3.25f}; /* exp(88) overflows float */
    float probs[6];
    scores_softmax(logits, 6, probs);
    double sum = 0;
    for (int i = 0; i < 6; i++)
        sum += exp((double)logits[i] - 88.0);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(probs[i], exp((double)logits[i] - 88.0) / sum, 1e-7);
}
END_TEST

START_TEST(topk_is_sorted_and_stable)
{
    float p[8] = {0.1f, 0.3f, 0.05f, 0.3f, 0.2f, 0.0f, 0.05f, 0.0f};
    int idx[8];
    scores_topk(p, 8, 4, idx);
    ck_assert_int_eq(idx[0], 1); /* ties: lower index first */
    ck_assert_int_eq(idx[1], 3);
    ck_assert_int_eq(idx[2], 4);
    ck_assert_int_eq(idx[3], 0);
    scores_topk(p, 8, 8, idx);
    for (int i = 1; i < 8; i++)
        ck_assert(p[idx[i - 1]] >= p[idx[i]]);
    ck_assert_int_eq(idx[4], 2);
    ck_assert_int_eq(idx[5], 6);
    ck_assert_int_eq(idx[6], 5);
    ck_assert_int_eq(idx[7], 7);
    scores_topk(p, 8, 1, idx);
    ck_assert_int_eq(idx[0], 1);
}
END_TEST

static Suite *scores_suite(void)
{
    Suite *s = suite_create("scores");
    TCase *tc = tcase_create("softmax_topk");
    tcase_add_test(tc, softmax_matches_naive_double);
    tcase_add_test(tc, topk_is_sorted_and_stable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scores_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
