/* image_internal.h - helpers shared by the image_*.c files only (not part of
 * the server's interface): the TurboJPEG handle is passed as void * so that
 * only image_decode.c includes turbojpeg.h. */
#ifndef RESNETD_IMAGE_INTERNAL_H
#define RESNETD_IMAGE_INTERNAL_H

#include "image.h"

/* image_probe on a caller-owned tjhandle. */
rd_status_t image_probe_with(void *tj, const uint8_t *jpeg, size_t len,
                             image_probe_t *out, rd_error_t *err);

/* RD_ERR_LIMIT when the probed image has more pixels than lim allows. */
rd_status_t image_check_limits(const image_probe_t *probe, const image_limits_t *lim,
                               rd_error_t *err);

/* Decodes an already probed JPEG at 1/denom into out (caller frees). */
rd_status_t image_decode_with(void *tj, const uint8_t *jpeg, size_t len,
                              const image_probe_t *probe, int denom,
                              image_rgb_t *out, rd_error_t *err);

/* Creates / destroys a TurboJPEG decompressor (NULL on failure). */
void *image_tj_create(void);
void image_tj_destroy(void *tj);

#endif
