/* http_respond.c - what a route handler calls on its request: reading it
 * (body, URL parameter, headers, query, deps) and setting its answer. All of
 * it runs on the request's HTTP thread; http_request.c queues the answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_error.h"
#include "http_internal.h"

const http_deps_t *http_request_deps(const http_request_t *req)
{
    return req->deps;
}

const http_t *http_request_server(const http_request_t *req)
{
    return req->http;
}

/* A version segment or ?version=: a positive integer, 0 = none given, -1 = bad. */
static int requested_version(const http_request_t *req)
{
    const char *v = req->version[0] ? req->version : http_query(req, "version");
    if (!v || !*v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 1 || n > 999999999 ? -1 : (int)n;
}

served_model_t *http_request_model(http_request_t *req)
{
    if (req->model_looked_up || !req->deps->registry)
        return req->model;
    req->model_looked_up = true;
    const char *name = req->param[0] ? req->param : http_query(req, "model");
    int version = requested_version(req);
    req->lookup = registry_acquire(req->deps->registry, name, version < 0 ? 0 : version,
                                   &req->model);
    if (version < 0 && req->lookup != REGISTRY_NO_MODEL) { /* a model, not such a version */
        served_model_unref(req->model);
        req->model = NULL;
        req->lookup = REGISTRY_NO_VERSION;
    }
    return req->model;
}

int http_request_model_miss(http_request_t *req, char *msg, size_t size)
{
    const char *name = req->param[0] ? req->param : http_query(req, "model");
    name = name ? name : "";
    const char *v = req->version[0] ? req->version : http_query(req, "version");
    char names[512] = "";
    if (req->deps->registry)
        registry_names(req->deps->registry, names, sizeof names);
    switch (req->deps->registry ? req->lookup : REGISTRY_UNAVAILABLE) {
    case REGISTRY_NO_MODEL:
        snprintf(msg, size, "model '%.100s' is not served here (models: %s)", name, names);
        return 404;
    case REGISTRY_NO_VERSION:
        snprintf(msg, size, "model '%.100s' has no version '%.15s'", name, v ? v : "");
        return 404;
    default: {
        char s[16];
        snprintf(s, sizeof s, "%d", req->deps->limits->retry_after_s);
        http_set_header(req, "Retry-After", s);
        snprintf(msg, size, "model '%.100s' is not ready (loading or unavailable); retry later",
                 name);
        return 503;
    }
    }
}

const char *http_request_version(const http_request_t *req)
{
    return req->version;
}

void http_request_set_model(http_request_t *req, const served_model_t *model)
{
    req->logged_model = model;
}

const uint8_t *http_request_body(const http_request_t *req, size_t *len)
{
    static const uint8_t empty[1] = {0};
    *len = req->body_len;
    return req->body ? req->body : empty;
}

const char *http_request_param(const http_request_t *req)
{
    return req->param;
}

void *http_request_state(const http_request_t *req)
{
    return req->route_data;
}

void http_request_set_state(http_request_t *req, void *state)
{
    req->route_data = state;
}

void http_request_set_images(http_request_t *req, int n)
{
    req->images = n;
}

void http_request_add_timings(http_request_t *req, double decode_ms, double queue_ms,
                              double inference_ms)
{
    if (decode_ms >= 0)
        req->decode_ms += decode_ms;
    if (queue_ms > req->queue_ms)
        req->queue_ms = queue_ms;
    if (inference_ms > req->inference_ms)
        req->inference_ms = inference_ms;
}

int64_t http_request_start_ns(const http_request_t *req)
{
    return req->start_ns;
}

double http_request_elapsed_ms(const http_request_t *req)
{
    return (double)(clock_now_ns() - req->start_ns) / 1e6;
}

const char *http_header(const http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_request_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

void http_set_header(http_request_t *req, const char *name, const char *value)
{
    snprintf(req->header_name, sizeof req->header_name, "%s", name);
    snprintf(req->header_value, sizeof req->header_value, "%s", value);
}

void http_set_static_headers(http_request_t *req, const char *const *pairs)
{
    req->static_headers = pairs;
}

void http_respond(http_request_t *req, int status, const char *content_type, char *body,
                  size_t len)
{
    free(req->response);
    req->status = status;
    req->content_type = content_type;
    req->response = body;
    req->response_len = body ? len : 0;
}

void http_respond_json(http_request_t *req, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        http_respond(req, 500, "application/json", strdup(oom), sizeof oom - 1);
        return;
    }
    http_respond(req, status, "application/json", text, strlen(text));
}

void http_set_retry_after(http_request_t *req, int status)
{
    if (http_error_retryable(status))
        req->retry_after_s = req->deps->limits->retry_after_s > 0 ? req->deps->limits->retry_after_s
                                                                   : 1;
}

void http_respond_error(http_request_t *req, int status, const char *message)
{
    json_t *err = http_error_object(status, message);
    http_respond_json(req, status, err ? json_pack("{s:o}", "error", err) : NULL);
    http_set_retry_after(req, status);
}

void http_respond_kserve_error(http_request_t *req, int status, const char *message)
{
    http_respond_json(req, status, json_pack("{s:s}", "error", message));
    http_set_retry_after(req, status);
}
