/* infer_job.c - one request's images through the batcher (see infer_job.h). */
#include "infer_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "image.h"

rd_status_t infer_job_init(infer_job_t *job, http_request_t *req, int n, rd_error_t *err)
{
    const model_preproc_t *pp = req->deps->preproc;
    *job = (infer_job_t){.req = req, .n = n, .n_classes = req->deps->model->n_classes};
    job->in_floats = (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
    job->inputs = calloc((size_t)n * job->in_floats, sizeof *job->inputs);
    job->logits = calloc((size_t)n * (size_t)job->n_classes, sizeof *job->logits);
    job->items = calloc((size_t)n, sizeof *job->items);
    job->status = calloc((size_t)n, sizeof *job->status);
    job->message = calloc((size_t)n, sizeof *job->message);
    job->decode_ms = malloc((size_t)n * sizeof *job->decode_ms);
    if (!job->inputs || !job->logits || !job->items || !job->status || !job->message ||
        !job->decode_ms) {
        infer_job_free(job);
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d images", n);
    }
    for (int i = 0; i < n; i++)
        job->decode_ms[i] = -1;
    return RD_OK;
}

void infer_job_fail(infer_job_t *job, int i, int http_status, const char *message)
{
    job->status[i] = http_status;
    snprintf(job->message[i], INFER_JOB_MSG_MAX, "%s", message);
}

int infer_job_decode(infer_job_t *job, int i, const uint8_t *jpeg, size_t len)
{
    const config_t *cfg = job->req->deps->cfg;
    image_limits_t lim = image_default_limits();
    lim.max_pixels = cfg->max_pixels > 0 ? (uint64_t)cfg->max_pixels : 0;
    rd_error_t err = {0};
    int64_t t0 = batcher_now_ns();
    rd_status_t st = image_to_tensor(jpeg, len, job->req->deps->preproc, &lim,
                                     job->inputs + (size_t)i * job->in_floats, &err);
    job->decode_ms[i] = (double)(batcher_now_ns() - t0) / 1e6;
    metrics_observe(job->req->deps->metrics, METRICS_H_DECODE, job->decode_ms[i] / 1e3);
    job->req->decode_ms += job->decode_ms[i];
    if (st != RD_OK) {
        char msg[INFER_JOB_MSG_MAX];
        snprintf(msg, sizeof msg, "image %d: %s", i, err.msg);
        infer_job_fail(job, i, http_error_status(st, HTTP_CTX_IMAGE), msg);
    }
    return job->status[i];
}

static void on_item_done(batcher_item_t *item, void *ctx)
{
    (void)item;
    infer_job_t *job = ctx;
    http_request_item_done(job->req);
}

static bool client_gone(void *ctx)
{
    infer_job_t *job = ctx;
    return http_client_gone(job->req);
}

int infer_job_submit(infer_job_t *job)
{
    http_request_t *req = job->req;
    batcher_item_t **queue = malloc((size_t)job->n * sizeof *queue);
    if (!queue)
        return 503;
    int64_t timeout_ms = req->deps->cfg->request_timeout_ms;
    int64_t deadline = timeout_ms > 0 ? req->start_ns + timeout_ms * 1000000 : 0;
    int n = 0;
    for (int i = 0; i < job->n; i++) {
        if (job->status[i] != 0)
            continue;
        batcher_item_init(&job->items[i], job->inputs + (size_t)i * job->in_floats,
                          job->logits + (size_t)i * (size_t)job->n_classes, deadline,
                          on_item_done, job);
        job->items[i].gone = client_gone;
        queue[n++] = &job->items[i];
    }
    if (n == 0) {
        free(queue);
        return 200;
    }
    http_request_expect(req, n);
    rd_error_t err = {0};
    rd_status_t st = batcher_submit_many(req->deps->batcher, queue, n, &err);
    free(queue);
    if (st != RD_OK) {
        http_request_expect(req, 0);
        return 503;
    }
    job->n_submitted = n;
    return 0;
}

static void outcome_status(infer_job_t *job, int i)
{
    const batcher_item_t *it = &job->items[i];
    char msg[INFER_JOB_MSG_MAX];
    switch (it->outcome) {
    case BATCHER_OK:
        job->status[i] = 200;
        return;
    case BATCHER_EXPIRED:
        snprintf(msg, sizeof msg, "image %d: request_timeout_ms (%lld ms) passed while queued", i,
                 (long long)job->req->deps->cfg->request_timeout_ms);
        infer_job_fail(job, i, 504, msg);
        return;
    case BATCHER_CANCELLED:
        snprintf(msg, sizeof msg, "image %d: cancelled (client went away)", i);
        infer_job_fail(job, i, 499, msg);
        return;
    case BATCHER_SHUTDOWN:
        snprintf(msg, sizeof msg, "image %d: server shutting down", i);
        infer_job_fail(job, i, 503, msg);
        return;
    case BATCHER_FAILED:
        break;
    }
    snprintf(msg, sizeof msg, "image %d: inference failed: %s", i, it->error.msg);
    infer_job_fail(job, i, http_error_status(it->error.code, HTTP_CTX_INFERENCE), msg);
}

void infer_job_collect(infer_job_t *job)
{
    http_request_t *req = job->req;
    for (int i = 0; i < job->n; i++) {
        if (job->status[i] != 0)
            continue;
        outcome_status(job, i);
        double q = (double)job->items[i].queue_ns / 1e6;
        double inf = (double)job->items[i].inference_ns / 1e6;
        if (q > req->queue_ms)
            req->queue_ms = q;
        if (inf > req->inference_ms)
            req->inference_ms = inf;
    }
}

void infer_job_cancel(infer_job_t *job)
{
    for (int i = 0; i < job->n && job->items; i++)
        if (job->items[i].done)
            batcher_item_cancel(&job->items[i]);
}

void infer_job_timings(const infer_job_t *job, int i, double *decode_ms, double *queue_ms,
                       double *inference_ms)
{
    bool ran = job->items[i].done && job->items[i].batch_size > 0;
    *decode_ms = job->decode_ms[i];
    *queue_ms = job->items[i].done ? (double)job->items[i].queue_ns / 1e6 : -1;
    *inference_ms = ran ? (double)job->items[i].inference_ns / 1e6 : -1;
}

void infer_job_free(infer_job_t *job)
{
    if (!job)
        return;
    free(job->inputs);
    free(job->logits);
    free(job->items);
    free(job->status);
    free(job->message);
    free(job->decode_ms);
    *job = (infer_job_t){0};
}
