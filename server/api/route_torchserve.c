/* route_torchserve.c - TorchServe's inference API, so that TorchServe
 * clients (and Triton perf_analyzer's torchserve mode) work unchanged:
 *   POST|PUT /predictions/{model}[/1]  a raw image body (any Content-Type;
 *       `curl -T dog.jpg` sends PUT without one) or multipart/form-data
 *       with the image in a field named "data" (or "body", as TorchServe's
 *       base handler also reads). Answered as TorchServe's image_classifier
 *       handler does: {"label": probability, ...} with the top 5, highest
 *       first; several "data" parts give a list of such objects. Labels are
 *       keys, so a label met twice in a top 5 (ImageNet has a few) keeps its
 *       first (higher) probability, as a Python dict would not; TorchServe
 *       has the same limit.
 *   GET /ping  {"status": "Healthy"}, or 503 {"status": "Unhealthy"} while the
 *       model loads or the server drains.
 * Errors come in TorchServe's shape {"code": N, "type": "...", "message":
 * "..."}; an image that fails fails the request (TorchServe answers one
 * status per request). Decoding and queueing are image_job.c's, shared with
 * POST /classify; probabilities are the same scores_softmax. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_error.h"
#include "image_job.h"
#include "multipart.h"
#include "routes.h"
#include "scores.h"

#define TS_TOPK 5

typedef struct {
    infer_job_t job;
    multipart_t mp;
} ts_state_t;

static void ts_error(http_request_t *req, int status, const char *message)
{
    http_respond_json(req, status, json_pack("{s:i, s:s, s:s}", "code", status, "type",
                                             http_error_torchserve_type(status), "message", message));
    http_set_retry_after(req, status);
}

/* 404 for an unknown model or version (TorchServe's exception types), 503
 * for one not ready. */
static void ts_model_not_found(http_request_t *req)
{
    char why[400], msg[600];
    int status = http_request_model_miss(req, why, sizeof why);
    bool version = status == 404 && http_request_version(req)[0] &&
                   !strstr(why, "is not served here");
    snprintf(msg, sizeof msg, "%s: %.128s (%s)",
             version ? "Model version does not exist for model" : "Model not found",
             http_request_param(req), why);
    if (version)
        http_respond_json(req, 404, json_pack("{s:i, s:s, s:s}", "code", 404, "type",
                                              "ModelVersionNotFoundException", "message", msg));
    else
        ts_error(req, status, msg);
}

static bool is_multipart(const char *ct)
{
    return ct && !strncasecmp(ct, "multipart/form-data", 19);
}

/* Keeps the parts named "data" or "body"; 400 when there is none. */
static bool keep_data_parts(http_request_t *req, multipart_t *mp)
{
    int kept = 0;
    for (int i = 0; i < mp->n_parts; i++) {
        multipart_part_t *p = &mp->parts[i];
        if (!strcmp(p->name, "data") || !strcmp(p->name, "body")) {
            mp->parts[kept++] = *p;
            continue;
        }
        free(p->data);
        free(p->name);
        free(p->filename);
        free(p->content_type);
    }
    mp->n_parts = kept;
    if (kept == 0)
        ts_error(req, 400, "multipart/form-data body has no field named 'data'");
    return kept > 0;
}

/* The images of the body: *n spans into the body or s->mp. */
static image_span_t *split(http_request_t *req, ts_state_t *s, int *n)
{
    const char *ct = http_header(req, "Content-Type");
    int max_images = http_request_deps(req)->limits->max_images_per_request;
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    if (!is_multipart(ct)) {
        if (len == 0) {
            ts_error(req, 400, "empty body: expected an image");
            return NULL;
        }
        *n = 1;
    } else {
        rd_error_t err = {0};
        rd_status_t st = multipart_parse(ct, body, len, 4 * max_images, &s->mp, &err);
        if (st != RD_OK) {
            ts_error(req, http_error_status(st, HTTP_CTX_BODY), err.msg);
            return NULL;
        }
        if (!keep_data_parts(req, &s->mp))
            return NULL;
        if (s->mp.n_parts > max_images) {
            char msg[96];
            snprintf(msg, sizeof msg, "more than %d images (max_images_per_request)", max_images);
            ts_error(req, 413, msg);
            return NULL;
        }
        *n = s->mp.n_parts;
    }
    image_span_t *images = calloc((size_t)*n, sizeof *images);
    if (!images) {
        ts_error(req, 503, "out of memory");
        return NULL;
    }
    for (int i = 0; i < *n; i++)
        images[i] = s->mp.n_parts ? (image_span_t){s->mp.parts[i].data, s->mp.parts[i].len}
                                  : (image_span_t){body, len};
    return images;
}

static http_step_t ts_start(http_request_t *req)
{
    served_model_t *model = http_request_model(req);
    if (!model) {
        ts_model_not_found(req);
        return HTTP_DONE;
    }
    ts_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        ts_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_request_set_state(req, s);
    int n = 0;
    image_span_t *images = split(req, s, &n);
    if (!images)
        return HTTP_DONE;
    rd_error_t err = {0};
    int status = image_job_start(&s->job, req, model, n, images, NULL, NULL, &err);
    free(images);
    if (status) {
        ts_error(req, status, err.msg);
        return HTTP_DONE;
    }
    return HTTP_PENDING;
}

/* {"label": probability, ...}: image i's top 5, highest first. */
static json_t *ts_top5(const infer_job_t *job, int i)
{
    const model_info_t *mi = served_model_info(job->model);
    int k = mi->n_classes < TS_TOPK ? mi->n_classes : TS_TOPK;
    int idx[TS_TOPK];
    float *probs = image_job_probs(job, i);
    json_t *o = probs ? json_object() : NULL;
    if (o)
        scores_topk(probs, mi->n_classes, k, idx);
    for (int j = 0; o && j < k; j++)
        if (!json_object_get(o, mi->labels[idx[j]]) &&
            json_object_set_new(o, mi->labels[idx[j]], json_real(probs[idx[j]])) != 0) {
            json_decref(o);
            o = NULL;
        }
    free(probs);
    return o;
}

static void ts_finish(http_request_t *req)
{
    ts_state_t *s = http_request_state(req);
    infer_job_t *job = &s->job;
    int refused = infer_job_collect(job);
    if (refused) {
        ts_error(req, refused, job->refused_msg);
        return;
    }
    for (int i = 0; i < job->n; i++)
        if (job->status[i] != 200) {
            ts_error(req, job->status[i], job->message[i]);
            return;
        }
    json_t *doc = job->n == 1 ? ts_top5(job, 0) : json_array();
    for (int i = 0; job->n > 1 && doc && i < job->n; i++)
        if (json_array_append_new(doc, ts_top5(job, i)) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    if (!doc) {
        ts_error(req, 503, "out of memory");
        return;
    }
    http_respond_json(req, 200, doc);
}

static void ts_cancel(http_request_t *req)
{
    ts_state_t *s = http_request_state(req);
    if (s)
        infer_job_cancel(&s->job);
}

static void ts_cleanup(http_request_t *req)
{
    ts_state_t *s = http_request_state(req);
    if (!s)
        return;
    infer_job_free(&s->job);
    multipart_free(&s->mp);
    free(s);
}

const http_route_t route_ts_predict = {
    .name = "torchserve_predict",
    .takes_body = true,
    .feeds_batcher = true,
    .needs_model = true,
    .start = ts_start,
    .finish = ts_finish,
    .cleanup = ts_cleanup,
    .cancel = ts_cancel,
};

static http_step_t ts_ping_start(http_request_t *req)
{
    bool ready = http_ready(http_request_server(req));
    http_respond_json(req, ready ? 200 : 503,
                      json_pack("{s:s}", "status", ready ? "Healthy" : "Unhealthy"));
    return HTTP_DONE;
}

const http_route_t route_ts_ping = {
    .name = "torchserve_ping",
    .start = ts_ping_start,
};
