/* engine.h - the ResNet inference engine: load a safetensors model, run batches
 * of preprocessed NCHW float32 images to logits on oneDNN.
 *
 *     engine_params_t p = engine_default_params();
 *     engine_t *eng; rd_error_t err;
 *     if (engine_load("resnet50.safetensors", &p, &eng, &err) != RD_OK) {
 *         fprintf(stderr, "%s\n", err.msg); return 1;
 *     }
 *     const model_info_t *mi = engine_info(eng);
 *     float *x = calloc((size_t)n * 3 * mi->preproc.input_h * mi->preproc.input_w, sizeof *x);
 *     float *logits = malloc((size_t)n * mi->n_classes * sizeof *logits);
 *     engine_run(eng, x, n, logits, &err);    // any n >= 1; plans are cached
 *     engine_free(eng);
 *
 * THREADS: an engine runs one batch at a time. engine_run must not be called
 * concurrently on the same engine (its plans share one activation arena, and
 * oneDNN primitives are not meant for concurrent execution); the server has one
 * inference worker that owns it. engine_info may be read from any thread. oneDNN
 * parallelises each call with OpenMP over params.n_threads threads. */
#ifndef RESNETD_ENGINE_H
#define RESNETD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"
#include "resnetd/model.h"

typedef struct engine engine_t;

typedef struct {
    int n_threads;           /* OpenMP threads for oneDNN; 0 = one per core */
    int input_h, input_w;    /* network input size; 0 = from the model's metadata (default 224) */
    const char *labels_path; /* JSON array or one-label-per-line text file; NULL = from the metadata */
    int sub_batch;           /* larger batches run as consecutive sub-batches of at most this many
                                images, each with its cached plan; 0 = 4 (8 for INT8; see
                                docs/performance.md) */
    bool no_winograd;        /* never use Winograd 3x3 convolutions (by default basic-block nets
                                use them where they measured faster) */
    rd_precision_t precision; /* RD_INT8 needs a calibrated file (resnetd calibrate) */
    float int8_recheck;       /* INT8: images whose two highest logits are closer than this many
                                 times the calibrated INT8 logit error run again in FP32, so
                                 that top-1 answers match FP32's; 0 = the default (3), < 0 = never */
} engine_params_t;

/* Defaults for engine_load: every field 0/NULL. */
engine_params_t engine_default_params(void);

/* Loads, validates and BN-folds the model at path, and prepares it for oneDNN.
 * On success *out owns everything (free it with engine_free). On failure *out
 * is NULL and err names the file and tensor at fault. params may be NULL.
 * With params->precision RD_INT8, a file without calibration fails with
 * RD_ERR_FORMAT. */
rd_status_t engine_load(const char *path, const engine_params_t *params, engine_t **out,
                        rd_error_t *err);

/* The model's description; owned by the engine, valid until engine_free. */
const model_info_t *engine_info(const engine_t *eng);

/* Runs n_images preprocessed images, input [n][3][input_h][input_w] float32
 * (NCHW, contiguous), and writes logits [n][n_classes]. Batches run as
 * sub-batches of at most params.sub_batch images; the first call for a given
 * sub-batch size builds and caches its plan (primitives, reordered weights),
 * later calls reuse it; all plans share one activation arena and scratchpad. Not thread-safe per
 * engine (see THREADS). Fails with RD_ERR_ARG for n_images < 1, RD_ERR_NOMEM or
 * RD_ERR_DNNL when a plan cannot be built. */
rd_status_t engine_run(engine_t *eng, const float *input, int n_images, float *logits,
                       rd_error_t *err);

/* The most images one sub-batch holds (engine_params_t.sub_batch, or its
 * default): a batch of any size runs on the plans for sizes 1..this, so
 * running each of those once builds every plan the engine will use. */
int engine_sub_batch(const engine_t *eng);

/* "fp32" or "int8"; and back (-1 when s names neither). */
const char *engine_precision_name(rd_precision_t precision);
int engine_precision_parse(const char *s);

/* Images that INT8 runs recomputed in FP32 so far (int8_recheck). Any thread. */
uint64_t engine_rechecked(const engine_t *eng);

/* Frees the engine, its plans and its weights. NULL is a no-op. */
void engine_free(engine_t *eng);

#endif
