/* engine_internal.h - the engine's insides, shared by engine.c (loading),
 * engine_run.c (running) and calibrate.c (which observes the quantization
 * points of FP32 plans). */
#ifndef RESNETD_ENGINE_INTERNAL_H
#define RESNETD_ENGINE_INTERNAL_H

#include <stdatomic.h>

#include "net.h"
#include "plan.h"
#include "resnetd/engine.h"

/* The largest sub_batch engine_load accepts; the defaults are in engine.h. */
#define ENGINE_SUB_BATCH_MAX 1024


/* Metadata keys of a calibrated file (calibrate.c): the largest per-image
 * max |logit - FP32 logit| of INT8 and of BF16 over held-out calibration
 * images; and, in files calibrated before those, the RMS INT8 logit error. */
#define CALIB_INT8_BOUND_KEY "int8_logit_bound"
#define CALIB_BF16_BOUND_KEY "bf16_logit_bound"
#define CALIB_RMS_KEY "int8_logit_rms"

/* BF16 without a measured bound: per image, the top-two gap error (as
 * calibrate.c measures it) over max |logit|. The 90th percentile over the 32
 * held-out images of the 64 calibration photos (.cache/photos/calib, disjoint
 * from the evaluation set) was 0.83% for ResNet-50 and 0.14% for a seeded
 * ResNet-18; rounded up (docs/performance.md). */
#define ENGINE_BF16_REL_BOUND 0.01f

typedef struct {
    plan_t *plan;
    unsigned flags; /* PLAN_* it was built with */
} engine_plan_t;

struct engine {
    model_info_t info;
    net_t *net;
    plan_ctx_t *ctx;
    engine_plan_t *plans; /* one per batch size and precision, in creation order */
    int n_plans;
    int n_threads;
    int sub_batch;
    unsigned plan_flags;
    /* Recheck (engine_run.c): INT8/BF16 images whose top two logits are
     * closer than recheck_margin + recheck_rel * max |logit| run again in
     * FP32; both 0 = never. */
    float recheck_margin, recheck_rel;
    char precision_note[200]; /* why auto chose, or a BF16 warning; "" if none */
    float *recheck_in, *recheck_logits; /* sub_batch images' worth, on first use */
    /* engine_run_outputs: one sub-batch's pooled features [sub_batch][C] and
     * feature maps [sub_batch][C][h][w], plain, on the first request for either */
    float *feat_pooled, *feat_map;
    atomic_uint_least64_t rechecked;
};

/* Number of quantization points (quant.h) of the engine's net. */
int engine_n_points(const engine_t *eng);

/* Whether point p is stored signed (s8) in INT8 plans, else u8. */
int engine_point_signed(const engine_t *eng, int p);

/* engine_run that also hands each quantization point's activations to
 * observe (plan_run_observed); FP32 engines only. */
rd_status_t engine_run_observed(engine_t *eng, const float *input, int n_images, float *logits,
                                plan_observer_t observe, void *user, rd_error_t *err);

#endif
