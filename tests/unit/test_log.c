/* test_log.c - log lines are one valid JSON object each (parsed back with
 * jansson), levels filter, the access record carries the right fields and no
 * query string, and concurrent writers never interleave. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Reads every line of f back as JSON objects into arr; returns the line count. */
static size_t read_lines(FILE *f, json_t **arr)
{
    fflush(f);
    rewind(f);
    *arr = json_array();
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        ck_assert_msg(line[strlen(line) - 1] == '\n', "line not terminated");
        json_t *o = json_loads(line, 0, &jerr);
        ck_assert_msg(o && json_is_object(o), "not JSON: %s (%s)", line, jerr.text);
        json_array_append_new(*arr, o);
        n++;
    }
    free(line);
    return n;
}

static log_t *make(FILE *f, log_level_t level, bool access)
{
    log_params_t p = log_default_params();
    p.out = f;
    p.level = level;
    p.access_log = access;
    log_t *log = log_create(&p);
    ck_assert_ptr_nonnull(log);
    return log;
}

START_TEST(message_is_escaped_json)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_INFO, true);
    log_msg(log, LOG_LEVEL_WARN, "quote \" backslash \\ newline \n tab \t ctl \x01 n=%d", 42);
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 1);
    json_t *o = json_array_get(arr, 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")),
                     "quote \" backslash \\ newline \n tab \t ctl \x01 n=42");
    const char *ts = json_string_value(json_object_get(o, "ts"));
    ck_assert_ptr_nonnull(ts);
    ck_assert_uint_eq(strlen(ts), strlen("2026-11-27T03:00:00.123Z"));
    ck_assert_int_eq(ts[10], 'T');
    ck_assert_int_eq(ts[23], 'Z');
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

START_TEST(levels_filter)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_WARN, true);
    log_msg(log, LOG_LEVEL_ERROR, "e");
    log_msg(log, LOG_LEVEL_WARN, "w");
    log_msg(log, LOG_LEVEL_INFO, "i");
    log_msg(log, LOG_LEVEL_DEBUG, "d");
    ck_assert(log_enabled(log, LOG_LEVEL_ERROR));
    ck_assert(!log_enabled(log, LOG_LEVEL_INFO));
    ck_assert(log_enabled(NULL, LOG_LEVEL_INFO));
    ck_assert(!log_enabled(NULL, LOG_LEVEL_DEBUG));
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "msg")), "e");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "level")), "warn");
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

START_TEST(access_record_fields)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_ERROR, true); /* the access log ignores the level */
    log_access_t rec = {.method = "POST", .path = "/classify?topk=3&token=secret", .status = 200,
                        .bytes_in = 123456, .bytes_out = 789, .images = 2, .decode_ms = 3.25,
                        .queue_ms = 0.5, .inference_ms = 21.75, .total_ms = 26};
    log_access(log, &rec);
    log_access_t partial = {.method = NULL, .path = "/healthz", .status = 200, .bytes_in = -1,
                            .bytes_out = 2, .images = -1, .decode_ms = -1, .queue_ms = -1,
                            .inference_ms = -1, .total_ms = 0.125};
    log_access(log, &partial);
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 2);
    json_t *o = json_array_get(arr, 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "access");
    ck_assert_str_eq(json_string_value(json_object_get(o, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(o, "path")), "/classify");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_in")), 123456);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_out")), 789);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "images")), 2);
    ck_assert_double_eq_tol(json_number_value(json_object_get(o, "decode_ms")), 3.25, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(o, "queue_ms")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(o, "inference_ms")), 21.75, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(o, "total_ms")), 26, 1e-9);
    json_t *p = json_array_get(arr, 1);
    ck_assert_str_eq(json_string_value(json_object_get(p, "method")), "-");
    ck_assert_ptr_null(json_object_get(p, "bytes_in"));
    ck_assert_ptr_null(json_object_get(p, "images"));
    ck_assert_ptr_null(json_object_get(p, "decode_ms"));
    ck_assert_double_eq_tol(json_number_value(json_object_get(p, "total_ms")), 0.125, 1e-9);
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

START_TEST(access_log_off_writes_nothing)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_DEBUG, false);
    log_access_t rec = {.method = "GET", .path = "/", .status = 404};
    log_access(log, &rec);
    log_msg(log, LOG_LEVEL_INFO, "still logs messages");
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 1);
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

START_TEST(long_lines_are_cut_but_valid)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_INFO, true);
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, '"', n); /* escaping doubles every byte */
    big[n] = 0;
    log_msg(log, LOG_LEVEL_INFO, "%s", big);
    log_access_t rec = {.method = "GET", .path = big, .status = 414};
    log_access(log, &rec);
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 2);
    size_t len = strlen(json_string_value(json_object_get(json_array_get(arr, 0), "msg")));
    ck_assert(len > 1000 && len < 4096);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(arr, 1), "path"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(arr, 1), "status")), 414);
    json_decref(arr);
    free(big);
    log_destroy(log);
    fclose(f);
}
END_TEST

typedef struct {
    log_t *log;
    int id;
} writer_t;

#define N_WRITERS 4
#define N_LINES 300

static void *writer(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < N_LINES; i++) {
        if (i % 2)
            log_msg(w->log, LOG_LEVEL_INFO, "writer %d line %d %s", w->id, i,
                    "padding padding padding padding padding padding padding padding");
        else {
            log_access_t rec = {.method = "POST", .path = "/classify", .status = 200 + w->id,
                                .images = i};
            log_access(w->log, &rec);
        }
    }
    return NULL;
}

START_TEST(concurrent_lines_do_not_interleave)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_INFO, true);
    pthread_t t[N_WRITERS];
    writer_t w[N_WRITERS];
    for (int i = 0; i < N_WRITERS; i++) {
        w[i] = (writer_t){log, i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < N_WRITERS; i++)
        pthread_join(t[i], NULL);
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), N_WRITERS * N_LINES); /* each parsed as one object */
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

/* Bytes that are not well-formed UTF-8 become %xx, so each line stays JSON
 * (jansson refuses invalid UTF-8, so read_lines checks it); well-formed
 * multi-byte characters pass unchanged. */
START_TEST(non_utf8_bytes_are_escaped)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_INFO, true);
    static const struct { const char *in, *out; } cases[] = {
        { "/r\xe9" "adyz\xff", "/r%e9adyz%ff" },                /* the path, decoded */
        { "/caf\xc3\xa9/\xf0\x9f\x98\x80", "/caf\xc3\xa9/\xf0\x9f\x98\x80" }, /* valid */
        { "/\xc0\xaf", "/%c0%af" },                           /* overlong '/' */
        { "/\xed\xa0\x80", "/%ed%a0%80" },                     /* a UTF-16 surrogate */
        { "/\xf4\x90\x80\x80", "/%f4%90%80%80" },               /* past U+10FFFF */
        { "/\xe2\x82", "/%e2%82" },                           /* cut short at the end */
        { "/\xe2\x82/x", "/%e2%82/x" },                       /* cut short mid-string */
        { "/\x80\xbf", "/%80%bf" },                           /* lone continuation bytes */
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        log_access_t rec = {.method = "GET", .path = cases[i].in, .status = 404};
        log_access(log, &rec);
    }
    log_msg(log, LOG_LEVEL_INFO, "file %s", "m\xff.safetensors");
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), n + 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, i), "path")),
                         cases[i].out);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, n), "msg")),
                     "file m%ff.safetensors");
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

/* The ready line must reach scripts at log_level error too. */
START_TEST(always_ignores_the_level)
{
    FILE *f = tmpfile();
    log_t *log = make(f, LOG_LEVEL_ERROR, true);
    log_msg(log, LOG_LEVEL_INFO, "dropped");
    log_msg_always(log, LOG_LEVEL_INFO, "ready: listening on %s", "127.0.0.1:1");
    json_t *arr;
    ck_assert_uint_eq(read_lines(f, &arr), 1);
    json_t *o = json_array_get(arr, 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "ready: listening on 127.0.0.1:1");
    json_decref(arr);
    log_destroy(log);
    fclose(f);
}
END_TEST

START_TEST(level_names_parse)
{
    log_level_t l;
    rd_error_t err;
    ck_assert_int_eq(log_level_parse("DEBUG", &l, &err), RD_OK);
    ck_assert_int_eq(l, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(log_level_parse("warning", &l, &err), RD_OK);
    ck_assert_int_eq(l, LOG_LEVEL_WARN);
    ck_assert_int_eq(log_level_parse("loud", &l, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "loud"));
    for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
        ck_assert_int_eq(log_level_parse(log_level_name((log_level_t)i), &l, NULL), RD_OK);
        ck_assert_int_eq(l, i);
    }
    ck_assert_str_eq(log_level_name((log_level_t)9), "unknown");
    log_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, message_is_escaped_json);
    tcase_add_test(tc, levels_filter);
    tcase_add_test(tc, access_record_fields);
    tcase_add_test(tc, access_log_off_writes_nothing);
    tcase_add_test(tc, long_lines_are_cut_but_valid);
    tcase_add_test(tc, concurrent_lines_do_not_interleave);
    tcase_add_test(tc, level_names_parse);
    tcase_add_test(tc, non_utf8_bytes_are_escaped);
    tcase_add_test(tc, always_ignores_the_level);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
