/* test_batcher_timing.c - test_batcher's batching delay, producers and argument checks.
 * Fixtures: batcher_fixture.c. */
#include "batcher_fixture.h"

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

void batcher_timing_tests(TCase *tc)
{
    tcase_add_test(tc, lone_item_runs_without_waiting);
    tcase_add_test(tc, producer_makes_the_worker_wait_and_batch);
    tcase_add_test(tc, full_batch_runs_despite_producers);
    tcase_add_test(tc, bad_arguments_are_refused);
}
