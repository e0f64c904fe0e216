/* image_decode.c - JPEG header probing and decoding to packed RGB with
 * TurboJPEG. Accurate integer DCT and libjpeg's default fancy upsampling, so
 * that a full-size decode equals PIL's (PIL uses the same libjpeg-turbo with
 * the same settings). CMYK/YCCK follow PIL: samples are taken as Adobe-
 * inverted ("CMYK;I") and converted with PIL's cmyk2rgb arithmetic.
 * THREADS: each call owns its TurboJPEG handle; nothing is shared. */
#include "image_internal.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* TJFLAG_LIMITSCANS stops a hostile progressive JPEG with thousands of scans;
 * TJFLAG_STOPONWARNING makes corrupt or truncated data fail at once. */
#define DECODE_FLAGS (TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING)

static rd_status_t tj_fail(tjhandle tj, rd_error_t *err, const char *what)
{
    int warning = tjGetErrorCode(tj) == TJERR_WARNING;
    return rd_error_set(err, RD_ERR_FORMAT, "JPEG %s: %s%s", what,
                        warning ? "corrupt data: " : "", tjGetErrorStr2(tj));
}

static image_subsamp_t map_subsamp(int tj_samp)
{
    switch (tj_samp) {
    case TJSAMP_444: return IMAGE_SAMP_444;
    case TJSAMP_422: return IMAGE_SAMP_422;
    case TJSAMP_420: return IMAGE_SAMP_420;
    case TJSAMP_GRAY: return IMAGE_SAMP_GRAY;
    case TJSAMP_440: return IMAGE_SAMP_440;
    case TJSAMP_411: return IMAGE_SAMP_411;
    default: return IMAGE_SAMP_UNKNOWN;
    }
}

static rd_status_t map_colorspace(int tj_cs, image_colorspace_t *out, rd_error_t *err)
{
    switch (tj_cs) {
    case TJCS_RGB: *out = IMAGE_CS_RGB; return RD_OK;
    case TJCS_YCbCr: *out = IMAGE_CS_YCBCR; return RD_OK;
    case TJCS_GRAY: *out = IMAGE_CS_GRAY; return RD_OK;
    case TJCS_CMYK: *out = IMAGE_CS_CMYK; return RD_OK;
    case TJCS_YCCK: *out = IMAGE_CS_YCCK; return RD_OK;
    default:
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG header: unknown colour space %d", tj_cs);
    }
}

rd_status_t image_probe_with(void *tj, const uint8_t *jpeg, size_t len,
                             image_probe_t *out, rd_error_t *err)
{
    if (len == 0)
        return rd_error_set(err, RD_ERR_FORMAT, "JPEG header: empty input");
    if (len > (size_t)0xffffffffu)
        return rd_error_set(err, RD_ERR_LIMIT, "JPEG: %zu bytes is too large", len);
    /* TurboJPEG 2.1 returns success without filling these for a tables-only
     * stream (e.g. a file cut off before its frame header). */
    int w = 0, h = 0, samp = -1, cs = -1;
    if (tjDecompressHeader3(tj, jpeg, (unsigned long)len, &w, &h, &samp, &cs) != 0)
        return tj_fail(tj, err, "header");
    if (w < 1 || h < 1)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "JPEG header: no frame size (truncated or tables-only stream)");
    out->width = w;
    out->height = h;
    out->subsamp = map_subsamp(samp);
    return map_colorspace(cs, &out->colorspace, err);
}

rd_status_t image_probe(const uint8_t *jpeg, size_t len, image_probe_t *out,
                        rd_error_t *err)
{
    if (!jpeg || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_probe: NULL argument");
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return rd_error_set(err, RD_ERR_NOMEM, "tjInitDecompress failed");
    rd_status_t st = image_probe_with(tj, jpeg, len, out, err);
    tjDestroy(tj);
    return st;
}

rd_status_t image_check_limits(const image_probe_t *probe, const image_limits_t *lim,
                               rd_error_t *err)
{
    uint64_t pixels = (uint64_t)probe->width * (uint64_t)probe->height;
    if (lim && lim->max_pixels && pixels > lim->max_pixels)
        return rd_error_set(err, RD_ERR_LIMIT,
                            "JPEG is %dx%d = %llu pixels, the limit is %llu",
                            probe->width, probe->height, (unsigned long long)pixels,
                            (unsigned long long)lim->max_pixels);
    return RD_OK;
}

/* PIL reads 4-component JPEGs as "CMYK;I" (inverted) and converts with
 * r = nk - nk*c/255 (rounded as its MULDIV255), nk = 255 - k. With the raw,
 * inverted samples c' = 255 - c and k' = 255 - k that is nk = k'. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_pixels)
{
    for (size_t i = 0; i < n_pixels; i++, cmyk += 4, rgb += 3) {
        int nk = cmyk[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - cmyk[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            rgb[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

static int scaled(int dim, int denom)
{
    return (dim + denom - 1) / denom; /* TJSCALED with numerator 1 */
}

rd_status_t image_decode_with(void *tj, const uint8_t *jpeg, size_t len,
                              const image_probe_t *probe, int denom,
                              image_rgb_t *out, rd_error_t *err)
{
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
        return rd_error_set(err, RD_ERR_ARG, "JPEG decode: scale 1/%d unsupported", denom);
    int w = scaled(probe->width, denom), h = scaled(probe->height, denom);
    bool cmyk = probe->colorspace == IMAGE_CS_CMYK || probe->colorspace == IMAGE_CS_YCCK;
    size_t n_pixels = (size_t)w * (size_t)h;
    uint8_t *rgb = malloc(n_pixels * 3);
    uint8_t *raw = cmyk ? malloc(n_pixels * 4) : rgb;
    if (!rgb || !raw) {
        free(rgb);
        if (cmyk)
            free(raw);
        return rd_error_set(err, RD_ERR_NOMEM, "JPEG decode: %dx%d image", w, h);
    }
    rd_status_t st = RD_OK;
    if (tjDecompress2(tj, jpeg, (unsigned long)len, raw, w, 0, h,
                      cmyk ? TJPF_CMYK : TJPF_RGB, DECODE_FLAGS) != 0)
        st = tj_fail(tj, err, "decode");
    else if (cmyk)
        cmyk_to_rgb(raw, rgb, n_pixels);
    if (cmyk)
        free(raw);
    if (st != RD_OK) {
        free(rgb);
        return st;
    }
    out->width = w;
    out->height = h;
    out->pixels = rgb;
    return RD_OK;
}

rd_status_t image_decode_rgb(const uint8_t *jpeg, size_t len, int denom,
                             const image_limits_t *lim, image_rgb_t *out,
                             rd_error_t *err)
{
    if (!jpeg || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_decode_rgb: NULL argument");
    memset(out, 0, sizeof *out);
    image_limits_t defaults = image_default_limits();
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return rd_error_set(err, RD_ERR_NOMEM, "tjInitDecompress failed");
    image_probe_t probe;
    rd_status_t st = image_probe_with(tj, jpeg, len, &probe, err);
    if (st == RD_OK)
        st = image_check_limits(&probe, lim ? lim : &defaults, err);
    if (st == RD_OK)
        st = image_decode_with(tj, jpeg, len, &probe, denom, out, err);
    tjDestroy(tj);
    return st;
}

void image_rgb_free(image_rgb_t *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

void *image_tj_create(void)
{
    return tjInitDecompress();
}

void image_tj_destroy(void *tj)
{
    if (tj)
        tjDestroy(tj);
}
