/* batcher.c - the bounded batching queue and the one inference worker.
 *
 * THREADS: b->mu guards the queue (head, tail, depth), the producer count and
 * the state flags (accepting, stopping, aborting, worker_exited, n_shutdown).
 * HTTP threads
 * append under the lock and signal cv_work; the worker takes up to
 * max_batch_size items under the lock, then releases it for everything slow:
 * copying, engine_run and the done() callbacks, so submitters never wait for
 * inference. The batch buffers and the engine are touched by the worker only.
 * The worker waits for company only while some producer (a request between
 * batcher_producer_enter and _leave) might still add an item; the last leave
 * signals cv_work so that a waiting worker starts at once.
 * batcher_drain waits on cv_idle for the worker to announce its exit. An item
 * is never touched after its done() call, because the submitter may free it. */
#include "batcher.h"

#include "cpu_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH_LIMIT 4096
#define MAX_DELAY_US 60000000LL /* a minute: anything longer is surely a unit mistake */

struct batcher {
    engine_t *engine;
    uint64_t rechecked; /* engine_rechecked() after the last batch; worker only */
    batcher_params_t params;
    metrics_t *metrics;
    size_t image_floats; /* 3 * input_h * input_w */

    /* worker-only */
    float *batch_in;          /* [max_batch_size][image_floats] */
    float *batch_out;         /* [max_batch_size][n_classes] */
    batcher_item_t **taken;   /* the items of the batch being formed */
    batcher_item_t **run;     /* the ones that survived the deadline/cancel check */
    float **features, **maps; /* run[i]'s optional outputs, for engine_run_outputs */

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* worker: an item arrived, or stop/abort */
    pthread_cond_t cv_idle; /* drain: the worker exited */
    batcher_item_t *head, *tail;
    int depth;
    int producers; /* requests decoding images they will submit (batcher_producer_enter) */
    bool accepting, stopping, aborting, worker_exited;
    int n_shutdown;

    /* owner-only */
    pthread_t thread;
    bool sync_ready, thread_started, joined;
};

static rd_status_t run_engine(void *ctx, const float *input, int n, float *logits, rd_error_t *err)
{
    return engine_run(ctx, input, n, logits, err);
}

batcher_params_t batcher_default_params(void)
{
    return (batcher_params_t){
        .max_batch_size = 8,
        .max_queue_delay_us = 2000,
        .max_queue_length = 64,
    };
}

void batcher_item_init(batcher_item_t *item, const float *input, float *logits,
                       int64_t deadline_ns, void (*done)(batcher_item_t *, void *), void *ctx)
{
    memset(item, 0, sizeof *item);
    item->input = input;
    item->logits = logits;
    item->deadline_ns = deadline_ns;
    item->done = done;
    item->ctx = ctx;
    atomic_init(&item->cancelled, false);
}

void batcher_item_cancel(batcher_item_t *item)
{
    if (item)
        atomic_store(&item->cancelled, true);
}

static struct timespec timespec_of(int64_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

/* Completes an item that will not run. The item is the submitter's after done(). */
static void finish_dropped(batcher_t *b, batcher_item_t *it, batcher_outcome_t outcome)
{
    static const struct {
        rd_status_t code;
        const char *msg;
        metrics_drop_t reason;
    } why[] = {
        [BATCHER_EXPIRED] = {RD_ERR_TIMEOUT, "deadline passed while queued", METRICS_DROP_DEADLINE},
        [BATCHER_CANCELLED] = {RD_ERR_TIMEOUT, "cancelled: the client went away", METRICS_DROP_CANCELLED},
        [BATCHER_SHUTDOWN] = {RD_ERR_LIMIT, "server shutting down: drain timeout passed while queued",
                              METRICS_DROP_SHUTDOWN},
    };
    it->outcome = outcome;
    rd_error_set(&it->error, why[outcome].code, "%s", why[outcome].msg);
    metrics_count_dropped(b->metrics, why[outcome].reason, 1);
    if (b->params.stats) {
        atomic_fetch_add_explicit(&b->params.stats->fail, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->params.stats->queue_ns, (uint64_t)it->queue_ns,
                                  memory_order_relaxed);
    }
    it->done(it, it->ctx);
}

/* Pops up to max items from the queue into b->taken. Called with mu held. */
static int take_locked(batcher_t *b, int max)
{
    int n = 0;
    while (b->head && n < max) {
        b->taken[n++] = b->head;
        b->head = b->head->next;
    }
    if (!b->head)
        b->tail = NULL;
    b->depth -= n;
    metrics_gauge_add(b->metrics, METRICS_G_QUEUE_DEPTH, -n); /* the total over every model */
    if (b->params.stats)
        atomic_store_explicit(&b->params.stats->queue_depth, b->depth, memory_order_relaxed);
    return n;
}

/* This version's counters (model_stats.h) for one batch of n_run images;
 * their queue times were added as they were taken. */
static void record_stats(batcher_t *b, int n_run, bool ok, int64_t elapsed, uint64_t rechecked)
{
    model_stats_t *st = b->params.stats;
    if (!st)
        return;
    atomic_fetch_add_explicit(ok ? &st->success : &st->fail, (uint64_t)n_run,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&st->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->batch_images, (uint64_t)n_run, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->compute_ns, (uint64_t)elapsed, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->rechecked, rechecked, memory_order_relaxed);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    atomic_store_explicit(&st->last_ms, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000,
                          memory_order_relaxed);
}

/* Runs b->run[0..n_run) on run_fn or, when some item wants features or a
 * feature map, on engine_run_outputs with each item's own buffers. */
static rd_status_t run_engine_batch(batcher_t *b, int n_run, rd_error_t *err)
{
    const batcher_params_t *p = &b->params;
    bool extras = false;
    for (int i = 0; i < n_run; i++) {
        b->features[i] = b->run[i]->features;
        b->maps[i] = b->run[i]->feature_map;
        extras |= b->features[i] || b->maps[i];
    }
    if (!extras)
        return p->run_fn(p->run_ctx, b->batch_in, n_run, b->batch_out, err);
    if (!b->engine || p->run_fn != run_engine)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "features asked of a batcher without an engine");
    engine_outputs_t outs = {.features = b->features, .feature_map = b->maps};
    return engine_run_outputs(b->engine, b->batch_in, n_run, b->batch_out, &outs, err);
}

/* Runs the surviving items of b->taken[0..n) as one batch and completes all of them. */
static void run_batch(batcher_t *b, int n)
{
    const batcher_params_t *p = &b->params;
    int64_t start = clock_now_ns();
    int n_run = 0;
    for (int i = 0; i < n; i++) {
        batcher_item_t *it = b->taken[i];
        it->queue_ns = start - it->enqueue_ns;
        metrics_observe(b->metrics, METRICS_H_QUEUE, (double)it->queue_ns * 1e-9);
        if (atomic_load(&it->cancelled) || (it->gone && it->gone(it->ctx)))
            finish_dropped(b, it, BATCHER_CANCELLED);
        else if (it->deadline_ns && start >= it->deadline_ns)
            finish_dropped(b, it, BATCHER_EXPIRED);
        else {
            memcpy(b->batch_in + (size_t)n_run * b->image_floats, it->input,
                   b->image_floats * sizeof(float));
            b->run[n_run++] = it;
            if (p->stats)
                atomic_fetch_add_explicit(&p->stats->queue_ns, (uint64_t)it->queue_ns,
                                          memory_order_relaxed);
        }
    }
    if (!n_run)
        return;

    rd_error_t err = {RD_OK, ""};
    int64_t t0 = clock_now_ns(), cpu0 = cpu_team_ns();
    rd_status_t s = run_engine_batch(b, n_run, &err);
    int64_t elapsed = clock_now_ns() - t0;
    int64_t cpu_share = (cpu_team_ns() - cpu0) / n_run; /* each image's share of the team's CPU */
    metrics_observe(b->metrics, METRICS_H_INFERENCE, (double)elapsed * 1e-9);
    metrics_observe(b->metrics, METRICS_H_BATCH_SIZE, n_run);
    if (s == RD_OK)
        metrics_count_images(b->metrics, (uint64_t)n_run);
    uint64_t rechecked_now = 0;
    if (b->engine) { /* only this thread runs the engine, so the delta is this batch's */
        uint64_t rechecked = engine_rechecked(b->engine);
        rechecked_now = rechecked - b->rechecked;
        metrics_count_rechecked(b->metrics, rechecked_now);
        b->rechecked = rechecked;
    }
    record_stats(b, n_run, s == RD_OK, elapsed, rechecked_now);
    for (int i = 0; i < n_run; i++) {
        batcher_item_t *it = b->run[i];
        it->inference_ns = elapsed;
        it->cpu_ns = cpu_share;
        it->batch_size = n_run;
        if (s == RD_OK) {
            memcpy(it->logits, b->batch_out + (size_t)i * p->n_classes,
                   (size_t)p->n_classes * sizeof(float));
            bool finite = engine_check_logits(it->logits, p->n_classes, &it->error) == RD_OK;
            it->outcome = finite ? BATCHER_OK : BATCHER_FAILED;
        } else {
            it->outcome = BATCHER_FAILED;
            it->error = err;
            it->error.code = s;
        }
        it->done(it, it->ctx);
    }
}

/* Waits, with mu held, until the batch can start: it is full, no producer
 * could add to it, the oldest item has waited max_queue_delay_us, or a drain
 * asks us to hurry. Without producers a lone request runs at once instead of
 * paying the delay for company that cannot come. */
static void wait_for_company(batcher_t *b)
{
    int64_t until = b->head->enqueue_ns + b->params.max_queue_delay_us * 1000;
    while (b->depth < b->params.max_batch_size && b->producers > 0 && !b->stopping &&
           clock_now_ns() < until) {
        struct timespec ts = timespec_of(until);
        pthread_cond_timedwait(&b->cv_work, &b->mu, &ts);
    }
}

static void *worker_main(void *arg)
{
    batcher_t *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stopping)
            pthread_cond_wait(&b->cv_work, &b->mu);
        if (!b->head)
            break; /* stopping and nothing left */
        if (b->aborting) {
            int n = take_locked(b, b->params.max_batch_size); /* b->taken's size; loop for more */
            b->n_shutdown += n;
            pthread_mutex_unlock(&b->mu);
            for (int i = 0; i < n; i++)
                finish_dropped(b, b->taken[i], BATCHER_SHUTDOWN);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        wait_for_company(b);
        if (b->aborting)
            continue; /* a drain timed out while we waited: drop, don't run */
        int n = take_locked(b, b->params.max_batch_size);
        pthread_mutex_unlock(&b->mu);
        run_batch(b, n);
        pthread_mutex_lock(&b->mu);
    }
    b->worker_exited = true;
    pthread_cond_broadcast(&b->cv_idle);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static rd_status_t check_params(const batcher_params_t *p, rd_error_t *err)
{
    if (p->max_batch_size < 1 || p->max_batch_size > MAX_BATCH_LIMIT)
        return rd_error_set(err, RD_ERR_ARG, "batcher: max_batch_size %d out of range 1..%d",
                            p->max_batch_size, MAX_BATCH_LIMIT);
    if (p->max_queue_delay_us < 0 || p->max_queue_delay_us > MAX_DELAY_US)
        return rd_error_set(err, RD_ERR_ARG, "batcher: max_queue_delay_us %lld out of range 0..%lld",
                            (long long)p->max_queue_delay_us, MAX_DELAY_US);
    if (p->max_queue_length < 1)
        return rd_error_set(err, RD_ERR_ARG, "batcher: max_queue_length %d must be >= 1",
                            p->max_queue_length);
    if (p->input_h < 1 || p->input_w < 1 || p->n_classes < 1 || p->input_h > 65536 ||
        p->input_w > 65536)
        return rd_error_set(err, RD_ERR_ARG, "batcher: bad sizes input %dx%d, %d classes",
                            p->input_h, p->input_w, p->n_classes);
    return RD_OK;
}

/* Resolves sizes and the run function from the engine where not given. */
static rd_status_t resolve_params(engine_t *engine, batcher_params_t *p, rd_error_t *err)
{
    if (!p->run_fn) {
        if (!engine)
            return rd_error_set(err, RD_ERR_ARG, "batcher: neither an engine nor a run_fn given");
        p->run_fn = run_engine;
        p->run_ctx = engine;
    }
    if (engine) {
        const model_info_t *mi = engine_info(engine);
        if (!p->input_h)
            p->input_h = mi->preproc.input_h;
        if (!p->input_w)
            p->input_w = mi->preproc.input_w;
        if (!p->n_classes)
            p->n_classes = mi->n_classes;
    }
    return check_params(p, err);
}

static rd_status_t init_sync(batcher_t *b, rd_error_t *err)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return rd_error_set(err, RD_ERR_INTERNAL, "batcher: pthread_condattr_init failed");
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&b->mu, NULL);
    if (!bad && (bad = pthread_cond_init(&b->cv_work, &ca)) != 0)
        pthread_mutex_destroy(&b->mu);
    if (!bad && (bad = pthread_cond_init(&b->cv_idle, &ca)) != 0) {
        pthread_cond_destroy(&b->cv_work);
        pthread_mutex_destroy(&b->mu);
    }
    pthread_condattr_destroy(&ca);
    if (bad)
        return rd_error_set(err, RD_ERR_INTERNAL, "batcher: mutex/condition init failed (%d)", bad);
    b->sync_ready = true;
    return RD_OK;
}

rd_status_t batcher_create(engine_t *engine, const batcher_params_t *params, metrics_t *metrics,
                           batcher_t **out, rd_error_t *err)
{
    if (!out)
        return rd_error_set(err, RD_ERR_ARG, "batcher_create: out is NULL");
    *out = NULL;
    batcher_params_t p = params ? *params : batcher_default_params();
    rd_status_t s = resolve_params(engine, &p, err);
    if (s != RD_OK)
        return s;
    batcher_t *b = calloc(1, sizeof *b);
    if (!b)
        return rd_error_set(err, RD_ERR_NOMEM, "batcher: out of memory");
    b->engine = engine;
    b->rechecked = engine_rechecked(engine); /* the warm-up's rechecks are not served images */
    b->params = p;
    b->metrics = metrics;
    b->image_floats = (size_t)3 * (size_t)p.input_h * (size_t)p.input_w;
    b->accepting = true;
    size_t nb = (size_t)p.max_batch_size;
    b->batch_in = malloc(nb * b->image_floats * sizeof(float));
    b->batch_out = malloc(nb * (size_t)p.n_classes * sizeof(float));
    b->taken = malloc(nb * sizeof *b->taken);
    b->run = malloc(nb * sizeof *b->run);
    b->features = malloc(nb * sizeof *b->features);
    b->maps = malloc(nb * sizeof *b->maps);
    if (!b->batch_in || !b->batch_out || !b->taken || !b->run || !b->features || !b->maps) {
        s = rd_error_set(err, RD_ERR_NOMEM, "batcher: out of memory for a batch of %d images of %dx%d",
                         p.max_batch_size, p.input_h, p.input_w);
        goto fail;
    }
    if ((s = init_sync(b, err)) != RD_OK)
        goto fail;
    int rc = pthread_create(&b->thread, NULL, worker_main, b);
    if (rc) {
        s = rd_error_set(err, RD_ERR_INTERNAL, "batcher: cannot start the worker thread: %s",
                         strerror(rc));
        goto fail;
    }
    b->thread_started = true;
    *out = b;
    return RD_OK;
fail:
    batcher_destroy(b);
    return s;
}

rd_status_t batcher_submit_many(batcher_t *b, batcher_item_t **items, int n, rd_error_t *err)
{
    if (!b || !items || n < 1)
        return rd_error_set(err, RD_ERR_ARG, "batcher_submit: no batcher or no items");
    for (int i = 0; i < n; i++)
        if (!items[i] || !items[i]->input || !items[i]->logits || !items[i]->done)
            return rd_error_set(err, RD_ERR_ARG, "batcher_submit: item %d lacks input, logits or done", i);
    int64_t now = clock_now_ns();
    pthread_mutex_lock(&b->mu);
    if (!b->accepting) {
        pthread_mutex_unlock(&b->mu);
        return rd_error_set(err, RD_ERR_LIMIT, "server draining: not accepting new images");
    }
    if (n > b->params.max_queue_length - b->depth) {
        int depth = b->depth;
        pthread_mutex_unlock(&b->mu);
        return rd_error_set(err, RD_ERR_LIMIT, "queue full: %d of %d images queued, %d more refused",
                            depth, b->params.max_queue_length, n);
    }
    for (int i = 0; i < n; i++) {
        batcher_item_t *it = items[i];
        it->enqueue_ns = now;
        it->next = NULL;
        if (b->tail)
            b->tail->next = it;
        else
            b->head = it;
        b->tail = it;
    }
    b->depth += n;
    metrics_gauge_add(b->metrics, METRICS_G_QUEUE_DEPTH, n);
    if (b->params.stats)
        atomic_store_explicit(&b->params.stats->queue_depth, b->depth, memory_order_relaxed);
    pthread_cond_signal(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    return RD_OK;
}

rd_status_t batcher_submit(batcher_t *b, batcher_item_t *item, rd_error_t *err)
{
    return batcher_submit_many(b, &item, 1, err);
}

void batcher_producer_enter(batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->producers++;
    pthread_mutex_unlock(&b->mu);
}

void batcher_producer_leave(batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->producers > 0 && --b->producers == 0)
        pthread_cond_signal(&b->cv_work); /* a waiting worker need not wait any more */
    pthread_mutex_unlock(&b->mu);
}

int batcher_producers(batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    int n = b->producers;
    pthread_mutex_unlock(&b->mu);
    return n;
}

bool batcher_on_worker(const batcher_t *b)
{
    return pthread_equal(pthread_self(), b->thread);
}

int batcher_queue_depth(batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    int depth = b->depth;
    pthread_mutex_unlock(&b->mu);
    return depth;
}

bool batcher_accepting(batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    bool accepting = b->accepting;
    pthread_mutex_unlock(&b->mu);
    return accepting;
}

const batcher_params_t *batcher_params(const batcher_t *b) { return &b->params; }

rd_status_t batcher_drain(batcher_t *b, int64_t timeout_ms, rd_error_t *err)
{
    if (!b || !b->thread_started || b->joined)
        return RD_OK;
    int64_t until = clock_now_ns() + (timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    pthread_mutex_lock(&b->mu);
    b->accepting = false;
    b->stopping = true;
    b->aborting = timeout_ms <= 0; /* with no time to wait, drop the queue now */
    pthread_cond_broadcast(&b->cv_work);
    while (!b->worker_exited && !b->aborting) {
        struct timespec ts = timespec_of(until);
        if (pthread_cond_timedwait(&b->cv_idle, &b->mu, &ts) == ETIMEDOUT && !b->worker_exited) {
            b->aborting = true; /* the worker drops what is still queued after this batch */
            pthread_cond_broadcast(&b->cv_work);
        }
    }
    while (!b->worker_exited)
        pthread_cond_wait(&b->cv_idle, &b->mu);
    int n_shutdown = b->n_shutdown;
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    b->joined = true;
    if (n_shutdown)
        return rd_error_set(err, RD_ERR_TIMEOUT,
                            "drain timeout (%lld ms): %d queued images dropped unanswered by the engine",
                            (long long)timeout_ms, n_shutdown);
    return RD_OK;
}

void batcher_destroy(batcher_t *b)
{
    if (!b)
        return;
    batcher_drain(b, 0, NULL);
    if (b->sync_ready) {
        pthread_cond_destroy(&b->cv_idle);
        pthread_cond_destroy(&b->cv_work);
        pthread_mutex_destroy(&b->mu);
    }
    free(b->run);
    free(b->features);
    free(b->maps);
    free(b->taken);
    free(b->batch_out);
    free(b->batch_in);
    free(b);
}
