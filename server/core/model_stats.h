/* model_stats.h - one served model version's counters: what the
 * per-model /metrics series (labels model, version) and Triton's statistics
 * extension (GET /v2/models/{name}[/versions/{v}]/stats) report. The batcher
 * of that version records into it (batcher_params_t.stats); the loader sets
 * the load and warm-up times.
 *
 * THREADS: every field is a C11 atomic updated with relaxed ordering; any
 * thread records or reads at any time without locks. */
#ifndef RESNETD_MODEL_STATS_H
#define RESNETD_MODEL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct {
    atomic_uint_least64_t success;      /* images answered with logits */
    atomic_uint_least64_t fail;         /* images that failed in the engine or were dropped */
    atomic_uint_least64_t batches;      /* engine runs */
    atomic_uint_least64_t batch_images; /* images in those runs */
    atomic_uint_least64_t queue_ns;     /* per image: enqueue to batch start, summed */
    atomic_uint_least64_t compute_ns;   /* per batch: engine_run, summed */
    atomic_uint_least64_t rechecked;    /* images rerun in FP32 (int8/bf16) */
    atomic_int queue_depth;             /* images waiting now */
    atomic_uint_least64_t load_ns;      /* engine_load */
    atomic_uint_least64_t warmup_ns;    /* the warm-up runs */
    atomic_uint_least64_t memory_bytes; /* RSS growth over its load and warm-up (weights as
                                           reordered, plans, arena): an estimate, since other
                                           threads allocate meanwhile */
    atomic_uint_least64_t last_ms;      /* wall-clock ms of the last batch; 0 = none */
} model_stats_t;

#endif
