/* test_batcher_queue.c - test_batcher's queueing, results, refusals, expiry and engine failures.
 * Fixtures: batcher_fixture.c. */
#include "batcher_fixture.h"

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

void batcher_queue_tests(TCase *tc)
{
    tcase_add_test(tc, full_batch_runs_as_one);
    tcase_add_test(tc, concurrent_submitters_get_their_own_results);
    tcase_add_test(tc, queue_full_is_refused_without_done);
    tcase_add_test(tc, expired_and_cancelled_items_are_dropped);
    tcase_add_test(tc, engine_failure_fails_its_batch_only);
}
