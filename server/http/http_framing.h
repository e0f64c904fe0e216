/* http_framing.h - request-line and message-framing checks on a request's
 * headers (RFC 9110/9112), before any body is read (see http_framing.c). */
#ifndef RESNETD_HTTP_FRAMING_H
#define RESNETD_HTTP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

/* 0 when the request may be served; otherwise the status to refuse it with
 * (400, 501 or 505), with a message for the client in msg. */
int http_framing_check(struct MHD_Connection *conn, const char *version, char *msg, size_t cap);

#endif
