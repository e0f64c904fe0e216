/* infer_job.h - the images of one HTTP request on their way through the
 * batcher: per-image input tensors, logits, batcher items and outcome. Shared
 * by POST /classify and KServe infer, so that decoding, submitting, deadlines,
 * cancellation and the outcome -> status mapping are written once.
 *
 * Life of a job (on the request's HTTP thread except where said):
 *   infer_job_init(job, req, model, n, NULL)  allocate for n images of model
 *                                    (or adopt a tensor)
 *   infer_job_want(job, &want, &err) optional: features / feature maps too
 *   infer_job_decode_all(job, spans, &err)    hand the encoded images to the
 *                                    decode pool; on its threads each is decoded
 *                                    (infer_job_decode: the one place where every
 *                                    route's images are decoded), then the good
 *                                    ones are queued (infer_job_submit)
 *   or infer_job_submit(job, &err)   queue an adopted tensor at once
 *     ... the batcher's worker calls done() per item -> http_request_item_done
 *   infer_job_collect(job)           in the route's finish(): outcomes -> status[i]
 *   infer_job_free(job)              in the route's cleanup()
 * THREADS: from infer_job_decode_all until the request resumes, the decode
 * pool's threads own the job (each image i's slots on the thread decoding it;
 * the rest on the thread that runs the group's done); the batcher's worker
 * only writes the items' out fields, before done(). The HTTP thread reads
 * them after the resume, which the request lock orders. infer_job_cancel may
 * run meanwhile: it touches the items only once `submitted` says they exist. */
#ifndef RESNETD_INFER_JOB_H
#define RESNETD_INFER_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "http.h"
#include "http_error.h"
#include "served_model.h"

#define INFER_JOB_MSG_MAX (RD_ERROR_MSG_MAX + 64)

/* One encoded image: bytes borrowed from the request (or the route's state)
 * until the job has decoded it. */
typedef struct {
    const uint8_t *data;
    size_t len;
} image_span_t;

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
    /* set by the route before infer_job_decode_all */
    void (*decoded)(void *ctx, int i); /* image i is pixels now: its bytes may go; may be NULL */
    void *decoded_ctx;
    bool all_or_none;     /* queue nothing unless every image decoded (KServe) */
    bool hold;            /* queue nothing: the route will refuse for another reason */
    /* the decode pool's, read after the resume */
    image_span_t *spans;  /* the images being decoded (a copy of the route's array) */
    bool pooled;          /* decoded on the pool: the body and a producer span are held */
    int refused;          /* the queue refused the decoded images: the HTTP status, else 0 */
    char refused_msg[INFER_JOB_MSG_MAX];
    atomic_bool submitted; /* the items are initialised and queued */
    /* infer_job_want: the optional engine outputs, else NULL */
    engine_feature_shape_t fshape;
    float *features;      /* [n][channels] pooled features */
    float *maps;          /* [n][channels][height][width] last feature maps */
} infer_job_t;

/* What a route wants besides the logits. */
typedef struct {
    bool features;    /* the pooled features (embeddings) */
    bool feature_map; /* the last feature map, for class activation maps */
} infer_want_t;

/* Allocates for n images (n >= 1) at model's input size; zero-filled.
 * inputs, when not NULL, is an already preprocessed [n][3][H][W] tensor
 * (malloc'd) that the job adopts instead of allocating its own; it is freed
 * with the job even on failure. RD_ERR_NOMEM on failure (job is then empty;
 * infer_job_free is safe). */
rd_status_t infer_job_init(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                           float *inputs, rd_error_t *err);

/* Allocates the buffers for what want asks of every image, after init and
 * before the images are queued (infer_job_decode_all or infer_job_submit).
 * RD_ERR_NOMEM (answer 503). */
rd_status_t infer_job_want(infer_job_t *job, const infer_want_t *want, rd_error_t *err);

/* Image i's class activation map of class_index into cam [height][width]
 * (job->fshape), from its feature map (infer_job_want's feature_map, image
 * done). RD_ERR_ARG for a class out of range. */
rd_status_t infer_job_cam(const infer_job_t *job, int i, int class_index, float *cam,
                          rd_error_t *err);

/* Decodes and preprocesses JPEG i into inputs[i], with the configured pixel
 * limit, timing it (decode_ms[i]; the access log gets it in collect). Any
 * thread that owns image i. On failure sets status[i] and message[i] (prefixed
 * "image i: "). Returns the resulting status (0 = ok, ready to run). */
int infer_job_decode(infer_job_t *job, int i, const uint8_t *jpeg, size_t len);

/* Image i's failure st, in ctx (HTTP_CTX_IMAGE: decoding; HTTP_CTX_INFERENCE:
 * running), as its answer: writes msg "image i: why" or "image i: inference
 * failed: why" and returns the HTTP status. The one wording of an image's
 * error, for the routes and `resnetd classify`. Pure; any thread. */
int infer_job_failure(int i, rd_status_t st, http_ctx_t ctx, const char *why,
                      char msg[INFER_JOB_MSG_MAX]);

/* Decodes the n images of spans (borrowed until each is decoded; the array
 * is copied) on the decode pool, at most max_decodes_per_request at once,
 * then queues the good ones (all or none with job->all_or_none, none with
 * job->hold) as infer_job_submit does, on the pool thread that finishes last.
 * The request stays a batcher producer and keeps its body until then (one
 * pending item covers the decodes). Without a pool (deps->decode_pool NULL)
 * it does the same at once on this thread. Returns 0: the route returns
 * HTTP_PENDING and its finish() runs after the last image is done (a queue
 * refusal then shows in infer_job_collect's result); else the status (503)
 * to answer at once with err's message, nothing decoded. */
int infer_job_decode_all(infer_job_t *job, const image_span_t *spans, rd_error_t *err);

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
 * timings and inference CPU to the request's access-log record. Call in
 * finish(). Returns 0, or the HTTP status with which the queue refused the
 * decoded images (job->refused_msg says why; no image ran): answer that. */
int infer_job_collect(infer_job_t *job);

/* Cancels the queued items (the client has gone). Thread-safe. */
void infer_job_cancel(infer_job_t *job);

/* Per image timings for classify_result_json. */
void infer_job_timings(const infer_job_t *job, int i, double *decode_ms, double *queue_ms,
                       double *inference_ms);

/* Frees everything; the job must have no item still queued. NULL-safe. */
void infer_job_free(infer_job_t *job);

#endif
