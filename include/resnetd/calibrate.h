/* calibrate.h - INT8 calibration: run the FP32 model on real, preprocessed
 * images, record the distribution of every quantized activation, choose each
 * one's clipping range, and save a model file that carries the ranges beside
 * the FP32 weights, so that one file serves both precisions.
 *
 *     calib_t *c; rd_error_t err;
 *     calib_create(engine, &c, &err);               // an FP32 engine
 *     calib_add(c, inputs, n, &err);                // as often as needed
 *     calib_save(c, CALIB_PERCENTILE, "m.safetensors", "m-int8.safetensors", &err);
 *     calib_free(c);
 *
 * THREADS: a calib_t drives its engine; one thread at a time. */
#ifndef RESNETD_CALIBRATE_H
#define RESNETD_CALIBRATE_H

#include "resnetd/engine.h"
#include "resnetd/error.h"

/* How a range is chosen from an activation's histogram of |x| (zeros left out). */
typedef enum {
    CALIB_MAX = 0,        /* the largest value seen */
    CALIB_PERCENTILE = 1, /* the 99.99th percentile */
    CALIB_MSE = 2,        /* the range with the least expected squared error,
                             clipping and rounding together */
} calib_method_t;

typedef struct calib calib_t;

/* Starts a calibration with eng, which must be an FP32 engine and outlive *out. */
rd_status_t calib_create(engine_t *eng, calib_t **out, rd_error_t *err);

/* Runs n_images preprocessed images (as engine_run takes them) and adds their
 * activations to the histograms. */
rd_status_t calib_add(calib_t *c, const float *input, int n_images, rd_error_t *err);

/* Images added so far; of those, held out of the ranges to measure the
 * error bounds on (every second one, at most 64). */
int calib_images(const calib_t *c);
int calib_held_out(const calib_t *c);

/* "max", "percentile", "mse"; and back (-1 for an unknown name). */
const char *calib_method_name(calib_method_t m);
int calib_method_parse(const char *s);

/* What calib_save_report measured on the held-out images: per image e = the
 * largest error of the gap between the fast top-1 logit and any class of the
 * FP32 or fast top 5, against FP32's gap; bound = the 90th percentile of e,
 * max = the largest, rel = the 90th percentile of e / max |fast logit|; rms
 * over all logits (INT8). */
typedef struct {
    int n_fit, n_held_out;
    double int8_bound, int8_max, int8_rel, int8_rms;
    double bf16_bound, bf16_max, bf16_rel;
    bool bf16_measured; /* only where the ISA has AMX BF16 (engine_isa_fast_bf16) */
} calib_report_t;

/* Fewer held-out images than this make a bound that may undershoot on unseen
 * images: resnetd calibrate warns. */
#define CALIB_MIN_HELD_OUT 32

/* Writes out_path: every tensor and metadata entry of model_path (the file the
 * engine was loaded from), the ranges chosen from the images not held out,
 * metadata "calibration" saying how, and "int8_logit_bound" and
 * "bf16_logit_bound" (r's bounds, measured by loading out_path in INT8 and
 * BF16 and running the held-out images), which scale the recheck (engine.h);
 * also "int8_logit_rms" for older readers. Without held-out images (one
 * image added) no bound is written. Fails with RD_ERR_ARG before any image
 * was added. */
rd_status_t calib_save_report(const calib_t *c, calib_method_t method, const char *model_path,
                              const char *out_path, calib_report_t *r, rd_error_t *err);

/* calib_save_report without the report. */
rd_status_t calib_save(const calib_t *c, calib_method_t method, const char *model_path,
                       const char *out_path, rd_error_t *err);

/* NULL is a no-op. */
void calib_free(calib_t *c);

#endif
