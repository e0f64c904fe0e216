/* plan.h - internal: a net_t turned into oneDNN primitives for one batch size.
 * A plan is a list of steps (primitive + arguments) built once per batch size;
 * running it binds the caller's input and logits and executes the steps.
 * Everything plans of one engine can share lives in a plan_ctx_t: the oneDNN
 * engine and stream, one activation arena and one scratchpad (grown to the
 * largest plan; valid because an engine runs one batch at a time), and the
 * weights reordered into the layouts the primitives chose (plan_mem.c).
 *
 * THREADS: none of this is thread-safe; engine.c serialises all use. */
#ifndef RESNETD_PLAN_H
#define RESNETD_PLAN_H

#include <dnnl.h>
#include <dnnl_debug.h> /* dnnl_status2str, for DNNL_TRY */
#include <stdbool.h>
#include <stddef.h>

#include "net.h"
#include "resnetd/error.h"

/* Runs a oneDNN call; on failure records the call's text and oneDNN's status
 * in err, sets the local `st` and jumps to the local `fail` label. */
#define DNNL_TRY(call)                                                                     \
    do {                                                                                   \
        dnnl_status_t dnnl_s_ = (call);                                                    \
        if (dnnl_s_ != dnnl_success) {                                                     \
            st = rd_error_set(err, RD_ERR_DNNL, "%s: %s", #call, dnnl_status2str(dnnl_s_)); \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

typedef struct plan_ctx plan_ctx_t;
typedef struct plan plan_t;

/* Creates the CPU engine and stream and empty shared buffers. *out is owned
 * by the caller (plan_ctx_free, after every plan built on it is freed). */
rd_status_t plan_ctx_create(plan_ctx_t **out, rd_error_t *err);
void plan_ctx_free(plan_ctx_t *ctx);

dnnl_engine_t plan_ctx_engine(const plan_ctx_t *ctx);
dnnl_stream_t plan_ctx_stream(const plan_ctx_t *ctx);

/* Returns, in *out, a memory holding src (plain, described by user_md)
 * converted to want_md; reordered once and cached in ctx, keyed by src and
 * want_md, so plans for other batch sizes share it. When want_md equals
 * user_md the memory wraps src itself, which must outlive ctx. */
rd_status_t plan_ctx_weights(plan_ctx_t *ctx, const void *src, const dnnl_memory_desc_t *user_md,
                             const dnnl_memory_desc_t *want_md, dnnl_memory_t *out,
                             rd_error_t *err);

/* Grows the shared arena and scratchpad to at least these sizes (contents are
 * not kept). Plans notice growth through plan_ctx_generation and rebind. */
rd_status_t plan_ctx_reserve(plan_ctx_t *ctx, size_t arena_bytes, size_t scratch_bytes,
                             rd_error_t *err);
unsigned plan_ctx_generation(const plan_ctx_t *ctx);
unsigned char *plan_ctx_arena(const plan_ctx_t *ctx);
unsigned char *plan_ctx_scratch(const plan_ctx_t *ctx);

/* plan_create flags. */
#define PLAN_WINOGRAD 1u /* Winograd 3x3 convolutions where they pay (f32 only) */
#define PLAN_INT8 2u     /* u8/s8 convolutions; the net must be quantized (quant.h) */
#define PLAN_BF16 4u     /* bf16 convolutions and activations */

/* Builds the plan for n_images images of input_h x input_w. net must stay
 * alive and unchanged until the plan and ctx are freed (small tensors such as
 * biases are used in place). Uses the calling thread's OpenMP thread count. */
rd_status_t plan_create(plan_ctx_t *ctx, const net_t *net, int n_images, int input_h,
                        int input_w, unsigned flags, plan_t **out, rd_error_t *err);

/* Runs input [n][3][h][w] (NCHW f32) to logits [n][n_classes]. */
rd_status_t plan_run(plan_t *plan, const float *input, float *logits, rd_error_t *err);

/* Called with the f32 values of quantization point `point` (quant.h) for the
 * whole batch, in the plan's layout (padding included, as zeros). */
typedef void (*plan_observer_t)(void *user, int point, const float *data, size_t count);

/* plan_run on an FP32 plan that also hands every quantization point's tensor
 * to observe (the input first, then each conv's output in order). Slower:
 * it waits for the stream after each of those steps. */
rd_status_t plan_run_observed(plan_t *plan, const float *input, float *logits,
                              plan_observer_t observe, void *user, rd_error_t *err);

/* After plan_run: copies what the last run left in the arena, reordered to
 * plain layouts, into pooled [n][C] (the global average pooling's output, the
 * fc's input) and feature_map [n][C][h][w] (the last stage's output, f32);
 * either may be NULL. Call before anything else runs on the plan's context.
 * The reorders are made on the first call, so plans that are never asked
 * cost nothing more. */
rd_status_t plan_read_features(plan_t *plan, float *pooled, float *feature_map,
                               rd_error_t *err);

/* The last stage's output shape: channels, height, width. */
void plan_feature_shape(const plan_t *plan, int *c, int *h, int *w);

int plan_batch(const plan_t *plan);

/* NULL is a no-op. */
void plan_free(plan_t *plan);

#endif
