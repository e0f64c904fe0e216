/* batcher_fixture.h - shared fixtures of the test_batcher suites (batcher_fixture.c); the test
 * groups live in test_batcher_*.c and are registered by test_batcher.c. */
#ifndef BATCHER_FIXTURE_H
#define BATCHER_FIXTURE_H

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
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gated;  /* runs wait here while true */
    int entered; /* runs started */
    int n_runs;
    int sizes[4096];
} fake_t;

extern fake_t fake;
void fake_reset(bool gated);
void fake_free(void);
void fake_wait_entered(int n);
void fake_open_gate(void);
rd_status_t fake_run(void *ctx, const float *input, int n, float *logits, rd_error_t *err);
typedef struct {
    batcher_item_t item;
    float input[IMG];
    float logits[CLASSES];
    atomic_int n_done;
} req_t;

extern pthread_mutex_t done_mu;
extern pthread_cond_t done_cv;
extern int total_done;
void on_done(batcher_item_t *item, void *ctx);
void wait_done(int n);
void req_init(req_t *r, int id, int64_t deadline_ns);
void check_logits(const req_t *r, int id);
batcher_t *make(int max_batch, int64_t delay_us, int max_len, metrics_t *m);

/* Adds the tests of test_batcher_queue.c to tc. */
void batcher_queue_tests(TCase *tc);
/* Adds the tests of test_batcher_drain.c to tc. */
void batcher_drain_tests(TCase *tc);
/* Adds the tests of test_batcher_timing.c to tc. */
void batcher_timing_tests(TCase *tc);
/* Adds the tests of test_batcher_engine.c to tc. */
void batcher_engine_tests(TCase *tc);

#endif
