/* image.h - the image pipeline: JPEG bytes -> one model input tensor.
 * Decodes with libjpeg-turbo's libjpeg API (accurate DCT, fancy upsampling: the
 * same output as PIL on the same libjpeg-turbo), within bounds on the scans, the
 * work they cost and the time, optionally at a reduced DCT scale, then does
 * what torchvision's Resize(resize) + CenterCrop(h, w) + ToTensor + Normalize
 * do on a PIL image: PIL's antialiased bilinear resample (separable, 8-bit
 * fixed point, horizontal pass first), center crop, and
 *     x = (pixel * scale - mean[c]) / std[c]  in the model's channel order.
 *
 * THREADS: no shared state. Every call creates its own decompressor and
 * scratch buffers, so any number of HTTP threads may call these functions at
 * once. Nothing here keeps state between calls. */
#ifndef RESNETD_IMAGE_H
#define RESNETD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"
#include "resnetd/model.h"

/* Chroma subsampling of a JPEG, as TurboJPEG names it. */
typedef enum {
    IMAGE_SAMP_444 = 0,
    IMAGE_SAMP_422,
    IMAGE_SAMP_420,
    IMAGE_SAMP_GRAY,
    IMAGE_SAMP_440,
    IMAGE_SAMP_411,
    IMAGE_SAMP_UNKNOWN, /* a layout TurboJPEG cannot name (still decodable) */
} image_subsamp_t;

/* Colour space stored in a JPEG. */
typedef enum {
    IMAGE_CS_RGB = 0,
    IMAGE_CS_YCBCR,
    IMAGE_CS_GRAY,
    IMAGE_CS_CMYK,
    IMAGE_CS_YCCK,
} image_colorspace_t;

/* The container formats image_to_tensor reads, recognised by their first
 * bytes (image_format_sniff), never by a Content-Type. PNG (libspng) and WebP
 * (libwebp) become 8-bit RGB as PIL's Image.open(...).convert("RGB") makes
 * them: alpha and tRNS are dropped (not composited), palettes expanded, gray
 * replicated, gamma and colour profiles ignored, 16-bit samples keep their
 * high byte (PIL 9.4 clips 16-bit grayscale to 255 instead: see README).
 * Their pixel limit is checked from the IHDR / VP8X header, before decoding;
 * an animated PNG (acTL) or WebP is RD_ERR_UNSUPPORTED, and a PNG whose
 * image data inflates to over 64 KiB more than its rows need is RD_ERR_FORMAT. DCT scaling
 * applies to JPEG only. */
typedef enum {
    IMAGE_FORMAT_UNKNOWN = 0,
    IMAGE_FORMAT_JPEG,
    IMAGE_FORMAT_PNG,
    IMAGE_FORMAT_WEBP,
} image_format_t;

/* One bit per format, for image_limits_t.formats. */
#define IMAGE_FORMAT_BIT(f) (1u << (unsigned)(f))

/* What the JPEG header says; reading it decodes no pixels. */
typedef struct {
    int width, height;           /* pixels */
    image_subsamp_t subsamp;
    image_colorspace_t colorspace;
} image_probe_t;

/* A caller's reason to stop a decode early (its request's deadline passed,
 * its client left, the server is shutting down). Polled from the decoder's
 * progress monitor, between scans and every few rows: it must be cheap and
 * thread-safe. RD_OK = go on; any other status stops the decode with that
 * status and err->msg. */
typedef rd_status_t (*image_stop_fn)(void *ctx, rd_error_t *err);

/* Limits (the pixels checked from the header, before any pixel is decoded;
 * the rest while decoding) and the DCT-scaling choice. A zeroed struct means:
 * no limit at all, no scaling, no stop hook. */
typedef struct {
    uint64_t max_pixels;   /* width * height from the header; 0 means no limit */
    unsigned formats;      /* IMAGE_FORMAT_BIT()s of the PNG and WebP formats accepted
                              (the others are RD_ERR_UNSUPPORTED); 0 means every
                              format. JPEG is always accepted */
    bool dct_scaling;      /* decode at 1/2, 1/4 or 1/8 when that still leaves the
                              shorter side >= dct_headroom * resize (faster, not
                              bit-exact to PIL) */
    float dct_headroom;    /* >= 1; values below 1 count as 1. At 1 (the plain rule)
                              a 512-pixel photo is decoded at 256 and resampled 1:1:
                              1.5-3.3 levels mean difference from PIL, enough to change
                              the Keras ResNet-50's top-1 on darknet's horses.jpg. At 2
                              the resample still averages >= 2 inputs per output and the
                              difference stays near 0.3 level */
    int max_scans;         /* SOS markers per JPEG; 0 = no limit. libjpeg's own scripts
                              write 10 (YCbCr) or 18 (CMYK) scans */
    int max_scan_work;     /* blocks coded by all scans together, in multiples of the
                              image's own block count (one pass over every component);
                              0 = no limit. A standard progressive file is 4.7 (YCbCr)
                              to 6 (CMYK) passes, a baseline one 1 */
    int64_t budget_ms;     /* wall time of one image's decode, ms; 0 = none */
    image_stop_fn stop;    /* NULL = never stopped early */
    void *stop_ctx;        /* passed to stop */
} image_limits_t;

/* Defaults: max_pixels 40,000,000 (an 8000x5000 photo), dct_scaling true,
 * dct_headroom 2, max_scans 64, max_scan_work 16, budget_ms 3000, no stop hook. */
image_limits_t image_default_limits(void);

/* The format whose signature starts buf[0..len): JPEG (FF D8 FF), PNG (the
 * 8-byte PNG signature) or WebP ("RIFF" size "WEBP"); UNKNOWN otherwise.
 * Reads at most 12 bytes. Thread-safe. */
image_format_t image_format_sniff(const uint8_t *buf, size_t len);

/* "JPEG", "PNG", "WebP" or "unknown". Never NULL. */
const char *image_format_str(image_format_t format);

/* Static names for logs and tests ("4:2:0", "YCbCr", ...). Never NULL. */
const char *image_subsamp_str(image_subsamp_t subsamp);
const char *image_colorspace_str(image_colorspace_t cs);

/* Reads the JPEG header of jpeg[0..len) into *out.
 * Returns RD_OK, RD_ERR_ARG (NULL pointers), RD_ERR_FORMAT (empty input, not
 * a JPEG, corrupt or cut-off header), RD_ERR_LIMIT (len >= 4 GiB) or
 * RD_ERR_NOMEM. Allocates nothing that outlives the call.
 * Thread-safe. */
rd_status_t image_probe(const uint8_t *jpeg, size_t len, image_probe_t *out,
                        rd_error_t *err);

/* The denominator (1, 2, 4 or 8) image_to_tensor decodes a width x height
 * JPEG at when the shorter side is resized to `resize`: the largest reduction
 * whose scaled shorter side (rounded up, as libjpeg does) is still
 * >= lim->dct_headroom * resize. 1 when lim is NULL or dct_scaling is off.
 * Thread-safe. */
int image_dct_denominator(int width, int height, int resize, const image_limits_t *lim);

/* Decodes the JPEG and writes one preprocessed image into out, laid out
 * [3][pp->input_h][pp->input_w] float32 (one image of an NCHW batch; the
 * caller owns out). Grayscale, YCbCr (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1),
 * RGB, CMYK and YCCK, baseline and progressive JPEGs are accepted; CMYK/YCCK
 * are read with Adobe's inverted convention and converted to RGB as PIL does.
 * Sampling layouts TurboJPEG 2.1 cannot classify are RD_ERR_FORMAT. EXIF
 * orientation is ignored, as PIL's Image.open and torchvision ignore it.
 * Without DCT scaling the result equals torchvision's on PIL (same
 * libjpeg-turbo) up to float rounding.
 * lim may be NULL (image_default_limits()).
 * Returns RD_OK;
 *   RD_ERR_ARG    NULL pointers or a nonsensical pp (sizes < 1, std 0,
 *                 crop larger than the resized image);
 *   RD_ERR_FORMAT not a JPEG, corrupt, or truncated. libjpeg treats corrupt
 *                 data and a truncated file as warnings and returns a partly
 *                 grey image; we reject every warning rather than classify
 *                 a damaged picture;
 *   RD_ERR_LIMIT  the header's width*height exceeds lim->max_pixels (checked
 *                 before any pixel buffer is allocated), or the decode passed
 *                 max_scans, max_scan_work or budget_ms (the message names
 *                 the limit);
 *   (any)         what lim->stop returned when it stopped the decode;
 *   RD_ERR_NOMEM  an allocation failed.
 * On failure out may be partly written. Thread-safe. */
rd_status_t image_to_tensor(const uint8_t *jpeg, size_t len,
                            const model_preproc_t *pp, const image_limits_t *lim,
                            float *out, rd_error_t *err);

/* The pixel size that image's header declares (JPEG SOF, PNG IHDR, WebP
 * bitstream header), decoding nothing. RD_ERR_FORMAT when the format is not
 * one of them or its header is cut off or corrupt. Thread-safe. */
rd_status_t image_dimensions(const uint8_t *buf, size_t len, int *width, int *height,
                             rd_error_t *err);

/* The rectangle of a width x height image that the network input covers
 * after image_to_tensor's resize (shorter side to pp->resize) and centre
 * crop (pp->input_w x pp->input_h), in the original image's pixel
 * coordinates: rect = {x, y, width, height}, fractional where the resize
 * scale is. Output pixel u of the resized image spans [u, u+1) * width / rw
 * of the original (PIL's resample maps the edges onto the edges), so the
 * crop at (left, top) covers x = left * width / rw, ... Thread-safe. */
void image_crop_rect(int width, int height, const model_preproc_t *pp, double rect[4]);

/* Reads the file at path and runs image_to_tensor on it. Also RD_ERR_IO when
 * the file cannot be read; errors from the image name the path. */
rd_status_t image_file_to_tensor(const char *path, const model_preproc_t *pp,
                                 const image_limits_t *lim, float *out, rd_error_t *err);

/* The steps of image_to_tensor, exposed for tests and tools. */

/* Packed 8-bit RGB pixels, row-major, stride width*3. */
typedef struct {
    int width, height;
    uint8_t *pixels;   /* owned; free with image_rgb_free */
} image_rgb_t;

/* Frees img->pixels and zeroes img. NULL or an empty image does nothing. */
void image_rgb_free(image_rgb_t *img);

/* Decodes a JPEG to RGB at 1/denom scale (denom 1, 2, 4 or 8) into *out,
 * which the caller frees with image_rgb_free. Same failures as
 * image_to_tensor (lim may be NULL). Thread-safe. */
rd_status_t image_decode_rgb(const uint8_t *jpeg, size_t len, int denom,
                             const image_limits_t *lim, image_rgb_t *out,
                             rd_error_t *err);

/* torchvision's Resize(resize) output size for an in_w x in_h image: the
 * shorter side becomes resize, the longer int(resize * long / short). */
void image_resized_size(int in_w, int in_h, int resize, int *out_w, int *out_h);

/* The source pixels [*x0, *x1) x [*y0, *y1) of an in_w x in_h image that the
 * resize to rw x rh reads for the window [left, left+cw) x [top, top+ch): a
 * decoder needs to produce only these (rows below *y1 and columns outside
 * [*x0, *x1) can be skipped) and the resize of that part, with x0 / y0 /
 * full_width / full_height set, gives the same bits. The arguments must
 * describe a valid window (as image_resize_crop checks). image_internal.h's
 * image_part_t tells the resize where such a part lies. Thread-safe. */
void image_resize_source_rect(int in_w, int in_h, int rw, int rh, int left, int top,
                              int cw, int ch, int *x0, int *y0, int *x1, int *y1);

/* Resizes src to rw x rh with PIL's antialiased bilinear filter and writes the
 * crop window [top, top+ch) x [left, left+cw) of the result into dst (packed
 * RGB, cw*ch*3 bytes, caller-owned). Only the window is computed; its values
 * equal those of the full resize. Returns RD_ERR_ARG if the window lies
 * outside rw x rh, RD_ERR_NOMEM if scratch allocation fails. Thread-safe. */
rd_status_t image_resize_crop(const image_rgb_t *src, int rw, int rh,
                              int left, int top, int cw, int ch,
                              uint8_t *dst, rd_error_t *err);

#endif
