/* image.c - image_to_tensor: the JPEG -> model input pipeline that the HTTP
 * threads run (probe and limit check, decode at a DCT scale, resize and
 * center-crop as torchvision does, normalise into channel planes); PNG and
 * WebP bodies, recognised by their bytes, go to image_formats_decode.
 * THREADS: no shared state; every call owns its decoder and buffers. */
#include "image_formats.h"
#include "image_internal.h"

#include <stdlib.h>

#define RESIZE_MAX 16384 /* keeps resize * long side within int */

image_limits_t image_default_limits(void)
{
    return (image_limits_t){.max_pixels = 40000000, .dct_scaling = true, .dct_headroom = 2.0f,
                            .max_scans = 64, .max_scan_work = 16, .budget_ms = 3000};
}

const char *image_subsamp_str(image_subsamp_t subsamp)
{
    static const char *const names[] = {"4:4:4", "4:2:2", "4:2:0", "gray", "4:4:0", "4:1:1"};
    return (unsigned)subsamp < sizeof names / sizeof names[0] ? names[subsamp] : "unknown";
}

const char *image_colorspace_str(image_colorspace_t cs)
{
    static const char *const names[] = {"RGB", "YCbCr", "gray", "CMYK", "YCCK"};
    return (unsigned)cs < sizeof names / sizeof names[0] ? names[cs] : "unknown";
}

int image_dct_denominator(int width, int height, int resize, const image_limits_t *lim)
{
    if (!lim || !lim->dct_scaling)
        return 1;
    double headroom = lim->dct_headroom > 1.0f ? lim->dct_headroom : 1.0;
    int shorter = width < height ? width : height;
    for (int denom = 8; denom > 1; denom /= 2)
        if ((shorter + denom - 1) / denom >= headroom * resize)
            return denom;
    return 1;
}

static rd_status_t check_preproc(const model_preproc_t *pp, rd_error_t *err)
{
    if (pp->resize < 1 || pp->resize > RESIZE_MAX || pp->input_h < 1 || pp->input_w < 1)
        return rd_error_set(err, RD_ERR_ARG, "preprocessing: resize %d, input %dx%d",
                            pp->resize, pp->input_h, pp->input_w);
    if (pp->channel_order != MODEL_RGB && pp->channel_order != MODEL_BGR)
        return rd_error_set(err, RD_ERR_ARG, "preprocessing: channel order %d",
                            (int)pp->channel_order);
    for (int c = 0; c < 3; c++)
        if (pp->std[c] == 0.0f)
            return rd_error_set(err, RD_ERR_ARG, "preprocessing: std[%d] is 0", c);
    return RD_OK;
}

/* torchvision's center crop offset: int(round(d / 2.0)), and Python rounds
 * halves to even. */
static int crop_offset(int size, int crop)
{
    int d = size - crop;
    int half = d / 2;
    return (d % 2 == 0 || half % 2 == 0) ? half : half + 1;
}

void image_crop_rect(int width, int height, const model_preproc_t *pp, double rect[4])
{
    int rw, rh;
    image_resized_size(width, height, pp->resize, &rw, &rh);
    double sx = (double)width / rw, sy = (double)height / rh;
    rect[0] = crop_offset(rw, pp->input_w) * sx;
    rect[1] = crop_offset(rh, pp->input_h) * sy;
    rect[2] = pp->input_w * sx;
    rect[3] = pp->input_h * sy;
}

/* One lookup table per output plane, filled in the model's channel order:
 * x = (level * scale - mean) / std in float, as the tensor has always been
 * computed. The resize's output pass applies it (image_resize_crop_planes). */
static void normalize_lut(const model_preproc_t *pp, float lut[3][256], int src_channel[3])
{
    for (int c = 0; c < 3; c++) {
        src_channel[c] = pp->channel_order == MODEL_BGR ? 2 - c : c;
        for (int v = 0; v < 256; v++)
            lut[c][v] = ((float)v * pp->scale - pp->mean[c]) / pp->std[c];
    }
}

/* Resize (to rw x rh), center crop and normalise a decoded image, or the part
 * of one that part says (NULL: all of it), into out. */
static rd_status_t resize_to_tensor(const image_rgb_t *img, const image_part_t *part, int rw,
                                    int rh, const model_preproc_t *pp, float *out,
                                    rd_error_t *err)
{
    float lut[3][256];
    int src_channel[3];
    normalize_lut(pp, lut, src_channel);
    return image_resize_crop_planes(img, part, rw, rh, crop_offset(rw, pp->input_w),
                                    crop_offset(rh, pp->input_h), pp->input_w, pp->input_h,
                                    lut, src_channel, out, err);
}

/* The pixels of a w x h (decoded) image that the resize to rw x rh and the
 * centre crop read: {x0, y0, x1, y1}. */
static void needed_rect(int w, int h, int rw, int rh, const model_preproc_t *pp, int rect[4])
{
    image_resize_source_rect(w, h, rw, rh, crop_offset(rw, pp->input_w),
                             crop_offset(rh, pp->input_h), pp->input_w, pp->input_h, &rect[0],
                             &rect[1], &rect[2], &rect[3]);
}

static rd_status_t decode_and_resize(void *dec, const uint8_t *jpeg, size_t len,
                                     const model_preproc_t *pp, const image_limits_t *lim,
                                     float *out, rd_error_t *err)
{
    image_probe_t probe;
    rd_status_t st = image_probe_with(dec, jpeg, len, &probe, err);
    if (st == RD_OK)
        st = image_check_limits(&probe, lim, err);
    if (st != RD_OK)
        return st;
    int rw, rh;
    image_resized_size(probe.width, probe.height, pp->resize, &rw, &rh);
    if (pp->input_w > rw || pp->input_h > rh)
        return rd_error_set(err, RD_ERR_ARG,
                            "preprocessing: crop %dx%d exceeds the %dx%d resized image",
                            pp->input_w, pp->input_h, rw, rh);
    image_rgb_t img;
    image_part_t part;
    int denom = image_dct_denominator(probe.width, probe.height, pp->resize, lim);
    int rect[4]; /* only what the resize reads is decoded: the same pixels, less work */
    needed_rect( /* the 1/denom size as libjpeg rounds it (jdiv_round_up) */
                (probe.width + denom - 1) / denom, (probe.height + denom - 1) / denom, rw, rh, pp,
                rect);
    /* A file cut short is refused, as PIL refuses it, by libjpeg's warning
     * at the end of its data: one without its EOI marker is decoded whole. */
    bool whole = len < 2 || jpeg[len - 2] != 0xff || jpeg[len - 1] != 0xd9;
    st = image_decode_part_with(dec, jpeg, len, &probe, denom, lim, whole ? NULL : rect, &img,
                                &part, err);
    if (st != RD_OK)
        return st;
    st = resize_to_tensor(&img, &part, rw, rh, pp, out, err);
    image_rgb_free(&img);
    return st;
}

/* PNG and WebP: decode whole (no DCT scaling), then the same resize, crop and
 * normalisation as JPEG. */
static rd_status_t other_format_to_tensor(image_format_t format, const uint8_t *buf,
                                          size_t len, const model_preproc_t *pp,
                                          const image_limits_t *lim, float *out,
                                          rd_error_t *err)
{
    image_limits_t defaults = image_default_limits();
    image_rgb_t img;
    rd_status_t st = image_formats_decode(format, buf, len, lim ? lim : &defaults, &img, err);
    if (st != RD_OK)
        return st;
    int rw, rh;
    image_resized_size(img.width, img.height, pp->resize, &rw, &rh);
    if (pp->input_w > rw || pp->input_h > rh)
        st = rd_error_set(err, RD_ERR_ARG,
                          "preprocessing: crop %dx%d exceeds the %dx%d resized image",
                          pp->input_w, pp->input_h, rw, rh);
    else
        st = resize_to_tensor(&img, NULL, rw, rh, pp, out, err);
    image_rgb_free(&img);
    return st;
}

rd_status_t image_to_tensor(const uint8_t *jpeg, size_t len,
                            const model_preproc_t *pp, const image_limits_t *lim,
                            float *out, rd_error_t *err)
{
    if (!jpeg || !pp || !out)
        return rd_error_set(err, RD_ERR_ARG, "image_to_tensor: NULL argument");
    rd_status_t st = check_preproc(pp, err);
    if (st != RD_OK)
        return st;
    image_format_t format = image_format_sniff(jpeg, len);
    if (format == IMAGE_FORMAT_PNG || format == IMAGE_FORMAT_WEBP)
        return other_format_to_tensor(format, jpeg, len, pp, lim, out, err);
    image_limits_t defaults = image_default_limits();
    void *dec = image_dec_create();
    if (!dec)
        st = rd_error_set(err, RD_ERR_NOMEM, "image_to_tensor: decoder");
    else
        st = decode_and_resize(dec, jpeg, len, pp, lim ? lim : &defaults, out, err);
    image_dec_destroy(dec);
    return st;
}
