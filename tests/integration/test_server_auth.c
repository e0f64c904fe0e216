/* test_server_auth.c - the bearer token (server started with --auth-token TOKEN) (see server_test.h). */
#include "server_test.h"

#define TOKEN "t0k3n-Only_The-Test-Knows"

static void start_auth(void)
{
    const char *extra[] = {"--auth-token", TOKEN, NULL};
    start_with(small_model, extra);
}

/* --- the bearer token (server started with --auth-token TOKEN) --- */

/* One request with an Authorization header value (NULL: none). */
static harness_resp_t with_auth(const char *method, const char *path, const char *authorization,
                                const char *ctype, const void *body, size_t len)
{
    struct curl_slist *h = NULL;
    char line[512];
    if (authorization) {
        snprintf(line, sizeof line, "Authorization: %s", authorization);
        h = curl_slist_append(h, line);
    }
    harness_resp_t r = harness_http(&srv, method, path, ctype, body, len, NULL, h);
    curl_slist_free_all(h);
    return r;
}

/* A 401 with the challenge header and the error body of the route's style. */
static void expect_401(harness_resp_t *r, const char *what, bool kserve)
{
    expect_status(*r, 401, what);
    ck_assert_msg(strstr(r->headers, "WWW-Authenticate: Bearer realm=\"resnetd\""),
                  "%s: no challenge in %s", what, r->headers);
    json_t *doc = harness_json(r);
    if (kserve)
        ck_assert_msg(json_is_string(json_object_get(doc, "error")), "%s: %s", what, r->body);
    else
        ck_assert_str_eq(error_code(doc), "unauthorized");
    json_decref(doc);
    harness_resp_free(r);
}

/* A metric's value from /metrics fetched with the token, or -1 when absent. */
static double auth_metric(const char *prefix)
{
    harness_resp_t r = with_auth("GET", "/metrics", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 200, "metrics with the token");
    double v = harness_metric_in(r.body, prefix);
    harness_resp_free(&r);
    return v;
}

START_TEST(auth_refuses_without_the_token)
{
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    harness_resp_t r = with_auth("POST", "/classify", NULL, "image/jpeg", jpeg, len);
    expect_401(&r, "no Authorization", false);
    r = with_auth("POST", "/classify", "Bearer wrong-token", "image/jpeg", jpeg, len);
    ck_assert_ptr_nonnull(strstr(r.headers, "error=\"invalid_token\""));
    expect_401(&r, "wrong token", false);
    r = with_auth("POST", "/classify", "Bearer " TOKEN "x", "image/jpeg", jpeg, len);
    expect_401(&r, "token + 1 byte", false);
    r = with_auth("POST", "/classify", "Basic " TOKEN, "image/jpeg", jpeg, len);
    expect_401(&r, "wrong scheme", false);
    r = with_auth("POST", "/classify", TOKEN, "image/jpeg", jpeg, len);
    expect_401(&r, "no scheme", false);
    /* everything but /healthz and /readyz is guarded, KServe health included;
     * unknown paths too (401, not 404: routes are not revealed) */
    const char *kserve[] = {"/v2", "/v2/health/live", "/v2/health/ready",
                            "/v2/models/resnet18_c2_128", "/v2/models/resnet18_c2_128/ready"};
    for (size_t i = 0; i < sizeof kserve / sizeof kserve[0]; i++) {
        r = with_auth("GET", kserve[i], NULL, NULL, NULL, 0);
        expect_401(&r, kserve[i], true);
    }
    r = with_auth("POST", C2 "", "Bearer nope", "application/json", "{}", 2);
    expect_401(&r, "KServe infer", true);
    r = with_auth("GET", "/metrics", NULL, NULL, NULL, 0);
    expect_401(&r, "/metrics", false);
    r = with_auth("GET", "/nosuch", NULL, NULL, NULL, 0);
    expect_401(&r, "unknown path", false);
    r = with_auth("GET", "/nosuch", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 404, "unknown path with the token");
    harness_resp_free(&r);
    free(jpeg);
}
END_TEST

START_TEST(auth_lets_the_token_and_probes_in)
{
    const char *open[] = {"/healthz", "/readyz"};
    for (size_t i = 0; i < 2; i++) {
        harness_resp_t r = with_auth("GET", open[i], NULL, NULL, NULL, 0);
        expect_status(r, 200, open[i]);
        ck_assert(!harness_has_header(&r, "WWW-Authenticate"));
        harness_resp_free(&r);
    }
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    harness_resp_t r = with_auth("POST", "/classify", "Bearer " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "classify with the token");
    json_t *doc = harness_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(result(doc, 0), "predictions")), 2);
    json_decref(doc);
    harness_resp_free(&r);
    r = with_auth("POST", "/classify", "bearer   " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "scheme in lower case, extra spaces");
    harness_resp_free(&r);
    r = with_auth("GET", "/v2/models/resnet18_c2_128", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 200, "KServe model metadata with the token");
    doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "resnet18_c2_128");
    json_decref(doc);
    harness_resp_free(&r);
    free(jpeg);
}
END_TEST

#define CLASSIFY_401 "resnetd_http_requests_total{endpoint=\"/classify\",code=\"401\"}"

/* A refused client's body is never decoded (checked on headers), 401s are
 * counted, the token never reaches the log, and the server goes on serving. */
START_TEST(auth_refusal_is_cheap_counted_and_unlogged)
{
    double decoded = auth_metric("resnetd_decode_duration_seconds_count");
    double refused = auth_metric(CLASSIFY_401);
    ck_assert(decoded >= 0);
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    for (int i = 0; i < 5; i++) {
        harness_resp_t r = with_auth("POST", "/classify", i % 2 ? "Bearer bad" : NULL, "image/jpeg",
                                     jpeg, len);
        expect_401(&r, "refused upload", false);
    }
    ck_assert_double_eq(auth_metric("resnetd_decode_duration_seconds_count"), decoded);
    ck_assert_double_eq(auth_metric(CLASSIFY_401), (refused < 0 ? 0 : refused) + 5);
    harness_resp_t r = with_auth("POST", "/classify", "Bearer " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "classify after the refusals");
    harness_resp_free(&r);
    ck_assert_double_eq(auth_metric("resnetd_decode_duration_seconds_count"), decoded + 1);
    free(jpeg);
    /* the access log has every request and never the token */
    size_t log_len;
    char *log = (char *)test_read_file(srv.log_path, &log_len);
    ck_assert_ptr_nonnull(strstr(log, "\"status\":401"));
    ck_assert_msg(!strstr(log, TOKEN), "the token is in the log %s", srv.log_path);
    free(log);
}
END_TEST

void add_auth_tests(Suite *s)
{
    TCase *tc = server_tcase("auth", start_auth, 300);
    tcase_add_test(tc, auth_refuses_without_the_token);
    tcase_add_test(tc, auth_lets_the_token_and_probes_in);
    tcase_add_test(tc, auth_refusal_is_cheap_counted_and_unlogged);
    suite_add_tcase(s, tc);
}
