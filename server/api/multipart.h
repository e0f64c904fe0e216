/* multipart.h - splits a multipart/form-data body into its parts, with
 * libmicrohttpd's MHD_PostProcessor doing the parsing (boundaries, part
 * headers, transfer encodings) rather than a hand-written parser: it is the
 * parser the daemon already trusts, and it streams each part's value to us in
 * chunks, which we copy into one buffer per part. Every part is returned, in
 * body order, with its form name, filename and content type. */
#ifndef RESNETD_MULTIPART_H
#define RESNETD_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

struct MHD_Connection;

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

/* Parses body[0..len), using the connection's Content-Type header (which must
 * be multipart/form-data with a boundary). At most max_parts parts.
 * Returns RD_OK with out->n_parts >= 1;
 *   RD_ERR_UNSUPPORTED the content type is not multipart/form-data with a boundary;
 *   RD_ERR_FORMAT      malformed multipart, or no part at all;
 *   RD_ERR_LIMIT       more than max_parts parts;
 *   RD_ERR_NOMEM.
 * On failure out is emptied (nothing to free). Thread-safe per connection. */
rd_status_t multipart_parse(struct MHD_Connection *conn, const uint8_t *body, size_t len,
                            int max_parts, multipart_t *out, rd_error_t *err);

/* Frees every part and zeroes mp. NULL or an empty mp is a no-op. */
void multipart_free(multipart_t *mp);

#endif
