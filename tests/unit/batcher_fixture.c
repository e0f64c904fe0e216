/* batcher_fixture.c - shared fixtures of the test_batcher suites (see batcher_fixture.h). */
#include "batcher_fixture.h"

/* ---- the fake model: logits[c] = input[c] + input[IMG-1]; POISON in input[0] fails the batch ---- */

fake_t fake;

void fake_reset(bool gated)
{
    pthread_mutex_init(&fake.mu, NULL);
    pthread_cond_init(&fake.cv, NULL);
    fake.gated = gated;
    fake.entered = fake.n_runs = 0;
}

void fake_free(void)
{
    pthread_cond_destroy(&fake.cv);
    pthread_mutex_destroy(&fake.mu);
}

void fake_wait_entered(int n)
{
    pthread_mutex_lock(&fake.mu);
    while (fake.entered < n)
        pthread_cond_wait(&fake.cv, &fake.mu);
    pthread_mutex_unlock(&fake.mu);
}

void fake_open_gate(void)
{
    pthread_mutex_lock(&fake.mu);
    fake.gated = false;
    pthread_cond_broadcast(&fake.cv);
    pthread_mutex_unlock(&fake.mu);
}

rd_status_t fake_run(void *ctx, const float *input, int n, float *logits, rd_error_t *err)
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

pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
int total_done;

void on_done(batcher_item_t *item, void *ctx)
{
    req_t *r = ctx;
    ck_assert_ptr_eq(item, &r->item);
    atomic_fetch_add(&r->n_done, 1);
    pthread_mutex_lock(&done_mu);
    total_done++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

void wait_done(int n)
{
    pthread_mutex_lock(&done_mu);
    while (total_done < n)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

void req_init(req_t *r, int id, int64_t deadline_ns)
{
    for (int i = 0; i < IMG; i++)
        r->input[i] = (float)(id * 100 + i);
    for (int c = 0; c < CLASSES; c++)
        r->logits[c] = -1; /* untouched unless BATCHER_OK */
    atomic_init(&r->n_done, 0);
    batcher_item_init(&r->item, r->input, r->logits, deadline_ns, on_done, r);
}

/* The fake's answer for request id, computed here independently. */
void check_logits(const req_t *r, int id)
{
    for (int c = 0; c < CLASSES; c++)
        ck_assert_float_eq(r->logits[c], (float)(id * 100 + c) + (float)(id * 100 + IMG - 1));
}

batcher_t *make(int max_batch, int64_t delay_us, int max_len, metrics_t *m)
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
