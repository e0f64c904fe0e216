/* kserve_tensor.c - the KServe v2 codec: request parsing and response
 * encoding (see the header). The binary-data extension: the body is a JSON header of
 * Inference-Header-Content-Length bytes followed by the inputs' raw bytes in
 * input order, each input's size in parameters.binary_data_size; FP32 is
 * little-endian, BYTES elements are a 4-byte little-endian length then data. */
#include "kserve_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "scores.h"

typedef struct {
    const uint8_t *bin; /* binary tail */
    size_t bin_len;
    const kserve_limits_t *lim;
    rd_error_t *err;
} parse_t;

/* The statuses this codec returns (see the header for their HTTP codes). */
#define BAD RD_ERR_FORMAT   /* 400 */
#define TENSOR RD_ERR_SHAPE /* 422 */
#define KSERVE_SLACK_NODES 1024 /* the request's other fields: id, parameters, outputs */
#define FAIL(p, status, ...) rd_error_set((p)->err, (status), __VA_ARGS__)

static const char *const output_names[KSERVE_N_OUTPUTS] = {
    [KSERVE_OUT_PROBABILITIES] = "probabilities",
    [KSERVE_OUT_LOGITS] = "logits",
    [KSERVE_OUT_FEATURES] = "features",
    [KSERVE_OUT_CAM] = "cam",
};

/* The cam output's optional parameters.class: an integer in 0..n_classes-1. */
static rd_status_t parse_cam_class(parse_t *p, size_t i, json_t *params, kserve_request_t *kr)
{
    json_t *c = json_object_get(params, "class");
    if (!c)
        return RD_OK;
    json_int_t v = json_integer_value(c);
    if (!json_is_integer(c) || v < 0 || (p->lim->n_classes > 0 && v >= p->lim->n_classes))
        return FAIL(p, BAD, "outputs[%zu]: parameters.class must be an integer in 0..%d", i,
                    p->lim->n_classes - 1);
    kr->cam_class = (int)v;
    return RD_OK;
}

static rd_status_t parse_outputs(parse_t *p, json_t *root, kserve_request_t *kr)
{
    json_t *params = json_object_get(root, "parameters");
    bool all_binary = json_is_true(json_object_get(params, "binary_data_output"));
    json_t *outs = json_object_get(root, "outputs");
    kr->n_outputs = 1;
    kr->outputs[0] = KSERVE_OUT_PROBABILITIES;
    kr->cam_class = -1;
    for (int k = 0; k < KSERVE_N_OUTPUTS; k++)
        kr->binary[k] = all_binary;
    if (!outs)
        return RD_OK;
    if (!json_is_array(outs) || json_array_size(outs) < 1 ||
        json_array_size(outs) > KSERVE_N_OUTPUTS)
        return FAIL(p, BAD, "'outputs' must be an array of 1 to %d output requests",
                    KSERVE_N_OUTPUTS);
    bool seen[KSERVE_N_OUTPUTS] = {false};
    for (size_t i = 0; i < json_array_size(outs); i++) {
        json_t *o = json_array_get(outs, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!name)
            return FAIL(p, BAD, "outputs[%zu]: 'name' missing", i);
        int k = 0;
        while (k < KSERVE_N_OUTPUTS && strcmp(name, output_names[k]))
            k++;
        if (k == KSERVE_N_OUTPUTS)
            return FAIL(p, BAD, "unknown output '%.64s' (have 'probabilities', 'logits', "
                        "'features', 'cam')", name);
        if (seen[k])
            return FAIL(p, BAD, "output '%s' requested twice", output_names[k]);
        seen[k] = true;
        kr->outputs[i] = (kserve_output_t)k;
        json_t *oparams = json_object_get(o, "parameters");
        json_t *bd = json_object_get(oparams, "binary_data");
        if (bd)
            kr->binary[i] = json_is_true(bd);
        if (json_object_get(oparams, "class") && k != KSERVE_OUT_CAM)
            return FAIL(p, BAD, "outputs[%zu]: parameters.class applies to the 'cam' output only", i);
        rd_status_t st = k == KSERVE_OUT_CAM ? parse_cam_class(p, i, oparams, kr) : RD_OK;
        if (st != RD_OK)
            return st;
    }
    kr->n_outputs = (int)json_array_size(outs);
    return RD_OK;
}

bool kserve_wants(const kserve_request_t *kr, kserve_output_t which)
{
    for (int k = 0; k < kr->n_outputs; k++)
        if (kr->outputs[k] == which)
            return true;
    return false;
}

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
static rd_status_t flatten(parse_t *p, json_t *v, float *out, size_t cap, size_t *count, int depth)
{
    if (depth > 8)
        return FAIL(p, TENSOR, "input 'input': data nested too deeply");
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            rd_status_t st = flatten(p, e, out, cap, count, depth + 1);
            if (st)
                return st;
        }
        return RD_OK;
    }
    if (!json_is_number(v))
        return FAIL(p, TENSOR, "input 'input': data element %zu is not a number", *count);
    if (*count < cap)
        out[*count] = (float)json_number_value(v);
    (*count)++;
    return RD_OK;
}

static rd_status_t shape_dims(parse_t *p, json_t *shape, int64_t *dims, int max_dims, int *n_dims)
{
    if (!json_is_array(shape) || json_array_size(shape) < 1 ||
        json_array_size(shape) > (size_t)max_dims)
        return FAIL(p, TENSOR, "'shape' must be an array of 1..%d integers", max_dims);
    for (size_t i = 0; i < json_array_size(shape); i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return FAIL(p, TENSOR, "'shape'[%zu] must be a non-negative integer", i);
        dims[i] = json_integer_value(d);
    }
    *n_dims = (int)json_array_size(shape);
    return RD_OK;
}

static rd_status_t check_batch(parse_t *p, int64_t n)
{
    int max = p->lim->max_images;
    if (n < 1)
        return FAIL(p, TENSOR, "batch dimension is 0");
    if (n > max)
        return FAIL(p, RD_ERR_LIMIT, "%lld images exceed max_images_per_request %d", (long long)n, max);
    return RD_OK;
}

static rd_status_t parse_fp32(parse_t *p, json_t *in, kserve_request_t *kr)
{
    const kserve_limits_t *lim = p->lim;
    int64_t d[4];
    int nd = 0;
    rd_status_t st = shape_dims(p, json_object_get(in, "shape"), d, 4, &nd);
    if (st)
        return st;
    if (nd != 4 || d[1] != 3 || d[2] != lim->input_h || d[3] != lim->input_w)
        return FAIL(p, TENSOR, "input 'input': shape must be [N,3,%d,%d]", lim->input_h,
                    lim->input_w);
    if ((st = check_batch(p, d[0])))
        return st;
    size_t count = (size_t)d[0] * 3 * (size_t)lim->input_h * (size_t)lim->input_w;
    kr->n_images = (int)d[0];
    if (!(kr->tensor = malloc(count * sizeof *kr->tensor)))
        return FAIL(p, RD_ERR_NOMEM, "out of memory for %d images", kr->n_images);
    json_t *bds = json_object_get(json_object_get(in, "parameters"), "binary_data_size");
    if (bds) {
        if (!json_is_integer(bds) || (size_t)json_integer_value(bds) != count * 4)
            return FAIL(p, TENSOR, "input 'input': binary_data_size must be %zu (N*3*H*W*4)",
                        count * 4);
        const uint8_t *raw = take_binary(p, count * 4);
        if (!raw)
            return FAIL(p, BAD, "input 'input': binary data shorter than binary_data_size");
        memcpy(kr->tensor, raw, count * 4);
    } else {
        size_t seen = 0;
        json_t *data = json_object_get(in, "data");
        if (!json_is_array(data))
            return FAIL(p, BAD, "input 'input': 'data' array (or binary_data_size) missing");
        if ((st = flatten(p, data, kr->tensor, count, &seen, 0)))
            return st;
        if (seen != count)
            return FAIL(p, TENSOR, "input 'input': %zu values for shape of %zu", seen, count);
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(kr->tensor[i]))
            return FAIL(p, TENSOR, "input 'input': value %zu is NaN or infinite", i);
    return RD_OK;
}

/* Element i of a BYTES input, from JSON (base64 string or {"b64":...}) or binary. */
static rd_status_t bytes_element(parse_t *p, json_t *data, size_t i, bool binary,
                                 kserve_image_t *img)
{
    uint8_t **owned = &img->owned;
    const uint8_t **bytes = &img->data;
    size_t *len = &img->len;
    *owned = NULL;
    if (binary) {
        const uint8_t *hdr = take_binary(p, 4);
        if (!hdr)
            return FAIL(p, BAD, "input 'image': binary data truncated at element %zu", i);
        *len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        if (!(*bytes = take_binary(p, *len)))
            return FAIL(p, BAD, "input 'image': binary data truncated at element %zu", i);
        return RD_OK;
    }
    json_t *e = json_array_get(data, i);
    if (json_is_object(e))
        e = json_object_get(e, "b64");
    if (!json_is_string(e))
        return FAIL(p, TENSOR, "input 'image': element %zu must be a base64 string", i);
    rd_error_t err = {0};
    rd_status_t st = base64_decode(json_string_value(e), json_string_length(e), owned, len, &err);
    if (st != RD_OK)
        return FAIL(p, st == RD_ERR_NOMEM ? st : BAD, "input 'image': element %zu: %s", i, err.msg);
    *bytes = *owned;
    return RD_OK;
}

static rd_status_t parse_bytes(parse_t *p, json_t *in, kserve_request_t *kr)
{
    int64_t d[2];
    int nd = 0;
    rd_status_t st = shape_dims(p, json_object_get(in, "shape"), d, 2, &nd);
    if (st)
        return st;
    if (nd == 2 && d[1] != 1)
        return FAIL(p, TENSOR, "input 'image': shape must be [N] or [N,1]");
    if ((st = check_batch(p, d[0])))
        return st;
    json_t *bds = json_object_get(json_object_get(in, "parameters"), "binary_data_size");
    json_t *data = json_object_get(in, "data");
    size_t start_len = p->bin_len;
    if (!bds && (!json_is_array(data) || json_array_size(data) != (size_t)d[0]))
        return FAIL(p, TENSOR, "input 'image': 'data' must be an array of %lld base64 strings",
                    (long long)d[0]);
    if (!(kr->images = calloc((size_t)d[0], sizeof *kr->images)))
        return FAIL(p, RD_ERR_NOMEM, "out of memory for %lld images", (long long)d[0]);
    kr->n_images = (int)d[0];
    for (int i = 0; i < kr->n_images; i++)
        if ((st = bytes_element(p, data, (size_t)i, bds != NULL, &kr->images[i])))
            return st;
    if (bds && (!json_is_integer(bds) || (size_t)json_integer_value(bds) != start_len - p->bin_len))
        kr->tail_status = rd_error_set(&kr->tail_err, TENSOR,
                                       "input 'image': binary_data_size does not match the elements");
    return RD_OK;
}

static rd_status_t parse_input(parse_t *p, json_t *root, kserve_request_t *kr)
{
    json_t *inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return FAIL(p, BAD, "'inputs' must be an array with exactly one tensor "
                            "('input' FP32 [N,3,H,W] or 'image' BYTES [N])");
    json_t *in = json_array_get(inputs, 0);
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *dtype = json_string_value(json_object_get(in, "datatype"));
    if (!name || !dtype)
        return FAIL(p, BAD, "input needs 'name' and 'datatype'");
    if (!strcmp(name, "input")) {
        if (strcmp(dtype, "FP32"))
            return FAIL(p, TENSOR, "input 'input': datatype must be FP32, got %.16s", dtype);
        return parse_fp32(p, in, kr);
    }
    if (!strcmp(name, "image")) {
        if (strcmp(dtype, "BYTES"))
            return FAIL(p, TENSOR, "input 'image': datatype must be BYTES, got %.16s", dtype);
        return parse_bytes(p, in, kr);
    }
    return FAIL(p, TENSOR, "unknown input '%.64s' (have 'input' FP32, 'image' BYTES)", name);
}

/* One pass over the JSON text, before jansson builds a tree of it: counts
 * the containers ({ and [) and the scalars outside strings. A jansson node
 * costs 40-180 bytes, so a body of `{},` repeated would cost 60 times its
 * size as a tree; the largest valid request has N*3*H*W numbers in
 * N*(3*H+3+1)+1 nested arrays (N = max_images), plus a few dozen other
 * nodes, so anything denser is refused with 413 before the tree exists.
 * Past jansson's depth limit the count stops: jansson refuses that (400). */
static rd_status_t json_budget(parse_t *p, const uint8_t *text, size_t len)
{
    const kserve_limits_t *lim = p->lim;
    size_t n = (size_t)lim->max_images, h = (size_t)lim->input_h, w = (size_t)lim->input_w;
    size_t max_containers = n * (3 * h + 4) + KSERVE_SLACK_NODES;
    size_t max_scalars = n * 3 * h * w + KSERVE_SLACK_NODES;
    size_t containers = 0, scalars = 0, depth = 0;
    bool in_scalar = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        if (c == '"') { /* a string is one scalar; skip to its closing quote */
            scalars++;
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            in_scalar = false;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_PARSER_MAX_DEPTH)
                return RD_OK; /* jansson refuses it at this depth (400), tree unbuilt */
            containers++;
            in_scalar = false;
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            in_scalar = false;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\n' ||
                   c == '\r' || c == '\t') {
            in_scalar = false;
        } else if (!in_scalar) {
            scalars++; /* a number, true, false or null starts */
            in_scalar = true;
        }
        if (containers > max_containers || scalars > max_scalars)
            return FAIL(p, RD_ERR_LIMIT,
                        "request JSON has more than %zu values or %zu arrays/objects, more than "
                        "max_images_per_request %d images of %dx%d can need",
                        max_scalars, max_containers, lim->max_images, lim->input_h, lim->input_w);
    }
    return RD_OK;
}

rd_status_t kserve_parse(const uint8_t *body, size_t len, const char *hlen,
                         const kserve_limits_t *lim, kserve_request_t *kr, rd_error_t *err)
{
    *kr = (kserve_request_t){0};
    parse_t p = {.lim = lim, .err = err};
    size_t json_len = len;
    if (hlen) {
        char *end;
        unsigned long long v = strtoull(hlen, &end, 10);
        if (*hlen == 0 || *end != 0 || v > len)
            return FAIL(&p, BAD, "Inference-Header-Content-Length '%.20s' is invalid", hlen);
        json_len = (size_t)v;
        p.bin = body + json_len;
        p.bin_len = len - json_len;
    }
    rd_status_t bst = json_budget(&p, body, json_len);
    if (bst != RD_OK)
        return bst;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, json_len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return FAIL(&p, BAD, "request is not a JSON object: %s", jerr.text);
    }
    json_t *id = json_object_get(root, "id");
    kr->id = id ? json_incref(id) : NULL;
    rd_status_t st = parse_outputs(&p, root, kr);
    if (!st)
        st = parse_input(&p, root, kr);
    if (!st && p.bin_len != 0 && kr->tail_status == RD_OK)
        kr->tail_status = rd_error_set(&kr->tail_err, BAD, "%zu bytes of binary data left over",
                                       p.bin_len);
    json_decref(root);
    if (st != RD_OK)
        kserve_request_free(kr);
    return st;
}

rd_status_t kserve_check_tail(const kserve_request_t *kr, rd_error_t *err)
{
    if (kr->tail_status != RD_OK)
        *err = kr->tail_err;
    return kr->tail_status;
}

/* An output's shape after N: [n_classes], [C] or [h, w]. */
static int output_dims(const kserve_values_t *v, kserve_output_t which, int dims[2])
{
    switch (which) {
    case KSERVE_OUT_FEATURES:
        dims[0] = v->channels;
        return 1;
    case KSERVE_OUT_CAM:
        dims[0] = v->cam_h;
        dims[1] = v->cam_w;
        return 2;
    default:
        dims[0] = v->n_classes;
        return 1;
    }
}

/* Output which's values for n images (malloc'd), per image `per` floats. */
static float *output_values(const kserve_values_t *v, int n, size_t per, kserve_output_t which)
{
    size_t count = (size_t)n * per;
    float *out = malloc(count * sizeof *out);
    if (!out)
        return NULL;
    const float *src = which == KSERVE_OUT_FEATURES ? v->features
                       : which == KSERVE_OUT_CAM    ? v->cams
                                                    : v->logits;
    if (which != KSERVE_OUT_PROBABILITIES) {
        memcpy(out, src, count * sizeof *out);
        return out;
    }
    for (int i = 0; i < n; i++)
        scores_softmax(src + (size_t)i * per, (int)per, out + (size_t)i * per);
    return out;
}

static json_t *output_json(int n, const int *dims, int n_dims, kserve_output_t which, bool binary,
                           const float *values)
{
    size_t count = (size_t)n * (size_t)dims[0] * (size_t)(n_dims > 1 ? dims[1] : 1);
    json_t *shape = n_dims > 1 ? json_pack("[i,i,i]", n, dims[0], dims[1])
                               : json_pack("[i,i]", n, dims[0]);
    json_t *o = json_pack("{s:s, s:s, s:o}", "name", output_names[which], "datatype", "FP32",
                          "shape", shape);
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

rd_status_t kserve_encode(const kserve_request_t *kr, const char *model_name,
                          const float *logits, int n_classes, kserve_response_t *out,
                          rd_error_t *err)
{
    kserve_values_t v = {.logits = logits, .n_classes = n_classes};
    return kserve_encode_values(kr, model_name, &v, out, err);
}

rd_status_t kserve_encode_values(const kserve_request_t *kr, const char *model_name,
                                 const kserve_values_t *v, kserve_response_t *out,
                                 rd_error_t *err)
{
    *out = (kserve_response_t){0};
    int n = kr->n_images;
    float *values[KSERVE_N_OUTPUTS] = {NULL};
    size_t bytes[KSERVE_N_OUTPUTS] = {0};
    json_t *outs = json_array();
    json_t *doc = json_pack("{s:s, s:s, s:o}", "model_name", model_name, "model_version", "1",
                            "outputs", outs);
    bool ok = doc != NULL, any_binary = false;
    if (doc && kr->id)
        json_object_set(doc, "id", kr->id);
    for (int k = 0; ok && k < kr->n_outputs; k++) {
        int dims[2], n_dims = output_dims(v, kr->outputs[k], dims);
        size_t per = (size_t)dims[0] * (size_t)(n_dims > 1 ? dims[1] : 1);
        bytes[k] = (size_t)n * per * sizeof(float);
        values[k] = output_values(v, n, per, kr->outputs[k]);
        json_t *o = values[k] ? output_json(n, dims, n_dims, kr->outputs[k], kr->binary[k],
                                            values[k])
                              : NULL;
        ok = o && json_array_append_new(outs, o) == 0;
        any_binary |= kr->binary[k];
    }
    char *text = ok ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    size_t json_len = text ? strlen(text) : 0, total = json_len;
    for (int k = 0; k < kr->n_outputs; k++)
        total += kr->binary[k] ? bytes[k] : 0;
    char *body = text && any_binary ? realloc(text, total) : text;
    size_t at = json_len;
    for (int k = 0; body && k < kr->n_outputs; k++)
        if (kr->binary[k]) {
            memcpy(body + at, values[k], bytes[k]);
            at += bytes[k];
        }
    for (int k = 0; k < KSERVE_N_OUTPUTS; k++)
        free(values[k]);
    if (!body) {
        free(text);
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    }
    *out = (kserve_response_t){.body = body, .len = total, .json_len = json_len,
                               .binary = any_binary};
    return RD_OK;
}

void kserve_request_free(kserve_request_t *kr)
{
    if (!kr)
        return;
    json_decref(kr->id);
    for (int i = 0; kr->images && i < kr->n_images; i++)
        free(kr->images[i].owned);
    free(kr->images);
    free(kr->tensor);
    *kr = (kserve_request_t){0};
}

void kserve_response_free(kserve_response_t *out)
{
    if (!out)
        return;
    free(out->body);
    *out = (kserve_response_t){0};
}
