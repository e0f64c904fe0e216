/* route_kserve.c - the KServe v2 REST protocol (the "Open Inference
 * Protocol"): server metadata, model metadata and readiness, and infer. The
 * request/response tensors are kserve_tensor.c's business; this file routes,
 * checks the model name, queues the images and answers. Errors use KServe's
 * flat {"error": "message"} body with the status http_error.h would give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "infer_job.h"
#include "kserve_tensor.h"
#include "resnetd/engine.h"
#include "routes.h"

typedef struct {
    infer_job_t job;
    kserve_request_t kr;
} kserve_state_t;

/* False (after answering 404) when the URL names another model. */
static bool model_matches(http_request_t *req)
{
    if (!strcmp(req->param, req->deps->model_name))
        return true;
    char msg[256];
    snprintf(msg, sizeof msg, "model '%.100s' is not served here (this server serves '%.100s')",
             req->param, req->deps->model_name);
    http_respond_kserve_error(req, 404, msg);
    return false;
}

static http_step_t server_meta_start(http_request_t *req)
{
    http_respond_json(req, 200, json_pack("{s:s, s:s, s:[s]}", "name", "resnetd", "version",
                                          RESNETD_VERSION, "extensions", "binary_tensor_data"));
    return HTTP_DONE;
}

static http_step_t model_meta_start(http_request_t *req)
{
    if (!model_matches(req))
        return HTTP_DONE;
    const model_preproc_t *pp = req->deps->preproc;
    int c = req->deps->model->n_classes;
    http_respond_json(
        req, 200,
        json_pack("{s:s, s:[s], s:s, s:[{s:s, s:s, s:[i,i,i,i]}, {s:s, s:s, s:[i]}],"
                  " s:[{s:s, s:s, s:[i,i]}, {s:s, s:s, s:[i,i]}], s:{s:s, s:s, s:s}}",
                  "name", req->deps->model_name, "versions", "1", "platform", "resnetd",
                  "inputs", "name", "input", "datatype", "FP32", "shape", -1, 3, pp->input_h,
                  pp->input_w, "name", "image", "datatype", "BYTES", "shape", -1, "outputs",
                  "name", "probabilities", "datatype", "FP32", "shape", -1, c, "name", "logits",
                  "datatype", "FP32", "shape", -1, c, "parameters", "arch",
                  req->deps->model->arch, "precision",
                  engine_precision_name(req->deps->model->precision), "isa",
                  engine_isa_name()));
    return HTTP_DONE;
}

static http_step_t model_ready_start(http_request_t *req)
{
    if (!model_matches(req))
        return HTTP_DONE;
    bool ready = http_ready(req->http);
    http_respond_json(req, ready ? 200 : 503,
                      json_pack("{s:s, s:b}", "name", req->deps->model_name, "ready", ready));
    return HTTP_DONE;
}

static http_step_t infer_start(http_request_t *req)
{
    if (!model_matches(req))
        return HTTP_DONE;
    kserve_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        http_respond_kserve_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    req->route_data = s;
    char msg[INFER_JOB_MSG_MAX + 64];
    int st = kserve_parse_request(req, &s->job, &s->kr, msg, sizeof msg);
    if (st) {
        http_respond_kserve_error(req, st, msg);
        return HTTP_DONE;
    }
    req->images = s->job.n;
    if (infer_job_submit(&s->job) == 503) {
        http_respond_kserve_error(req, 503, "queue full (max_queue_length) or server draining; retry later");
        return HTTP_DONE;
    }
    return HTTP_PENDING;
}

static void infer_finish(http_request_t *req)
{
    kserve_state_t *s = req->route_data;
    infer_job_collect(&s->job);
    for (int i = 0; i < s->job.n; i++)
        if (s->job.status[i] != 200) {
            http_respond_kserve_error(req, s->job.status[i], s->job.message[i]);
            return;
        }
    kserve_respond(req, &s->job, &s->kr);
}

static void infer_cancel(http_request_t *req)
{
    kserve_state_t *s = req->route_data;
    if (s)
        infer_job_cancel(&s->job);
}

static void infer_cleanup(http_request_t *req)
{
    kserve_state_t *s = req->route_data;
    if (!s)
        return;
    infer_job_free(&s->job);
    kserve_request_free(&s->kr);
    free(s);
}

const http_route_t route_v2_server = {.name = "v2_server", .start = server_meta_start};
const http_route_t route_v2_model = {
    .name = "v2_model", .needs_model = true, .start = model_meta_start};
const http_route_t route_v2_model_ready = {
    .name = "v2_model_ready", .needs_model = true, .start = model_ready_start};
const http_route_t route_v2_infer = {
    .name = "v2_infer",
    .takes_body = true,
    .feeds_batcher = true,
    .needs_model = true,
    .start = infer_start,
    .finish = infer_finish,
    .cleanup = infer_cleanup,
    .cancel = infer_cancel,
};
