/* route_kserve.c - the KServe v2 REST protocol (the "Open Inference
 * Protocol"): server metadata, model metadata and readiness, and infer. The
 * request/response tensors are kserve_tensor.c's business (on bytes); this
 * file routes, checks the model name, decodes and queues the images and
 * answers. Errors use KServe's flat {"error": "message"} body with the status
 * http_error.h gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "infer_job.h"
#include "kserve_tensor.h"
#include "resnetd/engine.h"
#include "routes.h"
#include "scores.h"

typedef struct {
    infer_job_t job;
    kserve_request_t kr;
} kserve_state_t;

/* The model the URL names, or NULL after answering 404. */
static served_model_t *model_matches(http_request_t *req)
{
    served_model_t *m = http_request_model(req);
    if (m)
        return m;
    char msg[600];
    int status = http_request_model_miss(req, msg, sizeof msg);
    http_respond_kserve_error(req, status, msg);
    return NULL;
}

static http_step_t server_meta_start(http_request_t *req)
{
    http_respond_json(req, 200, json_pack("{s:s, s:s, s:[s,s,s]}", "name", "resnetd", "version",
                                          RESNETD_VERSION, "extensions", "binary_tensor_data",
                                          "model_repository", "statistics"));
    return HTTP_DONE;
}

static http_step_t model_meta_start(http_request_t *req)
{
    const served_model_t *m = model_matches(req);
    if (!m)
        return HTTP_DONE;
    int vs[16], n = registry_versions(http_request_deps(req)->registry, served_model_name(m), vs, 16);
    json_t *versions = json_array();
    for (int i = 0; i < n; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", vs[i]);
        json_array_append_new(versions, json_string(v));
    }
    const model_preproc_t *pp = served_model_preproc(m);
    const model_info_t *mi = served_model_info(m);
    int c = mi->n_classes;
    engine_feature_shape_t fs = served_model_feature_shape(m);
    http_respond_json(
        req, 200,
        json_pack("{s:s, s:o, s:s, s:[{s:s, s:s, s:[i,i,i,i]}, {s:s, s:s, s:[i]}],"
                  " s:[{s:s, s:s, s:[i,i]}, {s:s, s:s, s:[i,i]}, {s:s, s:s, s:[i,i]},"
                  " {s:s, s:s, s:[i,i,i]}], s:{s:s, s:s, s:s}}",
                  "name", served_model_name(m), "versions", versions, "platform", "resnetd",
                  "inputs", "name", "input", "datatype", "FP32", "shape", -1, 3, pp->input_h,
                  pp->input_w, "name", "image", "datatype", "BYTES", "shape", -1, "outputs",
                  "name", "probabilities", "datatype", "FP32", "shape", -1, c, "name", "logits",
                  "datatype", "FP32", "shape", -1, c, "name", "features", "datatype", "FP32",
                  "shape", -1, fs.channels, "name", "cam", "datatype", "FP32", "shape", -1,
                  fs.height, fs.width, "parameters", "arch",
                  mi->arch, "precision", engine_precision_name(mi->precision), "isa",
                  engine_isa_name()));
    return HTTP_DONE;
}

static http_step_t model_ready_start(http_request_t *req)
{
    const served_model_t *m = model_matches(req);
    if (!m)
        return HTTP_DONE;
    bool ready = !http_draining(http_request_server(req)); /* found: a version is ready */
    http_respond_json(req, ready ? 200 : 503,
                      json_pack("{s:s, s:b}", "name", served_model_name(m), "ready", ready));
    return HTTP_DONE;
}

/* The BYTES element i is decoded (on a decode pool thread, which owns it
 * until then): its base64 copy is not needed any more. */
static void element_decoded(void *ctx, int i)
{
    kserve_request_t *kr = ctx;
    free(kr->images[i].owned);
    kr->images[i].owned = NULL;
    kr->images[i].data = NULL;
}

/* The parsed request's images into the job: JPEGs handed to the decode pool
 * (all or none queued, and none when the tail is bad, which finish() answers
 * after any image's error, as KServe orders them), or the FP32 tensor
 * adopted and queued. False after answering. */
static bool start_job(http_request_t *req, kserve_state_t *s)
{
    kserve_request_t *kr = &s->kr;
    rd_error_t err = {0};
    float *tensor = kr->tensor;
    kr->tensor = NULL; /* the job owns it now, even if init fails */
    infer_want_t want = {.features = kserve_wants(kr, KSERVE_OUT_FEATURES),
                         .feature_map = kserve_wants(kr, KSERVE_OUT_CAM)};
    if (infer_job_init(&s->job, req, http_request_model(req), kr->n_images, tensor, &err) !=
            RD_OK ||
        infer_job_want(&s->job, &want, &err) != RD_OK) {
        http_respond_kserve_error(req, 503, err.msg);
        return false;
    }
    http_request_set_images(req, s->job.n);
    rd_status_t st;
    if (!kr->images) {
        if ((st = kserve_check_tail(kr, &err)) != RD_OK) {
            http_respond_kserve_error(req, http_error_status(st, HTTP_CTX_TENSOR), err.msg);
            return false;
        }
        if ((st = infer_job_submit(&s->job, &err)) != RD_OK) {
            http_respond_kserve_error(req, http_error_status(st, HTTP_CTX_QUEUE), err.msg);
            return false;
        }
        return true;
    }
    image_span_t *spans = malloc((size_t)kr->n_images * sizeof *spans);
    if (!spans) {
        http_respond_kserve_error(req, 503, "out of memory");
        return false;
    }
    for (int i = 0; i < kr->n_images; i++)
        spans[i] = (image_span_t){kr->images[i].data, kr->images[i].len};
    s->job.all_or_none = true;
    s->job.hold = kserve_check_tail(kr, &err) != RD_OK;
    s->job.decoded = element_decoded;
    s->job.decoded_ctx = kr;
    int status = infer_job_decode_all(&s->job, spans, &err);
    free(spans);
    if (status) {
        http_respond_kserve_error(req, status, err.msg);
        return false;
    }
    return true;
}

static http_step_t infer_start(http_request_t *req)
{
    const served_model_t *m = model_matches(req);
    if (!m)
        return HTTP_DONE;
    kserve_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        http_respond_kserve_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_request_set_state(req, s);
    kserve_limits_t lim = {
        .max_images = http_request_deps(req)->limits->max_images_per_request,
        .input_h = served_model_preproc(m)->input_h,
        .input_w = served_model_preproc(m)->input_w,
        .n_classes = served_model_info(m)->n_classes,
    };
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    rd_error_t err = {0};
    rd_status_t st = kserve_parse(body, len, http_header(req, "Inference-Header-Content-Length"),
                                  &lim, &s->kr, &err);
    if (st != RD_OK) {
        http_respond_kserve_error(req, http_error_status(st, HTTP_CTX_TENSOR), err.msg);
        return HTTP_DONE;
    }
    return start_job(req, s) ? HTTP_PENDING : HTTP_DONE;
}

/* The first error in KServe's order: an image that did not decode, the
 * binary tail, the queue's refusal, then an image that did not run. False
 * after answering it. */
static bool answer_error(http_request_t *req, kserve_state_t *s)
{
    infer_job_t *job = &s->job;
    int refused = infer_job_collect(job);
    for (int i = 0; i < job->n; i++)
        if (job->status[i] != 0 && job->status[i] != 200 && !job->items[i].done) {
            http_respond_kserve_error(req, job->status[i], job->message[i]);
            return false;
        }
    rd_error_t err = {0};
    rd_status_t st = kserve_check_tail(&s->kr, &err);
    if (st != RD_OK) {
        http_respond_kserve_error(req, http_error_status(st, HTTP_CTX_TENSOR), err.msg);
        return false;
    }
    if (refused) {
        http_respond_kserve_error(req, refused, job->refused_msg);
        return false;
    }
    for (int i = 0; i < job->n; i++)
        if (job->status[i] != 200) {
            http_respond_kserve_error(req, job->status[i], job->message[i]);
            return false;
        }
    return true;
}

/* The cam output: each image's map of its top-1 class or of the requested
 * one, [n][h][w] (malloc'd), or NULL when out of memory. */
static float *job_cams(const kserve_state_t *s)
{
    const infer_job_t *job = &s->job;
    size_t px = (size_t)job->fshape.height * (size_t)job->fshape.width;
    float *cams = malloc((size_t)job->n * px * sizeof *cams);
    for (int i = 0; cams && i < job->n; i++) {
        int cls = s->kr.cam_class;
        if (cls < 0) /* the logits rank as the probabilities */
            scores_topk(job->logits + (size_t)i * (size_t)job->n_classes, job->n_classes, 1, &cls);
        rd_error_t err;
        if (infer_job_cam(job, i, cls, cams + (size_t)i * px, &err) != RD_OK) {
            free(cams);
            return NULL;
        }
    }
    return cams;
}

static void infer_finish(http_request_t *req)
{
    kserve_state_t *s = http_request_state(req);
    if (!answer_error(req, s))
        return;
    kserve_response_t out;
    rd_error_t err = {0};
    const infer_job_t *job = &s->job;
    kserve_values_t v = {.logits = job->logits, .n_classes = job->n_classes,
                         .features = job->features, .channels = job->fshape.channels,
                         .cam_h = job->fshape.height, .cam_w = job->fshape.width};
    float *cams = job->maps ? job_cams(s) : NULL;
    v.cams = cams;
    rd_status_t st = job->maps && !cams
                         ? rd_error_set(&err, RD_ERR_NOMEM, "out of memory")
                         : kserve_encode_values(&s->kr, served_model_name(job->model), &v, &out,
                                                &err);
    free(cams);
    if (st != RD_OK) {
        http_respond(req, 503, "application/json", strdup("{\"error\":\"out of memory\"}"), 25);
        return;
    }
    if (out.binary) {
        char v[24];
        snprintf(v, sizeof v, "%zu", out.json_len);
        http_set_header(req, "Inference-Header-Content-Length", v);
    }
    http_respond(req, 200, out.binary ? "application/octet-stream" : "application/json", out.body,
                 out.len);
}

static void infer_cancel(http_request_t *req)
{
    kserve_state_t *s = http_request_state(req);
    if (s)
        infer_job_cancel(&s->job);
}

static void infer_cleanup(http_request_t *req)
{
    kserve_state_t *s = http_request_state(req);
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
