/* kserve_tensor.c - KServe v2 request parsing and response writing (see the
 * header). The binary-data extension: the body is a JSON header of
 * Inference-Header-Content-Length bytes followed by the inputs' raw bytes in
 * input order, each input's size in parameters.binary_data_size; FP32 is
 * little-endian, BYTES elements are a 4-byte little-endian length then data. */
#include "kserve_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "classify_result.h"

typedef struct {
    const uint8_t *bin; /* binary tail */
    size_t bin_len;
    char *msg;
    size_t msg_size;
} parse_t;

#define FAIL(p, status, ...) (snprintf((p)->msg, (p)->msg_size, __VA_ARGS__), (status))

static int parse_outputs(parse_t *p, json_t *root, kserve_request_t *kr)
{
    json_t *params = json_object_get(root, "parameters");
    bool all_binary = json_is_true(json_object_get(params, "binary_data_output"));
    json_t *outs = json_object_get(root, "outputs");
    kr->n_outputs = 1;
    kr->outputs[0] = KSERVE_OUT_PROBABILITIES;
    kr->binary[0] = kr->binary[1] = all_binary;
    if (!outs)
        return 0;
    if (!json_is_array(outs) || json_array_size(outs) < 1 || json_array_size(outs) > 2)
        return FAIL(p, 400, "'outputs' must be an array of 1 or 2 output requests");
    for (size_t i = 0; i < json_array_size(outs); i++) {
        json_t *o = json_array_get(outs, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!name)
            return FAIL(p, 400, "outputs[%zu]: 'name' missing", i);
        if (!strcmp(name, "probabilities"))
            kr->outputs[i] = KSERVE_OUT_PROBABILITIES;
        else if (!strcmp(name, "logits"))
            kr->outputs[i] = KSERVE_OUT_LOGITS;
        else
            return FAIL(p, 400, "unknown output '%.64s' (have 'probabilities', 'logits')", name);
        json_t *bd = json_object_get(json_object_get(o, "parameters"), "binary_data");
        if (bd)
            kr->binary[i] = json_is_true(bd);
    }
    kr->n_outputs = (int)json_array_size(outs);
    if (kr->n_outputs == 2 && kr->outputs[0] == kr->outputs[1])
        return FAIL(p, 400, "output '%s' requested twice",
                    kr->outputs[0] ? "logits" : "probabilities");
    return 0;
}

/* Takes n bytes of the binary tail. */
static const uint8_t *take_binary(parse_t *p, size_t n)
{
    if (n > p->bin_len)
        return NULL;
    const uint8_t *d = p->bin;
    p->bin += n;
    p->bin_len -= n;
    return d;
}

/* Flattens nested JSON arrays of numbers into out[0..cap); *count gets the total seen. */
static int flatten(parse_t *p, json_t *v, float *out, size_t cap, size_t *count, int depth)
{
    if (depth > 8)
        return FAIL(p, 422, "input 'input': data nested too deeply");
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int st = flatten(p, e, out, cap, count, depth + 1);
            if (st)
                return st;
        }
        return 0;
    }
    if (!json_is_number(v))
        return FAIL(p, 422, "input 'input': data element %zu is not a number", *count);
    if (*count < cap)
        out[*count] = (float)json_number_value(v);
    (*count)++;
    return 0;
}

static int shape_dims(parse_t *p, json_t *shape, int64_t *dims, int max_dims, int *n_dims)
{
    if (!json_is_array(shape) || json_array_size(shape) < 1 ||
        json_array_size(shape) > (size_t)max_dims)
        return FAIL(p, 422, "'shape' must be an array of 1..%d integers", max_dims);
    for (size_t i = 0; i < json_array_size(shape); i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return FAIL(p, 422, "'shape'[%zu] must be a non-negative integer", i);
        dims[i] = json_integer_value(d);
    }
    *n_dims = (int)json_array_size(shape);
    return 0;
}

static int check_batch(parse_t *p, http_request_t *req, int64_t n)
{
    int max = req->deps->cfg->max_images_per_request;
    if (n < 1)
        return FAIL(p, 422, "batch dimension is 0");
    if (n > max)
        return FAIL(p, 413, "%lld images exceed max_images_per_request %d", (long long)n, max);
    return 0;
}

static int parse_fp32(parse_t *p, http_request_t *req, json_t *in, infer_job_t *job)
{
    const model_preproc_t *pp = req->deps->preproc;
    int64_t d[4];
    int nd = 0;
    int st = shape_dims(p, json_object_get(in, "shape"), d, 4, &nd);
    if (st)
        return st;
    if (nd != 4 || d[1] != 3 || d[2] != pp->input_h || d[3] != pp->input_w)
        return FAIL(p, 422, "input 'input': shape must be [N,3,%d,%d]", pp->input_h, pp->input_w);
    if ((st = check_batch(p, req, d[0])))
        return st;
    rd_error_t err = {0};
    if (infer_job_init(job, req, (int)d[0], &err) != RD_OK)
        return FAIL(p, 503, "%s", err.msg);
    size_t count = (size_t)d[0] * job->in_floats;
    json_t *bds = json_object_get(json_object_get(in, "parameters"), "binary_data_size");
    if (bds) {
        if (!json_is_integer(bds) || (size_t)json_integer_value(bds) != count * 4)
            return FAIL(p, 422, "input 'input': binary_data_size must be %zu (N*3*H*W*4)",
                        count * 4);
        const uint8_t *raw = take_binary(p, count * 4);
        if (!raw)
            return FAIL(p, 400, "input 'input': binary data shorter than binary_data_size");
        memcpy(job->inputs, raw, count * 4);
    } else {
        size_t seen = 0;
        json_t *data = json_object_get(in, "data");
        if (!json_is_array(data))
            return FAIL(p, 400, "input 'input': 'data' array (or binary_data_size) missing");
        if ((st = flatten(p, data, job->inputs, count, &seen, 0)))
            return st;
        if (seen != count)
            return FAIL(p, 422, "input 'input': %zu values for shape of %zu", seen, count);
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(job->inputs[i]))
            return FAIL(p, 422, "input 'input': value %zu is NaN or infinite", i);
    return 0;
}

/* Element i of a BYTES input, from JSON (base64 string or {"b64":...}) or binary. */
static int bytes_element(parse_t *p, json_t *data, size_t i, bool binary, uint8_t **owned,
                         const uint8_t **bytes, size_t *len)
{
    *owned = NULL;
    if (binary) {
        const uint8_t *hdr = take_binary(p, 4);
        if (!hdr)
            return FAIL(p, 400, "input 'image': binary data truncated at element %zu", i);
        *len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        if (!(*bytes = take_binary(p, *len)))
            return FAIL(p, 400, "input 'image': binary data truncated at element %zu", i);
        return 0;
    }
    json_t *e = json_array_get(data, i);
    if (json_is_object(e))
        e = json_object_get(e, "b64");
    if (!json_is_string(e))
        return FAIL(p, 422, "input 'image': element %zu must be a base64 string", i);
    rd_error_t err = {0};
    if (base64_decode(json_string_value(e), json_string_length(e), owned, len, &err) != RD_OK)
        return FAIL(p, 400, "input 'image': element %zu: %s", i, err.msg);
    *bytes = *owned;
    return 0;
}

static int parse_bytes(parse_t *p, http_request_t *req, json_t *in, infer_job_t *job)
{
    int64_t d[2];
    int nd = 0;
    int st = shape_dims(p, json_object_get(in, "shape"), d, 2, &nd);
    if (st)
        return st;
    if (nd == 2 && d[1] != 1)
        return FAIL(p, 422, "input 'image': shape must be [N] or [N,1]");
    if ((st = check_batch(p, req, d[0])))
        return st;
    json_t *bds = json_object_get(json_object_get(in, "parameters"), "binary_data_size");
    json_t *data = json_object_get(in, "data");
    size_t start_len = p->bin_len;
    if (!bds && (!json_is_array(data) || json_array_size(data) != (size_t)d[0]))
        return FAIL(p, 422, "input 'image': 'data' must be an array of %lld base64 strings",
                    (long long)d[0]);
    rd_error_t err = {0};
    if (infer_job_init(job, req, (int)d[0], &err) != RD_OK)
        return FAIL(p, 503, "%s", err.msg);
    req->images = job->n;
    for (int i = 0; i < job->n; i++) {
        uint8_t *owned;
        const uint8_t *bytes;
        size_t len;
        if ((st = bytes_element(p, data, (size_t)i, bds != NULL, &owned, &bytes, &len)))
            return st;
        int img = infer_job_decode(job, i, bytes, len);
        free(owned);
        if (img)
            return FAIL(p, img, "%s", job->message[i]);
    }
    if (bds && (!json_is_integer(bds) || (size_t)json_integer_value(bds) != start_len - p->bin_len))
        return FAIL(p, 422, "input 'image': binary_data_size does not match the elements");
    return 0;
}

static int parse_input(parse_t *p, http_request_t *req, json_t *root, infer_job_t *job,
                       kserve_request_t *kr)
{
    json_t *inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return FAIL(p, 400, "'inputs' must be an array with exactly one tensor "
                            "('input' FP32 [N,3,H,W] or 'image' BYTES [N])");
    json_t *in = json_array_get(inputs, 0);
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *dtype = json_string_value(json_object_get(in, "datatype"));
    if (!name || !dtype)
        return FAIL(p, 400, "input needs 'name' and 'datatype'");
    if (!strcmp(name, "input")) {
        if (strcmp(dtype, "FP32"))
            return FAIL(p, 422, "input 'input': datatype must be FP32, got %.16s", dtype);
        return parse_fp32(p, req, in, job);
    }
    if (!strcmp(name, "image")) {
        if (strcmp(dtype, "BYTES"))
            return FAIL(p, 422, "input 'image': datatype must be BYTES, got %.16s", dtype);
        kr->bytes_input = true;
        return parse_bytes(p, req, in, job);
    }
    return FAIL(p, 422, "unknown input '%.64s' (have 'input' FP32, 'image' BYTES)", name);
}

int kserve_parse_request(http_request_t *req, infer_job_t *job, kserve_request_t *kr, char *msg,
                         size_t msg_size)
{
    *kr = (kserve_request_t){0};
    parse_t p = {.msg = msg, .msg_size = msg_size};
    size_t json_len = req->body_len;
    const char *hlen = http_header(req, "Inference-Header-Content-Length");
    if (hlen) {
        char *end;
        unsigned long long v = strtoull(hlen, &end, 10);
        if (*hlen == 0 || *end != 0 || v > req->body_len)
            return FAIL(&p, 400, "Inference-Header-Content-Length '%.20s' is invalid", hlen);
        json_len = (size_t)v;
        p.bin = req->body + json_len;
        p.bin_len = req->body_len - json_len;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body, json_len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return FAIL(&p, 400, "request is not a JSON object: %s", jerr.text);
    }
    json_t *id = json_object_get(root, "id");
    kr->id = id ? json_incref(id) : NULL;
    int st = parse_outputs(&p, root, kr);
    if (!st)
        st = parse_input(&p, req, root, job, kr);
    if (!st && p.bin_len != 0)
        st = FAIL(&p, 400, "%zu bytes of binary data left over", p.bin_len);
    json_decref(root);
    return st;
}

/* Output k's values, [n][n_classes] floats (malloc'd). */
static float *output_values(const infer_job_t *job, kserve_output_t which)
{
    size_t count = (size_t)job->n * (size_t)job->n_classes;
    float *v = malloc(count * sizeof *v);
    if (!v)
        return NULL;
    for (int i = 0; i < job->n; i++) {
        const float *row = job->logits + (size_t)i * (size_t)job->n_classes;
        float *dst = v + (size_t)i * (size_t)job->n_classes;
        if (which == KSERVE_OUT_LOGITS)
            memcpy(dst, row, (size_t)job->n_classes * sizeof *dst);
        else
            classify_softmax(row, job->n_classes, dst);
    }
    return v;
}

static json_t *output_json(const infer_job_t *job, kserve_output_t which, bool binary,
                           const float *values)
{
    size_t count = (size_t)job->n * (size_t)job->n_classes;
    json_t *o = json_pack("{s:s, s:s, s:[i,i]}", "name",
                          which == KSERVE_OUT_LOGITS ? "logits" : "probabilities", "datatype",
                          "FP32", "shape", job->n, job->n_classes);
    if (!o)
        return NULL;
    if (binary) {
        json_object_set_new(o, "parameters",
                            json_pack("{s:I}", "binary_data_size", (json_int_t)(count * 4)));
        return o;
    }
    json_t *data = json_array();
    for (size_t i = 0; data && i < count; i++)
        json_array_append_new(data, json_real((double)values[i]));
    if (!data || json_object_set_new(o, "data", data) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void kserve_respond(http_request_t *req, const infer_job_t *job, const kserve_request_t *kr)
{
    float *values[2] = {NULL, NULL};
    json_t *outs = json_array();
    json_t *doc = json_pack("{s:s, s:s, s:o}", "model_name", req->deps->model_name,
                            "model_version", "1", "outputs", outs);
    bool ok = doc != NULL, any_binary = false;
    if (doc && kr->id)
        json_object_set(doc, "id", kr->id);
    for (int k = 0; ok && k < kr->n_outputs; k++) {
        values[k] = output_values(job, kr->outputs[k]);
        json_t *o = values[k] ? output_json(job, kr->outputs[k], kr->binary[k], values[k]) : NULL;
        ok = o && json_array_append_new(outs, o) == 0;
        any_binary |= kr->binary[k];
    }
    char *text = ok ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    size_t json_len = text ? strlen(text) : 0, total = json_len;
    size_t out_bytes = (size_t)job->n * (size_t)job->n_classes * sizeof(float);
    for (int k = 0; k < kr->n_outputs; k++)
        total += kr->binary[k] ? out_bytes : 0;
    char *body = text && any_binary ? realloc(text, total) : text;
    if (!body) {
        free(text);
        free(values[0]);
        free(values[1]);
        http_respond(req, 503, "application/json", strdup("{\"error\":\"out of memory\"}"), 25);
        return;
    }
    size_t at = json_len;
    for (int k = 0; k < kr->n_outputs; k++)
        if (kr->binary[k]) {
            memcpy(body + at, values[k], out_bytes);
            at += out_bytes;
        }
    free(values[0]);
    free(values[1]);
    if (any_binary) {
        snprintf(req->header_name, sizeof req->header_name, "Inference-Header-Content-Length");
        snprintf(req->header_value, sizeof req->header_value, "%zu", json_len);
    }
    http_respond(req, 200, any_binary ? "application/octet-stream" : "application/json", body,
                 total);
}

void kserve_request_free(kserve_request_t *kr)
{
    json_decref(kr->id);
    kr->id = NULL;
}
