/* grpc_parse.h - a ModelInferRequest message checked on bytes alone, before
 * any model is involved (and so fuzzed alone: tests/fuzz/fuzz_grpc.c): one
 * input, "input" FP32 [N,3,H,W] or "image" BYTES [N]; its values typed or in
 * raw_input_contents (BYTES raw: each element a 4-byte little-endian length,
 * then its bytes); the requested outputs (probabilities, logits, features). The model's input size is checked
 * later, by ModelInfer (grpc_infer.c). Pure; thread-safe. */
#ifndef RESNETD_GRPC_PARSE_H
#define RESNETD_GRPC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status_map.h"

enum { GRPC_OUT_PROBABILITIES = 0, GRPC_OUT_LOGITS = 1, GRPC_OUT_FEATURES = 2, GRPC_OUT_MAX = 3 };

typedef struct {
    const uint8_t *data;
    size_t len;
} grpc_span_t;

typedef struct {
    void *msg;             /* the unpacked message (owned); the pointers below point into it */
    const char *model_name, *model_version, *id;
    bool fp32;             /* else BYTES */
    int n;                 /* images (shape[0]) */
    int64_t shape[4];      /* FP32: N,3,H,W as sent */
    const uint8_t *raw;    /* FP32: raw_input_contents[0], raw_len bytes; NULL when typed */
    size_t raw_len;
    const float *floats;   /* FP32 typed: contents.fp32_contents, n_floats values */
    size_t n_floats;
    grpc_span_t *images;   /* BYTES: n spans (malloc'd) */
    int n_outputs, outputs[GRPC_OUT_MAX]; /* each at most once */
} grpc_infer_req_t;

/* Unpacks and checks msg[0..len). On failure returns false with the status
 * (INVALID_ARGUMENT, RESOURCE_EXHAUSTED past max_images) and message in
 * *status/msg; out is then empty. grpc_infer_req_free either way. */
bool grpc_parse_infer(const uint8_t *msg, size_t len, int max_images, grpc_infer_req_t *out,
                      grpc_status_t *status, char *why, size_t why_size);

void grpc_infer_req_free(grpc_infer_req_t *r);

/* A "grpc-timeout" value (1-8 digits and a unit: H M S m u n) in ns; -1 if
 * malformed. */
int64_t grpc_parse_timeout(const uint8_t *v, size_t len);

#endif
