/* image_webp.c - WebP -> packed RGB with libwebp, as PIL's convert("RGB")
 * sees it: lossy (VP8, YUV 4:2:0 with libwebp's default fancy upsampling, as
 * PIL's decoder uses) or lossless (VP8L), alpha dropped, not composited.
 * The pixel limit is checked from the bitstream header (WebPGetFeatures reads
 * no pixel data) before the RGB buffer exists; an animated WebP is refused.
 * THREADS: no shared state. */
#include "image_formats.h"

#include <stdlib.h>
#include <webp/decode.h>

rd_status_t image_webp_decode(const uint8_t *webp, size_t len, const image_limits_t *lim,
                              image_rgb_t *out, rd_error_t *err)
{
    if (!webp || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_webp_decode: NULL argument");
    *out = (image_rgb_t){0};
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(webp, len, &f);
    if (vs != VP8_STATUS_OK)
        return rd_error_set(err, RD_ERR_FORMAT, "WebP header: libwebp status %d%s", (int)vs,
                            vs == VP8_STATUS_NOT_ENOUGH_DATA ? " (truncated)" : "");
    if (f.has_animation)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "animated WebP not supported: send one frame");
    if (f.width < 1 || f.height < 1)
        return rd_error_set(err, RD_ERR_FORMAT, "WebP header: %dx%d", f.width, f.height);
    rd_status_t st = image_formats_check_pixels("WebP", (uint32_t)f.width, (uint32_t)f.height,
                                                lim, err);
    if (st != RD_OK)
        return st;
    size_t stride = (size_t)f.width * 3, size = stride * (size_t)f.height;
    uint8_t *pixels = malloc(size);
    if (!pixels)
        return rd_error_set(err, RD_ERR_NOMEM, "WebP: %zu bytes of pixels", size);
    if (!WebPDecodeRGBInto(webp, len, pixels, size, (int)stride)) {
        free(pixels);
        return rd_error_set(err, RD_ERR_FORMAT, "WebP image data: corrupt or truncated");
    }
    *out = (image_rgb_t){.width = f.width, .height = f.height, .pixels = pixels};
    return RD_OK;
}
