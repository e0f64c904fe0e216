/* test_batcher_drain.c - test_batcher's drain and destroy.
 * Fixtures: batcher_fixture.c. */
#include "batcher_fixture.h"

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

void batcher_drain_tests(TCase *tc)
{
    tcase_add_test(tc, drain_finishes_items_in_flight);
    tcase_add_test(tc, drain_timeout_completes_the_rest_as_shutdown);
    tcase_add_test(tc, destroy_completes_queued_items);
}
