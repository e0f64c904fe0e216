/* test_convert_cli.c - test_convert's resnetd convert command line.
 * Fixtures: convert_fixture.c. */
#include "convert_fixture.h"

static int run_cli(int argc, char **argv)
{
    /* getopt prints to stderr; keep the test log readable. */
    fflush(stderr);
    return cli_convert(argc, argv);
}

START_TEST(test_cli)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char *help[] = {"convert", "--help", NULL};
    ck_assert_int_eq(run_cli(2, help), 0);
    char *none[] = {"convert", NULL};
    ck_assert_int_eq(run_cli(1, none), 2);
    char *bad[] = {"convert", "--tfjs", "/nonexistent/model.json", "--out", m.out, NULL};
    ck_assert_int_eq(run_cli(5, bad), 1);
    char *good[] = {"convert", "--tfjs", m.path, "--out", m.out, NULL};
    ck_assert_int_eq(run_cli(5, good), 0);
    ck_assert_int_eq(access(m.out, R_OK), 0);
    model_free(&m);
}
END_TEST

void convert_cli_tests(TCase *tc)
{
    tcase_add_test(tc, test_cli);
}
