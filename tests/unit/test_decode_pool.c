/* test_decode_pool.c - the decode pool: every task once and done() once
 * after them; a request's single task is not stuck behind another request's
 * many (fewest-running pick) nor behind its long ones (the per-request
 * bound); stop with tasks queued runs them all and refuses new work. Tasks
 * are real threads blocking on gates, so the orders checked are the pool's. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "decode_pool.h"

#define MAX_TASKS 64

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;               /* the gate the tasks wait on, when gated */
    bool gated;
    int sleep_ms;            /* each task sleeps this long */
    int ran[MAX_TASKS];      /* per i: times run */
    int running, max_running; /* of this group at once */
    int done;                /* done() calls */
    int done_after;          /* tasks that had returned when done() ran */
    atomic_int *clock;       /* shared start order across groups */
    int start_order[MAX_TASKS];
    int n;
} group_t;

static void group_init(group_t *g, int n, atomic_int *clock)
{
    *g = (group_t){.n = n, .clock = clock};
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
}

static void group_destroy(group_t *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void task(void *ctx, int i)
{
    group_t *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->start_order[i] = atomic_fetch_add(g->clock, 1);
    g->ran[i]++;
    if (++g->running > g->max_running)
        g->max_running = g->running;
    pthread_cond_broadcast(&g->cond);
    while (g->gated && !g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    sleep_ms(g->sleep_ms);
    pthread_mutex_lock(&g->lock);
    g->running--;
    pthread_mutex_unlock(&g->lock);
}

static void done(void *ctx)
{
    group_t *g = ctx;
    pthread_mutex_lock(&g->lock);
    int returned = 0;
    for (int i = 0; i < g->n; i++)
        returned += g->ran[i];
    g->done_after = returned - g->running;
    g->done++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Waits up to 5 s for g's done(); false on timeout. */
static bool wait_done(group_t *g)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    while (!g->done && rc == 0)
        rc = pthread_cond_timedwait(&g->cond, &g->lock, &until);
    bool ok = g->done > 0;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

static void open_gate(group_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

START_TEST(every_task_once_then_done)
{
    atomic_int clock = 0;
    decode_pool_t *p;
    rd_error_t err = {0};
    ck_assert_int_eq(decode_pool_create(3, 2, &p, &err), RD_OK);
    group_t g;
    group_init(&g, 40, &clock);
    ck_assert_int_eq(decode_pool_submit(p, g.n, task, done, &g, &err), RD_OK);
    ck_assert(wait_done(&g));
    for (int i = 0; i < g.n; i++)
        ck_assert_int_eq(g.ran[i], 1);
    ck_assert_int_eq(g.done_after, g.n); /* done() only after every task returned */
    ck_assert_int_le(g.max_running, 2);  /* the per-request bound */
    decode_pool_destroy(p);
    ck_assert_int_eq(g.done, 1);
    group_destroy(&g);
}
END_TEST

/* Two threads, each request may use both: A's 8 tasks fill them; B's one
 * task must start as soon as a thread frees up, not after A's queue. */
START_TEST(single_task_not_behind_many)
{
    atomic_int clock = 0;
    decode_pool_t *p;
    rd_error_t err = {0};
    ck_assert_int_eq(decode_pool_create(2, 2, &p, &err), RD_OK);
    group_t a, b;
    group_init(&a, 8, &clock);
    group_init(&b, 1, &clock);
    a.sleep_ms = 30;
    ck_assert_int_eq(decode_pool_submit(p, a.n, task, done, &a, &err), RD_OK);
    sleep_ms(10); /* A's first two are running */
    ck_assert_int_eq(decode_pool_submit(p, b.n, task, done, &b, &err), RD_OK);
    ck_assert(wait_done(&b));
    ck_assert(wait_done(&a));
    /* B started third: right after A's first two, before A's remaining six */
    ck_assert_int_le(b.start_order[0], 2);
    decode_pool_destroy(p);
    group_destroy(&a);
    group_destroy(&b);
}
END_TEST

/* Three threads, one task per request at once: A's long tasks hold one
 * thread, so B's runs at once, while A's first is still blocked. */
START_TEST(bound_leaves_decoders_free)
{
    atomic_int clock = 0;
    decode_pool_t *p;
    rd_error_t err = {0};
    ck_assert_int_eq(decode_pool_create(3, 1, &p, &err), RD_OK);
    group_t a, b;
    group_init(&a, 4, &clock);
    group_init(&b, 1, &clock);
    a.gated = true;
    ck_assert_int_eq(decode_pool_submit(p, a.n, task, done, &a, &err), RD_OK);
    sleep_ms(20);
    ck_assert_int_eq(decode_pool_submit(p, b.n, task, done, &b, &err), RD_OK);
    ck_assert_msg(wait_done(&b), "B waited behind A's blocked tasks");
    int a_running = 0;
    for (int tries = 0; tries < 500 && a_running < 1; tries++) { /* A's first may still be starting */
        pthread_mutex_lock(&a.lock);
        a_running = a.running;
        pthread_mutex_unlock(&a.lock);
        if (a_running < 1)
            sleep_ms(10);
    }
    ck_assert_int_eq(a_running, 1); /* one of A's, blocked, and no more */
    ck_assert_int_eq(decode_pool_pending(p), a.n);
    open_gate(&a);
    ck_assert(wait_done(&a));
    ck_assert_int_eq(a.max_running, 1);
    decode_pool_destroy(p);
    group_destroy(&a);
    group_destroy(&b);
}
END_TEST

START_TEST(stop_runs_queued_then_refuses)
{
    atomic_int clock = 0;
    decode_pool_t *p;
    rd_error_t err = {0};
    ck_assert_int_eq(decode_pool_create(1, 1, &p, &err), RD_OK);
    group_t a, b;
    group_init(&a, 20, &clock);
    group_init(&b, 5, &clock);
    a.sleep_ms = b.sleep_ms = 2;
    ck_assert_int_eq(decode_pool_submit(p, a.n, task, done, &a, &err), RD_OK);
    ck_assert_int_eq(decode_pool_submit(p, b.n, task, done, &b, &err), RD_OK);
    decode_pool_stop(p); /* returns once everything queued has run */
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_eq(b.done, 1);
    for (int i = 0; i < a.n; i++)
        ck_assert_int_eq(a.ran[i], 1);
    for (int i = 0; i < b.n; i++)
        ck_assert_int_eq(b.ran[i], 1);
    ck_assert_int_eq(decode_pool_pending(p), 0);
    ck_assert_int_eq(decode_pool_submit(p, 1, task, done, &a, &err), RD_ERR_LIMIT);
    decode_pool_stop(p); /* idempotent */
    decode_pool_destroy(p);
    ck_assert_int_eq(a.done, 1);
    group_destroy(&a);
    group_destroy(&b);
}
END_TEST

START_TEST(bad_arguments_and_defaults)
{
    decode_pool_t *p = (decode_pool_t *)1;
    rd_error_t err = {0};
    ck_assert_int_eq(decode_pool_create(0, 1, &p, &err), RD_ERR_ARG);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(decode_pool_create(1, 0, &p, &err), RD_ERR_ARG);
    ck_assert_int_eq(decode_pool_create(1, 1, &p, &err), RD_OK);
    ck_assert_int_eq(decode_pool_submit(p, 0, task, done, NULL, &err), RD_ERR_ARG);
    decode_pool_destroy(p);
    decode_pool_destroy(NULL);
    ck_assert_int_ge(decode_pool_default_per_group(), 1);
    ck_assert_int_eq(decode_pool_default_threads(), decode_pool_default_per_group() + 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("decode_pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_task_once_then_done);
    tcase_add_test(tc, single_task_not_behind_many);
    tcase_add_test(tc, bound_leaves_decoders_free);
    tcase_add_test(tc, stop_runs_queued_then_refuses);
    tcase_add_test(tc, bad_arguments_and_defaults);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
