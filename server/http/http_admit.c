/* http_admit.c - a request's header stage: what it must pass on its headers
 * alone, before any body is read (framing, routing, connection limit, token,
 * declared size and body budget), and the early refusals, each in the error
 * shape of the path's protocol. Called by http_request.c on the request's
 * HTTP thread; the request's fields are that thread's (see http_request.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http_error.h"
#include "http_framing.h"
#include "http_internal.h"

/* An early refusal in the error shape of the path's protocol (KServe,
 * TorchServe, TF Serving or resnetd's own). */
void http_refuse(http_request_t *req, int status, const char *message)
{
    http_respond_json(req, status, http_error_body(http_error_shape(req->path), status, message));
    http_set_retry_after(req, status);
}

/* The bearer token check, on headers alone: a refused client's body is
 * discarded unread, so it can make the server neither buffer nor decode.
 * /healthz and /readyz stay open for probes (any method: they answer 405 to
 * POST as usual), and the page (/ and /ui/: static files, no data; it asks
 * for the token); every other path, unknown ones included, needs the token,
 * so routes are not revealed to strangers. False after answering 401. */
static bool is_probe(const http_request_t *req)
{
    return req->endpoint == METRICS_EP_HEALTHZ || req->endpoint == METRICS_EP_READYZ ||
           req->endpoint == METRICS_EP_TS_PING; /* TorchServe's probe, like /readyz */
}

static bool auth_stage(http_request_t *req)
{
    if (is_probe(req) || req->endpoint == METRICS_EP_UI)
        return true;
    auth_result_t a = auth_check(&req->http->auth, http_header(req, MHD_HTTP_HEADER_AUTHORIZATION));
    if (a == AUTH_OK)
        return true;
    snprintf(req->header_name, sizeof req->header_name, "%s", MHD_HTTP_HEADER_WWW_AUTHENTICATE);
    snprintf(req->header_value, sizeof req->header_value, "Bearer realm=\"resnetd\"%s",
             a == AUTH_INVALID ? ", error=\"invalid_token\"" : "");
    const char *msg = a == AUTH_INVALID ? "invalid bearer token"
                                        : "this endpoint needs an Authorization: Bearer token";
    http_refuse(req, 401, msg);
    return false;
}

/* 503 + Retry-After: the bodies being received already fill max_buffered_body_bytes. */
void http_refuse_over_budget(http_request_t *req)
{
    char msg[160];
    snprintf(msg, sizeof msg, "the server is buffering max_buffered_body_bytes %lld of request "
             "bodies; retry later", (long long)req->deps->limits->max_buffered_body_bytes);
    http_refuse(req, 503, msg);
}

static bool header_stage(http_request_t *req, const char *url)
{
    const char *allow = NULL;
    req->route = req->http->find_route(url, req->method, &req->endpoint, req->param,
                                       sizeof req->param, req->version, sizeof req->version,
                                       &allow);
    if (http_over_limit(req->conn) && !is_probe(req)) { /* before auth: it reveals nothing but the limit */
        req->route = NULL;
        char msg[128];
        snprintf(msg, sizeof msg, "too many connections (max_connections %d); retry later",
                 req->http->max_connections);
        http_refuse(req, 503, msg);
        return false;
    }
    if (!auth_stage(req)) {
        req->route = NULL; /* no route ran, so none cleans up */
        return false;
    }
    if (!req->route) {
        if (allow) {
            req->allow = allow;
            char msg[160];
            snprintf(msg, sizeof msg, "method %s not allowed on %.80s (allowed: %s)",
                     req->method, req->path, allow);
            http_respond_error(req, 405, msg);
        } else {
            http_respond_error(req, 404, "no such endpoint");
        }
        return false;
    }
    if (req->route->needs_model && !req->deps->registry) {
        http_refuse(req, 503, "the model is still loading; try again shortly");
        return false;
    }
    if (!req->route->takes_body)
        return true;
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!len && !te) {
        http_refuse(req, 411, "a body with Content-Length (or chunked encoding) is required");
        return false;
    }
    int64_t max = req->deps->limits->max_body_bytes;
    if (len && strtoll(len, NULL, 10) > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %.20s bytes exceeds max_body_bytes %lld", len,
                 (long long)max);
        http_refuse(req, 413, msg);
        return false;
    }
    if (len && !http_body_budget_take(req, strtoll(len, NULL, 10))) {
        http_refuse_over_budget(req);
        return false;
    }
    return true;
}

/* Request line and framing (http_framing.c), before routing or auth: a
 * request a proxy could frame differently is refused and its connection
 * closed. False after answering. */
static bool framing_stage(http_request_t *req, const char *version)
{
    char msg[160];
    int status = http_framing_check(req->conn, version, msg, sizeof msg);
    if (!status)
        return true;
    req->state = RQ_REFUSED;
    req->close = true;
    http_refuse(req, status, msg);
    return false;
}

/* libmicrohttpd closes the connection after an answer queued at the header
 * stage, as it cannot know that no body follows. A request that declares no
 * body loses nothing by waiting for the next call (made at once), so a 401,
 * 404 or 405 to it keeps the connection open for the client's next, perhaps
 * pipelined, request. So does one with a small body (Content-Length up to
 * HTTP_REFUSED_DRAIN_BYTES, no Expect: 100-continue): its body is read and
 * discarded, never buffered, before the answer. Answering it at the headers
 * would close the socket while the body is still arriving, and a close with
 * unread bytes sends a TCP reset that can destroy the answer before the
 * client reads it (curl then fails with "connection reset" instead of
 * showing the 401; seen under TSan's slowdown). The rest still close: 411
 * and 413 may have unread bytes behind them, a 503 refusal is there to shed
 * connections, a large or chunked body is not worth reading, and a client
 * that asked for 100-continue waits for the answer instead of sending. */
#define HTTP_REFUSED_DRAIN_BYTES (1 << 20)

static enum MHD_Result early_answer(http_request_t *req)
{
    const char *len = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool chunked = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    bool body = chunked || (len && strcmp(len, "0"));
    bool small = !chunked && (!body || strtoll(len, NULL, 10) <= HTTP_REFUSED_DRAIN_BYTES) &&
                 !http_header(req, MHD_HTTP_HEADER_EXPECT);
    req->state = RQ_REFUSED;
    if (small && (req->status == 401 || req->status == 404 || req->status == 405))
        return MHD_YES; /* the call after the body (or the next one) queues it */
    return http_queue_answer(req);
}

bool http_admit(http_request_t *req, const char *url, const char *version,
                enum MHD_Result *refused)
{
    if (!framing_stage(req, version)) {
        *refused = http_queue_answer(req); /* closes: the body, if any, cannot be framed */
        return false;
    }
    if (!header_stage(req, url)) {
        *refused = early_answer(req);
        return false;
    }
    return true;
}
