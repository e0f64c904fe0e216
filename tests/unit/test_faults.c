/* test_faults.c - allocation failure on the Nth call, as SQLite's fault
 * injection does: the safetensors reader + loader and the config reader are
 * run with the Nth allocation failing, for N = 1, 2, ... until a run needs
 * fewer than N allocations. Every run must end without a crash or an abort
 * and free everything it allocated (counted here, whatever ASan or valgrind
 * also say); one that fails must say why and leave no output behind (*net
 * NULL, labels NULL). malloc, calloc, realloc, strdup and strndup are wrapped
 * at link time (-Wl,--wrap, see meson.build), which reaches every call in the
 * engine and server libraries linked into this test; jansson's allocations
 * are counted too (json_set_alloc_funcs). */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "loader_fixture.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

/* ---- the counting, failing allocator ---- */

#define SLOTS (1u << 20) /* open addressing; far more than the live allocations here */
static void *live[SLOTS];
static long n_live, n_calls, fail_at; /* fail_at 0: never fail */

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (SLOTS - 1);
}

static void track(void *p)
{
    size_t i = slot_of(p);
    while (live[i])
        i = (i + 1) & (SLOTS - 1);
    live[i] = p;
    n_live++;
}

/* Forgets p if this allocator made it (libc hands out memory of its own too,
 * e.g. realpath's buffer, which the code frees with free). */
static void untrack(void *p)
{
    for (size_t i = slot_of(p); live[i]; i = (i + 1) & (SLOTS - 1))
        if (live[i] == p) {
            live[i] = NULL;
            n_live--;
            /* re-insert the rest of the cluster so that lookups still find them */
            for (size_t j = (i + 1) & (SLOTS - 1); live[j]; j = (j + 1) & (SLOTS - 1)) {
                void *q = live[j];
                live[j] = NULL;
                n_live--;
                track(q);
            }
            return;
        }
}

static bool should_fail(void)
{
    return fail_at > 0 && ++n_calls == fail_at;
}

void *__wrap_malloc(size_t n)
{
    void *p = should_fail() ? NULL : __real_malloc(n);
    if (p && fail_at > 0)
        track(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = should_fail() ? NULL : __real_calloc(n, size);
    if (p && fail_at > 0)
        track(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __real_realloc(old, n);
    if (p && fail_at > 0) {
        if (old)
            untrack(old);
        track(p);
    }
    return p;
}

void __wrap_free(void *p)
{
    if (p && fail_at > 0)
        untrack(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    char *p = should_fail() ? NULL : __real_strdup(s);
    if (p && fail_at > 0)
        track(p);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    char *p = should_fail() ? NULL : __real_strndup(s, n);
    if (p && fail_at > 0)
        track(p);
    return p;
}

/* jansson's allocations are counted (a leaked json_t shows) but never failed:
 * jansson 2.14 itself asserts on some (lex_scan_string), which is its
 * limit, not resnetd's. */
static void *json_malloc(size_t n)
{
    void *p = __real_malloc(n);
    if (p && fail_at > 0)
        track(p);
    return p;
}
static void json_free(void *p) { __wrap_free(p); }

/* Runs fn with allocation N failing, for every N until fn needs fewer;
 * returns how many allocations a full run made. */
static long sweep(const char *what, rd_status_t (*fn)(rd_error_t *err, void *out), void *out,
                  void (*check_clean)(void *out))
{
    json_set_alloc_funcs(json_malloc, json_free);
    for (long n = 1;; n++) {
        rd_error_t err = {0};
        memset(live, 0, sizeof live);
        n_live = n_calls = 0;
        fail_at = n;
        rd_status_t s = fn(&err, out);
        long calls = n_calls, leaked = n_live;
        fail_at = 0;
        if (calls < n) { /* nothing failed: the run is complete */
            ck_assert_msg(s == RD_OK, "%s: %s", what, err.msg);
            ck_assert_msg(leaked == 0, "%s: a complete run leaked %ld blocks", what, leaked);
            json_set_alloc_funcs(malloc, free);
            return n - 1;
        }
        ck_assert_msg(leaked == 0, "%s: allocation %ld failed (%s): %ld blocks leaked", what, n,
                      s == RD_OK ? "yet RD_OK" : err.msg, leaked);
        if (s == RD_OK)
            continue;
        ck_assert_msg(err.msg[0], "%s: allocation %ld failed with no message", what, n);
        check_clean(out);
    }
}

/* ---- the loader: open, build, free ---- */

typedef struct {
    net_t *net;
    model_info_t info;
} loaded_t;

static rd_status_t load_once(rd_error_t *err, void *out)
{
    loaded_t *l = out;
    safetensors_t *st = NULL;
    rd_status_t s = safetensors_open(model_path, &st, err);
    if (s == RD_OK)
        s = loader_build(st, model_path, NULL, &l->net, &l->info, err);
    safetensors_close(st);
    if (s == RD_OK) { /* a complete run frees what it made, so leaks still count */
        net_free(l->net);
        model_info_clear(&l->info);
        l->net = NULL;
    }
    return s;
}

static void loaded_clean(void *out)
{
    loaded_t *l = out;
    ck_assert_ptr_null(l->net);
    ck_assert_ptr_null(l->info.labels);
}

START_TEST(loader_survives_allocation_failure)
{
    write_text("labels.txt", "a\nb\nc\nd\ne\n");
    spec_t sp = basic_spec();
    sp.meta[0] = "labels_file", sp.meta[1] = "labels.txt";
    sp.meta[2] = "mean", sp.meta[3] = "[0.5, 0.5, 0.5]";
    write_model(&sp, "m.safetensors");
    loaded_t l = {0};
    long n = sweep("loader (labels_file)", load_once, &l, loaded_clean);
    printf("loader, labels_file: %ld allocations, each one failed once\n", n);
    ck_assert_int_gt(n, 20);

    spec_t inline_labels = bottleneck_spec();
    inline_labels.meta[0] = "labels", inline_labels.meta[1] = "[\"x\",\"y\",\"z\"]";
    write_model(&inline_labels, "m.safetensors");
    n = sweep("loader (labels)", load_once, &l, loaded_clean);
    printf("loader, labels: %ld allocations, each one failed once\n", n);
}
END_TEST

/* ---- the config reader ----
 * Its only allocations are jansson's (json_loadb and the values), which are
 * counted but not failed (see json_malloc), so this checks that a full read
 * frees every json_t, and that a future allocation of its own fails cleanly. */

static const char config_text[] =
    "{\"port\": 9000, \"bind\": \"0.0.0.0\", \"model\": \"models/m.safetensors\","
    " \"mean\": [1, 2, 3], \"std\": [1, 1, 1], \"input_size\": \"128x96\","
    " \"log_level\": \"debug\", \"access_log\": false, \"auth_token\": \"abc-123\"}";

static rd_status_t config_once(rd_error_t *err, void *out)
{
    config_t *cfg = out;
    *cfg = config_default_params();
    return config_load_buffer(config_text, sizeof config_text - 1, "test.json", cfg, err);
}

static void config_clean(void *out) { (void)out; }

START_TEST(config_survives_allocation_failure)
{
    config_t cfg;
    long n = sweep("config", config_once, &cfg, config_clean);
    printf("config: %ld allocations of its own, each one failed once\n", n);
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_int_eq(cfg.input_w, 96);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("allocation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, loader_survives_allocation_failure);
    tcase_add_test(tc, config_survives_allocation_failure);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
