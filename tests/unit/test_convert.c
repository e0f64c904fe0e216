/* test_convert.c - convert_tfjs and `resnetd convert` on synthetic TF.js
 * models. Each test builds a tiny but complete Keras ResNet v1 graph (stem,
 * stages res2..res5, one or two bottlenecks each, 3 classes) in the layout
 * keras.applications writes, with weights whose value is their index in the
 * shard data, split over two shard files mid-float. The happy path checks every
 * element of the transposed kernels against that formula; the error tests
 * break one thing each and check the status, that the message names the layer,
 * tensor or file, and that no output file is left behind.
 * The tests are grouped in test_convert_*.c around convert_fixture.c. */
#include "convert_fixture.h"

int main(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("tfjs");
    convert_happy_tests(tc);
    convert_errors_tests(tc);
    convert_cli_tests(tc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
