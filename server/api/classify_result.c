/* classify_result.c - the /classify JSON (see the header). */
#include "classify_result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "scores.h"

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n <= 1)
        return n;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A client's file name as a JSON string: each byte that is not part of valid
 * UTF-8 becomes U+FFFD, so the name is shown rather than dropped. */
static json_t *filename_json(const char *name)
{
    size_t len = strlen(name);
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p;) {
        size_t n = utf8_seq(p);
        if (n) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    json_t *j = json_stringn(out, o);
    free(out);
    return j;
}

static json_t *entry(int position, const char *filename)
{
    json_t *e = json_pack("{s:i}", "index", position);
    if (e && filename)
        json_object_set_new(e, "filename", filename_json(filename));
    return e;
}

/* Milliseconds to the microsecond: more digits would be noise. */
static json_t *ms(double v)
{
    return json_real(round(v * 1000.0) / 1000.0);
}

static json_t *timings_json(const classify_timings_t *t)
{
    json_t *o = json_object();
    if (!o || !t)
        return o;
    if (t->decode_ms >= 0)
        json_object_set_new(o, "decode", ms(t->decode_ms));
    if (t->queue_ms >= 0)
        json_object_set_new(o, "queue", ms(t->queue_ms));
    if (t->inference_ms >= 0)
        json_object_set_new(o, "inference", ms(t->inference_ms));
    return o;
}

json_t *classify_result_json(const model_info_t *mi, int position, const char *filename,
                             const float *logits, int k, const classify_timings_t *t)
{
    int n = mi->n_classes;
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    float *probs = malloc((size_t)n * sizeof *probs);
    int *idx = malloc((size_t)k * sizeof *idx);
    json_t *preds = json_array();
    json_t *e = entry(position, filename);
    if (!probs || !idx || !preds || !e) {
        free(probs);
        free(idx);
        json_decref(preds);
        json_decref(e);
        return NULL;
    }
    scores_softmax(logits, n, probs);
    scores_topk(probs, n, k, idx);
    for (int i = 0; i < k; i++)
        json_array_append_new(preds, json_pack("{s:i, s:s, s:f}", "index", idx[i], "label",
                                               mi->labels[idx[i]], "probability",
                                               (double)probs[idx[i]]));
    free(probs);
    free(idx);
    json_object_set_new(e, "predictions", preds);
    json_object_set_new(e, "timings_ms", timings_json(t));
    return e;
}

json_t *classify_error_json(int position, const char *filename, int http_status,
                            const char *message)
{
    json_t *e = entry(position, filename);
    if (e)
        json_object_set_new(e, "error", http_error_object(http_status, message));
    return e;
}

json_t *classify_entry_json(const model_info_t *mi, int position, const char *filename,
                            int http_status, const char *message, const float *logits, int k,
                            const classify_timings_t *t)
{
    return http_status == 200 ? classify_result_json(mi, position, filename, logits, k, t)
                              : classify_error_json(position, filename, http_status, message);
}

int classify_request_status(const int *image_status, int n_images)
{
    for (int i = 0; i < n_images; i++)
        if (image_status[i] == 200)
            return 200;
    return image_status[0];
}

json_t *classify_document(const char *model_name, json_t *results, int status, double total_ms)
{
    json_t *doc = json_pack("{s:s, s:o, s:{s:o}}", "model", model_name, "results", results,
                            "timings_ms", "total", ms(total_ms));
    if (!doc || status == 200)
        return doc;
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        json_t *err = json_object_get(r, "error");
        if (err) {
            json_object_set(doc, "error", err);
            break;
        }
    }
    return doc;
}
