/* kserve_tensor.h - reading a KServe v2 inference request (REST, JSON, with
 * the binary-data extension) into an infer_job_t, and writing the response.
 * The model declares two alternative inputs - "input" FP32 [N,3,H,W], already
 * preprocessed, or "image" BYTES [N] of JPEG files - and two outputs -
 * "probabilities" (default) and "logits", both FP32 [N,n_classes].
 * Errors carry an HTTP status (400 malformed request, 413 too many images,
 * 422 a tensor with the wrong name, dtype, shape, size or a NaN/Inf value) and
 * a message for KServe's {"error": "..."} body. */
#ifndef RESNETD_KSERVE_TENSOR_H
#define RESNETD_KSERVE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "infer_job.h"

typedef enum { KSERVE_OUT_PROBABILITIES = 0, KSERVE_OUT_LOGITS = 1 } kserve_output_t;

typedef struct {
    int n_outputs;                /* 1 or 2 */
    kserve_output_t outputs[2];   /* in request order */
    bool binary[2];               /* per output: binary_data */
    json_t *id;                   /* the request's "id" (a reference) or NULL */
    bool bytes_input;             /* images were JPEGs (BYTES) */
} kserve_request_t;

/* Parses req's body into *kr and job (initialised here for the N images; on
 * success every image is ready to submit). Returns 0, or an HTTP status with
 * msg filled; job may then be partly initialised (infer_job_free it). */
int kserve_parse_request(http_request_t *req, infer_job_t *job, kserve_request_t *kr, char *msg,
                         size_t msg_size);

/* Builds the response for a job whose images all succeeded: sets req's answer
 * (JSON, or JSON + binary tail with Inference-Header-Content-Length). */
void kserve_respond(http_request_t *req, const infer_job_t *job, const kserve_request_t *kr);

/* Releases kr->id. */
void kserve_request_free(kserve_request_t *kr);

#endif
