/* classify_explain.c - /classify's "cam" and "features" (see the header). */
#include "classify_explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "scores.h"

/* class: digits only, in 0..n_classes-1. */
static bool parse_class(const char *q, int n_classes, int *out)
{
    char *end;
    long v = strtol(q, &end, 10);
    if (*q < '0' || *q > '9' || *end != 0 || v >= n_classes)
        return false;
    *out = (int)v;
    return true;
}

bool classify_explain_parse(http_request_t *req, classify_explain_t *x)
{
    int n_classes = served_model_info(http_request_model(req))->n_classes;
    const char *explain = http_query(req, "explain"), *cls = http_query(req, "class");
    const char *features = http_query(req, "features");
    char msg[160];
    *x = (classify_explain_t){.cam_class = -1};
    if (explain && strcmp(explain, "cam") != 0) {
        snprintf(msg, sizeof msg, "explain must be 'cam', got '%.32s'", explain);
        http_respond_error(req, 400, msg);
        return false;
    }
    x->cam = explain != NULL;
    if (cls && !x->cam) {
        http_respond_error(req, 400, "class applies to explain=cam only");
        return false;
    }
    if (cls && !parse_class(cls, n_classes, &x->cam_class)) {
        snprintf(msg, sizeof msg, "class must be an integer in 0..%d, got '%.32s'",
                 n_classes - 1, cls);
        http_respond_error(req, 400, msg);
        return false;
    }
    if (features && strcmp(features, "1") && strcmp(features, "true") &&
        strcmp(features, "0") && strcmp(features, "false")) {
        snprintf(msg, sizeof msg, "features must be 1, true, 0 or false, got '%.32s'", features);
        http_respond_error(req, 400, msg);
        return false;
    }
    x->features = features && (!strcmp(features, "1") || !strcmp(features, "true"));
    return true;
}

infer_want_t classify_explain_want(const classify_explain_t *x)
{
    return (infer_want_t){.features = x->features, .feature_map = x->cam};
}

rd_status_t classify_explain_crops(classify_explain_t *x, const served_model_t *model,
                                   const image_span_t *images, int n, rd_error_t *err)
{
    if (!x->cam)
        return RD_OK;
    x->crop = calloc((size_t)n, sizeof *x->crop);
    if (!x->crop)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %d crops", n);
    for (int i = 0; i < n; i++) {
        int w, h;
        rd_error_t ignored;
        if (image_dimensions(images[i].data, images[i].len, &w, &h, &ignored) == RD_OK)
            image_crop_rect(w, h, served_model_preproc(model), x->crop[i]);
    }
    return RD_OK;
}

static json_t *floats_json(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real((double)v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *cam_json(const classify_explain_t *x, const infer_job_t *job, int i)
{
    const float *logits = job->logits + (size_t)i * (size_t)job->n_classes;
    int cls = x->cam_class;
    if (cls < 0)
        scores_topk(logits, job->n_classes, 1, &cls); /* the logits rank as the probabilities */
    engine_feature_shape_t fs = job->fshape;
    float *cam = malloc((size_t)fs.height * (size_t)fs.width * sizeof *cam);
    rd_error_t err;
    if (!cam || infer_job_cam(job, i, cls, cam, &err) != RD_OK) {
        free(cam);
        return NULL;
    }
    const double *r = x->crop[i];
    json_t *o = json_pack("{s:i, s:s, s:i, s:i, s:{s:f, s:f, s:f, s:f}, s:o}", "class", cls,
                          "label", served_model_info(job->model)->labels[cls], "height",
                          fs.height, "width", fs.width, "crop", "x", r[0], "y", r[1], "width",
                          r[2], "height", r[3], "data",
                          floats_json(cam, (size_t)fs.height * (size_t)fs.width));
    free(cam);
    return o;
}

bool classify_explain_add(const classify_explain_t *x, const infer_job_t *job, int i, json_t *e)
{
    if (x->cam) {
        json_t *cam = cam_json(x, job, i);
        if (!cam || json_object_set_new(e, "cam", cam) != 0)
            return false;
    }
    if (x->features) {
        size_t c = (size_t)job->fshape.channels;
        json_t *f = floats_json(job->features + (size_t)i * c, c);
        if (!f || json_object_set_new(e, "features", f) != 0)
            return false;
    }
    return true;
}

void classify_explain_free(classify_explain_t *x)
{
    free(x->crop);
    x->crop = NULL;
}
