/* test_server.c - the real `resnetd serve` on 127.0.0.1, over HTTP with
 * libcurl: /classify (raw and multipart, partial failure), KServe v2 (tensor
 * logits against PyTorch's, BYTES, errors), the error statuses, concurrency
 * without mix-ups and with batches > 1, queue full, deadlines, SIGTERM drain,
 * `resnetd classify` and `resnetd healthcheck`, the bearer token (--auth-token).
 * Models: $SERVER_MODELS holds tools/reference.py's resnet18_c2_128 (2
 * classes "cat"/"dog", 128x128) and resnet18_c1000_224 (seeded random
 * weights) with PyTorch's logits for their inputs. Suite "resnet50" runs the real default model ($RESNETD_MODEL) and
 * checks its answers on the darknet photos against PyTorch's ($KERAS_DIR).
 * This file: main, the shared fixtures and helpers (server_test.h); the tests
 * are in test_server_*.c, one file per part of the source. */
#include "server_test.h"

harness_server_t srv;
char small_model[512], big_model[512];

const char *models_dir(void)
{
    return harness_env("SERVER_MODELS", ".");
}

/* --- fixtures: one server per test case --- */

void start_with(const char *model, const char *const *extra)
{
    const char *args[32] = {"--model", model, "--log-level", "info"};
    int n = 4;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    harness_start(&srv, args);
}

/* A clean exit after SIGTERM (also how sanitizer reports, which exit non-zero, surface). */
void stop_server(void)
{
    int rc = harness_stop(&srv);
    ck_assert_msg(rc == 0, "resnetd exited with %d after SIGTERM; see %s", rc, srv.log_path);
    unlink(srv.log_path);
}

void start_small(void)
{
    const char *extra[] = {"--max-body-bytes", "8000000", NULL};
    start_with(small_model, extra);
}

/* --- helpers --- */

harness_resp_t post_jpeg(const char *path, const char *file)
{
    size_t len;
    unsigned char *data = test_read_file(file, &len);
    harness_resp_t r = harness_http(&srv, "POST", path, "image/jpeg", data, len, NULL, NULL);
    free(data);
    return r;
}

harness_resp_t post_files(const char *path, const char *const *files)
{
    return harness_http(&srv, "POST", path, NULL, NULL, 0, files, NULL);
}

json_t *result(json_t *doc, size_t i)
{
    json_t *r = json_array_get(json_object_get(doc, "results"), i);
    ck_assert_msg(r != NULL, "no results[%zu]", i);
    return r;
}

double top_prob(json_t *res, size_t k)
{
    json_t *p = json_array_get(json_object_get(res, "predictions"), k);
    ck_assert_msg(p != NULL, "no predictions[%zu]", k);
    return json_real_value(json_object_get(p, "probability"));
}

const char *top_label(json_t *res)
{
    json_t *p = json_array_get(json_object_get(res, "predictions"), 0);
    ck_assert_msg(p != NULL, "no predictions");
    return json_string_value(json_object_get(p, "label"));
}

void expect_status(harness_resp_t r, long status, const char *what)
{
    ck_assert_msg(r.status == status, "%s: status %ld, expected %ld: %.300s", what, r.status,
                  status, r.body);
}

const char *error_code(json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
}

float *read_f32(const char *name, size_t count)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", models_dir(), name);
    size_t len;
    unsigned char *data = test_read_file(path, &len);
    ck_assert_msg(len == count * 4, "%s: %zu bytes, expected %zu", path, len, count * 4);
    return (float *)data;
}

int loopback_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

TCase *server_tcase(const char *name, void (*setup)(void), int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, setup, stop_server);
    tcase_set_timeout(tc, timeout);
    return tc;
}

int main(void)
{
    snprintf(small_model, sizeof small_model, "%s/resnet18_c2_128.safetensors", models_dir());
    snprintf(big_model, sizeof big_model, "%s/resnet18_c1000_224.safetensors", models_dir());
    curl_global_init(CURL_GLOBAL_ALL);

    /* one TCase per behaviour group: CK_RUN_CASE=<name> runs one (README, Tests) */
    Suite *s = suite_create("server");
    add_classify_tests(s); /* classify */
    add_health_tests(s);   /* health */
    add_kserve_tests(s);   /* kserve */
    add_cli_tests(s);      /* cli */
    add_queue_tests(s);    /* concurrency, queue_full, deadline, drain */
    add_auth_tests(s);     /* auth */
    Suite *s50 = suite_create("resnet50");
    add_resnet50_tests(s50); /* resnet50 */

    SRunner *sr = srunner_create(s);
    srunner_add_suite(sr, s50);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
