/* batcher.h - the batching queue between the HTTP threads and the engine.
 * HTTP threads decode and preprocess images, then submit one batcher_item_t
 * per image. One inference worker thread owns the engine: it takes the oldest
 * item, waits up to max_queue_delay_us (counted from that item's enqueue) for
 * company up to max_batch_size - but only while some request is still
 * receiving or decoding images it will submit (a "producer", counted with
 * batcher_producer_enter/leave); with none, nothing can join and the batch
 * runs at once. Then it drops items that are past their deadline or
 * cancelled, copies the rest into one contiguous [n][3][H][W] buffer, runs the
 * engine once, copies each image's logits out and calls each item's done().
 *
 *     batcher_params_t bp = batcher_default_params();
 *     bp.max_batch_size = cfg.max_batch_size;  ...
 *     batcher_t *b; batcher_create(engine, &bp, metrics, &b, &err);
 *     batcher_producer_enter(b);              when a request's body/decoding begins
 *     batcher_item_init(&item, pixels, logits, clock_now_ns() + timeout_ns, on_done, req);
 *     item.features = embedding;              optional: also the pooled features
 *     if (batcher_submit(b, &item, &err) == RD_ERR_LIMIT) -> 503 + Retry-After (done not called)
 *     batcher_producer_leave(b);              after the submit, or when giving up
 *     ... on_done(item, req) runs on the worker thread: check item->outcome ...
 *     batcher_drain(b, drain_timeout_ms); batcher_destroy(b);
 *
 * THREADS: the queue is the one structure shared between the HTTP threads and
 * the worker; a mutex guards it and two condition variables signal "item
 * queued" (to the worker) and "queue empty / worker exited" (to drain). The
 * engine is touched only by the worker thread, so engine_run is never called
 * concurrently. done() callbacks run on the worker thread, outside the lock, one
 * after another; they must be short and must not call batcher_drain/destroy
 * (they may call batcher_submit). batcher_submit*, batcher_producer_*,
 * batcher_queue_depth, batcher_accepting and batcher_item_cancel are thread-safe. batcher_drain and
 * batcher_destroy are called once, by the owner, from a non-worker thread. */
#ifndef RESNETD_BATCHER_H
#define RESNETD_BATCHER_H

#include "model_stats.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "metrics.h"
#include "resnetd/engine.h"
#include "resnetd/error.h"

typedef struct batcher batcher_t;
typedef struct batcher_item batcher_item_t;

/* What happened to an item; set before done() is called. */
typedef enum {
    BATCHER_OK = 0,    /* logits written; answer 200 */
    BATCHER_EXPIRED,   /* deadline passed before compute; logits untouched; answer 504 */
    BATCHER_CANCELLED, /* cancelled before compute (client gone); logits untouched */
    BATCHER_FAILED,    /* the engine failed on its batch, or this image's logits are not
                          finite (RD_ERR_NONFINITE); item->error says why; answer per
                          http_error_status(item->error.code, HTTP_CTX_INFERENCE) */
    BATCHER_SHUTDOWN,  /* still queued when batcher_drain timed out; answer 503 */
} batcher_outcome_t;

/* The function that runs a batch; engine_run by default. Tests inject a fake.
 * input is [n_images][3][input_h][input_w], logits [n_images][n_classes]. */
typedef rd_status_t (*batcher_run_fn)(void *ctx, const float *input, int n_images,
                                      float *logits, rd_error_t *err);

typedef struct {
    int max_batch_size;         /* images per engine run, >= 1; default 8 */
    int64_t max_queue_delay_us; /* how long the oldest queued image waits for company, µs,
                                   while a producer may still add some (see
                                   batcher_producer_enter); 0 = run at once with whatever is
                                   queued; default 2000 */
    int max_queue_length;       /* images waiting (not yet taken by the worker), >= 1;
                                   a submit beyond it fails with RD_ERR_LIMIT; default 64 */
    /* Without an engine (tests, or a custom runner): run_fn is called instead of
     * engine_run and these sizes must be given. With an engine, 0 = from engine_info. */
    batcher_run_fn run_fn; /* NULL = engine_run on the engine */
    void *run_ctx;         /* first argument of run_fn */
    int input_h, input_w;  /* image size in pixels; 0 = from the engine */
    int n_classes;         /* logits per image; 0 = from the engine */
    model_stats_t *stats;  /* this model version's counters (borrowed); NULL = none */
} batcher_params_t;

/* One image in flight. The submitter owns the item and everything it points
 * to; it fills the "in" fields (batcher_item_init does it) and must keep the
 * item, input and logits valid and unmoved until done() has been called,
 * even after cancelling it. Embed it in the request's state. */
struct batcher_item {
    /* in: set by the submitter */
    const float *input;   /* [3][input_h][input_w] preprocessed floats */
    float *logits;        /* [n_classes] floats, written when outcome is BATCHER_OK */
    int64_t deadline_ns;  /* CLOCK_MONOTONIC (clock_now_ns), absolute; 0 = none */
    void (*done)(batcher_item_t *item, void *ctx); /* called exactly once, on the worker */
    void *ctx;            /* second argument of done */
    atomic_bool cancelled; /* set with batcher_item_cancel, from any thread */
    bool (*gone)(void *ctx); /* optional: true when nobody waits for the answer any more
                                (the client went away); asked on the worker right
                                before compute, and the item is then dropped as
                                BATCHER_CANCELLED. NULL = never */
    /* optional outputs, written with the logits when outcome is BATCHER_OK; NULL =
     * not wanted (the default), so a batch can mix items that want them and items
     * that don't, and a batch where none does costs nothing more. Sizes:
     * engine_feature_shape. Only the engine runs them (no run_fn): with a
     * run_fn, an item that asks fails with RD_ERR_UNSUPPORTED. */
    float *features;      /* [channels]: the globally pooled vector (embedding) */
    float *feature_map;   /* [channels][height][width]: the last stage's output */

    /* out: set by the batcher before done() */
    batcher_outcome_t outcome;
    rd_error_t error;     /* code and message when outcome != BATCHER_OK */
    int64_t enqueue_ns;   /* when batcher_submit queued it (CLOCK_MONOTONIC) */
    int64_t queue_ns;     /* enqueue to the start of its batch (or to the drop) */
    int64_t inference_ns; /* the run time of its batch; 0 when not run */
    int batch_size;       /* images in its batch; 0 when not run */
    int64_t cpu_ns;       /* its share of its batch's CPU time (the worker's OpenMP team,
                             cpu_team_ns): the batch's divided by its images; 0 when not run */

    /* private to the batcher */
    batcher_item_t *next;
};

/* Defaults as documented on batcher_params_t (no run_fn, sizes from the engine). */
batcher_params_t batcher_default_params(void);

/* Fills the in fields and clears the rest. ctx and deadline_ns may be 0/NULL. */
void batcher_item_init(batcher_item_t *item, const float *input, float *logits,
                       int64_t deadline_ns, void (*done)(batcher_item_t *, void *), void *ctx);

/* Marks an item so that the worker drops it (BATCHER_CANCELLED) instead of
 * running it, if it has not started yet. done() is still called exactly once,
 * so the item must stay valid until then. Thread-safe, lock-free. */
void batcher_item_cancel(batcher_item_t *item);

/* Starts the worker thread. engine may be NULL only when params->run_fn and the
 * sizes are set; the batcher borrows it (the caller frees it after
 * batcher_destroy). metrics may be NULL; the batcher records the queue depth
 * gauge, queue/inference/batch-size histograms, images classified and drops.
 * Buffers for one full batch are allocated here, once. Fails with RD_ERR_ARG
 * (bad params, naming the field), RD_ERR_NOMEM, or RD_ERR_INTERNAL if the thread
 * cannot start; *out is NULL then. */
rd_status_t batcher_create(engine_t *engine, const batcher_params_t *params, metrics_t *metrics,
                           batcher_t **out, rd_error_t *err);

/* Queues one item. RD_OK: queued, and done() will be called exactly once on
 * the worker thread - possibly before batcher_submit returns. RD_ERR_LIMIT: the
 * queue is full or the batcher is draining; done() is NOT called and the item
 * is the caller's again (answer 503 with Retry-After). RD_ERR_ARG: a NULL item,
 * input, logits or done. Thread-safe. */
rd_status_t batcher_submit(batcher_t *b, batcher_item_t *item, rd_error_t *err);

/* Queues n items all or none (a multi-image request is never half queued).
 * Same results as batcher_submit; on failure no done() is called for any of
 * them. RD_ERR_LIMIT also when n exceeds max_queue_length. Thread-safe. */
rd_status_t batcher_submit_many(batcher_t *b, batcher_item_t **items, int n, rd_error_t *err);

/* Producers: requests that have begun receiving or decoding images that they
 * will submit. The worker waits up to max_queue_delay_us for company only while
 * the count is above 0, so a lone request is not delayed for nothing. Call
 * enter when such a request starts (its body or its decoding), and leave
 * exactly once per enter, after its submit or when it fails without one;
 * leaving after the submit (not before) lets the item wait for the others.
 * A leave without an enter is ignored. Thread-safe. */
void batcher_producer_enter(batcher_t *b);
void batcher_producer_leave(batcher_t *b);

/* Producers now (between enter and leave). Thread-safe. */
int batcher_producers(batcher_t *b);

/* Images waiting in the queue now (not counting the batch being run). Thread-safe. */
int batcher_queue_depth(batcher_t *b);

/* False once batcher_drain has begun. Thread-safe. */
bool batcher_accepting(batcher_t *b);

/* The batcher's effective parameters (with the engine's sizes filled in). */
const batcher_params_t *batcher_params(const batcher_t *b);

/* Stops accepting (later submits get RD_ERR_LIMIT), lets the worker finish
 * every queued item, then joins it. If the queue has not emptied after
 * timeout_ms, the items still queued are completed with BATCHER_SHUTDOWN
 * (done() called) after the batch in progress, and RD_ERR_TIMEOUT is returned;
 * else RD_OK. Either way the worker has exited when it returns. A second call
 * returns RD_OK at once. Call from the owning thread, never from done(). */
rd_status_t batcher_drain(batcher_t *b, int64_t timeout_ms, rd_error_t *err);

/* True when called on b's worker thread (from a done() callback). */
bool batcher_on_worker(const batcher_t *b);

/* Drains with timeout 0 if not yet drained (so every queued item gets its
 * done() call), joins the worker and frees everything. Does not free the
 * engine or the metrics. NULL is a no-op. */
void batcher_destroy(batcher_t *b);

#endif
