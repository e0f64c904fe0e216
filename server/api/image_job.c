/* image_job.c - decode and queue a request's encoded images (see image_job.h). */
#include "image_job.h"

#include <stdlib.h>

#include "scores.h"

int image_job_start(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                    const image_span_t *images, void (*decoded)(void *ctx, int i),
                    void *decoded_ctx, rd_error_t *err)
{
    return image_job_start_with(job, req, model, n, images, decoded, decoded_ctx, NULL, err);
}

int image_job_start_with(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                         const image_span_t *images, void (*decoded)(void *ctx, int i),
                         void *decoded_ctx, const infer_want_t *want, rd_error_t *err)
{
    rd_status_t st = infer_job_init(job, req, model, n, NULL, err);
    if (st == RD_OK && want)
        st = infer_job_want(job, want, err);
    if (st != RD_OK)
        return http_error_status(st, HTTP_CTX_QUEUE);
    http_request_set_images(req, n);
    job->decoded = decoded;
    job->decoded_ctx = decoded_ctx;
    return infer_job_decode_all(job, images, err);
}

float *image_job_probs(const infer_job_t *job, int i)
{
    float *probs = malloc((size_t)job->n_classes * sizeof *probs);
    if (probs)
        scores_softmax(job->logits + (size_t)i * (size_t)job->n_classes, job->n_classes, probs);
    return probs;
}
