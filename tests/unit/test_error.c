/* test_error.c - the status names and error formatting. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "resnetd/error.h"

START_TEST(set_formats_and_returns_code)
{
    rd_error_t err;
    rd_status_t s = rd_error_set(&err, RD_ERR_SHAPE, "tensor %s: %d", "fc.weight", 7);
    ck_assert_int_eq(s, RD_ERR_SHAPE);
    ck_assert_int_eq(err.code, RD_ERR_SHAPE);
    ck_assert_str_eq(err.msg, "tensor fc.weight: 7");
    ck_assert_int_eq(rd_error_set(NULL, RD_ERR_IO, "x"), RD_ERR_IO);
}
END_TEST

START_TEST(prefix_keeps_code)
{
    rd_error_t err;
    rd_error_set(&err, RD_ERR_FORMAT, "truncated");
    ck_assert_int_eq(rd_error_prefix(&err, "%s", "m.safetensors"), RD_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "m.safetensors: truncated");
}
END_TEST

START_TEST(long_messages_are_truncated)
{
    rd_error_t err;
    char big[2 * RD_ERROR_MSG_MAX];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    rd_error_set(&err, RD_ERR_ARG, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), RD_ERROR_MSG_MAX - 1);
}
END_TEST

START_TEST(every_status_has_a_name)
{
    for (int s = RD_OK; s <= RD_ERR_NONFINITE; s++)
        ck_assert_str_ne(rd_status_str((rd_status_t)s), "unknown status");
    ck_assert_str_eq(rd_status_str((rd_status_t)999), "unknown status");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, set_formats_and_returns_code);
    tcase_add_test(tc, prefix_keeps_code);
    tcase_add_test(tc, long_messages_are_truncated);
    tcase_add_test(tc, every_status_has_a_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
