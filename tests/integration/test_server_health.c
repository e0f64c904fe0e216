/* test_server_health.c - liveness, readiness, model metadata and /metrics (see server_test.h). */
#include "server_test.h"

/* --- health, metrics --- */

START_TEST(health_and_metrics)
{
    const char *ok[] = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/v2",
                        "/v2/models/resnet18_c2_128", "/v2/models/resnet18_c2_128/ready"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        harness_resp_t r = harness_http(&srv, "GET", ok[i], NULL, NULL, 0, NULL, NULL);
        expect_status(r, 200, ok[i]);
        json_decref(harness_json(&r));
        harness_resp_free(&r);
    }
    harness_resp_t r = harness_http(&srv, "GET", "/v2/models/resnet18_c2_128", NULL, NULL, 0,
                                    NULL, NULL);
    json_t *doc = harness_json(&r);
    json_t *in0 = json_array_get(json_object_get(doc, "inputs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(in0, "datatype")), "FP32");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(in0, "shape"), 2)), 128);
    json_t *params = json_object_get(doc, "parameters");
    ck_assert_str_eq(json_string_value(json_object_get(params, "precision")), "fp32");
    ck_assert_str_eq(json_string_value(json_object_get(params, "arch")), "resnet18");
    json_decref(doc);
    harness_resp_free(&r);

    r = harness_http(&srv, "GET", "/v2/models/nosuch/ready", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 404, "other model");
    harness_resp_free(&r);

    r = harness_http(&srv, "GET", "/metrics", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "metrics");
    ck_assert_ptr_nonnull(strstr(r.headers, "text/plain"));
    harness_resp_free(&r);
    ck_assert(harness_metric(&srv, "resnetd_http_requests_total{endpoint=\"/healthz\",code=\"200\"}") >= 1);
    ck_assert(harness_metric(&srv, "resnetd_http_requests_total{endpoint=\"/v2/models/{name}/ready\",code=\"404\"}") >= 1);
    ck_assert(harness_metric(&srv, "resnetd_ready") == 1);
    ck_assert(harness_metric(&srv, "resnetd_model_info{model=\"resnet18_c2_128\",arch=\"resnet18\","
                                   "precision=\"fp32\"}") == 1);
}
END_TEST

void add_health_tests(Suite *s)
{
    TCase *tc = server_tcase("health", start_small, 300);
    tcase_add_test(tc, health_and_metrics);
    suite_add_tcase(s, tc);
}
