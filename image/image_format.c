/* image_format.c - which format a body is (by its signature, never by a
 * Content-Type), whether the limits accept it, and the dispatch to the PNG
 * and WebP decoders. THREADS: no state. */
#include "image_formats.h"

#include <string.h>
#include <webp/decode.h>

image_format_t image_format_sniff(const uint8_t *buf, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!buf)
        return IMAGE_FORMAT_UNKNOWN;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return IMAGE_FORMAT_JPEG;
    if (len >= 8 && !memcmp(buf, png_sig, 8))
        return IMAGE_FORMAT_PNG;
    if (len >= 12 && !memcmp(buf, "RIFF", 4) && !memcmp(buf + 8, "WEBP", 4))
        return IMAGE_FORMAT_WEBP;
    return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_str(image_format_t format)
{
    static const char *const names[] = {"unknown", "JPEG", "PNG", "WebP"};
    return (unsigned)format < sizeof names / sizeof names[0] ? names[format] : "unknown";
}

rd_status_t image_formats_check_pixels(const char *format, uint32_t width, uint32_t height,
                                       const image_limits_t *lim, rd_error_t *err)
{
    uint64_t pixels = (uint64_t)width * height;
    if (lim && lim->max_pixels && pixels > lim->max_pixels)
        return rd_error_set(err, RD_ERR_LIMIT, "%s is %ux%u = %llu pixels, the limit is %llu",
                            format, (unsigned)width, (unsigned)height,
                            (unsigned long long)pixels, (unsigned long long)lim->max_pixels);
    return RD_OK;
}

rd_status_t image_formats_decode(image_format_t format, const uint8_t *buf, size_t len,
                                 const image_limits_t *lim, image_rgb_t *out, rd_error_t *err)
{
    if (lim && lim->formats && !(lim->formats & IMAGE_FORMAT_BIT(format)))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "%s images are turned off on this server",
                            image_format_str(format));
    switch (format) {
    case IMAGE_FORMAT_PNG:
        return image_png_decode(buf, len, lim, out, err);
    case IMAGE_FORMAT_WEBP:
        return image_webp_decode(buf, len, lim, out, err);
    default:
        return rd_error_set(err, RD_ERR_ARG, "image_formats_decode: %s is not decoded here",
                            image_format_str(format));
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

rd_status_t image_dimensions(const uint8_t *buf, size_t len, int *width, int *height,
                             rd_error_t *err)
{
    image_format_t format = image_format_sniff(buf, len);
    if (format == IMAGE_FORMAT_JPEG) {
        image_probe_t probe;
        rd_status_t st = image_probe(buf, len, &probe, err);
        *width = probe.width;
        *height = probe.height;
        return st;
    }
    /* PNG: IHDR is the first chunk (signature, length, "IHDR", width, height) */
    if (format == IMAGE_FORMAT_PNG && len >= 24 && !memcmp(buf + 12, "IHDR", 4) &&
        be32(buf + 16) - 1 < INT32_MAX && be32(buf + 20) - 1 < INT32_MAX) {
        *width = (int)be32(buf + 16);
        *height = (int)be32(buf + 20);
        return RD_OK;
    }
    if (format == IMAGE_FORMAT_WEBP && WebPGetInfo(buf, len, width, height))
        return RD_OK;
    return rd_error_set(err, RD_ERR_FORMAT, "%s header: no image size", image_format_str(format));
}
