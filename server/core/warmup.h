/* warmup.h - running a freshly loaded engine once at every sub-batch size its
 * queue can form, before the model is published as ready, so that the first
 * real request does not pay for building oneDNN plans (primitives, reordered
 * weights, the arena). */
#ifndef RESNETD_WARMUP_H
#define RESNETD_WARMUP_H

#include "resnetd/engine.h"
#include "resnetd/error.h"

typedef struct {
    int runs;       /* engine runs made: one per distinct sub-batch size */
    int largest;    /* the largest sub-batch size run */
    double seconds; /* wall time of all of them */
} warmup_result_t;

/* Runs engine on zero images at sizes 1..min(max_batch_size, the engine's
 * sub-batch): any batch of 1..max_batch_size images runs as sub-batches of
 * those sizes only (see engine_sub_batch). Call before the engine has a
 * worker (not thread-safe with engine_run). RD_ERR_ARG for max_batch_size < 1,
 * RD_ERR_NOMEM, or the engine's error. */
rd_status_t warmup_run(engine_t *engine, int max_batch_size, warmup_result_t *out,
                       rd_error_t *err);

#endif
