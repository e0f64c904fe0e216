/* kserve_tensor.h - the KServe v2 inference codec (REST, JSON, with the
 * binary-data extension), on bytes alone: it knows nothing of HTTP, the
 * batcher or decoding. The model declares two alternative inputs - "input"
 * FP32 [N,3,H,W], already preprocessed, or "image" BYTES [N] of JPEG files -
 * and four outputs - "probabilities" (default) and "logits", both FP32
 * [N,n_classes], "features" FP32 [N,C] and "cam" FP32 [N,h,w].
 *
 *     kserve_limits_t lim = {.max_images = 4, .input_h = 224, .input_w = 224};
 *     kserve_request_t kr;
 *     if (kserve_parse(body, len, header_len, &lim, &kr, &err) != RD_OK)
 *         -> http_error_status(st, HTTP_CTX_TENSOR), err.msg
 *     ... decode kr.images (JPEG spans), or take kr.tensor (floats)
 *     kserve_check_tail(&kr, &err)                  (same mapping)
 *     ... inference -> logits
 *     kserve_encode(&kr, model_name, logits, n_classes, &out, &err);
 *     kserve_request_free(&kr); kserve_response_free(&out);
 *
 * Errors: RD_ERR_FORMAT a malformed request (400), RD_ERR_LIMIT too many
 * images (413), RD_ERR_SHAPE a tensor with the wrong name, dtype, shape, size
 * or a NaN/Inf value (422), RD_ERR_NOMEM. Pure; thread-safe. */
#ifndef RESNETD_KSERVE_TENSOR_H
#define RESNETD_KSERVE_TENSOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

typedef enum {
    KSERVE_OUT_PROBABILITIES = 0, /* FP32 [N, n_classes] */
    KSERVE_OUT_LOGITS = 1,        /* FP32 [N, n_classes] */
    KSERVE_OUT_FEATURES = 2,      /* FP32 [N, C]: the pooled features (embedding) */
    KSERVE_OUT_CAM = 3,           /* FP32 [N, h, w]: the class activation map of each image's
                                     top-1 class, or of parameters.class */
} kserve_output_t;
#define KSERVE_N_OUTPUTS 4

typedef struct {
    int max_images;      /* max_images_per_request */
    int input_h, input_w; /* the model's input size, for FP32 tensors */
    int n_classes;        /* the range of a cam output's parameters.class */
} kserve_limits_t;

/* One JPEG of a BYTES input: a span of the body, or of `owned` (base64). */
typedef struct {
    const uint8_t *data;
    size_t len;
    uint8_t *owned; /* NULL when data points into the body */
} kserve_image_t;

typedef struct {
    int n_outputs;                /* 1..KSERVE_N_OUTPUTS, each at most once */
    kserve_output_t outputs[KSERVE_N_OUTPUTS]; /* in request order */
    bool binary[KSERVE_N_OUTPUTS]; /* per output: binary_data */
    int cam_class;                /* the cam output's parameters.class; -1 = each top-1 */
    json_t *id;                   /* the request's "id" (a reference) or NULL */
    int n_images;                 /* N */
    kserve_image_t *images;       /* BYTES input: N JPEGs (they may point into the body,
                                     which must outlive them); else NULL */
    float *tensor;                /* FP32 input: [N][3][H][W], owned; else NULL */
    rd_status_t tail_status;      /* see kserve_check_tail */
    rd_error_t tail_err;
} kserve_request_t;

/* The encoded answer: body[0..len), JSON then (when json_len < len) the
 * binary outputs; json_len goes in Inference-Header-Content-Length. */
typedef struct {
    char *body; /* malloc'd */
    size_t len;
    size_t json_len;
    bool binary; /* some output is binary: application/octet-stream */
} kserve_response_t;

/* Parses body[0..len). header_len is the Inference-Header-Content-Length
 * value (NULL when absent): the JSON's length, the binary tail after it. On
 * failure *out is empty (nothing to free). */
rd_status_t kserve_parse(const uint8_t *body, size_t len, const char *header_len,
                         const kserve_limits_t *lim, kserve_request_t *out, rd_error_t *err);

/* The checks of the binary tail that KServe answers only after the images
 * have decoded (a bad JPEG is reported before a binary_data_size that does
 * not add up, or bytes left over): RD_ERR_SHAPE, RD_ERR_FORMAT or RD_OK. Call
 * after decoding kr's images. */
rd_status_t kserve_check_tail(const kserve_request_t *kr, rd_error_t *err);

/* Encodes the response to kr for logits [kr->n_images][n_classes]: model_name
 * and version "1", the id echoed, the outputs asked for (probabilities by the
 * shared softmax), JSON or binary. RD_ERR_NOMEM; *out is empty then. */
rd_status_t kserve_encode(const kserve_request_t *kr, const char *model_name,
                          const float *logits, int n_classes, kserve_response_t *out,
                          rd_error_t *err);

/* Whether kr asks for output which. */
bool kserve_wants(const kserve_request_t *kr, kserve_output_t which);

/* Everything an answer may hold, per image: logits [n][n_classes], and when
 * asked for, features [n][channels] and CAMs [n][cam_h][cam_w]. */
typedef struct {
    const float *logits;
    int n_classes;
    const float *features;
    int channels;
    const float *cams;
    int cam_h, cam_w;
} kserve_values_t;

/* kserve_encode with every output kind; the features and cam outputs take
 * their values from v (which must hold them when kr asks for them). */
rd_status_t kserve_encode_values(const kserve_request_t *kr, const char *model_name,
                                 const kserve_values_t *v, kserve_response_t *out,
                                 rd_error_t *err);

/* Frees what kserve_parse allocated and empties kr. NULL-safe. */
void kserve_request_free(kserve_request_t *kr);

/* Frees out->body and empties out. NULL-safe. */
void kserve_response_free(kserve_response_t *out);

#endif
