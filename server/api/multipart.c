/* multipart.c - the streaming multipart/form-data reader (see the header).
 *
 * The body is "--B" CRLF headers CRLF CRLF data, then "CRLF--B" before each
 * next part and "CRLF--B--" at the end (B the boundary). The reader is a
 * state machine fed any split of the body: it matches the delimiter
 * "CRLF--B" one byte at a time across chunk edges. Since B holds no CR, a
 * mismatch can only restart the match at a CR, so the bytes matched so far
 * are plain data and are flushed to the part. Between CRs, spans of data are
 * copied in bulk. The first delimiter needs no CRLF before it: the reader
 * starts as if it had just seen one. */
#include "multipart.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70 /* RFC 2046 */
#define HEADER_LINE_MAX 1024
#define HEADER_LINES_MAX 16

typedef enum {
    MP_PREAMBLE,    /* before the first delimiter: discarded */
    MP_AFTER_DELIM, /* right after a delimiter: "--" ends, CRLF starts a part */
    MP_HEADERS,     /* a part's header lines */
    MP_DATA,        /* a part's bytes */
    MP_EPILOGUE,    /* after the closing delimiter: discarded */
} mp_state_t;

struct multipart_reader {
    char delim[BOUNDARY_MAX + 5]; /* "\r\n--" + boundary */
    size_t delim_len;
    size_t matched;      /* bytes of delim matched so far */
    mp_state_t state;
    int max_parts;
    multipart_t parts;
    size_t part_cap;     /* capacity of the current part's data */
    char line[HEADER_LINE_MAX];
    size_t line_len;
    int header_lines;
    char after[2];       /* the two bytes after a delimiter */
    int n_after;
    rd_status_t status;  /* the first error */
    char msg[96];
};

static void fail(multipart_reader_t *r, rd_status_t st, const char *msg)
{
    if (r->status != RD_OK)
        return;
    r->status = st;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
}

/* The boundary parameter of a Content-Type value, unquoted. */
static bool find_boundary(const char *ct, char *out, size_t cap)
{
    const char *p = ct;
    while ((p = strchr(p, ';'))) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9))
            continue;
        p += 9;
        size_t n = 0;
        if (*p == '"') {
            const char *end = strchr(++p, '"');
            if (!end)
                return false;
            n = (size_t)(end - p);
        } else {
            n = strcspn(p, "; \t");
        }
        if (n == 0 || n >= cap || memchr(p, '\r', n) || memchr(p, '\n', n))
            return false;
        memcpy(out, p, n);
        out[n] = 0;
        return true;
    }
    return false;
}

bool multipart_is_form_data(const char *ct)
{
    if (!ct || strncasecmp(ct, "multipart/form-data", 19))
        return false;
    char c = ct[19]; /* the whole media type: "multipart/form-dataX" is another one */
    return c == 0 || c == ';' || c == ' ' || c == '\t';
}

rd_status_t multipart_begin(const char *content_type, int max_parts, multipart_reader_t **out,
                            rd_error_t *err)
{
    *out = NULL;
    if (!multipart_is_form_data(content_type))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "content type is not multipart/form-data");
    char boundary[BOUNDARY_MAX + 1];
    if (!find_boundary(content_type, boundary, sizeof boundary))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "multipart/form-data without a usable boundary");
    multipart_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory reading multipart parts");
    r->delim_len = (size_t)snprintf(r->delim, sizeof r->delim, "\r\n--%s", boundary);
    r->matched = 2; /* the first delimiter may open the body: as if after a CRLF */
    r->state = MP_PREAMBLE;
    r->max_parts = max_parts;
    *out = r;
    return RD_OK;
}

static multipart_part_t *current(multipart_reader_t *r)
{
    return &r->parts.parts[r->parts.n_parts - 1];
}

/* Appends bytes to the current part, doubling its buffer as it grows. */
static void put(multipart_reader_t *r, const void *data, size_t n)
{
    if (n == 0 || r->state != MP_DATA)
        return;
    multipart_part_t *p = current(r);
    if (p->len + n > r->part_cap) {
        size_t cap = r->part_cap ? r->part_cap : 4096;
        while (cap < p->len + n)
            cap *= 2;
        uint8_t *d = realloc(p->data, cap);
        if (!d) {
            fail(r, RD_ERR_NOMEM, "out of memory reading multipart parts");
            return;
        }
        p->data = d;
        r->part_cap = cap;
    }
    memcpy(p->data + p->len, data, n);
    p->len += n;
}

static bool new_part(multipart_reader_t *r)
{
    multipart_t *mp = &r->parts;
    if (mp->n_parts >= r->max_parts) {
        fail(r, RD_ERR_LIMIT, "too many parts");
        return false;
    }
    if (mp->n_parts == mp->cap) {
        int cap = mp->cap ? mp->cap * 2 : 4;
        multipart_part_t *p = realloc(mp->parts, (size_t)cap * sizeof *p);
        if (!p) {
            fail(r, RD_ERR_NOMEM, "out of memory reading multipart parts");
            return false;
        }
        mp->parts = p;
        mp->cap = cap;
    }
    mp->parts[mp->n_parts++] = (multipart_part_t){.name = strdup("")};
    r->part_cap = 0;
    if (!current(r)->name) {
        fail(r, RD_ERR_NOMEM, "out of memory reading multipart parts");
        return false;
    }
    return true;
}

/* A parameter of a Content-Disposition value (quoted or not), malloc'd. */
static char *disposition_param(const char *v, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = v; (p = strchr(p, ';')); ) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, key, klen) || p[klen] != '=')
            continue;
        p += klen + 1;
        size_t n = *p == '"' ? strcspn(++p, "\"") : strcspn(p, "; \t");
        return strndup(p, n);
    }
    return NULL;
}

static void replace(char **field, char *value)
{
    free(*field);
    *field = value;
}

/* One header line of the current part (without its CRLF). */
static void header_line(multipart_reader_t *r, const char *line)
{
    multipart_part_t *p = current(r);
    const char *v = strchr(line, ':');
    if (!v)
        return;
    size_t name_len = (size_t)(v - line);
    for (v++; *v == ' ' || *v == '\t'; v++)
        ;
    if (name_len == 19 && !strncasecmp(line, "Content-Disposition", 19)) {
        char *name = disposition_param(v, "name");
        if (name)
            replace(&p->name, name);
        replace(&p->filename, disposition_param(v, "filename"));
    } else if (name_len == 12 && !strncasecmp(line, "Content-Type", 12)) {
        replace(&p->content_type, strdup(v));
    }
}

/* Headers: lines up to an empty one. Returns the bytes used. */
static size_t feed_headers(multipart_reader_t *r, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && r->state == MP_HEADERS && r->status == RD_OK) {
        char c = (char)d[i++];
        if (c != '\n') {
            if (r->line_len + 1 >= sizeof r->line)
                fail(r, RD_ERR_FORMAT, "multipart part header line too long");
            else
                r->line[r->line_len++] = c;
            continue;
        }
        if (r->line_len && r->line[r->line_len - 1] == '\r')
            r->line_len--;
        r->line[r->line_len] = 0;
        if (r->line_len == 0) { /* the end of the headers */
            r->state = MP_DATA;
        } else if (++r->header_lines > HEADER_LINES_MAX) {
            fail(r, RD_ERR_FORMAT, "too many multipart part header lines");
        } else {
            header_line(r, r->line);
        }
        r->line_len = 0;
    }
    return i;
}

/* A whole delimiter was matched: the current part (if any) ends here. */
static void delimiter(multipart_reader_t *r)
{
    r->matched = 0;
    r->n_after = 0;
    r->state = MP_AFTER_DELIM;
}

/* After a delimiter: "--" closes the body; optional blanks then CRLF open a part. */
static size_t feed_after(multipart_reader_t *r, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && r->state == MP_AFTER_DELIM && r->status == RD_OK) {
        char c = (char)d[i++];
        if (r->n_after == 0 && (c == ' ' || c == '\t'))
            continue; /* transport padding */
        r->after[r->n_after++] = c;
        if (r->n_after < 2)
            continue;
        if (r->after[0] == '-' && r->after[1] == '-') {
            r->state = MP_EPILOGUE;
        } else if (r->after[0] == '\r' && r->after[1] == '\n') {
            if (new_part(r)) {
                r->state = MP_HEADERS;
                r->line_len = 0;
                r->header_lines = 0;
            }
        } else {
            fail(r, RD_ERR_FORMAT, "malformed multipart/form-data body");
        }
    }
    return i;
}

/* Data (or preamble): everything up to the next delimiter. */
static size_t feed_data(multipart_reader_t *r, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && (r->state == MP_DATA || r->state == MP_PREAMBLE) && r->status == RD_OK) {
        if (r->matched == 0) { /* copy up to the next CR in one go */
            const uint8_t *cr = memchr(d + i, '\r', n - i);
            size_t span = cr ? (size_t)(cr - (d + i)) : n - i;
            put(r, d + i, span);
            i += span;
            if (!cr)
                break;
        }
        if (d[i] == (uint8_t)r->delim[r->matched]) {
            i++;
            if (++r->matched == r->delim_len)
                delimiter(r);
            continue;
        }
        /* a mismatch: what matched was data; restart at a CR (only delim[0]) */
        if (r->state == MP_DATA)
            put(r, r->delim, r->matched);
        r->matched = 0;
        if (d[i] != '\r') {
            put(r, d + i, 1);
            i++;
        }
    }
    return i;
}

void multipart_feed(multipart_reader_t *r, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len && r->status == RD_OK) {
        switch (r->state) {
        case MP_PREAMBLE:
        case MP_DATA:
            i += feed_data(r, data + i, len - i);
            break;
        case MP_AFTER_DELIM:
            i += feed_after(r, data + i, len - i);
            break;
        case MP_HEADERS:
            i += feed_headers(r, data + i, len - i);
            break;
        case MP_EPILOGUE:
            return;
        }
    }
}

rd_status_t multipart_finish(multipart_reader_t *r, multipart_t *out, rd_error_t *err)
{
    *out = (multipart_t){0};
    if (r->status == RD_OK && r->state != MP_EPILOGUE)
        fail(r, RD_ERR_FORMAT, r->parts.n_parts ? "malformed multipart/form-data body"
                                                : "multipart/form-data body has no parts");
    switch (r->status) {
    case RD_OK:
        *out = r->parts;
        r->parts = (multipart_t){0};
        return RD_OK;
    case RD_ERR_LIMIT:
        return rd_error_set(err, RD_ERR_LIMIT, "more than %d parts (max_images_per_request)",
                            r->max_parts);
    default:
        return rd_error_set(err, r->status, "%s", r->msg);
    }
}

void multipart_reader_free(multipart_reader_t *r)
{
    if (!r)
        return;
    multipart_free(&r->parts);
    free(r);
}

rd_status_t multipart_parse(const char *content_type, const uint8_t *body, size_t len,
                            int max_parts, multipart_t *out, rd_error_t *err)
{
    *out = (multipart_t){0};
    multipart_reader_t *r;
    rd_status_t st = multipart_begin(content_type, max_parts, &r, err);
    if (st != RD_OK)
        return st;
    multipart_feed(r, body, len);
    st = multipart_finish(r, out, err);
    multipart_reader_free(r);
    return st;
}

void multipart_free(multipart_t *mp)
{
    if (!mp)
        return;
    for (int i = 0; i < mp->n_parts; i++) {
        free(mp->parts[i].data);
        free(mp->parts[i].name);
        free(mp->parts[i].filename);
        free(mp->parts[i].content_type);
    }
    free(mp->parts);
    *mp = (multipart_t){0};
}
