/* grpc_parse.c - ModelInferRequest and grpc-timeout on bytes alone (see
 * grpc_parse.h). */
#include "grpc_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_service.pb-c.h"

typedef Inference__ModelInferRequest infer_msg_t;
typedef Inference__ModelInferRequest__InferInputTensor in_tensor_t;

typedef struct {
    grpc_status_t *status;
    char *why;
    size_t size;
} fail_t;

__attribute__((format(printf, 3, 4))) static bool fail(fail_t *f, grpc_status_t st,
                                                        const char *fmt, ...)
{
    *f->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, f->size, fmt, ap);
    va_end(ap);
    return false;
}

static bool pick_outputs(grpc_infer_req_t *r, const infer_msg_t *m, fail_t *f)
{
    static const char *const names[GRPC_OUT_MAX] = {"probabilities", "logits", "features"};
    r->n_outputs = 1;
    r->outputs[0] = GRPC_OUT_PROBABILITIES;
    if (m->n_outputs == 0)
        return true;
    if (m->n_outputs > GRPC_OUT_MAX)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT, "at most %d outputs may be requested",
                    GRPC_OUT_MAX);
    r->n_outputs = (int)m->n_outputs;
    bool seen[GRPC_OUT_MAX] = {false};
    for (size_t i = 0; i < m->n_outputs; i++) {
        const char *name = m->outputs[i]->name;
        int k = 0;
        while (k < GRPC_OUT_MAX && strcmp(name, names[k]) != 0)
            k++;
        if (k == GRPC_OUT_MAX)
            return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                        "unknown output '%.100s' (probabilities, logits, features)", name);
        if (seen[k])
            return fail(f, GRPC_STATUS_INVALID_ARGUMENT, "output '%s' requested twice", name);
        seen[k] = true;
        r->outputs[i] = k;
    }
    return true;
}

/* BYTES elements: typed, or the raw length-prefixed layout. */
static bool take_spans(grpc_infer_req_t *r, const in_tensor_t *t, const ProtobufCBinaryData *raw,
                       fail_t *f)
{
    r->images = calloc((size_t)r->n, sizeof *r->images);
    if (!r->images)
        return fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    if (!raw) {
        size_t have = t->contents ? t->contents->n_bytes_contents : 0;
        if (have != (size_t)r->n)
            return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                        "contents.bytes_contents has %zu elements; shape says %d", have, r->n);
        for (int i = 0; i < r->n; i++)
            r->images[i] = (grpc_span_t){t->contents->bytes_contents[i].data,
                                         t->contents->bytes_contents[i].len};
        return true;
    }
    size_t off = 0;
    for (int i = 0; i < r->n; i++) {
        if (raw->len - off < 4)
            return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                        "raw_input_contents[0] ends before element %d", i);
        const uint8_t *p = raw->data + off;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        off += 4;
        if (len > raw->len - off)
            return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                        "raw_input_contents[0]: element %d runs past the end", i);
        r->images[i] = (grpc_span_t){raw->data + off, len};
        off += len;
    }
    if (off != raw->len)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                    "raw_input_contents[0] has bytes after its %d elements", r->n);
    return true;
}

static bool take_input(grpc_infer_req_t *r, const infer_msg_t *m, int max_images, fail_t *f)
{
    if (m->n_inputs != 1)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                    "exactly one input ('input' FP32 or 'image' BYTES), got %zu", m->n_inputs);
    if (m->n_raw_input_contents > 1)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                    "raw_input_contents has %zu entries for 1 input", m->n_raw_input_contents);
    const in_tensor_t *t = m->inputs[0];
    r->fp32 = strcmp(t->name, "input") == 0 && strcmp(t->datatype, "FP32") == 0;
    bool bytes = strcmp(t->name, "image") == 0 && strcmp(t->datatype, "BYTES") == 0;
    if (!r->fp32 && !bytes)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT,
                    "input '%.100s' %.20s: the model takes 'input' FP32 or 'image' BYTES",
                    t->name, t->datatype);
    size_t rank = r->fp32 ? 4 : 1;
    if (t->n_shape != rank || t->shape[0] < 1)
        return fail(f, GRPC_STATUS_INVALID_ARGUMENT, "input '%s' must have shape %s", t->name,
                    r->fp32 ? "[N,3,H,W]" : "[N]");
    if (t->shape[0] > max_images)
        return fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED, "%lld images; max_images_per_request is %d",
                    (long long)t->shape[0], max_images);
    r->n = (int)t->shape[0];
    const ProtobufCBinaryData *raw = m->n_raw_input_contents ? &m->raw_input_contents[0] : NULL;
    if (!r->fp32)
        return take_spans(r, t, raw, f);
    memcpy(r->shape, t->shape, sizeof r->shape);
    if (raw) {
        r->raw = raw->data;
        r->raw_len = raw->len;
    } else if (t->contents) {
        r->floats = t->contents->fp32_contents;
        r->n_floats = t->contents->n_fp32_contents;
    }
    return true;
}

bool grpc_parse_infer(const uint8_t *msg, size_t len, int max_images, grpc_infer_req_t *out,
                      grpc_status_t *status, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    fail_t f = {status, why, why_size};
    infer_msg_t *m = inference__model_infer_request__unpack(NULL, len, msg);
    if (!m)
        return fail(&f, GRPC_STATUS_INVALID_ARGUMENT, "malformed ModelInferRequest message");
    out->msg = m;
    out->model_name = m->model_name;
    out->model_version = m->model_version;
    out->id = m->id;
    return pick_outputs(out, m, &f) && take_input(out, m, max_images, &f);
}

void grpc_infer_req_free(grpc_infer_req_t *r)
{
    if (r->msg)
        inference__model_infer_request__free_unpacked(r->msg, NULL);
    free(r->images);
    memset(r, 0, sizeof *r);
}

int64_t grpc_parse_timeout(const uint8_t *v, size_t len)
{
    if (len < 2 || len > 9)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    int64_t unit;
    switch (v[len - 1]) {
    case 'H': unit = 3600 * 1000000000LL; break;
    case 'M': unit = 60 * 1000000000LL; break;
    case 'S': unit = 1000000000LL; break;
    case 'm': unit = 1000000LL; break;
    case 'u': unit = 1000LL; break;
    case 'n': unit = 1; break;
    default: return -1;
    }
    return n > INT64_MAX / 4 / unit ? INT64_MAX / 4 : n * unit; /* years: as good as none */
}
