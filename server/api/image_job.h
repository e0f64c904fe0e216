/* image_job.h - the start of every route that classifies encoded images
 * (POST /classify, TorchServe predictions, TF Serving predict): allocate the
 * job for n images of a model, decode them on the decode pool and queue the
 * good ones, so that the sequence and its failure statuses are written once.
 * The route's finish() then calls infer_job_collect and reads job->logits;
 * image_job_probs turns one image's logits into probabilities. */
#ifndef RESNETD_IMAGE_JOB_H
#define RESNETD_IMAGE_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "infer_job.h"

/* infer_job_init + http_request_set_images + infer_job_decode_all (decoded,
 * when not NULL, is called with decoded_ctx as each image is decoded, on a
 * pool thread: its bytes may be freed). Returns 0 when the route should
 * return HTTP_PENDING (finish() runs once the last image is done, where
 * infer_job_collect's result says whether the queue refused them), else the
 * HTTP status to answer with err's message (503 out of memory, stopping). */
int image_job_start(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                    const image_span_t *images, void (*decoded)(void *ctx, int i),
                    void *decoded_ctx, rd_error_t *err);

/* image_job_start that also asks the engine for want's outputs (NULL: none). */
int image_job_start_with(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                         const image_span_t *images, void (*decoded)(void *ctx, int i),
                         void *decoded_ctx, const infer_want_t *want, rd_error_t *err);

/* Image i's softmax probabilities (n_classes floats, malloc'd; the caller
 * frees), or NULL when out of memory. The same scores_softmax as /classify. */
float *image_job_probs(const infer_job_t *job, int i);

#endif
