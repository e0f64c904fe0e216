/* image_internal.h - helpers shared by the image_*.c files only (not part of
 * the server's interface): the libjpeg decompressor is passed as void * so
 * that only image_decode.c includes jpeglib.h. */
#ifndef RESNETD_IMAGE_INTERNAL_H
#define RESNETD_IMAGE_INTERNAL_H

#include "image.h"

/* image_probe on a caller-owned decompressor (image_dec_create). */
rd_status_t image_probe_with(void *dec, const uint8_t *jpeg, size_t len,
                             image_probe_t *out, rd_error_t *err);

/* RD_ERR_LIMIT when the probed image has more pixels than lim allows. */
rd_status_t image_check_limits(const image_probe_t *probe, const image_limits_t *lim,
                               rd_error_t *err);

/* Where a partly decoded image lies in the full one: the image's pixels[0] is
 * pixel (x0, y0) of a full_width x full_height image (see
 * image_resize_source_rect for the part a resize needs). */
typedef struct {
    int x0, y0;
    int full_width, full_height;
} image_part_t;

/* Decodes an already probed JPEG at 1/denom into out (caller frees), within
 * lim's scan, work and time bounds and its stop hook (lim NULL: unbounded). */
rd_status_t image_decode_with(void *dec, const uint8_t *jpeg, size_t len,
                              const image_probe_t *probe, int denom,
                              const image_limits_t *lim, image_rgb_t *out, rd_error_t *err);

/* The same for part of it: want = {x0, y0, x1, y1} in 1/denom-scaled pixels
 * (NULL: all). Decodes those rows and columns and a margin around them (more
 * to the left, to libjpeg's iMCU boundary) into out, which is the part of the
 * image that *part says, with the pixels a full decode gives inside `want`.
 * The rows below are never decoded. */
rd_status_t image_decode_part_with(void *dec, const uint8_t *jpeg, size_t len,
                                   const image_probe_t *probe, int denom,
                                   const image_limits_t *lim, const int *want,
                                   image_rgb_t *out, image_part_t *part, rd_error_t *err);

/* image_resize_crop with normalisation fused into its output pass: writes
 * out[p][y][x] = lut[p][level of source channel src_channel[p] at (x, y)],
 * planes [3][ch][cw] float32, the same values as image_resize_crop followed
 * by the lookup. part NULL: src is the whole image; otherwise src is that part
 * of it, and must hold every pixel the window reads (else RD_ERR_ARG); the
 * values are those of the whole image's resize. Same failures as
 * image_resize_crop. Thread-safe. */
rd_status_t image_resize_crop_planes(const image_rgb_t *src, const image_part_t *part,
                                     int rw, int rh, int left, int top, int cw, int ch,
                                     const float lut[3][256], const int src_channel[3],
                                     float *out, rd_error_t *err);


/* Creates / destroys a libjpeg decompressor (NULL on failure; NULL is a no-op). */
void *image_dec_create(void);
void image_dec_destroy(void *dec);

#endif
