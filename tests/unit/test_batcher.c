/* test_batcher.c - the batching queue with a fake model (no oneDNN): each
 * item gets its own logits, batches above 1 form, deadlines, cancellation,
 * queue-full, engine failures and drain all complete every item exactly once.
 * The fake can hold the worker inside a run ("gate") so that every scenario
 * is ordered deterministically, with no timing assumptions; the worker waits
 * for company only while a producer is registered (batcher_producer_enter). One last test
 * runs a real tiny ResNet engine behind the batcher and compares each item's
 * logits with engine_run on that image alone. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "safetensors.h"

#define H 2
#define W 2
#define IMG (3 * H * W)
#define CLASSES 5
#define POISON -1000.0f

/* ---- the fake model: logits[c] = input[c] + input[IMG-1]; POISON in input[0] fails the batch ---- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gated;  /* runs wait here while true */
    int entered; /* runs started */
    int n_runs;
    int sizes[4096];
} fake_t;

static fake_t fake;

static void fake_reset(bool gated)
{
    pthread_mutex_init(&fake.mu, NULL);
    pthread_cond_init(&fake.cv, NULL);
    fake.gated = gated;
    fake.entered = fake.n_runs = 0;
}

static void fake_free(void)
{
    pthread_cond_destroy(&fake.cv);
    pthread_mutex_destroy(&fake.mu);
}

static void fake_wait_entered(int n)
{
    pthread_mutex_lock(&fake.mu);
    while (fake.entered < n)
        pthread_cond_wait(&fake.cv, &fake.mu);
    pthread_mutex_unlock(&fake.mu);
}

static void fake_open_gate(void)
{
    pthread_mutex_lock(&fake.mu);
    fake.gated = false;
    pthread_cond_broadcast(&fake.cv);
    pthread_mutex_unlock(&fake.mu);
}

static rd_status_t fake_run(void *ctx, const float *input, int n, float *logits, rd_error_t *err)
{
    ck_assert_ptr_eq(ctx, &fake);
    pthread_mutex_lock(&fake.mu);
    fake.entered++;
    pthread_cond_broadcast(&fake.cv);
    while (fake.gated)
        pthread_cond_wait(&fake.cv, &fake.mu);
    fake.sizes[fake.n_runs++] = n;
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < n; i++)
        if (input[(size_t)i * IMG] == POISON)
            return rd_error_set(err, RD_ERR_DNNL, "fake engine failure on image %d", i);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < CLASSES; c++)
            logits[i * CLASSES + c] = input[i * IMG + c] + input[i * IMG + IMG - 1];
    return RD_OK;
}

/* ---- requests ---- */
typedef struct {
    batcher_item_t item;
    float input[IMG];
    float logits[CLASSES];
    atomic_int n_done;
} req_t;

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int total_done;

static void on_done(batcher_item_t *item, void *ctx)
{
    req_t *r = ctx;
    ck_assert_ptr_eq(item, &r->item);
    atomic_fetch_add(&r->n_done, 1);
    pthread_mutex_lock(&done_mu);
    total_done++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&done_mu);
    while (total_done < n)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

static void req_init(req_t *r, int id, int64_t deadline_ns)
{
    for (int i = 0; i < IMG; i++)
        r->input[i] = (float)(id * 100 + i);
    for (int c = 0; c < CLASSES; c++)
        r->logits[c] = -1; /* untouched unless BATCHER_OK */
    atomic_init(&r->n_done, 0);
    batcher_item_init(&r->item, r->input, r->logits, deadline_ns, on_done, r);
}

/* The fake's answer for request id, computed here independently. */
static void check_logits(const req_t *r, int id)
{
    for (int c = 0; c < CLASSES; c++)
        ck_assert_float_eq(r->logits[c], (float)(id * 100 + c) + (float)(id * 100 + IMG - 1));
}

static batcher_t *make(int max_batch, int64_t delay_us, int max_len, metrics_t *m)
{
    pthread_mutex_lock(&done_mu);
    total_done = 0;
    pthread_mutex_unlock(&done_mu);
    batcher_params_t p = batcher_default_params();
    p.max_batch_size = max_batch;
    p.max_queue_delay_us = delay_us;
    p.max_queue_length = max_len;
    p.run_fn = fake_run;
    p.run_ctx = &fake;
    p.input_h = H;
    p.input_w = W;
    p.n_classes = CLASSES;
    batcher_t *b;
    rd_error_t err;
    ck_assert_msg(batcher_create(NULL, &p, m, &b, &err) == RD_OK, "%s", err.msg);
    return b;
}

START_TEST(full_batch_runs_as_one)
{
    fake_reset(false);
    metrics_t *m;
    ck_assert_int_eq(metrics_create("t", &m, NULL), RD_OK);
    /* a delay of 10 s: only a full batch can start the run, so batching is certain */
    batcher_t *b = make(4, 10000000, 16, m);
    req_t r[4];
    batcher_item_t *items[4];
    for (int i = 0; i < 4; i++) {
        req_init(&r[i], i + 1, 0);
        items[i] = &r[i].item;
    }
    ck_assert_int_eq(batcher_submit_many(b, items, 4, NULL), RD_OK);
    wait_done(4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(atomic_load(&r[i].n_done), 1);
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        ck_assert_int_eq(r[i].item.batch_size, 4);
        ck_assert(r[i].item.enqueue_ns > 0 && r[i].item.queue_ns >= 0 && r[i].item.inference_ns >= 0);
        check_logits(&r[i], i + 1);
    }
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    ck_assert_int_eq(fake.n_runs, 1);
    ck_assert_int_eq(fake.sizes[0], 4);
    ck_assert_uint_eq(metrics_histogram_count(m, METRICS_H_BATCH_SIZE), 1);
    ck_assert_uint_eq(metrics_histogram_count(m, METRICS_H_QUEUE), 4);
    ck_assert_double_eq(metrics_gauge_get(m, METRICS_G_QUEUE_DEPTH), 0);
    batcher_destroy(b);
    metrics_destroy(m);
    fake_free();
}
END_TEST

#define N_SUBMITTERS 4
#define PER_SUBMITTER 40

typedef struct {
    batcher_t *b;
    req_t *reqs;
    int first_id;
} submitter_t;

static void *submitter(void *arg)
{
    submitter_t *s = arg;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        req_init(&s->reqs[i], s->first_id + i, 0);
        rd_error_t err;
        ck_assert_msg(batcher_submit(s->b, &s->reqs[i].item, &err) == RD_OK, "%s", err.msg);
    }
    return NULL;
}

START_TEST(concurrent_submitters_get_their_own_results)
{
    fake_reset(true);
    batcher_t *b = make(8, 2000, 1 + N_SUBMITTERS * PER_SUBMITTER, NULL);
    /* hold the worker in a first run so that everything below queues up behind it */
    req_t first;
    req_init(&first, 999, 0);
    ck_assert_int_eq(batcher_submit(b, &first.item, NULL), RD_OK);
    fake_wait_entered(1);
    static req_t reqs[N_SUBMITTERS][PER_SUBMITTER];
    pthread_t t[N_SUBMITTERS];
    submitter_t s[N_SUBMITTERS];
    for (int i = 0; i < N_SUBMITTERS; i++) {
        s[i] = (submitter_t){b, reqs[i], 1 + i * PER_SUBMITTER};
        ck_assert_int_eq(pthread_create(&t[i], NULL, submitter, &s[i]), 0);
    }
    for (int i = 0; i < N_SUBMITTERS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(batcher_queue_depth(b), N_SUBMITTERS * PER_SUBMITTER);
    fake_open_gate();
    wait_done(1 + N_SUBMITTERS * PER_SUBMITTER);
    check_logits(&first, 999);
    for (int i = 0; i < N_SUBMITTERS; i++)
        for (int j = 0; j < PER_SUBMITTER; j++) {
            ck_assert_int_eq(atomic_load(&reqs[i][j].n_done), 1);
            ck_assert_int_eq(reqs[i][j].item.outcome, BATCHER_OK);
            check_logits(&reqs[i][j], 1 + i * PER_SUBMITTER + j);
        }
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    /* 160 queued items with max_batch_size 8: every run after the first is full */
    ck_assert_int_eq(fake.n_runs, 1 + N_SUBMITTERS * PER_SUBMITTER / 8);
    for (int i = 1; i < fake.n_runs; i++)
        ck_assert_int_eq(fake.sizes[i], 8);
    batcher_destroy(b);
    fake_free();
}
END_TEST

START_TEST(queue_full_is_refused_without_done)
{
    fake_reset(true);
    batcher_t *b = make(1, 0, 2, NULL);
    req_t r[5];
    for (int i = 0; i < 5; i++)
        req_init(&r[i], i, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    fake_wait_entered(1); /* r0 is running, the queue is empty */
    ck_assert_int_eq(batcher_submit(b, &r[1].item, NULL), RD_OK);
    ck_assert_int_eq(batcher_submit(b, &r[2].item, NULL), RD_OK);
    rd_error_t err;
    ck_assert_int_eq(batcher_submit(b, &r[3].item, &err), RD_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "queue full"));
    batcher_item_t *two[2] = {&r[3].item, &r[4].item};
    ck_assert_int_eq(batcher_submit_many(b, two, 2, &err), RD_ERR_LIMIT);
    ck_assert_int_eq(batcher_queue_depth(b), 2);
    fake_open_gate();
    wait_done(3);
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        check_logits(&r[i], i);
    }
    ck_assert_int_eq(atomic_load(&r[3].n_done), 0);
    ck_assert_int_eq(atomic_load(&r[4].n_done), 0);
    batcher_destroy(b);
    fake_free();
}
END_TEST

static atomic_int gone_asked;

static bool always_gone(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&gone_asked, 1);
    return true;
}

START_TEST(expired_and_cancelled_items_are_dropped)
{
    fake_reset(true);
    metrics_t *m;
    ck_assert_int_eq(metrics_create("t", &m, NULL), RD_OK);
    batcher_t *b = make(4, 0, 8, m);
    req_t r[5];
    req_init(&r[0], 0, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    fake_wait_entered(1);
    req_init(&r[1], 1, clock_now_ns() + 1000000); /* 1 ms: long gone when the gate opens */
    req_init(&r[2], 2, 0);
    req_init(&r[3], 3, clock_now_ns() + 3600LL * 1000000000); /* an hour */
    req_init(&r[4], 4, 0);
    r[4].item.gone = always_gone; /* its client hung up while it was queued */
    atomic_store(&gone_asked, 0);
    for (int i = 1; i < 5; i++)
        ck_assert_int_eq(batcher_submit(b, &r[i].item, NULL), RD_OK);
    batcher_item_cancel(&r[2].item);
    struct timespec ms2 = {0, 2000000};
    while (clock_now_ns() < r[1].item.deadline_ns)
        nanosleep(&ms2, NULL);
    fake_open_gate();
    wait_done(5);
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    ck_assert_int_eq(r[4].item.outcome, BATCHER_CANCELLED);
    ck_assert_float_eq(r[4].logits[0], -1);
    ck_assert_int_eq(atomic_load(&gone_asked), 1);
    ck_assert_int_eq(r[1].item.outcome, BATCHER_EXPIRED);
    ck_assert_int_eq(r[1].item.error.code, RD_ERR_TIMEOUT);
    ck_assert_float_eq(r[1].logits[0], -1);
    ck_assert_int_eq(r[1].item.batch_size, 0);
    ck_assert_int_eq(r[2].item.outcome, BATCHER_CANCELLED);
    ck_assert_float_eq(r[2].logits[0], -1);
    ck_assert_int_eq(r[3].item.outcome, BATCHER_OK);
    ck_assert_int_eq(r[3].item.batch_size, 1);
    check_logits(&r[3], 3);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(atomic_load(&r[i].n_done), 1);
    ck_assert_int_eq(fake.n_runs, 2);
    ck_assert_int_eq(fake.sizes[1], 1);
    char *text;
    ck_assert_int_eq(metrics_render(m, &text, NULL, NULL), RD_OK);
    ck_assert_ptr_nonnull(strstr(text, "resnetd_queue_dropped_total{reason=\"deadline\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "resnetd_queue_dropped_total{reason=\"cancelled\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "resnetd_images_classified_total 2\n"));
    free(text);
    batcher_destroy(b);
    metrics_destroy(m);
    fake_free();
}
END_TEST

START_TEST(engine_failure_fails_its_batch_only)
{
    fake_reset(true);
    batcher_t *b = make(4, 0, 8, NULL);
    req_t r[4];
    req_init(&r[0], 0, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    fake_wait_entered(1);
    req_init(&r[1], 1, 0);
    req_init(&r[2], 2, 0);
    r[2].input[0] = POISON;
    batcher_item_t *two[2] = {&r[1].item, &r[2].item};
    ck_assert_int_eq(batcher_submit_many(b, two, 2, NULL), RD_OK);
    fake_open_gate();
    wait_done(3);
    req_init(&r[3], 3, 0); /* the worker survives the failure */
    ck_assert_int_eq(batcher_submit(b, &r[3].item, NULL), RD_OK);
    wait_done(4);
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    ck_assert_int_eq(r[0].item.outcome, BATCHER_OK);
    for (int i = 1; i <= 2; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_FAILED);
        ck_assert_int_eq(r[i].item.error.code, RD_ERR_DNNL);
        ck_assert_str_eq(r[i].item.error.msg, "fake engine failure on image 1");
        ck_assert_int_eq(r[i].item.batch_size, 2);
    }
    ck_assert_int_eq(r[3].item.outcome, BATCHER_OK);
    check_logits(&r[3], 3);
    batcher_destroy(b);
    fake_free();
}
END_TEST

typedef struct {
    batcher_t *b;
    int64_t timeout_ms;
    rd_status_t status;
} drainer_t;

static void *drainer(void *arg)
{
    drainer_t *d = arg;
    d->status = batcher_drain(d->b, d->timeout_ms, NULL);
    return NULL;
}

/* Starts batcher_drain on another thread and returns once it has stopped accepting. */
static void start_drain(pthread_t *t, drainer_t *d)
{
    ck_assert_int_eq(pthread_create(t, NULL, drainer, d), 0);
    struct timespec ms1 = {0, 1000000};
    while (batcher_accepting(d->b))
        nanosleep(&ms1, NULL);
}

START_TEST(drain_finishes_items_in_flight)
{
    fake_reset(true);
    batcher_t *b = make(2, 0, 8, NULL);
    req_t r[6];
    req_init(&r[0], 0, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    fake_wait_entered(1);
    for (int i = 1; i < 5; i++) {
        req_init(&r[i], i, 0);
        ck_assert_int_eq(batcher_submit(b, &r[i].item, NULL), RD_OK);
    }
    pthread_t t;
    drainer_t d = {b, 60000, RD_ERR_INTERNAL};
    start_drain(&t, &d);
    req_init(&r[5], 5, 0);
    rd_error_t err;
    ck_assert_int_eq(batcher_submit(b, &r[5].item, &err), RD_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "draining"));
    fake_open_gate();
    pthread_join(t, NULL);
    ck_assert_int_eq(d.status, RD_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(atomic_load(&r[i].n_done), 1);
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        check_logits(&r[i], i);
    }
    ck_assert_int_eq(atomic_load(&r[5].n_done), 0);
    ck_assert_int_eq(batcher_drain(b, 0, NULL), RD_OK); /* a second drain is a no-op */
    batcher_destroy(b);
    fake_free();
}
END_TEST

START_TEST(drain_timeout_completes_the_rest_as_shutdown)
{
    fake_reset(true);
    batcher_t *b = make(1, 0, 8, NULL);
    req_t r[3];
    for (int i = 0; i < 3; i++)
        req_init(&r[i], i, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    fake_wait_entered(1);
    ck_assert_int_eq(batcher_submit(b, &r[1].item, NULL), RD_OK);
    ck_assert_int_eq(batcher_submit(b, &r[2].item, NULL), RD_OK);
    pthread_t t;
    drainer_t d = {b, 0, RD_OK};
    start_drain(&t, &d);
    fake_open_gate();
    pthread_join(t, NULL);
    ck_assert_int_eq(d.status, RD_ERR_TIMEOUT);
    ck_assert_int_eq(r[0].item.outcome, BATCHER_OK); /* the batch in progress finishes */
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_SHUTDOWN);
        ck_assert_float_eq(r[i].logits[0], -1);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&r[i].n_done), 1);
    batcher_destroy(b);
    fake_free();
}
END_TEST

START_TEST(destroy_completes_queued_items)
{
    fake_reset(false);
    batcher_t *b = make(8, 10000000, 8, NULL);
    batcher_producer_enter(b); /* a producer that never leaves: they wait 10 s for company */
    req_t r[3];
    for (int i = 0; i < 3; i++) {
        req_init(&r[i], i, 0);
        ck_assert_int_eq(batcher_submit(b, &r[i].item, NULL), RD_OK);
    }
    batcher_destroy(b);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&r[i].n_done), 1);
        ck_assert_int_eq(r[i].item.outcome, BATCHER_SHUTDOWN);
    }
    ck_assert_int_eq(fake.n_runs, 0);
    batcher_destroy(NULL);
    fake_free();
}
END_TEST

/* No producer: nothing can join, so a lone item runs at once even though
 * max_queue_delay_us is a minute (waiting would trip the test's timeout). */
START_TEST(lone_item_runs_without_waiting)
{
    fake_reset(false);
    batcher_t *b = make(8, 60000000, 8, NULL);
    batcher_producer_leave(b); /* a leave without an enter is ignored */
    ck_assert_int_eq(batcher_producers(b), 0);
    req_t r;
    req_init(&r, 7, 0);
    ck_assert_int_eq(batcher_submit(b, &r.item, NULL), RD_OK);
    wait_done(1);
    ck_assert_int_eq(r.item.outcome, BATCHER_OK);
    ck_assert_int_eq(r.item.batch_size, 1);
    check_logits(&r, 7);
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    batcher_destroy(b);
    fake_free();
}
END_TEST

/* With a producer registered, a queued item waits for it: the late item joins
 * the same batch, and the producer's leave starts the run at once (the delay
 * is a minute, so only the leave can start it within the test's timeout). */
START_TEST(producer_makes_the_worker_wait_and_batch)
{
    fake_reset(false);
    batcher_t *b = make(8, 60000000, 8, NULL);
    batcher_producer_enter(b);
    ck_assert_int_eq(batcher_producers(b), 1);
    req_t r[2];
    req_init(&r[0], 1, 0);
    ck_assert_int_eq(batcher_submit(b, &r[0].item, NULL), RD_OK);
    /* a worker that did not wait would run r0 alone meanwhile; a correct one never does */
    struct timespec ms1 = {0, 1000000};
    for (int i = 0; i < 100; i++) {
        nanosleep(&ms1, NULL);
        pthread_mutex_lock(&fake.mu);
        int entered = fake.entered;
        pthread_mutex_unlock(&fake.mu);
        ck_assert_msg(entered == 0, "the worker ran without waiting for the producer");
    }
    req_init(&r[1], 2, 0);
    ck_assert_int_eq(batcher_submit(b, &r[1].item, NULL), RD_OK); /* the producer's late item */
    batcher_producer_leave(b);
    ck_assert_int_eq(batcher_producers(b), 0);
    wait_done(2);
    ck_assert_int_eq(fake.n_runs, 1);
    ck_assert_int_eq(fake.sizes[0], 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        ck_assert_int_eq(r[i].item.batch_size, 2);
        check_logits(&r[i], i + 1);
    }
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    batcher_destroy(b);
    fake_free();
}
END_TEST

/* Producers do not hold back a full batch. */
START_TEST(full_batch_runs_despite_producers)
{
    fake_reset(false);
    batcher_t *b = make(2, 60000000, 8, NULL);
    batcher_producer_enter(b);
    req_t r[2];
    for (int i = 0; i < 2; i++) {
        req_init(&r[i], i, 0);
        ck_assert_int_eq(batcher_submit(b, &r[i].item, NULL), RD_OK);
    }
    wait_done(2);
    ck_assert_int_eq(r[1].item.batch_size, 2);
    batcher_producer_leave(b);
    ck_assert_int_eq(batcher_drain(b, 1000, NULL), RD_OK);
    batcher_destroy(b);
    fake_free();
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    fake_reset(false);
    batcher_params_t p = batcher_default_params();
    batcher_t *b = (batcher_t *)1;
    rd_error_t err;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_ERR_ARG); /* no engine, no run_fn */
    ck_assert_ptr_null(b);
    p.run_fn = fake_run;
    p.run_ctx = &fake;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_ERR_ARG); /* no sizes */
    p.input_h = p.input_w = H;
    p.n_classes = CLASSES;
    p.max_batch_size = 0;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_batch_size"));
    p.max_batch_size = 2;
    p.max_queue_length = 0;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_queue_length"));
    p.max_queue_length = 4;
    p.max_queue_delay_us = -1;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_ERR_ARG);
    p.max_queue_delay_us = 0;
    ck_assert_int_eq(batcher_create(NULL, &p, NULL, &b, &err), RD_OK);
    ck_assert_int_eq(batcher_params(b)->n_classes, CLASSES);
    req_t r;
    req_init(&r, 0, 0);
    r.item.done = NULL;
    ck_assert_int_eq(batcher_submit(b, &r.item, &err), RD_ERR_ARG);
    ck_assert_int_eq(batcher_submit(b, NULL, &err), RD_ERR_ARG);
    ck_assert_int_eq(batcher_submit_many(b, NULL, 0, &err), RD_ERR_ARG);
    batcher_destroy(b);
    fake_free();
}
END_TEST

/* ---- a real engine: a seeded ResNet with one basic block per stage ---- */

static uint64_t rng_state;

static float uniform(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) / 16777216.0);
}

static void put_tensor(safetensors_writer_t *w, const char *name, int ndim, const int64_t *shape,
                       float lo, float hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *data = malloc((size_t)n * sizeof *data);
    ck_assert_ptr_nonnull(data);
    for (int64_t i = 0; i < n; i++)
        data[i] = uniform(lo, hi);
    rd_error_t err;
    ck_assert_msg(safetensors_writer_add(w, name, ndim, shape, data, &err) == RD_OK, "%s", err.msg);
    free(data);
}

static void put_conv_bn(safetensors_writer_t *w, const char *conv, const char *bn, int oc, int ic,
                        int k)
{
    char name[96];
    float a = sqrtf(3.0f / (float)(ic * k * k));
    snprintf(name, sizeof name, "%s.weight", conv);
    put_tensor(w, name, 4, (int64_t[]){oc, ic, k, k}, -a, a);
    static const char *const parts[] = {"weight", "bias", "running_mean", "running_var"};
    static const float lo[] = {0.5f, -0.2f, -0.2f, 0.5f}, hi[] = {1.5f, 0.2f, 0.2f, 1.5f};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        put_tensor(w, name, 1, (int64_t[]){oc}, lo[i], hi[i]);
    }
}

/* Writes a ResNet with basic blocks {1,1,1,1}, widths 8..64 and 10 classes. */
static void write_tiny_model(const char *path)
{
    safetensors_writer_t *w;
    rd_error_t err;
    rng_state = 42;
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    put_conv_bn(w, "conv1", "bn1", 8, 3, 7);
    int in = 8;
    for (int st = 0; st < 4; st++) {
        int out = 8 << st;
        char c[64], b[64];
        for (int j = 0; j < 2; j++) {
            snprintf(c, sizeof c, "layer%d.0.conv%d", st + 1, j + 1);
            snprintf(b, sizeof b, "layer%d.0.bn%d", st + 1, j + 1);
            put_conv_bn(w, c, b, out, j ? out : in, 3);
        }
        if (st > 0) {
            snprintf(c, sizeof c, "layer%d.0.downsample.0", st + 1);
            snprintf(b, sizeof b, "layer%d.0.downsample.1", st + 1);
            put_conv_bn(w, c, b, out, in, 1);
        }
        in = out;
    }
    put_tensor(w, "fc.weight", 2, (int64_t[]){10, in}, -0.2f, 0.2f);
    put_tensor(w, "fc.bias", 1, (int64_t[]){10}, -0.5f, 0.5f);
    ck_assert_int_eq(safetensors_writer_meta(w, "input_size", "32", &err), RD_OK);
    ck_assert_msg(safetensors_writer_save(w, path, &err) == RD_OK, "%s", err.msg);
    safetensors_writer_free(w);
}

#define N_REAL 6
#define REAL_IMG (3 * 32 * 32)

typedef struct {
    batcher_item_t item;
    atomic_int n_done;
} real_req_t;

static void on_real_done(batcher_item_t *item, void *ctx)
{
    real_req_t *r = ctx;
    ck_assert_ptr_eq(item, &r->item);
    atomic_fetch_add(&r->n_done, 1);
    pthread_mutex_lock(&done_mu);
    total_done++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

START_TEST(real_engine_batches_match_single_runs)
{
    char path[96];
    snprintf(path, sizeof path, "/tmp/test_batcher_%d.safetensors", (int)getpid());
    write_tiny_model(path);
    engine_params_t ep = engine_default_params();
    ep.n_threads = 1;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(path, &ep, &eng, &err) == RD_OK, "%s", err.msg);
    unlink(path);
    const model_info_t *mi = engine_info(eng);
    ck_assert_int_eq(mi->n_classes, 10);
    ck_assert_int_eq(mi->preproc.input_h, 32);

    static float in[N_REAL][REAL_IMG], want[N_REAL][10], got[N_REAL][10];
    for (int i = 0; i < N_REAL; i++) {
        for (int j = 0; j < REAL_IMG; j++)
            in[i][j] = uniform(-1.5f, 1.5f);
        ck_assert_int_eq(engine_run(eng, in[i], 1, want[i], &err), RD_OK); /* alone, before the worker */
    }
    pthread_mutex_lock(&done_mu);
    total_done = 0;
    pthread_mutex_unlock(&done_mu);
    batcher_params_t bp = batcher_default_params();
    bp.max_batch_size = 3;
    bp.max_queue_delay_us = 10000000; /* only full batches start: two batches of 3 */
    batcher_t *b;
    ck_assert_msg(batcher_create(eng, &bp, NULL, &b, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(batcher_params(b)->n_classes, 10);
    real_req_t r[N_REAL];
    batcher_item_t *items[N_REAL];
    for (int i = 0; i < N_REAL; i++) {
        atomic_init(&r[i].n_done, 0);
        batcher_item_init(&r[i].item, in[i], got[i], 0, on_real_done, &r[i]);
        items[i] = &r[i].item;
    }
    ck_assert_int_eq(batcher_submit_many(b, items, N_REAL, &err), RD_OK);
    wait_done(N_REAL);
    ck_assert_int_eq(batcher_drain(b, 10000, &err), RD_OK);
    batcher_destroy(b);
    for (int i = 0; i < N_REAL; i++) {
        ck_assert_int_eq(r[i].item.outcome, BATCHER_OK);
        ck_assert_int_eq(r[i].item.batch_size, 3);
        float max_abs = 0, max_diff = 0;
        for (int k = 0; k < 10; k++) {
            max_abs = fmaxf(max_abs, fabsf(want[i][k]));
            max_diff = fmaxf(max_diff, fabsf(want[i][k] - got[i][k]));
        }
        ck_assert_float_gt(max_abs, 1e-3f);
        ck_assert_msg(max_diff <= 1e-4f * max_abs, "image %d: max diff %g of %g", i, (double)max_diff,
                      (double)max_abs);
    }
    engine_free(eng);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batcher");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, full_batch_runs_as_one);
    tcase_add_test(tc, concurrent_submitters_get_their_own_results);
    tcase_add_test(tc, queue_full_is_refused_without_done);
    tcase_add_test(tc, expired_and_cancelled_items_are_dropped);
    tcase_add_test(tc, engine_failure_fails_its_batch_only);
    tcase_add_test(tc, drain_finishes_items_in_flight);
    tcase_add_test(tc, drain_timeout_completes_the_rest_as_shutdown);
    tcase_add_test(tc, destroy_completes_queued_items);
    tcase_add_test(tc, lone_item_runs_without_waiting);
    tcase_add_test(tc, producer_makes_the_worker_wait_and_batch);
    tcase_add_test(tc, full_batch_runs_despite_producers);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("engine");
    tcase_add_test(te, real_engine_batches_match_single_runs);
    suite_add_tcase(s, te);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
