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

/* Decodes an already probed JPEG at 1/denom into out (caller frees), within
 * lim's scan, work and time bounds and its stop hook (lim NULL: unbounded). */
rd_status_t image_decode_with(void *dec, const uint8_t *jpeg, size_t len,
                              const image_probe_t *probe, int denom,
                              const image_limits_t *lim, image_rgb_t *out, rd_error_t *err);

/* Creates / destroys a libjpeg decompressor (NULL on failure; NULL is a no-op). */
void *image_dec_create(void);
void image_dec_destroy(void *dec);

#endif
