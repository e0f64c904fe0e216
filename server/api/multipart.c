/* multipart.c - multipart/form-data on top of MHD_PostProcessor (see the
 * header for why). The iterator is called with off == 0 for the first chunk
 * of each part, which is how a new part is recognised, even when two parts
 * share a field name. */
#include "multipart.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    multipart_t *mp;
    int max_parts;
    rd_status_t status; /* why the iterator stopped */
} parse_ctx_t;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool new_part(parse_ctx_t *ctx, const char *key, const char *filename,
                     const char *content_type)
{
    multipart_t *mp = ctx->mp;
    if (mp->n_parts >= ctx->max_parts) {
        ctx->status = RD_ERR_LIMIT;
        return false;
    }
    if (mp->n_parts == mp->cap) {
        int cap = mp->cap ? mp->cap * 2 : 4;
        multipart_part_t *p = realloc(mp->parts, (size_t)cap * sizeof *p);
        if (!p) {
            ctx->status = RD_ERR_NOMEM;
            return false;
        }
        mp->parts = p;
        mp->cap = cap;
    }
    multipart_part_t *part = &mp->parts[mp->n_parts++];
    *part = (multipart_part_t){0};
    part->name = strdup(key ? key : "");
    part->filename = dup_or_null(filename);
    part->content_type = dup_or_null(content_type);
    if (!part->name || (filename && !part->filename) || (content_type && !part->content_type)) {
        ctx->status = RD_ERR_NOMEM;
        return false;
    }
    return true;
}

static enum MHD_Result on_data(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    parse_ctx_t *ctx = cls;
    if (off == 0 && !new_part(ctx, key, filename, content_type))
        return MHD_NO;
    if (ctx->mp->n_parts == 0 || size == 0)
        return MHD_YES;
    multipart_part_t *part = &ctx->mp->parts[ctx->mp->n_parts - 1];
    uint8_t *p = realloc(part->data, part->len + size);
    if (!p) {
        ctx->status = RD_ERR_NOMEM;
        return MHD_NO;
    }
    memcpy(p + part->len, data, size);
    part->data = p;
    part->len += size;
    return MHD_YES;
}

rd_status_t multipart_parse(struct MHD_Connection *conn, const uint8_t *body, size_t len,
                            int max_parts, multipart_t *out, rd_error_t *err)
{
    *out = (multipart_t){0};
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "content type is not multipart/form-data");
    parse_ctx_t ctx = {.mp = out, .max_parts = max_parts, .status = RD_OK};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, 16 * 1024, on_data, &ctx);
    if (!pp)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "multipart/form-data without a usable boundary");
    enum MHD_Result ok = len ? MHD_post_process(pp, (const char *)body, len) : MHD_YES;
    enum MHD_Result clean = MHD_destroy_post_processor(pp);
    rd_status_t st = RD_OK;
    if (ctx.status == RD_ERR_LIMIT)
        st = rd_error_set(err, RD_ERR_LIMIT, "more than %d parts (max_images_per_request)",
                          max_parts);
    else if (ctx.status == RD_ERR_NOMEM)
        st = rd_error_set(err, RD_ERR_NOMEM, "out of memory reading multipart parts");
    else if (ok != MHD_YES || clean != MHD_YES)
        st = rd_error_set(err, RD_ERR_FORMAT, "malformed multipart/form-data body");
    else if (out->n_parts == 0)
        st = rd_error_set(err, RD_ERR_FORMAT, "multipart/form-data body has no parts");
    if (st != RD_OK)
        multipart_free(out);
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
