/* test_server_cli.c - `resnetd classify` prints what the server answers; `resnetd healthcheck` (see server_test.h). */
#include "server_test.h"

/* --- the CLI subcommands --- */

START_TEST(cli_classify_prints_the_same_json)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "eagle.jpg");
    json_t *doc = harness_json(&r);
    double prob = top_prob(result(doc, 0), 0);
    const char *label = top_label(result(doc, 0));
    static char out[65536];
    const char *argv[] = {harness_env("RESNETD_BIN", "resnetd"), "classify", "--model", small_model,
                          PHOTOS "eagle.jpg", "/etc/hostname", NULL};
    int rc = harness_run(argv, NULL, out, sizeof out);
    ck_assert_int_eq(rc, 1); /* one image failed */
    json_t *cli = json_loads(out, 0, NULL);
    ck_assert_msg(cli != NULL, "classify printed no JSON: %.200s", out);
    ck_assert_str_eq(json_string_value(json_object_get(cli, "model")), "resnet18_c2_128");
    ck_assert_str_eq(top_label(result(cli, 0)), label);
    ck_assert_double_eq_tol(top_prob(result(cli, 0), 0), prob, 2e-5);
    ck_assert_str_eq(error_code(result(cli, 1)), "bad_request");
    json_decref(cli);
    json_decref(doc);
    harness_resp_free(&r);

    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    const char *hc[] = {harness_env("RESNETD_BIN", "resnetd"), "healthcheck", "--port", port, NULL};
    ck_assert_int_eq(harness_run(hc, NULL, out, sizeof out), 0);
}
END_TEST

void add_cli_tests(Suite *s)
{
    TCase *tc = server_tcase("cli", start_small, 300);
    tcase_add_test(tc, cli_classify_prints_the_same_json);
    suite_add_tcase(s, tc);
}
