/* grpc_infer.c - ModelInfer: the request's one input - "input" FP32
 * [N,3,H,W] (raw_input_contents or contents.fp32_contents, already
 * preprocessed) or "image" BYTES [N] (JPEG/PNG/WebP files, decoded by
 * image_to_tensor with the configured limits, as the REST routes decode) -
 * queued on the model's batcher with the call's deadline, all or none; the
 * answer's outputs ("probabilities" by default, "logits", "features") in
 * raw_output_contents, probabilities by the same scores_softmax as REST.
 * Errors go through http_error_status + status_map_grpc, as REST's do.
 * THREADS: start/finish/free on the connection thread; item_done on the
 * batcher's worker (it only counts down and hands the call back);
 * grpc_infer_cancel from the connection thread while items are queued. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "grpc_internal.h"
#include "grpc_parse.h"
#include "grpc_service.pb-c.h"
#include "scores.h"
#include "served_model.h"

typedef Inference__ModelInferResponse__InferOutputTensor out_tensor_t;

struct grpc_infer {
    grpc_infer_t *next_done;
    grpc_conn_t *conn;
    int32_t stream;
    served_model_t *model;
    char *id;             /* the request's id, echoed */
    int n, n_classes;
    size_t in_floats;
    int n_outputs, outputs[GRPC_OUT_MAX];
    int channels;         /* features per image, when asked */
    float *inputs, *logits, *features; /* features: [n][channels] or NULL */
    batcher_item_t *items;
    atomic_int left;      /* items not yet done */
};

grpc_infer_t **grpc_infer_next(grpc_infer_t *inf)
{
    return &inf->next_done;
}

int32_t grpc_infer_stream(const grpc_infer_t *inf)
{
    return inf->stream;
}

void grpc_infer_free(grpc_infer_t *inf)
{
    if (!inf)
        return;
    free(inf->id);
    free(inf->inputs);
    free(inf->logits);
    free(inf->features);
    free(inf->items);
    served_model_unref(inf->model);
    free(inf);
}

static void item_done(batcher_item_t *item, void *ctx)
{
    (void)item;
    grpc_infer_t *inf = ctx;
    if (atomic_fetch_sub(&inf->left, 1) == 1)
        grpc_conn_complete(inf->conn, inf);
}

void grpc_infer_cancel(grpc_infer_t *inf)
{
    for (int i = 0; i < inf->n; i++)
        batcher_item_cancel(&inf->items[i]);
}

/* Image i of a BYTES input decoded into inf->inputs. */
static bool decode_one(grpc_t *g, grpc_infer_t *inf, int i, grpc_span_t img, grpc_reply_t *reply)
{
    rd_error_t err = {0};
    image_limits_t lim = g->image;
    rd_status_t st = img.len ? image_to_tensor(img.data, img.len, served_model_preproc(inf->model),
                                               &lim, inf->inputs + (size_t)i * inf->in_floats, &err)
                             : rd_error_set(&err, RD_ERR_FORMAT, "empty image (0 bytes)");
    if (st == RD_OK)
        return true;
    grpc_reply_error(reply, status_map_grpc(http_error_status(st, HTTP_CTX_IMAGE)), "image %d: %s",
                     i, err.msg);
    return false;
}

/* The FP32 values (raw or typed) into inf->inputs: the model's size, finite. */
static bool take_fp32(grpc_infer_t *inf, const grpc_infer_req_t *r, grpc_reply_t *reply)
{
    const model_preproc_t *pp = served_model_preproc(inf->model);
    if (r->shape[1] != 3 || r->shape[2] != pp->input_h || r->shape[3] != pp->input_w) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "input 'input' must have shape [N,3,%d,%d]", pp->input_h, pp->input_w);
        return false;
    }
    size_t count = (size_t)inf->n * inf->in_floats;
    if (r->raw ? r->raw_len != count * sizeof(float) : r->n_floats != count) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "%s has %zu %s; shape needs %zu",
                         r->raw ? "raw_input_contents[0]" : "contents.fp32_contents",
                         r->raw ? r->raw_len : r->n_floats, r->raw ? "bytes" : "values",
                         r->raw ? count * sizeof(float) : count);
        return false;
    }
    /* raw: little-endian on the wire, as on every host resnetd builds for */
    memcpy(inf->inputs, r->raw ? (const void *)r->raw : (const void *)r->floats,
           count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        if (!isfinite(inf->inputs[i])) {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "input value %zu is not finite", i);
            return false;
        }
    return true;
}

/* The parsed request's images into inf, for inf->model. */
static bool take_input(grpc_t *g, grpc_infer_t *inf, const grpc_infer_req_t *r,
                       grpc_reply_t *reply)
{
    const model_preproc_t *pp = served_model_preproc(inf->model);
    inf->n = r->n;
    inf->n_outputs = r->n_outputs;
    memcpy(inf->outputs, r->outputs, sizeof inf->outputs);
    inf->in_floats = (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
    inf->n_classes = served_model_info(inf->model)->n_classes;
    inf->inputs = malloc((size_t)inf->n * inf->in_floats * sizeof(float));
    inf->logits = malloc((size_t)inf->n * (size_t)inf->n_classes * sizeof(float));
    inf->items = calloc((size_t)inf->n, sizeof *inf->items);
    bool features = false;
    for (int k = 0; k < inf->n_outputs; k++)
        features |= inf->outputs[k] == GRPC_OUT_FEATURES;
    if (features) {
        inf->channels = served_model_feature_shape(inf->model).channels;
        inf->features = malloc((size_t)inf->n * (size_t)inf->channels * sizeof(float));
    }
    if (!inf->inputs || !inf->logits || !inf->items || (features && !inf->features)) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return false;
    }
    if (r->fp32)
        return take_fp32(inf, r, reply);
    for (int i = 0; i < inf->n; i++)
        if (!decode_one(g, inf, i, r->images[i], reply))
            return false;
    return true;
}

/* Queues every image, all or none. */
static bool submit(grpc_infer_t *inf, int64_t deadline_ns, grpc_reply_t *reply)
{
    batcher_item_t **ptrs = malloc((size_t)inf->n * sizeof *ptrs);
    if (!ptrs) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return false;
    }
    for (int i = 0; i < inf->n; i++) {
        batcher_item_init(&inf->items[i], inf->inputs + (size_t)i * inf->in_floats,
                          inf->logits + (size_t)i * (size_t)inf->n_classes, deadline_ns, item_done,
                          inf);
        if (inf->features)
            inf->items[i].features = inf->features + (size_t)i * (size_t)inf->channels;
        ptrs[i] = &inf->items[i];
    }
    atomic_store(&inf->left, inf->n);
    rd_error_t err = {0};
    rd_status_t st = served_model_submit(inf->model, ptrs, inf->n, &err);
    free(ptrs);
    if (st == RD_OK)
        return true;
    grpc_reply_error(reply, status_map_grpc(http_error_status(st, HTTP_CTX_QUEUE)), "%s", err.msg);
    return false;
}

grpc_infer_t *grpc_infer_start(grpc_t *g, grpc_conn_t *conn, const grpc_call_in_t *in,
                               grpc_reply_t *reply)
{
    grpc_infer_req_t req;
    bool ok = grpc_parse_infer(in->msg, in->len, g->cfg.max_images_per_request, &req,
                               &reply->status, reply->message, sizeof reply->message);
    grpc_infer_t *inf = ok ? calloc(1, sizeof *inf) : NULL;
    if (ok && !inf) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        ok = false;
    }
    if (ok) {
        inf->conn = conn;
        inf->stream = in->stream;
        inf->id = strdup(req.id);
        inf->model = grpc_find_model(g, req.model_name, req.model_version, reply);
        ok = inf->model && inf->id;
    }
    ok = ok && take_input(g, inf, &req, reply);
    grpc_infer_req_free(&req);
    if (ok && clock_now_ns() >= in->deadline_ns) {
        metrics_count_dropped(g->metrics, METRICS_DROP_DEADLINE, (uint64_t)inf->n);
        grpc_reply_error(reply, GRPC_STATUS_DEADLINE_EXCEEDED, "the deadline passed while decoding");
        ok = false;
    }
    if (ok && submit(inf, in->deadline_ns, reply))
        return inf;
    grpc_infer_free(inf);
    return NULL;
}

/* The first image that did not run, as the answer's error; false if none. */
static bool outcome_error(grpc_infer_t *inf, grpc_reply_t *reply)
{
    for (int i = 0; i < inf->n; i++) {
        const batcher_item_t *it = &inf->items[i];
        int http = 200;
        switch (it->outcome) {
        case BATCHER_OK: continue;
        case BATCHER_EXPIRED: http = http_error_drop_status(METRICS_DROP_DEADLINE); break;
        case BATCHER_CANCELLED: http = http_error_drop_status(METRICS_DROP_CANCELLED); break;
        case BATCHER_SHUTDOWN: http = http_error_drop_status(METRICS_DROP_SHUTDOWN); break;
        case BATCHER_FAILED: http = http_error_status(it->error.code, HTTP_CTX_INFERENCE); break;
        }
        grpc_reply_error(reply, status_map_grpc(http), "image %d: %s", i,
                         it->outcome == BATCHER_FAILED ? it->error.msg
                         : it->outcome == BATCHER_EXPIRED ? "the deadline passed while queued"
                                                          : "not run");
        return true;
    }
    return false;
}

/* Output k's values, [n][width] (malloc'd; NULL when out of memory). */
static float *output_values(const grpc_infer_t *inf, int which, int *width)
{
    *width = which == GRPC_OUT_FEATURES ? inf->channels : inf->n_classes;
    size_t row = (size_t)*width, count = (size_t)inf->n * row;
    float *v = malloc(count * sizeof *v);
    for (int i = 0; v && i < inf->n; i++) {
        const float *logits = inf->logits + (size_t)i * (size_t)inf->n_classes;
        if (which == GRPC_OUT_PROBABILITIES)
            scores_softmax(logits, inf->n_classes, v + (size_t)i * row);
        else
            memcpy(v + (size_t)i * row,
                   which == GRPC_OUT_LOGITS ? logits : inf->features + (size_t)i * row,
                   row * sizeof *v);
    }
    return v;
}

void grpc_infer_finish(grpc_infer_t *inf, grpc_reply_t *reply)
{
    static const char *const names[GRPC_OUT_MAX] = {"probabilities", "logits", "features"};
    if (outcome_error(inf, reply))
        return;
    out_tensor_t t[GRPC_OUT_MAX], *tp[GRPC_OUT_MAX];
    ProtobufCBinaryData raw[GRPC_OUT_MAX] = {{0}};
    int64_t shape[GRPC_OUT_MAX][2];
    bool ok = true;
    for (int k = 0; k < inf->n_outputs; k++) {
        inference__model_infer_response__infer_output_tensor__init(&t[k]);
        tp[k] = &t[k];
        int width;
        float *v = output_values(inf, inf->outputs[k], &width);
        ok = ok && v;
        shape[k][0] = inf->n;
        shape[k][1] = width;
        t[k].name = (char *)names[inf->outputs[k]];
        t[k].datatype = "FP32";
        t[k].n_shape = 2;
        t[k].shape = shape[k];
        raw[k] = (ProtobufCBinaryData){(size_t)inf->n * (size_t)width * sizeof(float), (uint8_t *)v};
    }
    char version[16];
    snprintf(version, sizeof version, "%d", served_model_version(inf->model));
    Inference__ModelInferResponse out = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    out.model_name = (char *)served_model_name(inf->model);
    out.model_version = version;
    out.id = inf->id;
    out.n_outputs = (size_t)inf->n_outputs;
    out.outputs = tp;
    out.n_raw_output_contents = (size_t)inf->n_outputs;
    out.raw_output_contents = raw;
    size_t len = ok ? protobuf_c_message_get_packed_size(&out.base) : 0;
    reply->body = ok ? malloc(len ? len : 1) : NULL;
    if (reply->body) {
        reply->len = protobuf_c_message_pack(&out.base, reply->body);
        reply->status = GRPC_STATUS_OK;
    } else {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (int k = 0; k < inf->n_outputs; k++)
        free(raw[k].data);
}
