/* image_png.c - PNG -> packed RGB with libspng, as PIL's convert("RGB") sees
 * it (image.h, image_format_t): libspng's SPNG_FMT_RGB8 expands palettes,
 * replicates gray, scales 1/2/4-bit samples, keeps the high byte of 16-bit
 * ones and drops alpha; no SPNG_DECODE_TRNS or SPNG_DECODE_GAMMA flag, so tRNS
 * and gAMA are ignored as PIL ignores them.
 * Bounded cost: the pixel limit is checked from IHDR before any pixel buffer
 * exists; ancillary chunks (text, iCCP: compressed too) may hold at most
 * CHUNK_CACHE_MAX bytes; and the image data may not inflate to more than
 * SLACK beyond what the rows need, so a small file cannot make us inflate far
 * more than width x height calls for.
 * THREADS: no shared state; each call owns its libspng context. */
#include "image_formats.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK_CACHE_MAX (8u << 20) /* ancillary chunk bytes kept, decompressed */
#define SLACK (64u << 10)          /* inflated bytes tolerated beyond the rows */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An APNG announces itself with an acTL chunk before the first IDAT; PIL would
 * show its default frame, we refuse rather than classify one frame of many. */
static rd_status_t refuse_apng(const uint8_t *png, size_t len, rd_error_t *err)
{
    size_t off = 8;
    while (len - off >= 8) {
        uint32_t n = be32(png + off);
        const uint8_t *type = png + off + 4;
        if (!memcmp(type, "acTL", 4))
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "animated PNG (APNG) not supported: send one frame");
        if (!memcmp(type, "IDAT", 4) || (uint64_t)n + 12 > len - off)
            break;
        off += (size_t)n + 12;
    }
    return RD_OK;
}

/* Bytes of filtered image data (a filter byte before every row of every
 * Adam7 pass) that the IHDR calls for. */
static uint64_t raw_size(const struct spng_ihdr *h)
{
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
    uint64_t bits = (uint64_t)channels[h->color_type % 7] * h->bit_depth;
    if (!h->interlace_method)
        return (uint64_t)h->height * (1 + (h->width * bits + 7) / 8);
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, dx[7] = {8, 8, 4, 4, 2, 2, 1};
    static const int y0[7] = {0, 0, 4, 0, 2, 0, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    uint64_t total = 0;
    for (int p = 0; p < 7; p++) {
        uint64_t w = h->width > (uint32_t)x0[p] ? (h->width - x0[p] + dx[p] - 1) / dx[p] : 0;
        uint64_t r = h->height > (uint32_t)y0[p] ? (h->height - y0[p] + dy[p] - 1) / dy[p] : 0;
        if (w && r)
            total += r * (1 + (w * bits + 7) / 8);
    }
    return total;
}

/* libspng inflates only what the rows need and ignores the rest, so a 64x64
 * picture may carry a stream that inflates to gigabytes: harmless to libspng,
 * but malformed, and what decompression-bomb scanners look for. Inflate the
 * IDAT stream into a scratch buffer and refuse it once it passes what the
 * image needs by more than SLACK (a sloppy encoder's few spare bytes pass, as
 * PIL and libpng let them): the cost stays bounded by the image's own size. */
static rd_status_t refuse_long_stream(const uint8_t *png, size_t len,
                                      const struct spng_ihdr *ihdr, rd_error_t *err)
{
    uint64_t need = raw_size(ihdr);
    uint8_t scratch[1 << 16];
    z_stream z = {0};
    if (inflateInit(&z) != Z_OK)
        return rd_error_set(err, RD_ERR_NOMEM, "PNG: inflate state");
    int zrc = Z_OK;
    uint64_t out = 0;
    for (size_t off = 8; len - off >= 12 && zrc == Z_OK && out <= need + SLACK;) {
        uint32_t n = be32(png + off);
        if ((uint64_t)n + 12 > len - off)
            break; /* truncated: libspng says so */
        if (!memcmp(png + off + 4, "IDAT", 4)) {
            z.next_in = (uint8_t *)(png + off + 8);
            z.avail_in = n;
            while (zrc == Z_OK && z.avail_in && out <= need + SLACK) {
                z.next_out = scratch;
                z.avail_out = sizeof scratch;
                zrc = inflate(&z, Z_NO_FLUSH);
                out += sizeof scratch - z.avail_out;
                if (zrc == Z_BUF_ERROR)
                    zrc = Z_OK; /* no progress possible: needs the next chunk */
            }
        }
        off += (size_t)n + 12;
    }
    inflateEnd(&z);
    if (out > need + SLACK)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "PNG image data inflates to far more than the %llu bytes a %ux%u "
                            "image needs (a decompression bomb?)",
                            (unsigned long long)need, (unsigned)ihdr->width,
                            (unsigned)ihdr->height);
    return RD_OK; /* a short or corrupt stream is libspng's to report */
}

static rd_status_t spng_fail(int rc, const char *what, rd_error_t *err)
{
    rd_status_t st = rc == SPNG_EMEM ? RD_ERR_NOMEM : RD_ERR_FORMAT;
    return rd_error_set(err, st, "PNG %s: %s", what, spng_strerror(rc));
}

static rd_status_t decode(spng_ctx *ctx, const uint8_t *png, size_t len,
                          const image_limits_t *lim, image_rgb_t *out, rd_error_t *err)
{
    struct spng_ihdr ihdr;
    int rc = spng_set_png_buffer(ctx, png, len);
    if (!rc)
        rc = spng_set_chunk_limits(ctx, len, CHUNK_CACHE_MAX);
    if (rc)
        return spng_fail(rc, "set-up", err);
    if ((rc = spng_get_ihdr(ctx, &ihdr)))
        return spng_fail(rc, "header", err);
    rd_status_t st = image_formats_check_pixels("PNG", ihdr.width, ihdr.height, lim, err);
    if (st != RD_OK)
        return st;
    if ((st = refuse_long_stream(png, len, &ihdr, err)) != RD_OK)
        return st;
    size_t size;
    if ((rc = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size)))
        return spng_fail(rc, "header", err);
    if (size / 3 / ihdr.width != ihdr.height || ihdr.width > INT32_MAX || ihdr.height > INT32_MAX)
        return rd_error_set(err, RD_ERR_LIMIT, "PNG is %ux%u: too large", (unsigned)ihdr.width,
                            (unsigned)ihdr.height);
    uint8_t *pixels = malloc(size);
    if (!pixels)
        return rd_error_set(err, RD_ERR_NOMEM, "PNG: %zu bytes of pixels", size);
    if ((rc = spng_decode_image(ctx, pixels, size, SPNG_FMT_RGB8, 0))) {
        free(pixels);
        return spng_fail(rc, "image data", err);
    }
    *out = (image_rgb_t){.width = (int)ihdr.width, .height = (int)ihdr.height, .pixels = pixels};
    return RD_OK;
}

rd_status_t image_png_decode(const uint8_t *png, size_t len, const image_limits_t *lim,
                             image_rgb_t *out, rd_error_t *err)
{
    if (!png || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_png_decode: NULL argument");
    *out = (image_rgb_t){0};
    if (image_format_sniff(png, len) != IMAGE_FORMAT_PNG)
        return rd_error_set(err, RD_ERR_FORMAT, "not a PNG");
    rd_status_t st = refuse_apng(png, len, err);
    if (st != RD_OK)
        return st;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return rd_error_set(err, RD_ERR_NOMEM, "PNG: decoder context");
    st = decode(ctx, png, len, lim, out, err);
    spng_ctx_free(ctx);
    return st;
}
