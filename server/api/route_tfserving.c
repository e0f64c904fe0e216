/* route_tfserving.c - TF Serving's REST API (the "KServe v1" protocol), so
 * that TF Serving clients work unchanged:
 *   POST /v1/models/{model}[/versions/1]:predict
 *       row form:      {"instances": [{"b64": "..."}, ...]}, or an instance
 *                      naming its input: [{"image_bytes": {"b64": "..."}}]
 *       columnar form: {"inputs": [{"b64": "..."}, ...]} or
 *                      {"inputs": {"image_bytes": [{"b64": "..."}, ...]}}
 *       answered {"predictions": [p, ...]} (row) or {"outputs": [p, ...]}
 *       (columnar), where p is the image's softmax probabilities, n_classes
 *       floats (the output of a Keras classifier ending in softmax, which
 *       this model is); p[i] equals POST /classify's probability of class i.
 *   GET /v1/models/{model}[/versions/1]
 *       {"model_version_status": [{"version": "1", "state": "AVAILABLE",
 *        "status": {"error_code": "OK", "error_message": ""}}]}
 *       ("UNLOADING" while the server drains).
 * Errors come in TF Serving's shape {"error": "..."}; an image that fails
 * fails the request. Decoding and queueing are image_job.c's, shared with
 * POST /classify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "http_error.h"
#include "image_job.h"
#include "routes.h"

typedef struct {
    infer_job_t job;
    bool columnar;    /* answer "outputs" instead of "predictions" */
    int n;            /* images decoded from base64 */
    uint8_t **bytes;  /* [n], owned */
    image_span_t *images; /* [n] spans of bytes */
} tf_state_t;

static void tf_error(http_request_t *req, int status, const char *message)
{
    http_respond_kserve_error(req, status, message); /* the same flat {"error": "..."} */
}

/* 404 for an unknown model or version, 503 for one not ready. */
static void tf_not_found(http_request_t *req)
{
    char why[400], msg[600];
    int status = http_request_model_miss(req, why, sizeof why);
    const char *v = http_request_version(req);
    if (v[0])
        snprintf(msg, sizeof msg, "Servable not found for request: Specific(%.128s, %s): %s",
                 http_request_param(req), v, why);
    else
        snprintf(msg, sizeof msg, "Servable not found for request: Latest(%.128s): %s",
                 http_request_param(req), why);
    tf_error(req, status, msg);
}

/* The {"b64": "..."} of one instance: the object itself, or the value of an
 * object's one key (a named input). NULL when it is neither. */
static const json_t *b64_of(const json_t *v)
{
    if (json_is_object(v) && json_object_size(v) == 1) {
        const json_t *b = json_object_get(v, "b64");
        if (json_is_string(b))
            return b;
        const char *key;
        json_t *inner;
        json_object_foreach((json_t *)v, key, inner) {
            const json_t *b2 = json_object_get(inner, "b64");
            if (json_is_object(inner) && json_object_size(inner) == 1 && json_is_string(b2))
                return b2;
        }
    }
    return NULL;
}

/* The list of instances: "instances", or "inputs" as a list or as an object
 * with one named input holding the list. Sets *columnar. */
static const json_t *instances_of(const json_t *doc, bool *columnar, const char **why)
{
    const json_t *inst = json_object_get(doc, "instances");
    const json_t *inputs = json_object_get(doc, "inputs");
    *why = "request must be a JSON object with \"instances\" or \"inputs\"";
    if (!json_is_object(doc) || (inst && inputs) || (!inst && !inputs))
        return NULL;
    *columnar = inputs != NULL;
    if (inputs && json_is_object(inputs) && json_object_size(inputs) == 1) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)inputs, key, v) inputs = v;
    }
    const json_t *list = inst ? inst : inputs;
    *why = "\"instances\" / \"inputs\" must be a non-empty list of {\"b64\": \"...\"} images";
    return json_is_array(list) && json_array_size(list) > 0 ? list : NULL;
}

/* Base64-decodes the request's images into s. Answers and returns false on failure. */
static bool parse(http_request_t *req, tf_state_t *s)
{
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)body, len, 0, &jerr);
    char msg[256];
    if (!doc) {
        snprintf(msg, sizeof msg, "JSON Parse error: %s at offset %d", jerr.text, jerr.position);
        tf_error(req, 400, msg);
        return false;
    }
    const char *why;
    const json_t *list = instances_of(doc, &s->columnar, &why);
    int max_images = http_request_deps(req)->limits->max_images_per_request;
    bool ok = false;
    if (!list) {
        tf_error(req, 400, why);
    } else if (json_array_size(list) > (size_t)max_images) {
        snprintf(msg, sizeof msg, "more than %d images (max_images_per_request)", max_images);
        tf_error(req, 413, msg);
    } else {
        int n = (int)json_array_size(list);
        s->bytes = calloc((size_t)n, sizeof *s->bytes);
        s->images = calloc((size_t)n, sizeof *s->images);
        ok = s->bytes && s->images;
        if (!ok)
            tf_error(req, 503, "out of memory");
        for (int i = 0; ok && i < n; i++) {
            const json_t *b = b64_of(json_array_get(list, (size_t)i));
            rd_error_t err = {0};
            if (!b) {
                snprintf(msg, sizeof msg, "instance %d: expected {\"b64\": \"...\"} image bytes", i);
                tf_error(req, 400, msg);
                ok = false;
            } else if (base64_decode(json_string_value(b), json_string_length(b), &s->bytes[i],
                                     &s->images[i].len, &err) != RD_OK) {
                snprintf(msg, sizeof msg, "instance %d: %.200s", i, err.msg);
                tf_error(req, err.code == RD_ERR_NOMEM ? 503 : 400, msg);
                ok = false;
            } else {
                s->images[i].data = s->bytes[i];
                s->n = i + 1;
            }
        }
    }
    json_decref(doc);
    return ok;
}

static http_step_t tf_predict_start(http_request_t *req)
{
    served_model_t *model = http_request_model(req);
    if (!model) {
        tf_not_found(req);
        return HTTP_DONE;
    }
    tf_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        tf_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    http_request_set_state(req, s);
    if (!parse(req, s))
        return HTTP_DONE;
    rd_error_t err = {0};
    int status = image_job_start(&s->job, req, model, s->n, s->images, NULL, NULL, &err);
    if (status) {
        tf_error(req, status, err.msg);
        return HTTP_DONE;
    }
    return HTTP_PENDING;
}

/* Image i's probabilities as a JSON list. */
static json_t *probs_json(const infer_job_t *job, int i)
{
    float *probs = image_job_probs(job, i);
    json_t *list = probs ? json_array() : NULL;
    for (int c = 0; list && c < job->n_classes; c++)
        if (json_array_append_new(list, json_real(probs[c])) != 0) {
            json_decref(list);
            list = NULL;
        }
    free(probs);
    return list;
}

static void tf_predict_finish(http_request_t *req)
{
    tf_state_t *s = http_request_state(req);
    infer_job_t *job = &s->job;
    int refused = infer_job_collect(job);
    if (refused) {
        tf_error(req, refused, job->refused_msg);
        return;
    }
    for (int i = 0; i < job->n; i++)
        if (job->status[i] != 200) {
            tf_error(req, job->status[i], job->message[i]);
            return;
        }
    json_t *list = json_array();
    for (int i = 0; list && i < job->n; i++)
        if (json_array_append_new(list, probs_json(job, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    json_t *doc = list ? json_pack("{s:o}", s->columnar ? "outputs" : "predictions", list) : NULL;
    if (!doc) {
        tf_error(req, 503, "out of memory");
        return;
    }
    http_respond_json(req, 200, doc);
}

static void tf_predict_cancel(http_request_t *req)
{
    tf_state_t *s = http_request_state(req);
    if (s)
        infer_job_cancel(&s->job);
}

static void tf_predict_cleanup(http_request_t *req)
{
    tf_state_t *s = http_request_state(req);
    if (!s)
        return;
    infer_job_free(&s->job);
    for (int i = 0; i < s->n; i++)
        free(s->bytes[i]);
    free(s->bytes);
    free(s->images);
    free(s);
}

const http_route_t route_tf_predict = {
    .name = "tfserving_predict",
    .takes_body = true,
    .feeds_batcher = true,
    .needs_model = true,
    .start = tf_predict_start,
    .finish = tf_predict_finish,
    .cleanup = tf_predict_cleanup,
    .cancel = tf_predict_cancel,
};

static http_step_t tf_status_start(http_request_t *req)
{
    served_model_t *model = http_request_model(req);
    if (!model) {
        char why[400], msg[600];
        int status = http_request_model_miss(req, why, sizeof why);
        snprintf(msg, sizeof msg, "Could not find any versions of model %.128s: %s",
                 http_request_param(req), why);
        tf_error(req, status, msg);
        return HTTP_DONE;
    }
    http_request_set_model(req, model);
    bool ready = !http_draining(http_request_server(req));
    int versions[16], n = 1;
    versions[0] = served_model_version(model);
    if (!http_request_version(req)[0]) /* every version the model has */
        n = registry_versions(http_request_deps(req)->registry, served_model_name(model),
                              versions, 16);
    json_t *rows = json_array();
    for (int i = n - 1; i >= 0; i--) {
        char v[16];
        snprintf(v, sizeof v, "%d", versions[i]);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:{s:s, s:s}}", "version", v, "state",
                                              ready ? "AVAILABLE" : "UNLOADING", "status",
                                              "error_code", "OK", "error_message", ""));
    }
    http_respond_json(req, 200, json_pack("{s:o}", "model_version_status", rows));
    return HTTP_DONE;
}

const http_route_t route_tf_status = {
    .name = "tfserving_status",
    .needs_model = true,
    .start = tf_status_start,
};
