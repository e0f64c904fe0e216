/* loader_meta.c - parses the model's __metadata__ strings (name, stride,
 * bn_eps, input_size, resize, channel_order, scale, mean, std) into a
 * model_info_t, strictly: a value that does not parse or is out of range is an
 * error naming the key, never a silent default. Absent keys take the
 * torchvision defaults. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader_meta.h"

#define INPUT_MIN 32
#define INPUT_MAX 4096

/* A whole-string finite number; 0 on success. */
static int parse_number(const char *s, double *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* A whole-string decimal integer in [lo, hi]; 0 on success. */
static int parse_int(const char *s, size_t len, int lo, int hi, int *out)
{
    long v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Copies src into dst (size bytes) without cutting a UTF-8 sequence in half,
 * since the name ends up in JSON responses. */
static void copy_utf8(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = 0;
}

static void default_name(const char *path, char *dst, size_t size)
{
    if (!path) {
        copy_utf8(dst, size, "model", 5);
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    copy_utf8(dst, size, base, len);
}

static rd_status_t parse_triple(const char *key, const char *value, bool positive,
                                float out[3], rd_error_t *err)
{
    json_t *a = json_loads(value, JSON_DECODE_ANY, NULL);
    rd_status_t s = RD_OK;
    if (!json_is_array(a) || json_array_size(a) != 3) {
        s = rd_error_set(err, RD_ERR_FORMAT, "metadata %s: \"%.64s\" is not a JSON array of 3 numbers",
                         key, value);
        goto done;
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_array_get(a, i);
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x) || (positive && x <= 0)) {
            s = rd_error_set(err, RD_ERR_FORMAT, "metadata %s: element %zu is not a %snumber",
                             key, i, positive ? "positive " : "");
            goto done;
        }
        out[i] = (float)x;
    }
done:
    json_decref(a);
    return s;
}

static rd_status_t parse_input_size(const char *value, int *h, int *w, rd_error_t *err)
{
    const char *x = strchr(value, 'x');
    int ok = x ? parse_int(value, (size_t)(x - value), INPUT_MIN, INPUT_MAX, h) == 0 &&
                     parse_int(x + 1, strlen(x + 1), INPUT_MIN, INPUT_MAX, w) == 0
               : parse_int(value, strlen(value), INPUT_MIN, INPUT_MAX, h) == 0;
    if (!ok)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "metadata input_size: \"%.64s\" is not N or HxW with sides %d..%d",
                            value, INPUT_MIN, INPUT_MAX);
    if (!x)
        *w = *h;
    return RD_OK;
}

static rd_status_t parse_sizes(const safetensors_t *st, const engine_params_t *params,
                               model_preproc_t *pp, rd_error_t *err)
{
    const char *v = safetensors_metadata(st, "input_size");
    pp->input_h = pp->input_w = 224;
    rd_status_t s = v ? parse_input_size(v, &pp->input_h, &pp->input_w, err) : RD_OK;
    if (s != RD_OK)
        return s;
    if (params && params->input_h != ENGINE_INPUT_FROM_MODEL)
        pp->input_h = params->input_h;
    if (params && params->input_w != ENGINE_INPUT_FROM_MODEL)
        pp->input_w = params->input_w;
    if (pp->input_h < INPUT_MIN || pp->input_h > INPUT_MAX || pp->input_w < INPUT_MIN ||
        pp->input_w > INPUT_MAX)
        return rd_error_set(err, RD_ERR_ARG, "input size %dx%d: sides must be %d..%d",
                            pp->input_h, pp->input_w, INPUT_MIN, INPUT_MAX);
    int side = pp->input_h > pp->input_w ? pp->input_h : pp->input_w;
    pp->resize = (int)lround(side * 256.0 / 224.0);
    if ((v = safetensors_metadata(st, "resize")) &&
        parse_int(v, strlen(v), INPUT_MIN, 2 * INPUT_MAX, &pp->resize) != 0)
        return rd_error_set(err, RD_ERR_FORMAT, "metadata resize: \"%.64s\" is not an integer %d..%d",
                            v, INPUT_MIN, 2 * INPUT_MAX);
    if (pp->resize < side)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "metadata resize: %d is smaller than the input size %dx%d",
                            pp->resize, pp->input_h, pp->input_w);
    return RD_OK;
}

static rd_status_t parse_preproc(const safetensors_t *st, model_preproc_t *pp, rd_error_t *err)
{
    const char *v;
    double x;
    pp->channel_order = MODEL_RGB;
    if ((v = safetensors_metadata(st, "channel_order"))) {
        if (strcmp(v, "RGB") != 0 && strcmp(v, "BGR") != 0)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "metadata channel_order: \"%.64s\" is not RGB or BGR", v);
        pp->channel_order = v[0] == 'B' ? MODEL_BGR : MODEL_RGB;
    }
    pp->scale = 1.0f / 255.0f;
    if ((v = safetensors_metadata(st, "scale"))) {
        if (parse_number(v, &x) != 0 || x <= 0)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "metadata scale: \"%.64s\" is not a positive number", v);
        pp->scale = (float)x;
    }
    memcpy(pp->mean, (float[3]){ 0.485f, 0.456f, 0.406f }, sizeof pp->mean);
    memcpy(pp->std, (float[3]){ 0.229f, 0.224f, 0.225f }, sizeof pp->std);
    rd_status_t s = RD_OK;
    if ((v = safetensors_metadata(st, "mean")))
        s = parse_triple("mean", v, false, pp->mean, err);
    if (s == RD_OK && (v = safetensors_metadata(st, "std")))
        s = parse_triple("std", v, true, pp->std, err);
    return s;
}

rd_status_t engine_check_model_name(const char *name, rd_error_t *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > ENGINE_MODEL_NAME_MAX)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "model name \"%.40s%s\": %zu bytes, must be 1..%d (it is a KServe "
                            "URL segment)", name ? name : "", len > 40 ? "..." : "", len,
                            ENGINE_MODEL_NAME_MAX);
    json_t *utf8 = json_stringn(name, len);
    json_decref(utf8);
    if (!utf8)
        return rd_error_set(err, RD_ERR_FORMAT, "model name: not valid UTF-8");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "model name \"%.40s%s\": byte %zu is %s; a name is one KServe "
                                "URL segment (/v2/models/{name}), so it may not contain '/' or "
                                "control characters", name, len > 40 ? "..." : "", i,
                                c == '/' ? "'/'" : "a control character");
    }
    return RD_OK;
}

rd_status_t loader_meta_parse(const safetensors_t *st, const char *path,
                              const engine_params_t *params, model_info_t *info,
                              rd_error_t *err)
{
    const char *v = safetensors_metadata(st, "name");
    if (v && *v) {
        if (engine_check_model_name(v, err) != RD_OK)
            return rd_error_prefix(err, "metadata name");
        copy_utf8(info->name, sizeof info->name, v, strlen(v));
    } else {
        char base[256];
        default_name(path, base, sizeof base);
        if (engine_check_model_name(base, err) != RD_OK)
            return rd_error_prefix(err, "the file name (set metadata name)");
        copy_utf8(info->name, sizeof info->name, base, strlen(base));
    }
    info->stride = MODEL_STRIDE_V1_5;
    if ((v = safetensors_metadata(st, "stride"))) {
        if (strcmp(v, "v1") != 0 && strcmp(v, "v1.5") != 0)
            return rd_error_set(err, RD_ERR_FORMAT, "metadata stride: \"%.64s\" is not v1 or v1.5",
                                v);
        info->stride = strcmp(v, "v1") == 0 ? MODEL_STRIDE_V1 : MODEL_STRIDE_V1_5;
    }
    info->bn_eps = 1e-5f;
    if ((v = safetensors_metadata(st, "bn_eps"))) {
        double x;
        if (parse_number(v, &x) != 0 || x <= 0 || x >= 1)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "metadata bn_eps: \"%.64s\" is not a number in (0, 1)", v);
        info->bn_eps = (float)x;
    }
    rd_status_t s = parse_sizes(st, params, &info->preproc, err);
    if (s == RD_OK)
        s = parse_preproc(st, &info->preproc, err);
    return s;
}
