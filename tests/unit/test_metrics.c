/* test_metrics.c - the registry's Prometheus text: every sample parsed back
 * and compared with counts computed here by hand; HELP/TYPE lines; histogram
 * buckets cumulative up to +Inf; label escaping; exact totals under
 * concurrent updates. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* A parsed exposition: sample lines as (series, value), and the TYPE of each family. */
typedef struct {
    double value[400];
    char names[400][160];
    int n;
    char types[40][96];
    int n_types;
} expo_t;

static void parse(const char *text, expo_t *e)
{
    memset(e, 0, sizeof *e);
    const char *p = text;
    ck_assert_int_eq(text[strlen(text) - 1], '\n');
    while (*p) {
        const char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        char line[512];
        size_t len = (size_t)(nl - p);
        ck_assert_uint_lt(len, sizeof line);
        memcpy(line, p, len);
        line[len] = 0;
        p = nl + 1;
        if (!strncmp(line, "# TYPE ", 7)) {
            ck_assert_int_lt(e->n_types, 40);
            snprintf(e->types[e->n_types++], sizeof e->types[0], "%.95s", line + 7);
            continue;
        }
        if (!strncmp(line, "# HELP ", 7))
            continue;
        ck_assert_msg(line[0] != '#', "unexpected comment: %s", line);
        char *sp = strrchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = 0;
        ck_assert_int_lt(e->n, 400);
        snprintf(e->names[e->n], sizeof e->names[0], "%.159s", line);
        char *end;
        e->value[e->n] = strtod(sp + 1, &end);
        ck_assert_msg(*end == 0, "bad value in %s %s", line, sp + 1);
        e->n++;
    }
}

/* The value of one series; fails the test if absent. */
static double get(const expo_t *e, const char *series)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->names[i], series))
            return e->value[i];
    ck_abort_msg("series %s missing", series);
    return NAN;
}

static int has(const expo_t *e, const char *series)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->names[i], series))
            return 1;
    return 0;
}

static const char *type_of(const expo_t *e, const char *family)
{
    size_t n = strlen(family);
    for (int i = 0; i < e->n_types; i++)
        if (!strncmp(e->types[i], family, n) && e->types[i][n] == ' ')
            return e->types[i] + n + 1;
    return NULL;
}

static expo_t expo; /* large; static so as not to burden the stack */

static void render(metrics_t *m)
{
    char *text;
    size_t len;
    rd_error_t err;
    ck_assert_int_eq(metrics_render(m, &text, &len, &err), RD_OK);
    ck_assert_uint_eq(len, strlen(text));
    parse(text, &expo);
    free(text);
}

START_TEST(fresh_registry_renders_every_family)
{
    metrics_t *m;
    ck_assert_int_eq(metrics_create("1.2.3", &m, NULL), RD_OK);
    render(m);
    static const char *const hists[] = {"resnetd_request_duration_seconds", "resnetd_decode_duration_seconds",
                                        "resnetd_queue_duration_seconds", "resnetd_inference_duration_seconds",
                                        "resnetd_batch_size"};
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(type_of(&expo, hists[i]), "histogram");
        char s[160];
        snprintf(s, sizeof s, "%s_bucket{le=\"+Inf\"}", hists[i]);
        ck_assert_double_eq(get(&expo, s), 0);
        snprintf(s, sizeof s, "%s_count", hists[i]);
        ck_assert_double_eq(get(&expo, s), 0);
        snprintf(s, sizeof s, "%s_sum", hists[i]);
        ck_assert_double_eq(get(&expo, s), 0);
    }
    ck_assert_str_eq(type_of(&expo, "resnetd_http_requests_total"), "counter");
    ck_assert_str_eq(type_of(&expo, "resnetd_images_classified_total"), "counter");
    ck_assert_str_eq(type_of(&expo, "resnetd_queue_depth"), "gauge");
    ck_assert_str_eq(type_of(&expo, "resnetd_ready"), "gauge");
    ck_assert_double_eq(get(&expo, "resnetd_build_info{version=\"1.2.3\"}"), 1);
    ck_assert_double_eq(get(&expo, "resnetd_images_classified_total"), 0);
    ck_assert_double_eq(get(&expo, "resnetd_queue_dropped_total{reason=\"deadline\"}"), 0);
    ck_assert_str_eq(type_of(&expo, "resnetd_connections_refused_total"), "counter");
    ck_assert_double_eq(get(&expo, "resnetd_connections_refused_total"), 0);
    ck_assert_str_eq(type_of(&expo, "resnetd_int8_rechecked_total"), "counter");
    ck_assert_double_eq(get(&expo, "resnetd_int8_rechecked_total"), 0);
    for (int i = 0; i < expo.n; i++)
        ck_assert_msg(strncmp(expo.names[i], "resnetd_http_requests_total", 27) &&
                          strncmp(expo.names[i], "resnetd_model_info", 18),
                      "no request or model series before any request or model");
    /* The model's labels appear once it is set; the first call wins. */
    metrics_set_model(m, "pets", "resnet18", "int8");
    metrics_set_model(m, "other", "resnet50", "fp32");
    render(m);
    ck_assert_str_eq(type_of(&expo, "resnetd_model_info"), "gauge");
    ck_assert_double_eq(
        get(&expo, "resnetd_model_info{model=\"pets\",arch=\"resnet18\",precision=\"int8\"}"), 1);
    metrics_destroy(m);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
    metrics_t *m;
    ck_assert_int_eq(metrics_create(NULL, &m, NULL), RD_OK);
    const double obs[] = {0.003, 0.02, 0.005, 20, 0.0001};
    for (int i = 0; i < 5; i++)
        metrics_observe(m, METRICS_H_DECODE, obs[i]);
    metrics_observe(m, METRICS_H_DECODE, NAN); /* ignored */
    metrics_observe(m, METRICS_H_BATCH_SIZE, 1);
    metrics_observe(m, METRICS_H_BATCH_SIZE, 4);
    metrics_observe(m, METRICS_H_BATCH_SIZE, 3);
    render(m);
    /* by hand: le is "<=", so 0.005 falls in the 0.005 bucket */
    const struct {
        const char *le;
        double n;
    } want[] = {{"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"0.01", 3},
                {"0.025", 4},  {"10", 4},    {"+Inf", 5}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char s[160];
        snprintf(s, sizeof s, "resnetd_decode_duration_seconds_bucket{le=\"%s\"}", want[i].le);
        ck_assert_double_eq(get(&expo, s), want[i].n);
    }
    ck_assert_double_eq(get(&expo, "resnetd_decode_duration_seconds_count"), 5);
    ck_assert_double_eq_tol(get(&expo, "resnetd_decode_duration_seconds_sum"), 20.0281, 1e-9);
    ck_assert_double_eq(get(&expo, "resnetd_batch_size_bucket{le=\"1\"}"), 1);
    ck_assert_double_eq(get(&expo, "resnetd_batch_size_bucket{le=\"2\"}"), 1);
    ck_assert_double_eq(get(&expo, "resnetd_batch_size_bucket{le=\"4\"}"), 3);
    ck_assert_double_eq(get(&expo, "resnetd_batch_size_sum"), 8);
    ck_assert_uint_eq(metrics_histogram_count(m, METRICS_H_DECODE), 5);
    ck_assert_uint_eq(metrics_histogram_count(m, METRICS_H_QUEUE), 0);
    /* buckets never decrease along a family */
    double prev = -1;
    for (int i = 0; i < expo.n; i++)
        if (!strncmp(expo.names[i], "resnetd_decode_duration_seconds_bucket", 38)) {
            ck_assert(expo.value[i] >= prev);
            prev = expo.value[i];
        }
    metrics_destroy(m);
}
END_TEST

START_TEST(request_counters_by_endpoint_and_code)
{
    metrics_t *m;
    ck_assert_int_eq(metrics_create("v", &m, NULL), RD_OK);
    metrics_count_request(m, METRICS_EP_CLASSIFY, 200);
    metrics_count_request(m, METRICS_EP_CLASSIFY, 200);
    metrics_count_request(m, METRICS_EP_CLASSIFY, 503);
    metrics_count_request(m, METRICS_EP_V2_INFER, 422);
    metrics_count_request(m, METRICS_EP_OTHER, 404);
    metrics_count_request(m, (metrics_endpoint_t)99, 404); /* out of range: "other" */
    metrics_count_request(m, METRICS_EP_HEALTHZ, 700);     /* out of range: "000" */
    metrics_count_images(m, 7);
    metrics_count_dropped(m, METRICS_DROP_CANCELLED, 2);
    metrics_count_connection_refused(m);
    metrics_count_connection_refused(m);
    render(m);
    ck_assert_double_eq(get(&expo, "resnetd_http_requests_total{endpoint=\"/classify\",code=\"200\"}"), 2);
    ck_assert_double_eq(get(&expo, "resnetd_http_requests_total{endpoint=\"/classify\",code=\"503\"}"), 1);
    ck_assert_double_eq(
        get(&expo, "resnetd_http_requests_total{endpoint=\"/v2/models/{name}/infer\",code=\"422\"}"), 1);
    ck_assert_double_eq(get(&expo, "resnetd_http_requests_total{endpoint=\"other\",code=\"404\"}"), 2);
    ck_assert_double_eq(get(&expo, "resnetd_http_requests_total{endpoint=\"/healthz\",code=\"000\"}"), 1);
    ck_assert(!has(&expo, "resnetd_http_requests_total{endpoint=\"/classify\",code=\"404\"}"));
    ck_assert_double_eq(get(&expo, "resnetd_images_classified_total"), 7);
    ck_assert_double_eq(get(&expo, "resnetd_queue_dropped_total{reason=\"cancelled\"}"), 2);
    ck_assert_double_eq(get(&expo, "resnetd_connections_refused_total"), 2);
    ck_assert_uint_eq(metrics_connections_refused(m), 2);
    ck_assert_uint_eq(metrics_request_count(m, METRICS_EP_CLASSIFY, 200), 2);
    ck_assert_str_eq(metrics_endpoint_name(METRICS_EP_READYZ), "/readyz");
    ck_assert_str_eq(metrics_endpoint_name((metrics_endpoint_t)-1), "other");
    metrics_destroy(m);
}
END_TEST

START_TEST(gauges_and_escaped_labels)
{
    metrics_t *m;
    ck_assert_int_eq(metrics_create("1.0\"beta\\x\ny", &m, NULL), RD_OK);
    metrics_gauge_set(m, METRICS_G_MODEL_LOAD, 1.25);
    metrics_gauge_set(m, METRICS_G_READY, 1);
    metrics_gauge_add(m, METRICS_G_INFLIGHT, 3);
    metrics_gauge_add(m, METRICS_G_INFLIGHT, -1);
    render(m);
    ck_assert_double_eq(get(&expo, "resnetd_model_load_seconds"), 1.25);
    ck_assert_double_eq(get(&expo, "resnetd_ready"), 1);
    ck_assert_double_eq(get(&expo, "resnetd_inflight_requests"), 2);
    ck_assert_double_eq(get(&expo, "resnetd_build_info{version=\"1.0\\\"beta\\\\x\\ny\"}"), 1);
    ck_assert_double_eq(metrics_gauge_get(m, METRICS_G_INFLIGHT), 2);
    metrics_gauge_set(m, METRICS_G_QUEUE_DEPTH, INFINITY);
    render(m);
    ck_assert(isinf(get(&expo, "resnetd_queue_depth")));
    metrics_destroy(m);
}
END_TEST

#define N_THREADS 4
#define N_OPS 20000

static void *hammer(void *arg)
{
    metrics_t *m = arg;
    for (int i = 0; i < N_OPS; i++) {
        metrics_observe(m, METRICS_H_INFERENCE, 0.5);
        metrics_gauge_add(m, METRICS_G_INFLIGHT, 1);
        metrics_count_request(m, METRICS_EP_CLASSIFY, 200);
    }
    return NULL;
}

START_TEST(concurrent_updates_are_exact)
{
    metrics_t *m;
    ck_assert_int_eq(metrics_create("x", &m, NULL), RD_OK);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    render(m);
    double n = N_THREADS * N_OPS;
    ck_assert_double_eq(get(&expo, "resnetd_inference_duration_seconds_count"), n);
    ck_assert_double_eq(get(&expo, "resnetd_inference_duration_seconds_sum"), n * 0.5);
    ck_assert_double_eq(get(&expo, "resnetd_inflight_requests"), n);
    ck_assert_double_eq(get(&expo, "resnetd_http_requests_total{endpoint=\"/classify\",code=\"200\"}"), n);
    metrics_destroy(m);
}
END_TEST

START_TEST(null_registry_is_a_no_op)
{
    metrics_count_request(NULL, METRICS_EP_CLASSIFY, 200);
    metrics_observe(NULL, METRICS_H_QUEUE, 1);
    metrics_gauge_set(NULL, METRICS_G_READY, 1);
    metrics_gauge_add(NULL, METRICS_G_READY, 1);
    metrics_count_images(NULL, 1);
    metrics_count_dropped(NULL, METRICS_DROP_DEADLINE, 1);
    metrics_count_connection_refused(NULL);
    ck_assert_uint_eq(metrics_connections_refused(NULL), 0);
    ck_assert_double_eq(metrics_gauge_get(NULL, METRICS_G_READY), 0);
    ck_assert_uint_eq(metrics_histogram_count(NULL, METRICS_H_QUEUE), 0);
    char *out = (char *)1;
    rd_error_t err;
    ck_assert_int_eq(metrics_render(NULL, &out, NULL, &err), RD_ERR_ARG);
    ck_assert_int_eq(metrics_create(NULL, NULL, &err), RD_ERR_ARG);
    metrics_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fresh_registry_renders_every_family);
    tcase_add_test(tc, histogram_buckets_are_cumulative);
    tcase_add_test(tc, request_counters_by_endpoint_and_code);
    tcase_add_test(tc, gauges_and_escaped_labels);
    tcase_add_test(tc, concurrent_updates_are_exact);
    tcase_add_test(tc, null_registry_is_a_no_op);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
