/* test_tls.c - resnetd serve with tls_cert/tls_key: the real binary on
 * 127.0.0.1 (server_harness.c) with a self-signed certificate that openssl
 * makes at test time, checked by libcurl with CURLOPT_CAINFO (curl --cacert)
 * and by the curl command itself. Over HTTPS a JPEG is classified as
 * `resnetd classify` does offline and the probes answer; plain HTTP to the TLS
 * port gets no 200; a client trusting another CA fails verification; `resnetd
 * healthcheck` (the container's HEALTHCHECK) passes with the server's config;
 * a mismatched, missing or malformed key or certificate stops start-up with a
 * message naming the file, and half a TLS config is a usage error.
 * Case "drain" (the tls_drain test, suite slow): TLS_DRAIN_RUNS (50) times,
 * a server gets a client trusting another CA, then SIGTERM: it must exit 0
 * every time (libmicrohttpd 0.9.75 in epoll mode aborted there, "Failed to
 * remove listen FD from epoll set", about 1 run in 7 of the suite).
 * Model: $SERVER_MODELS/resnet18_c2_128.safetensors (tools/reference.py). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_harness.h"
#include "test_files.h"

#define PHOTOS "/usr/share/darknet/data/"

static harness_server_t srv;
static char model[512];
static char tmp_dir[128];
/* cert/key: CN=localhost with IP:127.0.0.1 and DNS:localhost; other_*: another
 * self-signed pair, the "different CA" and the key that does not match cert */
static char cert[256], key[256], other_cert[256], other_key[256];

/* --- certificates, made once for the suite (an unchecked fixture) --- */

static void make_pair(const char *cert_path, const char *key_path, const char *subject,
                      const char *san)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '%s' %s%s "
             "-keyout '%s' -out '%s' 2>'%s/openssl.log'",
             subject, san ? "-addext subjectAltName=" : "", san ? san : "", key_path, cert_path,
             tmp_dir);
    ck_assert_msg(system(cmd) == 0, "openssl failed (is it installed?): %s; see %s/openssl.log",
                  cmd, tmp_dir);
}

static void make_certs(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/resnetd-tls-XXXXXX", harness_env("TMPDIR", "/tmp"));
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp_dir);
    snprintf(key, sizeof key, "%s/key.pem", tmp_dir);
    snprintf(other_cert, sizeof other_cert, "%s/other_cert.pem", tmp_dir);
    snprintf(other_key, sizeof other_key, "%s/other_key.pem", tmp_dir);
    make_pair(cert, key, "/CN=localhost", "IP:127.0.0.1,DNS:localhost");
    make_pair(other_cert, other_key, "/CN=other", NULL);
}

static void remove_certs(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* --- the TLS server, one per test --- */

static void start_tls(void)
{
    const char *args[] = {"--model", model, "--log-level", "info", "--tls-cert", cert,
                          "--tls-key", key, NULL};
    srv.ca_file = cert;
    harness_start(&srv, args);
}

static void stop_server(void)
{
    int rc = harness_stop(&srv);
    ck_assert_msg(rc == 0, "resnetd exited with %d after SIGTERM; see %s", rc, srv.log_path);
    unlink(srv.log_path);
}

/* --- helpers --- */

static const char *resnetd_bin(void)
{
    return harness_env("RESNETD_BIN", "resnetd");
}

static json_t *prediction(json_t *doc, size_t k)
{
    json_t *res = json_array_get(json_object_get(doc, "results"), 0);
    json_t *p = json_array_get(json_object_get(res, "predictions"), k);
    ck_assert_msg(p != NULL, "no results[0].predictions[%zu]", k);
    return p;
}

/* --- over HTTPS --- */

/* The answer over TLS is the one `resnetd classify` gives offline: same model,
 * labels in the same order, same probabilities. */
START_TEST(https_classify_matches_offline)
{
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    harness_resp_t r = harness_http(&srv, "POST", "/classify", "image/jpeg", jpeg, len, NULL, NULL);
    free(jpeg);
    ck_assert_msg(r.status == 200, "POST /classify over https: status %ld (curl %d: %s): %.300s",
                  r.status, (int)r.curl, curl_easy_strerror(r.curl), r.body);
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "model")), "resnet18_c2_128");

    static char out[65536];
    const char *argv[] = {resnetd_bin(), "classify", "--model", model, PHOTOS "dog.jpg", NULL};
    ck_assert_int_eq(harness_run(argv, NULL, out, sizeof out), 0);
    json_t *offline = json_loads(out, 0, NULL);
    ck_assert_msg(offline != NULL, "resnetd classify printed no JSON: %.200s", out);
    for (size_t k = 0; k < 2; k++) { /* two classes: cat, dog */
        json_t *a = prediction(doc, k), *b = prediction(offline, k);
        ck_assert_str_eq(json_string_value(json_object_get(a, "label")),
                         json_string_value(json_object_get(b, "label")));
        ck_assert_double_eq_tol(json_real_value(json_object_get(a, "probability")),
                                json_real_value(json_object_get(b, "probability")), 2e-5);
    }
    json_decref(offline);
    json_decref(doc);
    harness_resp_free(&r);
}
END_TEST

START_TEST(https_probes_and_the_log)
{
    harness_resp_t r = harness_http(&srv, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    ck_assert_msg(r.status == 200, "/healthz over https: status %ld (curl %d: %s)", r.status,
                  (int)r.curl, curl_easy_strerror(r.curl));
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    harness_resp_free(&r);
    r = harness_http(&srv, "GET", "/readyz", NULL, NULL, 0, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    harness_resp_free(&r);

    /* the log says TLS is on and never shows the key */
    size_t len;
    char *log = (char *)test_read_file(srv.log_path, &len);
    ck_assert_msg(strstr(log, "tls: serving HTTPS"), "no TLS line in the log:\n%s", log);
    char *pem = (char *)test_read_file(key, &len);
    char *body = strstr(pem, "-----\n"); /* the first base64 line of the key */
    ck_assert_ptr_nonnull(body);
    char first[40] = {0};
    memcpy(first, body + 6, sizeof first - 1);
    ck_assert_msg(!strstr(log, "PRIVATE KEY") && !strstr(log, first), "key material in the log");
    free(pem);
    free(log);
}
END_TEST

/* The curl command with --cacert, by name (the certificate's DNS:localhost). */
START_TEST(curl_cli_with_cacert)
{
    char url[128], out[256];
    snprintf(url, sizeof url, "https://localhost:%d/healthz", srv.port);
    const char *ok[] = {"curl", "-sS", "--max-time", "60", "--cacert", cert, "-o", "/dev/null",
                        "-w", "%{http_code}", url, NULL};
    int rc = harness_run(ok, NULL, out, sizeof out);
    ck_assert_msg(rc == 0 && !strcmp(out, "200"), "curl --cacert: exit %d, '%s'", rc, out);
    const char *other[] = {"curl", "-sS", "--max-time", "60", "--cacert", other_cert, "-o",
                           "/dev/null", url, NULL};
    rc = harness_run(other, NULL, out, sizeof out);
    ck_assert_msg(rc == 60, "curl --cacert <another CA>: exit %d, expected 60 (peer verification)",
                  rc);
}
END_TEST

START_TEST(plain_http_to_the_tls_port_gets_no_200)
{
    harness_server_t plain = srv;
    plain.ca_file = NULL;
    harness_resp_t r = harness_http(&plain, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    ck_assert_msg(r.status != 200, "plain HTTP to the TLS port got 200: %.200s", r.body);
    harness_resp_free(&r);
    r = harness_http(&srv, "GET", "/healthz", NULL, NULL, 0, NULL, NULL); /* still serving */
    ck_assert_int_eq(r.status, 200);
    harness_resp_free(&r);
}
END_TEST

START_TEST(another_ca_fails_verification)
{
    harness_server_t wrong = srv;
    wrong.ca_file = other_cert;
    harness_resp_t r = harness_http(&wrong, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    ck_assert_msg(r.curl == CURLE_PEER_FAILED_VERIFICATION,
                  "trusting another CA: curl %d (%s), status %ld; expected a verification failure",
                  (int)r.curl, curl_easy_strerror(r.curl), r.status);
    ck_assert_int_eq(r.status, 0);
    harness_resp_free(&r);
}
END_TEST

/* `resnetd healthcheck` with the server's TLS config passes, from flags and
 * from the environment (as in the container); without TLS config, or trusting
 * another certificate, it fails. */
START_TEST(healthcheck_over_tls)
{
    char port[16], out[256];
    snprintf(port, sizeof port, "%d", srv.port);
    const char *flags[] = {resnetd_bin(), "healthcheck", "--port", port, "--bind", "127.0.0.1",
                           "--tls-cert", cert, "--tls-key", key, NULL};
    ck_assert_int_eq(harness_run(flags, NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "ready\n");

    static char env_cert[300], env_key[300];
    snprintf(env_cert, sizeof env_cert, "RESNETD_TLS_CERT=%s", cert);
    snprintf(env_key, sizeof env_key, "RESNETD_TLS_KEY=%s", key);
    const char *env[] = {env_cert, env_key, NULL};
    const char *bare[] = {resnetd_bin(), "healthcheck", "--port", port, "--bind", "127.0.0.1", NULL};
    ck_assert_int_eq(harness_run(bare, env, out, sizeof out), 0);

    ck_assert_int_eq(harness_run(bare, NULL, out, sizeof out), 1); /* plain HTTP: no answer */
    ck_assert_str_eq(out, "not ready\n");
    const char *other[] = {resnetd_bin(), "healthcheck", "--port", port, "--bind", "127.0.0.1",
                           "--tls-cert", other_cert, "--tls-key", other_key, NULL};
    ck_assert_int_eq(harness_run(other, NULL, out, sizeof out), 1);
}
END_TEST

/* --- start-up refused --- */

/* Starts the server with args and expects exit status rc within 60 s, with
 * expect in its stderr and no crash or sanitizer report (a leak would change
 * the status too). */
static void expect_refused(const char *const *args, int rc_expected, const char *expect)
{
    harness_server_t s = {0};
    const char *full[16] = {"--model", model};
    int n = 2;
    for (int i = 0; args[i] && n < 15; i++)
        full[n++] = args[i];
    full[n] = NULL;
    harness_launch(&s, full);
    int rc = harness_wait_exit(&s, 60);
    if (rc == -2)
        harness_stop(&s);
    size_t len;
    char *log = (char *)test_read_file(s.log_path, &len);
    ck_assert_msg(rc == rc_expected, "%s %s: exit %d, expected %d; log:\n%s", args[0], args[1], rc,
                  rc_expected, log);
    ck_assert_msg(strstr(log, expect), "'%s' not in the log:\n%s", expect, log);
    ck_assert_msg(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"),
                  "sanitizer report:\n%s", log);
    free(log);
    unlink(s.log_path);
}

START_TEST(bad_key_or_cert_stops_start_up)
{
    char msg[600], missing[300], garbage[300];
    snprintf(msg, sizeof msg, "tls_key %s does not go with tls_cert %s", other_key, cert);
    const char *mismatched[] = {"--tls-cert", cert, "--tls-key", other_key, NULL};
    expect_refused(mismatched, 1, msg);

    snprintf(missing, sizeof missing, "%s/no-such-key.pem", tmp_dir);
    snprintf(msg, sizeof msg, "tls_key %s: cannot open: No such file", missing);
    const char *no_key[] = {"--tls-cert", cert, "--tls-key", missing, NULL};
    expect_refused(no_key, 1, msg);

    snprintf(msg, sizeof msg, "tls_cert %s: cannot open", missing);
    const char *no_cert[] = {"--tls-cert", missing, "--tls-key", key, NULL};
    expect_refused(no_cert, 1, msg);

    snprintf(garbage, sizeof garbage, "%s/garbage.pem", tmp_dir);
    FILE *f = fopen(garbage, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a certificate\n", f);
    fclose(f);
    snprintf(msg, sizeof msg, "tls_cert %s: not a PEM certificate", garbage);
    const char *bad_cert[] = {"--tls-cert", garbage, "--tls-key", key, NULL};
    expect_refused(bad_cert, 1, msg);
    snprintf(msg, sizeof msg, "tls_key %s: not an unencrypted PEM private key", cert);
    const char *cert_as_key[] = {"--tls-cert", cert, "--tls-key", cert, NULL};
    expect_refused(cert_as_key, 1, msg);

    /* half a TLS config is a usage error, not a silent fall-back to plain HTTP */
    const char *cert_only[] = {"--tls-cert", cert, NULL};
    expect_refused(cert_only, 2, "tls_cert is set but tls_key is empty");
    const char *key_only[] = {"--tls-key", key, NULL};
    expect_refused(key_only, 2, "tls_key is set but tls_cert is empty");
}
END_TEST

START_TEST(drain_after_wrong_ca_never_aborts)
{
    int runs = atoi(getenv("TLS_DRAIN_RUNS"));
    const char *args[] = {"--model", model, "--tls-cert", cert, "--tls-key", key,
                          "--drain-timeout-s", "5", NULL};
    for (int i = 0; i < runs; i++) {
        harness_server_t s = {0};
        s.ca_file = cert;
        harness_start(&s, args);
        harness_server_t wrong = s;
        wrong.ca_file = other_cert;
        harness_resp_t r = harness_http(&wrong, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
        ck_assert_msg(r.curl == CURLE_PEER_FAILED_VERIFICATION, "run %d: curl %d", i, (int)r.curl);
        harness_resp_free(&r);
        int rc = harness_stop(&s);
        size_t len = 0;
        char *log = (char *)test_read_file(s.log_path, &len);
        ck_assert_msg(rc == 0 && !strstr(log, "Fatal error"),
                      "run %d of %d: exit %d after SIGTERM; log:\n%s", i + 1, runs, rc, log);
        free(log);
        unlink(s.log_path);
    }
}
END_TEST

int main(void)
{
    snprintf(model, sizeof model, "%s/resnet18_c2_128.safetensors",
             harness_env("SERVER_MODELS", "."));
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("https");
    tcase_add_unchecked_fixture(tc, make_certs, NULL);
    tcase_add_checked_fixture(tc, start_tls, stop_server);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, https_classify_matches_offline);
    tcase_add_test(tc, https_probes_and_the_log);
    tcase_add_test(tc, curl_cli_with_cacert);
    tcase_add_test(tc, plain_http_to_the_tls_port_gets_no_200);
    tcase_add_test(tc, another_ca_fails_verification);
    tcase_add_test(tc, healthcheck_over_tls);
    suite_add_tcase(s, tc);
    tc = tcase_create("refused");
    tcase_add_unchecked_fixture(tc, NULL, remove_certs);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bad_key_or_cert_stops_start_up);
    suite_add_tcase(s, tc);
    if (getenv("TLS_DRAIN_RUNS")) { /* the tls_drain test only */
        tc = tcase_create("drain");
        tcase_add_unchecked_fixture(tc, make_certs, remove_certs);
        tcase_set_timeout(tc, 1500);
        tcase_add_test(tc, drain_after_wrong_ca_never_aborts);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
