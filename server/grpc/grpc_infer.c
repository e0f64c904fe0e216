/* grpc_infer.c - ModelInfer: the request's one input - "input" FP32
 * [N,3,H,W] (raw_input_contents or contents.fp32_contents, already
 * preprocessed) or "image" BYTES [N] (JPEG/PNG/WebP files, decoded by
 * image_to_tensor with the configured limits, as the REST routes decode) -
 * queued on the model's batcher with the call's deadline, all or none; the
 * answer's outputs ("probabilities" by default, "logits") in
 * raw_output_contents, probabilities by the same scores_softmax as REST.
 * Errors go through http_error_status + status_map_grpc, as REST's do.
 * THREADS: start/finish/free on the connection thread; item_done on the
 * batcher's worker (it only counts down and hands the call back);
 * grpc_infer_cancel from the connection thread while items are queued. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "grpc_internal.h"
#include "grpc_service.pb-c.h"
#include "scores.h"
#include "served_model.h"

typedef Inference__ModelInferRequest infer_req_t;
typedef Inference__ModelInferRequest__InferInputTensor in_tensor_t;
typedef Inference__ModelInferResponse__InferOutputTensor out_tensor_t;

enum { OUT_PROBABILITIES = 0, OUT_LOGITS = 1 };

struct grpc_infer {
    grpc_infer_t *next_done;
    grpc_conn_t *conn;
    int32_t stream;
    served_model_t *model;
    char *id;             /* the request's id, echoed */
    int n, n_classes;
    size_t in_floats;
    int n_outputs, outputs[2];
    float *inputs, *logits;
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
    free(inf->items);
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

/* The requested outputs into inf; false with *reply set on an unknown name. */
static bool pick_outputs(grpc_infer_t *inf, const infer_req_t *req, grpc_reply_t *reply)
{
    inf->n_outputs = 1;
    inf->outputs[0] = OUT_PROBABILITIES;
    if (req->n_outputs == 0)
        return true;
    if (req->n_outputs > 2) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "at most 2 outputs may be requested");
        return false;
    }
    inf->n_outputs = (int)req->n_outputs;
    for (size_t i = 0; i < req->n_outputs; i++) {
        const char *name = req->outputs[i]->name;
        if (strcmp(name, "probabilities") == 0)
            inf->outputs[i] = OUT_PROBABILITIES;
        else if (strcmp(name, "logits") == 0)
            inf->outputs[i] = OUT_LOGITS;
        else {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                             "unknown output '%.100s' (probabilities, logits)", name);
            return false;
        }
    }
    return true;
}

/* An FP32 [N,3,H,W] input into inf->inputs. */
static bool take_fp32(grpc_infer_t *inf, const in_tensor_t *t, const ProtobufCBinaryData *raw,
                      grpc_reply_t *reply)
{
    size_t count = (size_t)inf->n * inf->in_floats;
    if (raw && raw->len != count * sizeof(float)) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "raw_input_contents[0] has %zu bytes; shape needs %zu", raw->len,
                         count * sizeof(float));
        return false;
    }
    size_t have = t->contents ? t->contents->n_fp32_contents : 0;
    if (!raw && have != count) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "contents.fp32_contents has %zu values; shape needs %zu", have, count);
        return false;
    }
    if (raw) /* little-endian on the wire, as on every host resnetd builds for */
        memcpy(inf->inputs, raw->data, raw->len);
    else
        memcpy(inf->inputs, t->contents->fp32_contents, count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        if (!isfinite(inf->inputs[i])) {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "input value %zu is not finite", i);
            return false;
        }
    return true;
}

/* Image i of a BYTES input decoded into inf->inputs. */
static bool decode_one(grpc_t *g, grpc_infer_t *inf, int i, const uint8_t *data, size_t len,
                       grpc_reply_t *reply)
{
    rd_error_t err = {0};
    image_limits_t lim = g->image;
    rd_status_t st = len ? image_to_tensor(data, len, served_model_preproc(inf->model), &lim,
                                           inf->inputs + (size_t)i * inf->in_floats, &err)
                         : rd_error_set(&err, RD_ERR_FORMAT, "empty image (0 bytes)");
    if (st == RD_OK)
        return true;
    grpc_reply_error(reply, status_map_grpc(http_error_status(st, HTTP_CTX_IMAGE)), "image %d: %s",
                     i, err.msg);
    return false;
}

/* A BYTES [N] input: contents.bytes_contents, or raw_input_contents[0] as
 * the v2 protocol lays BYTES out (each element a 4-byte little-endian length,
 * then its bytes). */
static bool take_bytes(grpc_t *g, grpc_infer_t *inf, const in_tensor_t *t,
                       const ProtobufCBinaryData *raw, grpc_reply_t *reply)
{
    if (!raw) {
        size_t have = t->contents ? t->contents->n_bytes_contents : 0;
        if (have != (size_t)inf->n) {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                             "contents.bytes_contents has %zu elements; shape says %d", have, inf->n);
            return false;
        }
        for (int i = 0; i < inf->n; i++)
            if (!decode_one(g, inf, i, t->contents->bytes_contents[i].data,
                            t->contents->bytes_contents[i].len, reply))
                return false;
        return true;
    }
    size_t off = 0;
    for (int i = 0; i < inf->n; i++) {
        if (raw->len - off < 4) {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                             "raw_input_contents[0] ends before element %d", i);
            return false;
        }
        const uint8_t *p = raw->data + off;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        off += 4;
        if (len > raw->len - off) {
            grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                             "raw_input_contents[0]: element %d runs past the end", i);
            return false;
        }
        if (!decode_one(g, inf, i, raw->data + off, len, reply))
            return false;
        off += len;
    }
    if (off != raw->len) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "raw_input_contents[0] has bytes after its %d elements", inf->n);
        return false;
    }
    return true;
}

/* The one input's shape checked, N set, buffers allocated. */
static bool size_input(grpc_t *g, grpc_infer_t *inf, const in_tensor_t *t, bool fp32,
                       grpc_reply_t *reply)
{
    const model_preproc_t *pp = served_model_preproc(inf->model);
    size_t rank = fp32 ? 4 : 1;
    bool ok = t->n_shape == rank && t->shape[0] >= 1;
    if (ok && fp32)
        ok = t->shape[1] == 3 && t->shape[2] == pp->input_h && t->shape[3] == pp->input_w;
    if (!ok) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         fp32 ? "input 'input' must have shape [N,3,%d,%d]"
                              : "input 'image' must have shape [N]%.0d",
                         pp->input_h, pp->input_w);
        return false;
    }
    if (t->shape[0] > g->cfg.max_images_per_request) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED,
                         "%lld images; max_images_per_request is %d", (long long)t->shape[0],
                         g->cfg.max_images_per_request);
        return false;
    }
    inf->n = (int)t->shape[0];
    inf->in_floats = (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
    inf->n_classes = served_model_info(inf->model)->n_classes;
    inf->inputs = malloc((size_t)inf->n * inf->in_floats * sizeof(float));
    inf->logits = malloc((size_t)inf->n * (size_t)inf->n_classes * sizeof(float));
    inf->items = calloc((size_t)inf->n, sizeof *inf->items);
    if (!inf->inputs || !inf->logits || !inf->items) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return false;
    }
    return true;
}

/* The request's tensors into inf->inputs; false with *reply set. */
static bool take_input(grpc_t *g, grpc_infer_t *inf, const infer_req_t *req, grpc_reply_t *reply)
{
    if (req->n_inputs != 1) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "exactly one input ('input' FP32 or 'image' BYTES), got %zu", req->n_inputs);
        return false;
    }
    if (req->n_raw_input_contents > 1) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "raw_input_contents has %zu entries for 1 input", req->n_raw_input_contents);
        return false;
    }
    const in_tensor_t *t = req->inputs[0];
    bool fp32 = strcmp(t->name, "input") == 0 && strcmp(t->datatype, "FP32") == 0;
    bool bytes = strcmp(t->name, "image") == 0 && strcmp(t->datatype, "BYTES") == 0;
    if (!fp32 && !bytes) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                         "input '%.100s' %.20s: the model takes 'input' FP32 or 'image' BYTES",
                         t->name, t->datatype);
        return false;
    }
    if (!size_input(g, inf, t, fp32, reply))
        return false;
    const ProtobufCBinaryData *raw = req->n_raw_input_contents ? &req->raw_input_contents[0] : NULL;
    return fp32 ? take_fp32(inf, t, raw, reply) : take_bytes(g, inf, t, raw, reply);
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
    infer_req_t *req = inference__model_infer_request__unpack(NULL, in->len, in->msg);
    if (!req) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed ModelInferRequest message");
        return NULL;
    }
    grpc_infer_t *inf = calloc(1, sizeof *inf);
    bool ok = inf != NULL;
    if (!ok)
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    if (ok) {
        inf->conn = conn;
        inf->stream = in->stream;
        inf->id = strdup(req->id);
        ok = inf->id != NULL;
    }
    if (ok) {
        const registry_t *r = atomic_load(&g->registry);
        inf->model = r ? registry_find(r, req->model_name) : NULL;
        if (!r)
            grpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "the model is still loading");
        else if (!inf->model)
            grpc_reply_error(reply, GRPC_STATUS_NOT_FOUND,
                             "model '%.100s' is not served here (this server serves '%.100s')",
                             req->model_name, served_model_name(registry_default(r)));
        ok = inf->model != NULL;
    }
    ok = ok && pick_outputs(inf, req, reply) && take_input(g, inf, req, reply);
    inference__model_infer_request__free_unpacked(req, NULL);
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

void grpc_infer_finish(grpc_infer_t *inf, grpc_reply_t *reply)
{
    if (outcome_error(inf, reply))
        return;
    size_t count = (size_t)inf->n * (size_t)inf->n_classes;
    out_tensor_t t[2], *tp[2];
    ProtobufCBinaryData raw[2] = {{0}};
    int64_t shape[2] = {inf->n, inf->n_classes};
    bool ok = true;
    for (int k = 0; k < inf->n_outputs; k++) {
        inference__model_infer_response__infer_output_tensor__init(&t[k]);
        tp[k] = &t[k];
        bool logits = inf->outputs[k] == OUT_LOGITS;
        t[k].name = logits ? "logits" : "probabilities";
        t[k].datatype = "FP32";
        t[k].n_shape = 2;
        t[k].shape = shape;
        float *v = malloc(count * sizeof *v);
        ok = ok && v;
        raw[k] = (ProtobufCBinaryData){count * sizeof(float), (uint8_t *)v};
        for (int i = 0; v && i < inf->n; i++) {
            const float *row = inf->logits + (size_t)i * (size_t)inf->n_classes;
            if (logits)
                memcpy(v + (size_t)i * (size_t)inf->n_classes, row, (size_t)inf->n_classes * 4);
            else
                scores_softmax(row, inf->n_classes, v + (size_t)i * (size_t)inf->n_classes);
        }
    }
    Inference__ModelInferResponse out = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    out.model_name = (char *)served_model_name(inf->model);
    out.model_version = "1";
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
