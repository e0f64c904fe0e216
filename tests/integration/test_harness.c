/* test_harness.c - the integration harness names a server that crashed:
 * harness_died reports the signal and the end of the server's log, which
 * harness_http prints when a transfer fails because the server is gone
 * (instead of the bare exit 1 that a dead server used to leave). Starts the
 * real resnetd on the seeded 2-class model ($SERVER_MODELS). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_harness.h"

START_TEST(a_crashed_server_is_named)
{
    char model[512], why[2048];
    snprintf(model, sizeof model, "%s/resnet18_c2_128.safetensors",
             harness_env("SERVER_MODELS", "."));
    const char *args[] = {"--model", model, NULL};
    harness_server_t s = {0};
    harness_start(&s, args);
    ck_assert(!harness_died(&s, why, sizeof why));
    harness_resp_t r = harness_http(&s, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    harness_resp_free(&r);
    /* SIGKILL: under ASan a SIGSEGV is caught and turned into exit status 1 */
    ck_assert_int_eq(kill(s.pid, SIGKILL), 0);
    bool died = false;
    for (int i = 0; i < 100 && !(died = harness_died(&s, why, sizeof why)); i++)
        usleep(100 * 1000);
    ck_assert_msg(died, "harness_died did not notice the SIGKILL");
    ck_assert_msg(strstr(why, "died: signal 9"), "%s", why);
    ck_assert_msg(strstr(why, "ready: listening on 127.0.0.1:"), "no log tail in: %s", why);
    ck_assert_int_eq(harness_stop(&s), -1); /* reaped now, by signal */
    unlink(s.log_path);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("harness");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_crashed_server_is_named);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
