/* infer_job.h - the images of one HTTP request on their way through the
 * batcher: per-image input tensors, logits, batcher items and outcome. Shared
 * by POST /classify and KServe infer, so that decoding, submitting, deadlines,
 * cancellation and the outcome -> status mapping are written once.
 *
 * Life of a job (all on the request's HTTP thread except the done() hook):
 *   infer_job_init(job, req, model, n, NULL)  allocate for n images of model
 *                                    (or adopt a tensor)
 *   infer_job_decode(job, i, ...)    JPEG -> job->inputs + i: the one place where
 *                                    every route's images are decoded
 *   infer_job_submit(job, &err)      queue every image whose status is still 0
 *     ... the batcher's worker calls done() per item -> http_request_item_done
 *   infer_job_collect(job)           in the route's finish(): outcomes -> status[i]
 *   infer_job_free(job)              in the route's cleanup()
 * THREADS: the worker only writes the items' out fields, before done(); the
 * HTTP thread reads them after the resume, which the request lock orders. */
#ifndef RESNETD_INFER_JOB_H
#define RESNETD_INFER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "http.h"
#include "http_error.h"
#include "served_model.h"

#define INFER_JOB_MSG_MAX (RD_ERROR_MSG_MAX + 64)

typedef struct {
    http_request_t *req;
    served_model_t *model; /* where the images go */
    int n;                /* images */
    size_t in_floats;     /* 3 * input_h * input_w */
    int n_classes;
    float *inputs;        /* [n][3][H][W] */
    float *logits;        /* [n][n_classes] */
    batcher_item_t *items;
    int *status;          /* per image: 0 = to run, 200 = done, else the HTTP error status */
    char (*message)[INFER_JOB_MSG_MAX]; /* per image error message */
    double *decode_ms;    /* per image; -1 when not decoded here */
} infer_job_t;

/* Allocates for n images (n >= 1) at model's input size; zero-filled.
 * inputs, when not NULL, is an already preprocessed [n][3][H][W] tensor
 * (malloc'd) that the job adopts instead of allocating its own; it is freed
 * with the job even on failure. RD_ERR_NOMEM on failure (job is then empty;
 * infer_job_free is safe). */
rd_status_t infer_job_init(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                           float *inputs, rd_error_t *err);

/* Decodes and preprocesses JPEG i into inputs[i], with the configured pixel
 * limit, timing it. On failure sets status[i] and message[i] (prefixed
 * "image i: "). Returns the resulting status (0 = ok, ready to run). */
int infer_job_decode(infer_job_t *job, int i, const uint8_t *jpeg, size_t len);

/* Image i's failure st, in ctx (HTTP_CTX_IMAGE: decoding; HTTP_CTX_INFERENCE:
 * running), as its answer: writes msg "image i: why" or "image i: inference
 * failed: why" and returns the HTTP status. The one wording of an image's
 * error, for the routes and `resnetd classify`. Pure; any thread. */
int infer_job_failure(int i, rd_status_t st, http_ctx_t ctx, const char *why,
                      char msg[INFER_JOB_MSG_MAX]);

/* Sets image i's failure. */
void infer_job_fail(infer_job_t *job, int i, int http_status, const char *message);

/* Queues every image whose status is 0, all or none, with the request's
 * deadline. RD_OK when they were queued, or when there was nothing to queue
 * (either way the route returns HTTP_PENDING: finish() runs when the last is
 * done, or at once). Else nothing was queued: RD_ERR_LIMIT with the batcher's
 * reason (queue full, draining), RD_ERR_NOMEM; answer
 * http_error_status(st, HTTP_CTX_QUEUE) with err's message. */
rd_status_t infer_job_submit(infer_job_t *job, rd_error_t *err);

/* Turns each queued item's outcome into status[i]/message[i] and adds the
 * timings to the request's access-log record. Call in finish(). */
void infer_job_collect(infer_job_t *job);

/* Cancels the queued items (the client has gone). Thread-safe. */
void infer_job_cancel(infer_job_t *job);

/* Per image timings for classify_result_json. */
void infer_job_timings(const infer_job_t *job, int i, double *decode_ms, double *queue_ms,
                       double *inference_ms);

/* Frees everything; the job must have no item still queued. NULL-safe. */
void infer_job_free(infer_job_t *job);

#endif
