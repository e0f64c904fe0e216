/* http_framing.c - the request-line and framing checks that libmicrohttpd
 * leaves to the application (RFC 9110/9112), run once on the headers before
 * anything reads a body, so a request that a proxy in front could frame
 * differently (request smuggling) is refused, and its connection closed,
 * rather than guessed at:
 *   - a version other than HTTP/1.0 or HTTP/1.1: 505;
 *   - HTTP/1.1 without exactly one Host: 400 (RFC 9112 3.2);
 *   - a header value with a NUL or a bare CR (libmicrohttpd would cut it): 400;
 *   - Content-Length together with Transfer-Encoding: 400 (RFC 9112 6.1);
 *   - Content-Length values that disagree (repeated or listed): 400 (6.3);
 *   - a Transfer-Encoding other than a single "chunked": 501 for a coding
 *     resnetd does not implement (gzip, identity, chunkedX, ...), 400 when
 *     chunked is repeated or not the last coding (6.3). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_framing.h"

typedef struct {
    int hosts;          /* Host fields seen */
    int lengths;        /* Content-Length fields seen */
    char length[32];    /* the first Content-Length value, trimmed */
    bool lengths_differ;/* a later (or listed) value that is not the first */
    bool te;            /* a Transfer-Encoding field seen */
    int te_status;      /* 400 or 501 when the codings are refused */
    char bad_field[48]; /* a field whose value holds a NUL or a bare CR */
} framing_scan_t;

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* [*b, *e) trimmed of optional whitespace on both sides. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

/* Each comma-separated Content-Length value against the first one seen. */
static void scan_length(framing_scan_t *s, const char *v, size_t n)
{
    const char *p = v, *end = v + n;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *b = p, *e = c ? c : end;
        trim(&b, &e);
        size_t len = (size_t)(e - b);
        if (!s->length[0] && len < sizeof s->length) {
            memcpy(s->length, b, len);
            s->length[len] = 0;
        } else if (len != strlen(s->length) || memcmp(b, s->length, len)) {
            s->lengths_differ = true;
        }
        if (!c)
            break;
        p = c + 1;
    }
}

/* The codings of one Transfer-Encoding field: only a single, final chunked. */
static void scan_codings(framing_scan_t *s, const char *v, size_t n)
{
    const char *p = v, *end = v + n;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *b = p, *e = c ? c : end;
        trim(&b, &e);
        if (b == e) {
            /* an empty list element (RFC 9110 5.6.1): ignored */
        } else if ((size_t)(e - b) == 7 && !strncasecmp(b, "chunked", 7)) {
            if (s->te || c) /* chunked twice, or another coding after it */
                s->te_status = s->te_status ? s->te_status : 400;
            s->te = true;
        } else {
            s->te_status = 501; /* a coding resnetd does not implement */
        }
        if (!c)
            break;
        p = c + 1;
    }
    s->te = true;
}

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    framing_scan_t *s = cls;
    if (!value)
        value = "", value_size = 0;
    if (!s->bad_field[0] && (memchr(value, 0, value_size) || memchr(value, '\r', value_size)))
        snprintf(s->bad_field, sizeof s->bad_field, "%.40s", key);
    if (!strcasecmp(key, MHD_HTTP_HEADER_HOST))
        s->hosts++;
    else if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        s->lengths++;
        scan_length(s, value, value_size);
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        if (s->te && !s->te_status)
            s->te_status = 400; /* a second field: chunked already came */
        scan_codings(s, value, value_size);
    }
    return MHD_YES;
}

int http_framing_check(struct MHD_Connection *conn, const char *version, char *msg, size_t cap)
{
    if (!version || (strcmp(version, MHD_HTTP_VERSION_1_1) && strcmp(version, MHD_HTTP_VERSION_1_0))) {
        snprintf(msg, cap, "HTTP version %.16s not supported: use HTTP/1.1 or HTTP/1.0",
                 version ? version : "?");
        return 505;
    }
    framing_scan_t s = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_field, &s);
    if (s.bad_field[0]) {
        snprintf(msg, cap, "header %s has a NUL or a bare CR in its value", s.bad_field);
        return 400;
    }
    if (!strcmp(version, MHD_HTTP_VERSION_1_1) && s.hosts != 1) {
        snprintf(msg, cap, "an HTTP/1.1 request needs exactly one Host header (got %d)", s.hosts);
        return 400;
    }
    if (s.te && s.lengths) {
        snprintf(msg, cap, "Content-Length and Transfer-Encoding together are ambiguous");
        return 400;
    }
    if (s.lengths_differ) {
        snprintf(msg, cap, "Content-Length values disagree");
        return 400;
    }
    if (s.te_status == 501) {
        snprintf(msg, cap, "Transfer-Encoding not implemented: only chunked is");
        return 501;
    }
    if (s.te_status) {
        snprintf(msg, cap, "Transfer-Encoding must end with a single chunked");
        return 400;
    }
    return 0;
}
