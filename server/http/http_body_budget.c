/* http_body_budget.c - the global budget of buffered request body bytes
 * (max_buffered_body_bytes) and the early release of a request's body. A
 * request reserves its Content-Length at the header stage, or its chunks as
 * they arrive, and gives its share back when its body is dropped (after the
 * route's start()) or it is freed. http->buffered is atomic; the request's
 * fields are its HTTP thread's (see http_request.c), but http_body_budget_release
 * also runs from request_free, on whichever thread drops the last reference,
 * and http_request_drop_body from the decode pool's thread that finishes a
 * kept body's last image. */
#include <stdlib.h>

#include "http_internal.h"

/* Reserves up to `total` body bytes for req; false (nothing more reserved)
 * when all requests together would pass the budget. */
bool http_body_budget_take(http_request_t *req, int64_t total)
{
    int64_t more = total - req->reserved;
    if (more <= 0)
        return true;
    int64_t max = req->deps->limits->max_buffered_body_bytes;
    int64_t before = atomic_fetch_add(&req->http->buffered, more);
    if (max > 0 && before + more > max) {
        atomic_fetch_sub(&req->http->buffered, more);
        return false;
    }
    req->reserved = total;
    return true;
}

void http_body_budget_release(http_request_t *req)
{
    if (req->reserved > 0)
        atomic_fetch_sub(&req->http->buffered, req->reserved);
    req->reserved = 0;
}

/* Frees the buffered body once the route's start() has decoded what it needs
 * (its images are pixels now, or were refused), and gives back its budget. */
void http_body_drop(http_request_t *req)
{
    free(req->body);
    req->body = NULL;
    req->body_len = req->body_cap = 0;
    http_body_budget_release(req);
}


void http_request_keep_body(http_request_t *req)
{
    req->body_kept = true;
}

/* The decodes that read the kept body are done: the pool's last thread frees
 * it (the HTTP thread does not touch it after start(); see http_request.c). */
void http_request_drop_body(http_request_t *req)
{
    http_body_drop(req);
}
