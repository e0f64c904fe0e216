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
 *     // embeddings and class activation maps, only for the images that ask:
 *     engine_feature_shape_t fs = engine_feature_shape(eng); // 2048x7x7 here
 *     float *map = malloc((size_t)fs.channels * fs.height * fs.width * sizeof *map);
 *     float *maps[1] = {map}, *cam = malloc((size_t)fs.height * fs.width * sizeof *cam);
 *     engine_run_outputs(eng, x, 1, logits, &(engine_outputs_t){.feature_map = maps}, &err);
 *     engine_cam(eng, map, 249, cam, &err);   // class 249's map, [height][width]
 *     engine_free(eng);
 *
 * THREADS: an engine runs one batch at a time. engine_run (and
 * engine_run_outputs) must not be called concurrently on the same engine (its plans share one activation arena, and
 * oneDNN primitives are not meant for concurrent execution); the server has one
 * inference worker that owns it. engine_info, engine_feature_shape and
 * engine_cam (which read only the weights) may be called from any thread. oneDNN
 * parallelises each call with OpenMP over params.n_threads threads. */
#ifndef RESNETD_ENGINE_H
#define RESNETD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"
#include "resnetd/model.h"

typedef struct engine engine_t;

/* Field values that stand for a default depending on something the caller
 * may still change after engine_default_params() (the precision) or that only
 * the machine or the file knows (cores, the model's input size). engine_load
 * resolves each of them in one place, resolve_params (engine.c). */
#define ENGINE_THREADS_PER_CORE 0        /* n_threads: OpenMP's default, one per core */
#define ENGINE_INPUT_FROM_MODEL 0        /* input_h/w: the model metadata's size (224 without) */
#define ENGINE_SUB_BATCH_BY_PRECISION 0  /* sub_batch: engine_sub_batch_default(precision) */

/* Sub-batch defaults (engine_sub_batch_default). Per image, sub-batches of 2
 * to 32 ran equally fast on the 2-core machines measured, 4 is where Winograd
 * starts to pay (plan.c), and activation memory grows with the sub-batch:
 * ResNet-18 at batch 32 peaks at ~180 MB instead of ~250 MB. INT8 and BF16
 * plans: activations are smaller and per-layer overheads weigh more against
 * faster convolutions; 8 measured 6% faster than 4 (docs/performance.md). */
#define ENGINE_SUB_BATCH_FP32 4
#define ENGINE_SUB_BATCH_FAST 8

/* The recheck margin in units of the precision's logit error bound (README,
 * Precision). A top-1 can flip only when the fast top-two gap is under the
 * sum of the two logits' errors, at most 2x the bound, so 2 covers every
 * image as bad as the worst the bound was measured on. */
#define ENGINE_RECHECK_DEFAULT 2.0f

typedef struct {
    int n_threads;           /* OpenMP threads for oneDNN, >= 0; default ENGINE_THREADS_PER_CORE */
    int input_h, input_w;    /* network input size; default ENGINE_INPUT_FROM_MODEL */
    const char *labels_path; /* JSON array or one-label-per-line text file; NULL (default) = from
                                the metadata */
    int sub_batch;           /* larger batches run as consecutive sub-batches of at most this many
                                images, each with its cached plan; default
                                ENGINE_SUB_BATCH_BY_PRECISION (see docs/performance.md) */
    bool no_winograd;        /* never use Winograd 3x3 convolutions (by default, false, basic-block
                                nets use them where they measured faster) */
    rd_precision_t precision; /* default RD_FP32. RD_INT8 needs a calibrated file (resnetd
                                 calibrate); RD_BF16 needs none; RD_AUTO: bf16 where AMX BF16
                                 exists, else fp32 */
    float int8_recheck;       /* INT8 and BF16 (the name is historical): images whose two highest
                                 logits are closer than this many times the precision's logit
                                 error bound run again in FP32, so that top-1 answers match
                                 FP32's; default ENGINE_RECHECK_DEFAULT; <= 0 = never */
} engine_params_t;

/* Defaults for engine_load, the one source of them: the values named above.
 * The server's config and the CLI start from these. */
engine_params_t engine_default_params(void);

/* The sub-batch that ENGINE_SUB_BATCH_BY_PRECISION means for a precision
 * (RD_AUTO as engine_load resolves it on this machine). Any thread. */
int engine_sub_batch_default(rd_precision_t precision);

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

/* The last stage's output, whose global average is the fc's input: 512
 * (ResNet-18/34) or 2048 (bottleneck nets) channels of input_h/32 x input_w/32
 * (7x7 at 224). Any thread. */
typedef struct {
    int channels, height, width;
} engine_feature_shape_t;
engine_feature_shape_t engine_feature_shape(const engine_t *eng);

/* What engine_run_outputs writes besides the logits, per image: either array
 * may be NULL (nobody wants it), and so may any of its n_images pointers (that
 * image does not), so one batch can mix images that ask and images that don't.
 * Values are FP32 in plain layouts whatever the precision (INT8 and BF16
 * dequantized); an image that the INT8/BF16 recheck ran again in FP32 gets
 * FP32's features, like its logits. */
typedef struct {
    float *const *features;    /* [channels]: the globally pooled vector (embedding) */
    float *const *feature_map; /* [channels][height][width]: the last stage's output, NCHW */
} engine_outputs_t;

/* engine_run that also writes the outputs asked for in outs (NULL: none,
 * which is engine_run). Only sub-batches with an image that asks pay for a
 * copy out of the arena. Same failures as engine_run. Not thread-safe per
 * engine (see THREADS). */
rd_status_t engine_run_outputs(engine_t *eng, const float *input, int n_images, float *logits,
                               const engine_outputs_t *outs, rd_error_t *err);

/* The class activation map of class_index from one image's feature_map
 * [channels][height][width] (engine_run_outputs): for a net whose head is
 * global average pooling then fc, cam[y][x] = sum_k fc.weight[class][k] *
 * feature_map[k][y][x], exactly (its mean plus fc.bias[class] is the logit).
 * Writes cam [height][width], raw, unnormalised. RD_ERR_ARG for NULL pointers
 * or a class_index outside 0..n_classes-1. Reads only the weights: any thread. */
rd_status_t engine_cam(const engine_t *eng, const float *feature_map, int class_index, float *cam,
                       rd_error_t *err);

/* The most images one sub-batch holds (engine_params_t.sub_batch, or its
 * default): a batch of any size runs on the plans for sizes 1..this, so
 * running each of those once builds every plan the engine will use. */
int engine_sub_batch(const engine_t *eng);

/* "fp32", "int8", "bf16" or "auto"; and back (-1 when s names none). */
const char *engine_precision_name(rd_precision_t precision);
int engine_precision_parse(const char *s);

/* Why the engine runs the precision it does: what auto chose and why, or a
 * warning that bf16 is slow on this ISA; "" when there is nothing to say.
 * Owned by the engine. */
const char *engine_precision_note(const engine_t *eng);

/* The ISA oneDNN uses here, after ONEDNN_MAX_CPU_ISA: "avx512_core_amx",
 * "avx512_core_bf16", "avx512_core_vnni", "avx512_core", "avx2", ... A static
 * string; any thread. */
const char *engine_isa_name(void);

/* Whether that ISA has AMX BF16, the only one where BF16 beats FP32. */
bool engine_isa_fast_bf16(void);

/* Images that INT8 or BF16 runs recomputed in FP32 so far (int8_recheck).
 * Any thread. */
uint64_t engine_rechecked(const engine_t *eng);

/* The longest model name, in bytes: the name is a KServe URL segment
 * (/v2/models/{name}) and a metrics label. */
#define ENGINE_MODEL_NAME_MAX 127

/* RD_OK when name can be a model name: 1..ENGINE_MODEL_NAME_MAX bytes of
 * UTF-8 with no '/' and no control characters; else RD_ERR_FORMAT with err
 * saying why. engine_load applies it to the metadata name (or the file name);
 * a server applies it to a configured name. Any thread. */
rd_status_t engine_check_model_name(const char *name, rd_error_t *err);

/* Checks the logits of one image [n_classes] that engine_run wrote: RD_OK
 * when all are finite, else RD_ERR_NONFINITE with err naming the first
 * non-finite logit. engine_run itself succeeds for such a batch (the other
 * images in it are fine): an input far outside the model's range (say FP32
 * values near 3.4e38) overflows inside the net, so a caller must check each
 * image before ranking its logits. Any thread. */
rd_status_t engine_check_logits(const float *logits, int n_classes, rd_error_t *err);

/* Frees the engine, its plans and its weights. NULL is a no-op. */
void engine_free(engine_t *eng);

#endif
