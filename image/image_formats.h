/* image_formats.h - the PNG and WebP decoders behind image_to_tensor (not
 * part of the server's interface). Each checks the header against lim (the
 * pixel limit, animation) before it allocates a pixel buffer, then decodes
 * the whole image to packed 8-bit RGB the way PIL's convert("RGB") does
 * (image.h, image_format_t). */
#ifndef RESNETD_IMAGE_FORMATS_H
#define RESNETD_IMAGE_FORMATS_H

#include "image.h"

/* Decodes png[0..len) into *out (caller frees with image_rgb_free).
 * RD_ERR_FORMAT corrupt, truncated, or image data inflating to over 64 KiB
 * more than the rows need (a decompression bomb);
 * RD_ERR_UNSUPPORTED an APNG; RD_ERR_LIMIT over lim->max_pixels (lim may be
 * NULL: no limit); RD_ERR_NOMEM. Thread-safe. */
rd_status_t image_png_decode(const uint8_t *png, size_t len, const image_limits_t *lim,
                             image_rgb_t *out, rd_error_t *err);

/* The same for WebP (lossy, lossless, with or without alpha); an animated
 * WebP is RD_ERR_UNSUPPORTED. Thread-safe. */
rd_status_t image_webp_decode(const uint8_t *webp, size_t len, const image_limits_t *lim,
                              image_rgb_t *out, rd_error_t *err);

/* RD_ERR_LIMIT naming the format when width x height exceeds lim->max_pixels. */
rd_status_t image_formats_check_pixels(const char *format, uint32_t width, uint32_t height,
                                       const image_limits_t *lim, rd_error_t *err);

/* Dispatch on image_format_sniff: RD_ERR_UNSUPPORTED for a format lim->formats
 * turns off, else the format's decoder above. JPEG is not decoded here
 * (image_decode.c): it and UNKNOWN are RD_ERR_ARG. */
rd_status_t image_formats_decode(image_format_t format, const uint8_t *buf, size_t len,
                                 const image_limits_t *lim, image_rgb_t *out, rd_error_t *err);

#endif
