/* infer_job.c - one request's images through the batcher (see infer_job.h). */
#include "infer_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_time.h"
#include "http_error.h"
#include "image.h"

rd_status_t infer_job_init(infer_job_t *job, http_request_t *req, served_model_t *model, int n,
                           float *inputs, rd_error_t *err)
{
    const model_preproc_t *pp = served_model_preproc(model);
    http_request_set_model(req, model); /* the access log's model and version */
    *job = (infer_job_t){.req = req, .model = model, .n = n,
                         .n_classes = served_model_info(model)->n_classes};
    job->in_floats = (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
    job->inputs = inputs ? inputs : calloc((size_t)n * job->in_floats, sizeof *job->inputs);
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

int infer_job_failure(int i, rd_status_t st, http_ctx_t ctx, const char *why,
                      char msg[INFER_JOB_MSG_MAX])
{
    snprintf(msg, INFER_JOB_MSG_MAX, "image %d: %s%s", i,
             ctx == HTTP_CTX_INFERENCE ? "inference failed: " : "", why);
    return http_error_status(st, ctx);
}

rd_status_t infer_job_want(infer_job_t *job, const infer_want_t *want, rd_error_t *err)
{
    job->fshape = served_model_feature_shape(job->model);
    size_t per = (size_t)job->fshape.channels * (size_t)job->n;
    size_t pixels = (size_t)job->fshape.height * (size_t)job->fshape.width;
    if (want->features && !job->features)
        job->features = malloc(per * sizeof *job->features);
    if (want->feature_map && !job->maps)
        job->maps = malloc(per * pixels * sizeof *job->maps);
    if ((want->features && !job->features) || (want->feature_map && !job->maps))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for the features of %d images",
                            job->n);
    return RD_OK;
}

rd_status_t infer_job_cam(const infer_job_t *job, int i, int class_index, float *cam,
                          rd_error_t *err)
{
    size_t map_n = (size_t)job->fshape.channels * (size_t)job->fshape.height *
                   (size_t)job->fshape.width;
    if (!job->maps)
        return rd_error_set(err, RD_ERR_ARG, "infer_job_cam: no feature maps were asked for");
    return served_model_cam(job->model, job->maps + (size_t)i * map_n, class_index, cam, err);
}

void infer_job_fail(infer_job_t *job, int i, int http_status, const char *message)
{
    job->status[i] = http_status;
    snprintf(job->message[i], INFER_JOB_MSG_MAX, "%s", message);
}

/* Why nobody will read this request's answer any more (its deadline passed,
 * the server is stopping, its client left), as the batcher's drop reasons;
 * -1 while someone will. Each condition, once true, stays true. */
static int stop_reason(http_request_t *req)
{
    int64_t timeout_ms = http_request_deps(req)->limits->request_timeout_ms;
    if (timeout_ms > 0 && clock_now_ns() > http_request_start_ns(req) + timeout_ms * 1000000)
        return METRICS_DROP_DEADLINE;
    if (http_stopping(http_request_server(req)))
        return METRICS_DROP_SHUTDOWN;
    if (http_client_gone(req))
        return METRICS_DROP_CANCELLED;
    return -1;
}

/* Why an image stopped for that reason, in its answer; the status is
 * http_error_drop_status's, as for an image the batcher drops. */
static const char *const stop_why[METRICS_N_DROP_REASONS] = {
    [METRICS_DROP_DEADLINE] = "request_timeout_ms passed",
    [METRICS_DROP_CANCELLED] = "cancelled (client went away)",
    [METRICS_DROP_SHUTDOWN] = "server shutting down",
};

/* The decoder's stop hook (image_stop_fn), polled between images and every
 * few rows of a decode. */
static rd_status_t decode_stop(void *ctx, rd_error_t *err)
{
    int reason = stop_reason(ctx);
    if (reason < 0)
        return RD_OK;
    return rd_error_set(err, RD_ERR_TIMEOUT, "%s", stop_why[reason]);
}

int infer_job_decode(infer_job_t *job, int i, const uint8_t *jpeg, size_t len)
{
    const http_deps_t *deps = http_request_deps(job->req);
    image_limits_t lim = deps->limits->image;
    lim.stop = decode_stop;
    lim.stop_ctx = job->req;
    rd_error_t err = {0};
    int64_t t0 = clock_now_ns();
    rd_status_t st = decode_stop(job->req, &err);
    if (st == RD_OK && (!jpeg || len == 0)) /* an empty multipart part or BYTES element */
        st = rd_error_set(&err, RD_ERR_FORMAT, "empty image (0 bytes)");
    if (st == RD_OK)
        st = image_to_tensor(jpeg, len, served_model_preproc(job->model), &lim,
                             job->inputs + (size_t)i * job->in_floats, &err);
    job->decode_ms[i] = (double)(clock_now_ns() - t0) / 1e6;
    metrics_observe(deps->metrics, METRICS_H_DECODE, job->decode_ms[i] / 1e3);
    if (st != RD_OK) {
        char msg[INFER_JOB_MSG_MAX];
        int status = infer_job_failure(i, st, HTTP_CTX_IMAGE, err.msg, msg);
        int reason = st == RD_ERR_TIMEOUT ? stop_reason(job->req) : -1;
        if (reason >= 0) /* dropped unrun, as the batcher drops a queued image */
            metrics_count_dropped(deps->metrics, (metrics_drop_t)reason, 1);
        infer_job_fail(job, i, reason >= 0 ? http_error_drop_status((metrics_drop_t)reason) : status,
                       msg);
    }
    return job->status[i];
}

/* A pool task: image i, its CPU time counted as decoding. */
static void decode_task(void *ctx, int i)
{
    infer_job_t *job = ctx;
    int64_t cpu0 = cpu_thread_ns();
    infer_job_decode(job, i, job->spans[i].data, job->spans[i].len);
    if (job->decoded)
        job->decoded(job->decoded_ctx, i);
    int64_t cpu = cpu_thread_ns() - cpu0;
    http_request_add_cpu(job->req, METRICS_CPU_DECODE, cpu);
    if (!job->pooled) /* on the HTTP thread, whose callback counts it already */
        http_request_add_cpu(job->req, METRICS_CPU_HTTP, -cpu);
}

/* After the last decode: queue what may go, end the producer span, and drop
 * the pending item that covered the decodes (which may resume the request). */
static void decodes_done(void *ctx)
{
    infer_job_t *job = ctx;
    http_request_t *req = job->req;
    bool failed = false;
    for (int i = 0; i < job->n; i++)
        failed |= job->status[i] != 0;
    if (job->pooled)
        http_request_drop_body(req);
    if (!job->hold && !(job->all_or_none && failed)) {
        rd_error_t err = {0};
        rd_status_t st = infer_job_submit(job, &err);
        if (st != RD_OK) {
            job->refused = http_error_status(st, HTTP_CTX_QUEUE);
            snprintf(job->refused_msg, sizeof job->refused_msg, "%s", err.msg);
        }
    }
    if (job->pooled)
        served_model_producer_leave(job->model);
    http_request_item_done(req);
}

int infer_job_decode_all(infer_job_t *job, const image_span_t *spans, rd_error_t *err)
{
    decode_pool_t *pool = http_request_deps(job->req)->decode_pool;
    job->spans = malloc((size_t)job->n * sizeof *job->spans);
    if (!job->spans) {
        rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d images", job->n);
        return 503;
    }
    memcpy(job->spans, spans, (size_t)job->n * sizeof *job->spans);
    http_request_expect(job->req, 1); /* the decodes, as one pending item */
    if (!pool) {
        for (int i = 0; i < job->n; i++)
            decode_task(job, i);
        decodes_done(job);
        return 0;
    }
    job->pooled = true;
    http_request_keep_body(job->req);
    served_model_producer_enter(job->model); /* before the HTTP thread's span ends */
    if (decode_pool_submit(pool, job->n, decode_task, decodes_done, job, err) != RD_OK) {
        served_model_producer_leave(job->model);
        http_request_expect(job->req, -1);
        job->pooled = false;
        return err->code == RD_ERR_NOMEM ? 503 : http_error_status(err->code, HTTP_CTX_QUEUE);
    }
    return 0;
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

rd_status_t infer_job_submit(infer_job_t *job, rd_error_t *err)
{
    http_request_t *req = job->req;
    const http_limits_t *lim = http_request_deps(req)->limits;
    batcher_item_t **queue = malloc((size_t)job->n * sizeof *queue);
    if (!queue)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory queueing %d images", job->n);
    int64_t timeout_ms = lim->request_timeout_ms;
    int64_t deadline = timeout_ms > 0 ? http_request_start_ns(req) + timeout_ms * 1000000 : 0;
    int n = 0;
    for (int i = 0; i < job->n; i++) {
        if (job->status[i] != 0)
            continue;
        batcher_item_init(&job->items[i], job->inputs + (size_t)i * job->in_floats,
                          job->logits + (size_t)i * (size_t)job->n_classes, deadline,
                          on_item_done, job);
        job->items[i].gone = client_gone;
        size_t c = (size_t)job->fshape.channels;
        size_t map_n = c * (size_t)job->fshape.height * (size_t)job->fshape.width;
        job->items[i].features = job->features ? job->features + (size_t)i * c : NULL;
        job->items[i].feature_map = job->maps ? job->maps + (size_t)i * map_n : NULL;
        queue[n++] = &job->items[i];
    }
    rd_status_t st = RD_OK;
    if (n > 0) {
        http_request_expect(req, n);
        atomic_store(&job->submitted, true); /* infer_job_cancel may flag them now */
        st = served_model_submit(job->model, queue, n, err);
        if (st != RD_OK)
            http_request_expect(req, -n);
    }
    free(queue);
    return st;
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
                 (long long)http_request_deps(job->req)->limits->request_timeout_ms);
        infer_job_fail(job, i, http_error_drop_status(METRICS_DROP_DEADLINE), msg);
        return;
    case BATCHER_CANCELLED:
        snprintf(msg, sizeof msg, "image %d: %s", i, stop_why[METRICS_DROP_CANCELLED]);
        infer_job_fail(job, i, http_error_drop_status(METRICS_DROP_CANCELLED), msg);
        return;
    case BATCHER_SHUTDOWN:
        snprintf(msg, sizeof msg, "image %d: %s", i, stop_why[METRICS_DROP_SHUTDOWN]);
        infer_job_fail(job, i, http_error_drop_status(METRICS_DROP_SHUTDOWN), msg);
        return;
    case BATCHER_FAILED:
        break;
    }
    infer_job_fail(job, i, infer_job_failure(i, it->error.code, HTTP_CTX_INFERENCE, it->error.msg, msg),
                   msg);
}

int infer_job_collect(infer_job_t *job)
{
    for (int i = 0; i < job->n; i++)
        if (job->decode_ms[i] >= 0)
            http_request_add_timings(job->req, job->decode_ms[i], -1, -1);
    if (job->refused)
        return job->refused;
    for (int i = 0; i < job->n; i++) {
        if (job->status[i] != 0 || !job->items[i].done) /* failed, or held back unrun */
            continue;
        outcome_status(job, i);
        http_request_add_timings(job->req, -1, (double)job->items[i].queue_ns / 1e6,
                                 (double)job->items[i].inference_ns / 1e6);
        http_request_add_cpu(job->req, METRICS_CPU_INFERENCE, job->items[i].cpu_ns);
    }
    return 0;
}

void infer_job_cancel(infer_job_t *job)
{
    if (!atomic_load(&job->submitted)) /* still decoding: the stop hook sees the client gone */
        return;
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
    free(job->spans);
    free(job->features);
    free(job->maps);
    *job = (infer_job_t){0};
}
