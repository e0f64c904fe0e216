/* engine_internal.h - what the engine offers the calibrator (calibrate.c)
 * beyond the public engine.h: the quantization points of its FP32 plans. */
#ifndef RESNETD_ENGINE_INTERNAL_H
#define RESNETD_ENGINE_INTERNAL_H

#include "plan.h"
#include "resnetd/engine.h"

/* Number of quantization points (quant.h) of the engine's net. */
int engine_n_points(const engine_t *eng);

/* Whether point p is stored signed (s8) in INT8 plans, else u8. */
int engine_point_signed(const engine_t *eng, int p);

/* engine_run that also hands each quantization point's activations to
 * observe (plan_run_observed); FP32 engines only. */
rd_status_t engine_run_observed(engine_t *eng, const float *input, int n_images, float *logits,
                                plan_observer_t observe, void *user, rd_error_t *err);

#endif
