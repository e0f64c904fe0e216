/* multipart.h - a multipart/form-data reader (RFC 7578 over RFC 2046) that
 * knows nothing of HTTP: it takes the Content-Type value and the body's bytes
 * as they stream in, and copies each part's bytes once, straight from the
 * chunk into that part's buffer, so the body itself is never buffered.
 *
 *     multipart_reader_t *r;
 *     if (multipart_begin(content_type, max_parts, &r, &err) != RD_OK) -> 415
 *     multipart_feed(r, chunk, n);                 for each body chunk
 *     multipart_finish(r, &parts, &err);           the parts, or why not -> 400/413
 *     multipart_reader_free(r); ... multipart_free(&parts);
 *
 * Every part is returned, in body order, with its form name, filename and
 * content type. Pure; one reader belongs to one thread at a time. */
#ifndef RESNETD_MULTIPART_H
#define RESNETD_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

typedef struct {
    uint8_t *data;      /* the part's bytes, owned */
    size_t len;
    char *name;         /* form field name, "" when absent; owned */
    char *filename;     /* NULL when the part has none; owned */
    char *content_type; /* NULL when the part has none; owned */
} multipart_part_t;

typedef struct {
    multipart_part_t *parts;
    int n_parts;
    int cap;
} multipart_t;

typedef struct multipart_reader multipart_reader_t;

/* A reader for a body of Content-Type content_type, which must be
 * multipart/form-data with a boundary parameter (quoted or not), allowing at
 * most max_parts parts. RD_ERR_UNSUPPORTED (not multipart/form-data, or no
 * usable boundary) or RD_ERR_NOMEM; *out is NULL then. */
/* True when ct's media type is multipart/form-data (case-insensitive, the
 * whole type: parameters may follow after ';'). */
bool multipart_is_form_data(const char *ct);

rd_status_t multipart_begin(const char *content_type, int max_parts, multipart_reader_t **out,
                            rd_error_t *err);

/* The next len bytes of the body. After the first error the rest of the body
 * is ignored (multipart_finish reports it). */
void multipart_feed(multipart_reader_t *r, const uint8_t *data, size_t len);

/* The end of the body. RD_OK with out->n_parts >= 1 (the parts move to out);
 *   RD_ERR_FORMAT  malformed multipart (no boundary line, a truncated body,
 *                  over-long part headers), or no part at all;
 *   RD_ERR_LIMIT   more than max_parts parts;
 *   RD_ERR_NOMEM.
 * On failure out is empty (nothing to free). Call once. */
rd_status_t multipart_finish(multipart_reader_t *r, multipart_t *out, rd_error_t *err);

/* Frees the reader and any parts it still holds. NULL is a no-op. */
void multipart_reader_free(multipart_reader_t *r);

/* begin + feed + finish on a whole body. Same results. */
rd_status_t multipart_parse(const char *content_type, const uint8_t *body, size_t len,
                            int max_parts, multipart_t *out, rd_error_t *err);

/* Frees every part and zeroes mp. NULL or an empty mp is a no-op. */
void multipart_free(multipart_t *mp);

#endif
