/* classify_result.c - the /classify JSON (see the header). */
#include "classify_result.h"

#include <math.h>
#include <stdlib.h>

#include "http_error.h"
#include "scores.h"

static json_t *entry(int position, const char *filename)
{
    json_t *e = json_pack("{s:i}", "index", position);
    if (e && filename)
        json_object_set_new(e, "filename", json_string(filename));
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
