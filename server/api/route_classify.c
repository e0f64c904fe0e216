/* route_classify.c - POST /classify: a raw JPEG body (Content-Type image/jpeg)
 * or multipart/form-data with one image per part, read by multipart.c as the
 * body streams in (body() below); topk from the query or, for
 * multipart, from a plain (non-file) form field "topk", the query winning, so
 * that HTML forms and `curl -F topk=3` work too. Decodes every
 * image on this HTTP thread, queues the good ones as one all-or-none batcher
 * submission, and answers with classify_result's document once all are done.
 * Partial failure rule: see classify_result.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "classify_explain.h"
#include "classify_result.h"
#include "resnetd/engine.h"
#include "http_error.h"
#include "image_job.h"
#include "multipart.h"
#include "routes.h"

typedef struct {
    infer_job_t job;
    multipart_reader_t *reader; /* multipart bodies, while they stream in */
    rd_status_t begin_status;   /* why multipart_begin refused the body */
    rd_error_t begin_err;
    multipart_t mp;
    int topk;
    char topk_field[24]; /* the "topk" form field's value; "" when absent */
    classify_explain_t explain; /* ?explain=cam, ?features=1 */
} classify_state_t;

static bool is_multipart(const char *ct)
{
    return multipart_is_form_data(ct);
}

/* The route's state, made on first use (the first body chunk, or start()). */
static classify_state_t *state_of(http_request_t *req)
{
    classify_state_t *s = http_request_state(req);
    if (!s && (s = calloc(1, sizeof *s)))
        http_request_set_state(req, s);
    return s;
}

/* Opens the multipart reader; allows one part more than images, for a topk field. */
static void begin_multipart(http_request_t *req, classify_state_t *s, const char *ct)
{
    int max_images = http_request_deps(req)->limits->max_images_per_request;
    s->begin_status = multipart_begin(ct, max_images + 1, &s->reader, &s->begin_err);
}

/* Multipart bodies go to the reader chunk by chunk; others are buffered. */
static http_body_t classify_body(http_request_t *req, const uint8_t *data, size_t size)
{
    const char *ct = http_header(req, "Content-Type");
    if (!is_multipart(ct))
        return HTTP_BODY_BUFFER;
    classify_state_t *s = state_of(req);
    if (!s)
        return HTTP_BODY_FAIL;
    if (!s->reader && s->begin_status == RD_OK)
        begin_multipart(req, s, ct);
    if (s->reader)
        multipart_feed(s->reader, data, size);
    return HTTP_BODY_TAKEN;
}

static bool is_jpeg_type(const char *ct)
{
    static const char *types[] = {"image/jpeg", "image/jpg", "image/pjpeg",
                                  "application/octet-stream", "image/png", "image/webp"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i]);
        if (!strncasecmp(ct, types[i], n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' '))
            return true;
    }
    return false;
}

/* topk from the query, else the form field: an integer in 1..n_classes; else
 * the configured default. */
static bool parse_topk(http_request_t *req, const char *field, int *topk)
{
    const http_deps_t *deps = http_request_deps(req);
    int n_classes = served_model_info(http_request_model(req))->n_classes;
    const char *q = http_query(req, "topk");
    if (!q && *field)
        q = field;
    if (!q) {
        int k = deps->limits->topk_default;
        *topk = k < 1 ? 1 : k > n_classes ? n_classes : k;
        return true;
    }
    /* digits only: strtol alone would also take " 5" and "+5" */
    char *end;
    long k = strtol(q, &end, 10);
    if (*q < '0' || *q > '9' || *end != 0 || k < 1 || k > n_classes) {
        char msg[128];
        snprintf(msg, sizeof msg, "topk must be an integer in 1..%d, got '%.32s'", n_classes, q);
        http_respond_error(req, 400, msg);
        return false;
    }
    *topk = (int)k;
    return true;
}

/* Removes the plain "topk" fields from the parts (they are not images), keeping
 * the last one's value in s->topk_field; one too long to be a number becomes a
 * value parse_topk refuses. */
static void take_topk_field(classify_state_t *s)
{
    multipart_t *mp = &s->mp;
    int kept = 0;
    for (int i = 0; i < mp->n_parts; i++) {
        multipart_part_t *p = &mp->parts[i];
        if (p->filename || strcmp(p->name, "topk") != 0) {
            mp->parts[kept++] = *p;
            continue;
        }
        if (p->len >= sizeof s->topk_field)
            snprintf(s->topk_field, sizeof s->topk_field, "(too long)");
        else if (p->len > 0) /* an empty field (a blank HTML input) means the default */
            snprintf(s->topk_field, sizeof s->topk_field, "%.*s", (int)p->len, (char *)p->data);
        else
            s->topk_field[0] = 0;
        free(p->data);
        free(p->name);
        free(p->content_type);
    }
    mp->n_parts = kept;
}

/* The multipart body's parts, once it has all arrived. */
static rd_status_t finish_multipart(http_request_t *req, classify_state_t *s, const char *ct,
                                    rd_error_t *err)
{
    if (!s->reader && s->begin_status == RD_OK) /* an empty body: no chunk came */
        begin_multipart(req, s, ct);
    if (!s->reader) {
        *err = s->begin_err;
        return s->begin_status;
    }
    rd_status_t st = multipart_finish(s->reader, &s->mp, err);
    multipart_reader_free(s->reader);
    s->reader = NULL;
    return st;
}

/* Splits the body into images: n and their bytes. Answers and returns false on failure. */
static bool split_images(http_request_t *req, classify_state_t *s, int *n)
{
    const char *ct = http_header(req, "Content-Type");
    int max_images = http_request_deps(req)->limits->max_images_per_request;
    size_t body_len;
    http_request_body(req, &body_len);
    if (is_multipart(ct)) {
        rd_error_t err = {0};
        rd_status_t st = finish_multipart(req, s, ct, &err);
        if (st == RD_OK)
            take_topk_field(s);
        if (st == RD_ERR_LIMIT || (st == RD_OK && s->mp.n_parts > max_images))
            st = rd_error_set(&err, RD_ERR_LIMIT, "more than %d images (max_images_per_request)",
                              max_images);
        else if (st == RD_OK && s->mp.n_parts == 0)
            st = rd_error_set(&err, RD_ERR_FORMAT, "multipart/form-data body has no image part");
        if (st != RD_OK) {
            http_respond_error(req, http_error_status(st, HTTP_CTX_BODY), err.msg);
            return false;
        }
        *n = s->mp.n_parts;
        return true;
    }
    if (!ct || !is_jpeg_type(ct)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Content-Type '%.64s' not supported: send image/jpeg, image/png, image/webp or "
                 "multipart/form-data",
                 ct ? ct : "(none)");
        http_respond_error(req, 415, msg);
        return false;
    }
    if (body_len == 0) {
        http_respond_error(req, 400, "empty body: expected a JPEG image");
        return false;
    }
    *n = 1;
    return true;
}

/* Part i is decoded (on a decode pool thread, which owns it until then): its
 * copy is not needed any more. */
static void part_decoded(void *ctx, int i)
{
    classify_state_t *s = ctx;
    free(s->mp.parts[i].data);
    s->mp.parts[i].data = NULL;
    s->mp.parts[i].len = 0;
}

static http_step_t classify_start(http_request_t *req)
{
    if (!http_request_model(req)) { /* ?model=, /models/NAME/classify or the default */
        char msg[600];
        int status = http_request_model_miss(req, msg, sizeof msg);
        http_respond_error(req, status, msg);
        return HTTP_DONE;
    }
    classify_state_t *s = state_of(req);
    if (!s) {
        http_respond_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    int n = 0;
    if (!split_images(req, s, &n) || !parse_topk(req, s->topk_field, &s->topk) ||
        !classify_explain_parse(req, &s->explain))
        return HTTP_DONE;
    image_span_t *images = calloc((size_t)n, sizeof *images);
    if (!images) {
        http_respond_error(req, 503, "out of memory");
        return HTTP_DONE;
    }
    size_t body_len;
    const uint8_t *body = http_request_body(req, &body_len);
    for (int i = 0; i < n; i++)
        images[i] = s->mp.n_parts ? (image_span_t){s->mp.parts[i].data, s->mp.parts[i].len}
                                  : (image_span_t){body, body_len};
    rd_error_t err = {0};
    infer_want_t want = classify_explain_want(&s->explain);
    /* the crops from the headers, before the decode pool frees the parts */
    int status = classify_explain_crops(&s->explain, http_request_model(req), images, n, &err)
                     ? 503
                     : image_job_start_with(&s->job, req, http_request_model(req), n, images,
                                            s->mp.n_parts ? part_decoded : NULL, s, &want,
                                            &err);
    free(images);
    if (status) {
        http_respond_error(req, status, err.msg);
        return HTTP_DONE;
    }
    return HTTP_PENDING; /* finish() runs at once when nothing was queued */
}

static void classify_finish(http_request_t *req)
{
    classify_state_t *s = http_request_state(req);
    const served_model_t *model = s->job.model;
    infer_job_t *job = &s->job;
    int refused = infer_job_collect(job);
    if (refused) {
        http_respond_error(req, refused, job->refused_msg);
        return;
    }
    json_t *results = json_array();
    for (int i = 0; i < job->n && results; i++) {
        const char *filename = s->mp.n_parts ? s->mp.parts[i].filename : NULL;
        classify_timings_t t;
        infer_job_timings(job, i, &t.decode_ms, &t.queue_ms, &t.inference_ms);
        json_t *e = classify_entry_json(served_model_info(model), i, filename, job->status[i],
                                        job->message[i],
                                        job->logits + (size_t)i * (size_t)job->n_classes, s->topk,
                                        &t);
        if (e && job->status[i] == 200 && !classify_explain_add(&s->explain, job, i, e)) {
            json_decref(e);
            e = NULL;
        }
        if (!e || json_array_append_new(results, e) != 0) {
            json_decref(results);
            results = NULL;
        }
    }
    if (!results) {
        http_respond_error(req, 503, "out of memory");
        return;
    }
    int status = classify_request_status(job->status, job->n);
    json_t *doc = classify_document(served_model_name(model), results, status,
                                    http_request_elapsed_ms(req));
    if (doc) { /* which model answered: the page shows it */
        char version[16];
        snprintf(version, sizeof version, "%d", served_model_version(model));
        json_object_set_new(doc, "model_version", json_string(version));
        json_object_set_new(doc, "precision",
                            json_string(engine_precision_name(served_model_info(model)->precision)));
    }
    http_respond_json(req, status, doc);
    http_set_retry_after(req, status);
}

static void classify_cancel(http_request_t *req)
{
    classify_state_t *s = http_request_state(req);
    if (s)
        infer_job_cancel(&s->job);
}

static void classify_cleanup(http_request_t *req)
{
    classify_state_t *s = http_request_state(req);
    if (!s)
        return;
    infer_job_free(&s->job);
    classify_explain_free(&s->explain);
    multipart_reader_free(s->reader);
    multipart_free(&s->mp);
    free(s);
}

const http_route_t route_classify = {
    .name = "classify",
    .takes_body = true,
    .feeds_batcher = true,
    .needs_model = true,
    .body = classify_body,
    .start = classify_start,
    .finish = classify_finish,
    .cleanup = classify_cleanup,
    .cancel = classify_cancel,
};
