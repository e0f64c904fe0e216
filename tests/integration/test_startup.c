/* test_startup.c - resnetd serve's start-up against bad model files and while
 * the model loads: the real binary on 127.0.0.1 (server_harness.c). A missing,
 * truncated, foreign or wrong model must end the process with exit status 1
 * and a message that says what is wrong, never a crash or a sanitizer report;
 * while the model loads, the probes answer (/healthz 200, /readyz 503) and the
 * model routes refuse with 503. A FIFO as the model path holds the load open
 * for as long as the test needs: open() blocks until the test opens the other
 * end, and the loader then refuses it as not a regular file. SIGTERM or
 * SIGINT while the load is blocked there ends the process with status 1. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_harness.h"
#include "test_files.h"

static char tmp_dir[128];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/resnetd-startup-XXXXXX", harness_env("TMPDIR", "/tmp"));
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void remove_tmp_dir(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* A safetensors file: 8-byte little-endian header length, header, data. */
static void write_safetensors(const char *path, const char *header, size_t data_len)
{
    size_t hlen = strlen(header);
    size_t len = 8 + hlen + data_len;
    unsigned char *buf = calloc(1, len);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    write_file(path, buf, len);
    free(buf);
}

/* The whole log of a server that has exited. */
static char *read_log(const harness_server_t *s)
{
    size_t len;
    char *text = (char *)test_read_file(s->log_path, &len);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Starts the server on model and expects exit status 1 within 60 s with
 * `expect` in its stderr and no sanitizer report. */
static void expect_refused(const char *model, const char *expect)
{
    harness_server_t s = {0};
    const char *args[] = {"--model", model, NULL};
    harness_launch(&s, args);
    int rc = harness_wait_exit(&s, 60);
    if (rc == -2)
        harness_stop(&s);
    char *log = read_log(&s);
    ck_assert_msg(rc == 1, "model %s: exit status %d, expected 1; log:\n%s", model, rc, log);
    ck_assert_msg(strstr(log, expect), "model %s: '%s' not in the log:\n%s", model, expect, log);
    ck_assert_msg(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"),
                  "model %s: sanitizer report:\n%s", model, log);
    free(log);
    unlink(s.log_path);
}

START_TEST(bad_model_files_exit_1_with_a_message)
{
    make_tmp_dir();
    char path[256];

    snprintf(path, sizeof path, "%s/missing.safetensors", tmp_dir);
    expect_refused(path, "cannot open: No such file or directory");

    snprintf(path, sizeof path, "%s/empty.safetensors", tmp_dir);
    write_file(path, "", 0);
    expect_refused(path, "shorter than the 8-byte header length");

    expect_refused(tmp_dir, "not a regular file");

    /* a JPEG under a model's name: its first 8 bytes read as an absurd length */
    size_t jpeg_len;
    uint8_t *jpeg = test_read_file("/usr/share/darknet/data/dog.jpg", &jpeg_len);
    ck_assert_ptr_nonnull(jpeg);
    snprintf(path, sizeof path, "%s/dog.safetensors", tmp_dir);
    write_file(path, jpeg, jpeg_len);
    free(jpeg);
    expect_refused(path, "is absurd");

    /* a real model cut short: the header promises data that is not there */
    char *real = test_path(harness_env("SERVER_MODELS", "."), "resnet18_c2_128", ".safetensors");
    size_t real_len;
    uint8_t *model = test_read_file(real, &real_len);
    ck_assert_ptr_nonnull(model);
    snprintf(path, sizeof path, "%s/truncated.safetensors", tmp_dir);
    write_file(path, model, real_len / 2);
    expect_refused(path, "past the data area");
    /* ... and cut inside its JSON header */
    write_file(path, model, 40);
    expect_refused(path, "header");
    free(model);

    /* well-formed safetensors that is no ResNet */
    snprintf(path, sizeof path, "%s/foreign.safetensors", tmp_dir);
    write_safetensors(path, "{\"foo\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_refused(path, "conv1.weight");

    /* the right tensors in the wrong dtype */
    snprintf(path, sizeof path, "%s/dtype.safetensors", tmp_dir);
    write_safetensors(path,
                      "{\"conv1.weight\":{\"dtype\":\"I32\",\"shape\":[64,3,7,7],"
                      "\"data_offsets\":[0,37632]}}",
                      37632);
    expect_refused(path, "conv1.weight");

    /* a good model with a labels file that is missing */
    harness_server_t s = {0};
    const char *args[] = {"--model", real, "--labels", "/nonexistent/labels.txt", NULL};
    harness_launch(&s, args);
    int rc = harness_wait_exit(&s, 60);
    if (rc == -2)
        harness_stop(&s);
    char *log = read_log(&s);
    ck_assert_msg(rc == 1 && strstr(log, "/nonexistent/labels.txt"), "labels: rc %d, log:\n%s",
                  rc, log);
    free(log);
    unlink(s.log_path);
    free(real);
    remove_tmp_dir();
}
END_TEST

static long status_of(const harness_server_t *s, const char *method, const char *path,
                      const char *ctype, const void *body, size_t len, const char *expect_body)
{
    harness_resp_t r = harness_http(s, method, path, ctype, body, len, NULL, NULL);
    if (expect_body)
        ck_assert_msg(r.body && strstr(r.body, expect_body), "%s %s: '%s' not in %s", method,
                      path, expect_body, r.body ? r.body : "(no body)");
    long status = r.status;
    harness_resp_free(&r);
    return status;
}

START_TEST(probes_answer_while_the_model_loads)
{
    make_tmp_dir();
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/model.safetensors", tmp_dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    harness_server_t s = {0};
    const char *args[] = {"--model", fifo, NULL};
    harness_spawn(&s, args, "accepting connections on ");

    /* the loader is blocked in open(fifo): the daemon answers meanwhile */
    ck_assert_int_eq(status_of(&s, "GET", "/healthz", NULL, NULL, 0, "ok"), 200);
    ck_assert_int_eq(status_of(&s, "GET", "/v2/health/live", NULL, NULL, 0, NULL), 200);
    ck_assert_int_eq(status_of(&s, "GET", "/readyz", NULL, NULL, 0, "loading"), 503);
    ck_assert_int_eq(status_of(&s, "GET", "/v2/health/ready", NULL, NULL, 0, "false"), 503);
    size_t jpeg_len;
    uint8_t *jpeg = test_read_file("/usr/share/darknet/data/dog.jpg", &jpeg_len);
    ck_assert_ptr_nonnull(jpeg);
    harness_resp_t r = harness_http(&s, "POST", "/classify", "image/jpeg", jpeg, jpeg_len, NULL,
                                    NULL);
    ck_assert_int_eq(r.status, 503);
    ck_assert(harness_has_header(&r, "Retry-After"));
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "error"), "code")),
                     "unavailable");
    json_decref(doc);
    harness_resp_free(&r);
    free(jpeg);
    ck_assert_int_eq(status_of(&s, "GET", "/v2/models/x", NULL, NULL, 0, "loading"), 503);
    ck_assert_int_eq(status_of(&s, "GET", "/v2/models/x/ready", NULL, NULL, 0, "loading"), 503);
    ck_assert_int_eq(status_of(&s, "POST", "/v2/models/x/infer", "application/json", "{}", 2,
                               "loading"),
                     503);
    ck_assert_int_eq(harness_metric(&s, "resnetd_ready"), 0);
    ck_assert_int_eq(status_of(&s, "GET", "/nope", NULL, NULL, 0, NULL), 404);

    /* unblock the loader: a FIFO is no model file, so the server exits 1 */
    int fd = open(fifo, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
    int rc = harness_wait_exit(&s, 60);
    if (rc == -2)
        harness_stop(&s);
    char *log = read_log(&s);
    ck_assert_msg(rc == 1 && strstr(log, "not a regular file"), "rc %d, log:\n%s", rc, log);
    free(log);
    unlink(s.log_path);
    remove_tmp_dir();
}
END_TEST

/* The loader blocked in open(fifo) for ever: the signal alone must end the
 * process, by itself (harness_wait_exit, no SIGKILL), with status 1. */
START_TEST(signal_during_model_load_exits)
{
    static const int sigs[] = {SIGTERM, SIGINT};
    make_tmp_dir();
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/model.safetensors", tmp_dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    harness_server_t s = {0};
    const char *args[] = {"--model", fifo, NULL};
    harness_spawn(&s, args, "accepting connections on ");
    ck_assert_int_eq(status_of(&s, "GET", "/healthz", NULL, NULL, 0, "ok"), 200);
    ck_assert_int_eq(kill(s.pid, sigs[_i]), 0);
    int rc = harness_wait_exit(&s, 30);
    if (rc == -2)
        harness_stop(&s); /* SIGTERM again, then SIGKILL: the test has failed */
    char *log = read_log(&s);
    ck_assert_msg(rc == 1 && strstr(log, "while the model was loading"), "rc %d, log:\n%s", rc,
                  log);
    free(log);
    unlink(s.log_path);
    remove_tmp_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("startup");
    TCase *tc = tcase_create("startup");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, bad_model_files_exit_1_with_a_message);
    tcase_add_test(tc, probes_answer_while_the_model_loads);
    tcase_add_loop_test(tc, signal_during_model_load_exits, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
