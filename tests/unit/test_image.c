/* test_image.c - the image pipeline (server/image*.c) on real and generated
 * JPEGs. Fixtures are encoded in memory at test time with TurboJPEG's
 * compressor (every subsampling, gray, progressive, YCCK, 1x1) from a
 * synthetic picture, so the expected pixels are known independently of the
 * decoder; the darknet photos (/usr/share/darknet/data) are the real ones.
 * Fidelity against PIL/torchvision lives in tests/integration/test_preprocess.c.
 * `test_image --bench` prints decode+preprocess timings instead (no asserts). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "image.h"
#include "image_internal.h"

#define DARKNET "/usr/share/darknet/data/"

static const char *const photos[] = {"dog", "eagle", "giraffe", "horses", "kite",
                                     "person", "scream"};
#define N_PHOTOS (sizeof photos / sizeof photos[0])

typedef struct {
    uint8_t *data;
    size_t len;
} blob_t;

/* Reads a darknet photo; data is NULL if it cannot be read. */
static blob_t load_photo(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, DARKNET "%s.jpg", name);
    blob_t b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return b;
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > 0) {
        b.len = (size_t)ftell(f);
        b.data = malloc(b.len);
        rewind(f);
        if (b.data && fread(b.data, 1, b.len, f) != b.len) {
            free(b.data);
            b.data = NULL;
        }
    }
    fclose(f);
    return b;
}

static blob_t read_photo(const char *name)
{
    blob_t b = load_photo(name);
    ck_assert_msg(b.data != NULL, "cannot read " DARKNET "%s.jpg", name);
    return b;
}

/* A smooth synthetic picture (gradients and a soft disc): JPEG keeps it well. */
static uint8_t *synthetic_rgb(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = x - w / 2.0, dy = y - h / 2.0;
            double disc = 80.0 * exp(-(dx * dx + dy * dy) / (w * h / 8.0));
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(40 + 150.0 * x / w);
            q[1] = (uint8_t)(30 + 120.0 * y / h + disc);
            q[2] = (uint8_t)(200 - 100.0 * x / w);
        }
    return p;
}

/* Encodes pixels (TurboJPEG pixel format pf) into a malloc'ed JPEG. */
static blob_t encode(const uint8_t *pixels, int w, int h, int pf, int samp, int flags)
{
    tjhandle tj = tjInitCompress();
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ck_assert_msg(tjCompress2(tj, pixels, w, 0, h, pf, &buf, &len, samp, 95, flags) == 0,
                  "tjCompress2: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    blob_t b = {malloc(len), len};
    memcpy(b.data, buf, len);
    tjFree(buf);
    return b;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs((int)a[i] - (int)b[i]);
    return sum / (double)n;
}

static model_preproc_t torchvision_pp(void)
{
    return (model_preproc_t){256, 224, 224, MODEL_RGB, 1.0f / 255.0f,
                             {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
}

static model_preproc_t caffe_pp(void)
{
    return (model_preproc_t){256, 224, 224, MODEL_BGR, 1.0f,
                             {103.939f, 116.779f, 123.68f}, {1, 1, 1}};
}

#define N_TENSOR (3 * 224 * 224)

/* ---- probing ---- */

START_TEST(probe_reads_darknet_headers)
{
    struct { const char *name; int w, h; image_subsamp_t samp; } want[] = {
        {"dog", 768, 576, IMAGE_SAMP_440},
        {"giraffe", 500, 500, IMAGE_SAMP_444},
        {"kite", 1352, 900, IMAGE_SAMP_444},
        {"scream", 352, 448, IMAGE_SAMP_440},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        blob_t b = read_photo(want[i].name);
        image_probe_t p;
        rd_error_t err;
        ck_assert_int_eq(image_probe(b.data, b.len, &p, &err), RD_OK);
        ck_assert_int_eq(p.width, want[i].w);
        ck_assert_int_eq(p.height, want[i].h);
        ck_assert_str_eq(image_subsamp_str(p.subsamp), image_subsamp_str(want[i].samp));
        ck_assert_int_eq(p.colorspace, IMAGE_CS_YCBCR);
        free(b.data);
    }
}
END_TEST

/* ---- every JPEG flavour decodes to the picture it was made from ---- */

START_TEST(decodes_every_subsampling_and_progressive)
{
    typedef struct { int tj_samp, flags; image_subsamp_t samp; } case_t;
    static const case_t cases[] = {
        {TJSAMP_444, 0, IMAGE_SAMP_444}, {TJSAMP_422, 0, IMAGE_SAMP_422},
        {TJSAMP_420, 0, IMAGE_SAMP_420}, {TJSAMP_440, 0, IMAGE_SAMP_440},
        {TJSAMP_420, TJFLAG_PROGRESSIVE, IMAGE_SAMP_420},
        {TJSAMP_444, TJFLAG_PROGRESSIVE, IMAGE_SAMP_444}, {TJSAMP_411, 0, IMAGE_SAMP_411},
    };
    const int w = 97, h = 61; /* odd sizes: partial MCUs */
    uint8_t *src = synthetic_rgb(w, h);
    const case_t *c = &cases[_i];
    blob_t jpeg = encode(src, w, h, TJPF_RGB, c->tj_samp, c->flags);
    image_probe_t p;
    ck_assert_int_eq(image_probe(jpeg.data, jpeg.len, &p, NULL), RD_OK);
    ck_assert_int_eq(p.subsamp, c->samp);
    ck_assert_int_eq(p.colorspace, IMAGE_CS_YCBCR);
    image_rgb_t img;
    rd_error_t err;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, NULL, &img, &err), RD_OK);
    ck_assert_int_eq(img.width, w);
    ck_assert_int_eq(img.height, h);
    double d = mean_abs_diff(src, img.pixels, (size_t)w * h * 3);
    ck_assert_msg(d < 2.0, "%s%s: mean diff %.3f", image_subsamp_str(c->samp),
                  c->flags ? " progressive" : "", d);
    image_rgb_free(&img);
    free(jpeg.data);
    free(src);
}
END_TEST

/* Valgrind flags libjpeg-turbo's SIMD 4:4:0 upsampler on odd widths (it reads
 * row padding). Show the pixels do not depend on it: decode after filling
 * the heap with two different garbage patterns and compare. */
static uint8_t *decode_after_garbage(const blob_t *jpeg, int pattern, size_t *n)
{
    for (int i = 0; i < 8; i++) {
        void *junk = malloc(4096u << i);
        memset(junk, pattern, 4096u << i);
        free(junk);
    }
    image_rgb_t img;
    ck_assert_int_eq(image_decode_rgb(jpeg->data, jpeg->len, 1, NULL, &img, NULL), RD_OK);
    *n = (size_t)img.width * img.height * 3;
    return img.pixels;
}

START_TEST(odd_width_440_ignores_heap_garbage)
{
    const int w = 97, h = 61;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_440, 0);
    size_t n1, n2;
    uint8_t *a = decode_after_garbage(&jpeg, 0x00, &n1);
    uint8_t *b = decode_after_garbage(&jpeg, 0xa5, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(a, b, n1);
    free(a);
    free(b);
    free(jpeg.data);
    free(src);
}
END_TEST

START_TEST(grayscale_replicates_luma)
{
    const int w = 40, h = 30;
    uint8_t *gray = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        gray[i] = (uint8_t)(20 + (i % w) * 5);
    blob_t jpeg = encode(gray, w, h, TJPF_GRAY, TJSAMP_GRAY, 0);
    image_probe_t p;
    ck_assert_int_eq(image_probe(jpeg.data, jpeg.len, &p, NULL), RD_OK);
    ck_assert_int_eq(p.colorspace, IMAGE_CS_GRAY);
    ck_assert_int_eq(p.subsamp, IMAGE_SAMP_GRAY);
    image_rgb_t img;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, NULL, &img, NULL), RD_OK);
    double d = 0;
    for (int i = 0; i < w * h; i++) {
        const uint8_t *q = img.pixels + 3 * i;
        ck_assert(q[0] == q[1] && q[1] == q[2]);
        d += abs(q[0] - gray[i]);
    }
    ck_assert_msg(d / (w * h) < 1.5, "gray mean diff %.3f", d / (w * h));
    image_rgb_free(&img);
    free(jpeg.data);
    free(gray);
}
END_TEST

/* PIL reads 4-component JPEGs as Adobe-inverted CMYK: stored (c',m',y',k')
 * means C = 255-c' ... and RGB = (255-C)(255-K)/255 = c' * k' / 255. */
START_TEST(ycck_follows_pil_adobe_convention)
{
    const int w = 48, h = 32;
    uint8_t *rgb = synthetic_rgb(w, h);
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        memcpy(cmyk + 4 * i, rgb + 3 * i, 3);
        cmyk[4 * i + 3] = i < w * h / 2 ? 255 : 128;
    }
    blob_t jpeg = encode(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 0);
    image_probe_t p;
    ck_assert_int_eq(image_probe(jpeg.data, jpeg.len, &p, NULL), RD_OK);
    ck_assert_int_eq(p.colorspace, IMAGE_CS_YCCK);
    image_rgb_t img;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, NULL, &img, NULL), RD_OK);
    double d = 0;
    for (int i = 0; i < w * h * 3; i++) {
        double want = rgb[i] * cmyk[4 * (i / 3) + 3] / 255.0;
        d += fabs(img.pixels[i] - want);
    }
    ck_assert_msg(d / (w * h * 3) < 2.0, "YCCK mean diff %.3f", d / (w * h * 3));
    image_rgb_free(&img);
    free(jpeg.data);
    free(cmyk);
    free(rgb);
}
END_TEST

START_TEST(dct_scaled_decode_has_scaled_size)
{
    const int w = 203, h = 131;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_420, 0);
    for (int denom = 1; denom <= 8; denom *= 2) {
        image_rgb_t img;
        ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, denom, NULL, &img, NULL), RD_OK);
        ck_assert_int_eq(img.width, (w + denom - 1) / denom);
        ck_assert_int_eq(img.height, (h + denom - 1) / denom);
        image_rgb_free(&img);
    }
    image_rgb_t img;
    rd_error_t err;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 3, NULL, &img, &err), RD_ERR_ARG);
    free(jpeg.data);
    free(src);
}
END_TEST

START_TEST(dct_denominator_rule)
{
    image_limits_t lim = {.dct_scaling = true, .dct_headroom = 1.0f};
    ck_assert_int_eq(image_dct_denominator(768, 576, 256, &lim), 2);   /* 288 >= 256 */
    ck_assert_int_eq(image_dct_denominator(773, 512, 256, &lim), 2);   /* exactly 256 */
    ck_assert_int_eq(image_dct_denominator(773, 511, 256, &lim), 2);   /* ceil(511/2) = 256 */
    ck_assert_int_eq(image_dct_denominator(773, 510, 256, &lim), 1);   /* 255 */
    ck_assert_int_eq(image_dct_denominator(4032, 3024, 256, &lim), 8); /* 378 */
    ck_assert_int_eq(image_dct_denominator(3024, 2000, 256, &lim), 4); /* 500; 1/8: 250 */
    lim.dct_headroom = 2.0f;
    ck_assert_int_eq(image_dct_denominator(4032, 3024, 256, &lim), 4); /* 756 >= 512 */
    ck_assert_int_eq(image_dct_denominator(768, 576, 256, &lim), 1);
    lim.dct_headroom = 0.0f; /* counts as 1 */
    ck_assert_int_eq(image_dct_denominator(768, 576, 256, &lim), 2);
    lim.dct_scaling = false;
    ck_assert_int_eq(image_dct_denominator(4032, 3024, 256, &lim), 1);
    ck_assert_int_eq(image_dct_denominator(4032, 3024, 256, NULL), 1);
}
END_TEST

/* ---- geometry ---- */

START_TEST(resized_size_matches_torchvision)
{
    /* Values from torchvision 0.14 _compute_resized_output_size. */
    static const int cases[][5] = {
        {768, 576, 256, 341, 256}, {773, 512, 256, 386, 256}, {500, 500, 256, 256, 256},
        {352, 448, 256, 256, 325}, {1352, 900, 256, 384, 256}, {1, 1, 256, 256, 256},
        {37, 23, 256, 411, 256}, {23, 37, 146, 146, 234},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w, h;
        image_resized_size(cases[i][0], cases[i][1], cases[i][2], &w, &h);
        ck_assert_int_eq(w, cases[i][3]);
        ck_assert_int_eq(h, cases[i][4]);
    }
}
END_TEST

/* An exact 2:1 reduction weighs four inputs 1,3,3,1 (/8) per pass, with
 * rounding to 8 bits after each pass (weights 1/8 are exact in fixed point). */
START_TEST(halving_uses_triangle_weights)
{
    const int w = 16, h = 12;
    uint8_t *src = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        src[i] = (uint8_t)((i * 37 + (i / 7) * 11) & 255);
    image_rgb_t img = {w, h, src};
    uint8_t out[8 * 6 * 3];
    ck_assert_int_eq(image_resize_crop(&img, 8, 6, 0, 0, 8, 6, out, NULL), RD_OK);
    for (int y = 1; y < 5; y++)
        for (int x = 1; x < 7; x++)
            for (int c = 0; c < 3; c++) {
                int rows[4];
                for (int r = 0; r < 4; r++) {
                    const uint8_t *p = src + ((size_t)(2 * y - 1 + r) * w + 2 * x - 1) * 3 + c;
                    rows[r] = (p[0] + 3 * p[3] + 3 * p[6] + p[9] + 4) / 8;
                }
                int want = (rows[0] + 3 * rows[1] + 3 * rows[2] + rows[3] + 4) / 8;
                ck_assert_int_eq(out[(y * 8 + x) * 3 + c], want);
            }
    free(src);
}
END_TEST

START_TEST(window_equals_crop_of_full_resize)
{
    const int w = 97, h = 61, rw = 150, rh = 94; /* upscale in both directions */
    uint8_t *src = synthetic_rgb(w, h);
    image_rgb_t img = {w, h, src};
    for (int pass = 0; pass < 2; pass++) {
        int ow = pass ? 41 : rw, oh = pass ? 27 : rh; /* then a downscale */
        uint8_t *full = malloc((size_t)ow * oh * 3);
        ck_assert_int_eq(image_resize_crop(&img, ow, oh, 0, 0, ow, oh, full, NULL), RD_OK);
        int left = ow / 3, top = oh / 4, cw = ow / 2, ch = oh / 2;
        uint8_t *win = malloc((size_t)cw * ch * 3);
        ck_assert_int_eq(image_resize_crop(&img, ow, oh, left, top, cw, ch, win, NULL), RD_OK);
        for (int y = 0; y < ch; y++)
            ck_assert_mem_eq(win + (size_t)y * cw * 3,
                             full + ((size_t)(top + y) * ow + left) * 3, (size_t)cw * 3);
        free(win);
        free(full);
    }
    rd_error_t err;
    uint8_t one[3];
    ck_assert_int_eq(image_resize_crop(&img, rw, rh, rw - 1, 0, 2, 1, one, &err), RD_ERR_ARG);
    ck_assert_int_eq(image_resize_crop(&img, rw, rh, 0, -1, 1, 1, one, &err), RD_ERR_ARG);
    ck_assert_int_eq(image_resize_crop(&img, rw, rh, 0, 0, 0, 1, one, &err), RD_ERR_ARG);
    free(src);
}
END_TEST

/* A decoder that decodes only image_resize_source_rect's part gets the same
 * tensor: the part, placed with image_part_t, resamples to the whole image's
 * bits (downscale 2.3x and upscale, an off-centre window), and a part one
 * pixel short on any side is refused. */
START_TEST(part_of_image_gives_same_planes)
{
    const int w = 181, h = 133;
    uint8_t *src = synthetic_rgb(w, h);
    image_rgb_t whole = {w, h, src};
    static const int sizes[][6] = {{79, 58, 11, 7, 50, 40}, {300, 220, 90, 50, 120, 100}};
    float lut[3][256];
    int chans[3] = {2, 1, 0};
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)v * 0.5f - (float)c;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int rw = sizes[i][0], rh = sizes[i][1], left = sizes[i][2], top = sizes[i][3];
        int cw = sizes[i][4], ch = sizes[i][5];
        size_t n = 3 * (size_t)cw * ch;
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        ck_assert_int_eq(image_resize_crop_planes(&whole, NULL, rw, rh, left, top, cw, ch, lut,
                                                  chans, want, NULL), RD_OK);
        int x0, y0, x1, y1;
        image_resize_source_rect(w, h, rw, rh, left, top, cw, ch, &x0, &y0, &x1, &y1);
        ck_assert(x0 > 0 && y0 > 0 && x1 < w && y1 < h); /* really a part */
        for (int shrink = 0; shrink < 5; shrink++) {
            int a = x0 + (shrink == 1), b = y0 + (shrink == 2);
            int pw = x1 - (shrink == 3) - a, ph = y1 - (shrink == 4) - b;
            uint8_t *px = malloc((size_t)pw * ph * 3);
            for (int y = 0; y < ph; y++)
                memcpy(px + (size_t)y * pw * 3, src + ((size_t)(b + y) * w + a) * 3,
                       (size_t)pw * 3);
            image_rgb_t img = {pw, ph, px};
            image_part_t part = {a, b, w, h};
            rd_error_t err;
            rd_status_t st = image_resize_crop_planes(&img, &part, rw, rh, left, top, cw, ch,
                                                      lut, chans, got, &err);
            if (shrink == 0) {
                ck_assert_int_eq(st, RD_OK);
                ck_assert_mem_eq(got, want, n * sizeof *got);
            } else {
                ck_assert_int_eq(st, RD_ERR_ARG);
            }
            free(px);
        }
        free(got);
        free(want);
    }
    free(src);
}
END_TEST

START_TEST(same_size_resize_is_identity)
{
    const int w = 33, h = 20;
    uint8_t *src = synthetic_rgb(w, h);
    image_rgb_t img = {w, h, src};
    uint8_t *out = malloc((size_t)w * h * 3);
    ck_assert_int_eq(image_resize_crop(&img, w, h, 0, 0, w, h, out, NULL), RD_OK);
    ck_assert_mem_eq(out, src, (size_t)w * h * 3);
    free(out);
    free(src);
}
END_TEST

/* ---- the tensor ---- */

/* A 1x1 JPEG becomes a constant tensor: the decoded pixel, normalised, in the
 * model's channel order. */
START_TEST(one_pixel_gives_constant_normalised_tensor)
{
    uint8_t px[3] = {200, 100, 30};
    blob_t jpeg = encode(px, 1, 1, TJPF_RGB, TJSAMP_444, 0);
    image_rgb_t img;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, NULL, &img, NULL), RD_OK);
    float *t = malloc(N_TENSOR * sizeof(float));
    for (int bgr = 0; bgr < 2; bgr++) {
        model_preproc_t pp = bgr ? caffe_pp() : torchvision_pp();
        rd_error_t err;
        ck_assert_int_eq(image_to_tensor(jpeg.data, jpeg.len, &pp, NULL, t, &err), RD_OK);
        for (int c = 0; c < 3; c++) {
            int v = img.pixels[bgr ? 2 - c : c];
            float want = ((float)v * pp.scale - pp.mean[c]) / pp.std[c];
            for (int i = 0; i < 224 * 224; i += 97)
                ck_assert_float_eq_tol(t[c * 224 * 224 + i], want, 1e-5);
        }
    }
    free(t);
    image_rgb_free(&img);
    free(jpeg.data);
}
END_TEST

/* BGR is RGB with planes 0 and 2 swapped (same pixels, different mean/std). */
START_TEST(caffe_planes_are_swapped_torchvision_planes)
{
    blob_t b = read_photo("dog");
    float *rgb = malloc(N_TENSOR * sizeof(float)), *bgr = malloc(N_TENSOR * sizeof(float));
    model_preproc_t tv = torchvision_pp(), cf = caffe_pp();
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &tv, NULL, rgb, NULL), RD_OK);
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &cf, NULL, bgr, NULL), RD_OK);
    const int plane = 224 * 224;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < plane; i += 13) {
            float pixel_rgb = (rgb[(2 - c) * plane + i] * tv.std[2 - c] + tv.mean[2 - c]) * 255.0f;
            float pixel_bgr = bgr[c * plane + i] + cf.mean[c];
            ck_assert_float_eq_tol(pixel_rgb, pixel_bgr, 1e-2);
        }
    free(rgb);
    free(bgr);
    free(b.data);
}
END_TEST

START_TEST(darknet_photos_preprocess)
{
    blob_t b = read_photo(photos[_i]);
    float *t = malloc(N_TENSOR * sizeof(float));
    model_preproc_t pp = torchvision_pp();
    image_limits_t lim = image_default_limits();
    for (int scaled = 0; scaled < 2; scaled++) {
        lim.dct_headroom = scaled ? 1.0f : 2.0f;
        rd_error_t err;
        ck_assert_msg(image_to_tensor(b.data, b.len, &pp, &lim, t, &err) == RD_OK, "%s: %s",
                      photos[_i], err.msg);
        float lo = t[0], hi = t[0];
        for (int i = 1; i < N_TENSOR; i++) {
            lo = fminf(lo, t[i]);
            hi = fmaxf(hi, t[i]);
        }
        /* (0..1 - mean) / std spans about -2.12 .. 2.64 */
        ck_assert_msg(lo >= -2.2f && hi <= 2.7f && hi - lo > 1.0f, "range %g..%g", lo, hi);
    }
    free(t);
    free(b.data);
}
END_TEST

START_TEST(non_square_input_and_small_resize)
{
    blob_t b = read_photo("scream"); /* 352x448 portrait */
    model_preproc_t pp = torchvision_pp();
    pp.resize = 146;
    pp.input_h = 128;
    pp.input_w = 96;
    float *t = malloc(3 * 128 * 96 * sizeof(float));
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, t, NULL), RD_OK);
    pp.input_w = 147; /* wider than the resized image (146) */
    rd_error_t err;
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, t, &err), RD_ERR_ARG);
    free(t);
    free(b.data);
}
END_TEST

/* ---- bad input ---- */

static void expect_rejected(const uint8_t *data, size_t len, rd_status_t want)
{
    float *t = malloc(N_TENSOR * sizeof(float));
    model_preproc_t pp = torchvision_pp();
    rd_error_t err = {0};
    ck_assert_int_eq(image_to_tensor(data, len, &pp, NULL, t, &err), want);
    ck_assert_int_eq(err.code, want);
    ck_assert(err.msg[0] != '\0');
    free(t);
}

START_TEST(rejects_non_jpeg_bytes)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                  'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0};
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00";
    expect_rejected(png, sizeof png, RD_ERR_FORMAT);
    expect_rejected(gif, sizeof gif, RD_ERR_FORMAT);
    expect_rejected(png, 0, RD_ERR_FORMAT);
    uint8_t noise[4096];
    srand(7);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)rand();
    expect_rejected(noise, sizeof noise, RD_ERR_FORMAT);
    noise[0] = 0xff; /* a JPEG signature followed by garbage */
    noise[1] = 0xd8;
    expect_rejected(noise, sizeof noise, RD_ERR_FORMAT);
    image_probe_t p;
    ck_assert_int_eq(image_probe(png, sizeof png, &p, NULL), RD_ERR_FORMAT);
    ck_assert_int_eq(image_probe(NULL, 10, &p, NULL), RD_ERR_ARG);
}
END_TEST

START_TEST(rejects_truncated_jpeg)
{
    blob_t b = read_photo("dog");
    image_probe_t p;
    ck_assert_int_eq(image_probe(b.data, b.len / 2, &p, NULL), RD_OK); /* header intact */
    expect_rejected(b.data, b.len / 2, RD_ERR_FORMAT);
    expect_rejected(b.data, b.len - 2, RD_ERR_FORMAT); /* only the EOI marker missing */
    expect_rejected(b.data, 200, RD_ERR_FORMAT);        /* inside the headers */
    free(b.data);
}
END_TEST

/* Damaged files of every kind are answered with a status, never a crash
 * (run under ASan/valgrind in CI): flipped bytes in headers and scan data of
 * baseline and progressive JPEGs. */
START_TEST(mutated_jpegs_never_crash)
{
    const int w = 48, h = 40;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_420, _i ? TJFLAG_PROGRESSIVE : 0);
    uint8_t *copy = malloc(jpeg.len);
    float *t = malloc(N_TENSOR * sizeof(float));
    model_preproc_t pp = torchvision_pp();
    pp.resize = 32;
    pp.input_h = pp.input_w = 32;
    srand(11 + _i);
    int n_ok = 0, n_format = 0;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(copy, jpeg.data, jpeg.len);
        for (int flips = 1 + rand() % 3; flips > 0; flips--)
            copy[(size_t)rand() % jpeg.len] ^= (uint8_t)(1 + rand() % 255);
        rd_error_t err;
        rd_status_t st = image_to_tensor(copy, jpeg.len, &pp, NULL, t, &err);
        ck_assert_msg(st == RD_OK || st == RD_ERR_FORMAT || st == RD_ERR_LIMIT,
                      "trial %d: %s", trial, rd_status_str(st));
        n_ok += st == RD_OK;
        n_format += st == RD_ERR_FORMAT;
    }
    /* the damage was noticed at least sometimes, and did not always break it */
    ck_assert_msg(n_format > 0 && n_ok > 0, "ok %d, format errors %d", n_ok, n_format);
    free(t);
    free(copy);
    free(jpeg.data);
    free(src);
}
END_TEST

/* Rewrites the SOF0 frame size: the header then claims width x height. */
static void patch_sof(blob_t *jpeg, int width, int height)
{
    for (size_t i = 2; i + 8 < jpeg->len; i++)
        if (jpeg->data[i] == 0xff && jpeg->data[i + 1] == 0xc0) {
            jpeg->data[i + 5] = (uint8_t)(height >> 8);
            jpeg->data[i + 6] = (uint8_t)height;
            jpeg->data[i + 7] = (uint8_t)(width >> 8);
            jpeg->data[i + 8] = (uint8_t)width;
            return;
        }
    ck_abort_msg("no SOF0 marker");
}

START_TEST(pixel_limit_checked_from_header)
{
    uint8_t *src = synthetic_rgb(16, 16);
    blob_t jpeg = encode(src, 16, 16, TJPF_RGB, TJSAMP_420, 0);
    patch_sof(&jpeg, 65500, 65500);
    image_probe_t p;
    ck_assert_int_eq(image_probe(jpeg.data, jpeg.len, &p, NULL), RD_OK);
    ck_assert_int_eq(p.width, 65500);
    ck_assert_int_eq(p.height, 65500);
    /* 4.3 gigapixels: refused before any pixel buffer (12.9 GB) is allocated */
    expect_rejected(jpeg.data, jpeg.len, RD_ERR_LIMIT);
    image_rgb_t img;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 8, NULL, &img, NULL), RD_ERR_LIMIT);

    /* The limit is inclusive. */
    blob_t small = encode(src, 16, 16, TJPF_RGB, TJSAMP_420, 0);
    float *t = malloc(N_TENSOR * sizeof(float));
    model_preproc_t pp = torchvision_pp();
    image_limits_t lim = {.max_pixels = 256};
    ck_assert_int_eq(image_to_tensor(small.data, small.len, &pp, &lim, t, NULL), RD_OK);
    lim.max_pixels = 255;
    ck_assert_int_eq(image_to_tensor(small.data, small.len, &pp, &lim, t, NULL), RD_ERR_LIMIT);
    free(t);
    free(small.data);
    free(jpeg.data);
    free(src);
}
END_TEST

/* ---- work limits: scans, scan work, time, the stop hook ---- */

/* The Ns (components) field of every SOS marker, walking the marker segments
 * and skipping entropy-coded data: an independent count of the scans. */
static int sos_components(const blob_t *j, int *ns, int max)
{
    int n = 0;
    const uint8_t *p = j->data;
    for (size_t i = 2; i + 4 < j->len;) {
        if (p[i] != 0xff || p[i + 1] == 0x00 || p[i + 1] == 0xff ||
            (p[i + 1] >= 0xd0 && p[i + 1] <= 0xd7)) {
            i++;
            continue;
        }
        if (p[i + 1] == 0xd9)
            break;
        if (p[i + 1] == 0xda && n < max)
            ns[n++] = p[i + 4];
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
    }
    return n;
}

START_TEST(scan_count_is_limited)
{
    const int w = 64, h = 48;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE);
    int ns[64];
    int scans = sos_components(&jpeg, ns, 64);
    ck_assert_int_gt(scans, 2);
    image_limits_t lim = image_default_limits();
    image_rgb_t img;
    rd_error_t err = {0};
    lim.max_scans = scans;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_OK);
    image_rgb_free(&img);
    lim.max_scans = scans - 1;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_ERR_LIMIT);
    ck_assert_msg(strstr(err.msg, "max_jpeg_scans"), "%s", err.msg);
    /* a baseline file is one scan */
    blob_t base = encode(src, w, h, TJPF_RGB, TJSAMP_420, 0);
    lim.max_scans = 1;
    ck_assert_int_eq(image_decode_rgb(base.data, base.len, 1, &lim, &img, &err), RD_OK);
    image_rgb_free(&img);
    free(base.data);
    free(jpeg.data);
    free(src);
}
END_TEST

/* In 4:4:4 every component has the same blocks, so the scan work in passes is
 * (sum of the scans' component counts) / 3. */
START_TEST(scan_work_is_limited)
{
    const int w = 64, h = 48;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE);
    int ns[64], sum = 0;
    int scans = sos_components(&jpeg, ns, 64);
    for (int i = 0; i < scans; i++)
        sum += ns[i];
    int floor_passes = sum / 3;
    ck_assert_msg(sum % 3 != 0 && floor_passes >= 2, "sum %d", sum);
    image_limits_t lim = image_default_limits();
    image_rgb_t img;
    rd_error_t err = {0};
    lim.max_scan_work = floor_passes + 1;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_OK);
    image_rgb_free(&img);
    lim.max_scan_work = floor_passes;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_ERR_LIMIT);
    ck_assert_msg(strstr(err.msg, "max_jpeg_scan_work"), "%s", err.msg);
    free(jpeg.data);
    free(src);
}
END_TEST

typedef struct {
    int calls, stop_at;
} stop_probe_t;

static rd_status_t stop_after(void *ctx, rd_error_t *err)
{
    stop_probe_t *p = ctx;
    if (++p->calls >= p->stop_at)
        return rd_error_set(err, RD_ERR_TIMEOUT, "test deadline");
    return RD_OK;
}

START_TEST(stop_hook_is_polled_and_stops)
{
    const int w = 512, h = 512;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_420, _i ? TJFLAG_PROGRESSIVE : 0);
    image_limits_t lim = image_default_limits();
    stop_probe_t probe = {0, 1 << 30};
    lim.stop = stop_after;
    lim.stop_ctx = &probe;
    image_rgb_t img;
    rd_error_t err = {0};
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_OK);
    image_rgb_free(&img);
    int polls = probe.calls;
    ck_assert_int_gt(polls, 4); /* a 512-row image is checked many times over */
    probe = (stop_probe_t){0, polls / 2};
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_ERR_TIMEOUT);
    ck_assert_msg(strstr(err.msg, "test deadline"), "%s", err.msg);
    ck_assert_int_eq(probe.calls, polls / 2); /* stopped at once */
    free(jpeg.data);
    free(src);
}
END_TEST

/* A 1 ms budget cannot hold a 4-megapixel progressive decode (tens of ms on
 * any CPU), and no budget lets it finish. */
START_TEST(time_budget_stops_a_long_decode)
{
    const int w = 2048, h = 2048;
    uint8_t *src = synthetic_rgb(w, h);
    blob_t jpeg = encode(src, w, h, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE);
    image_limits_t lim = image_default_limits();
    lim.budget_ms = 0;
    image_rgb_t img;
    rd_error_t err = {0};
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_OK);
    image_rgb_free(&img);
    lim.budget_ms = 1;
    ck_assert_int_eq(image_decode_rgb(jpeg.data, jpeg.len, 1, &lim, &img, &err), RD_ERR_LIMIT);
    ck_assert_msg(strstr(err.msg, "decode_budget_ms"), "%s", err.msg);
    free(jpeg.data);
    free(src);
}
END_TEST

START_TEST(rejects_bad_arguments)
{
    blob_t b = read_photo("giraffe");
    float *t = malloc(N_TENSOR * sizeof(float));
    model_preproc_t pp = torchvision_pp();
    rd_error_t err;
    ck_assert_int_eq(image_to_tensor(NULL, 1, &pp, NULL, t, &err), RD_ERR_ARG);
    ck_assert_int_eq(image_to_tensor(b.data, b.len, NULL, NULL, t, &err), RD_ERR_ARG);
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, NULL, &err), RD_ERR_ARG);
    pp.std[1] = 0.0f;
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, t, &err), RD_ERR_ARG);
    pp = torchvision_pp();
    pp.resize = 0;
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, t, &err), RD_ERR_ARG);
    pp = torchvision_pp();
    pp.channel_order = (model_channel_order_t)7;
    ck_assert_int_eq(image_to_tensor(b.data, b.len, &pp, NULL, t, &err), RD_ERR_ARG);
    free(t);
    free(b.data);
}
END_TEST

/* ---- threads: concurrent calls give the single-threaded answers ---- */

typedef struct {
    blob_t jpeg;
    float *want, *got;
    rd_status_t status;
} job_t;

static void *run_job(void *arg)
{
    job_t *job = arg;
    model_preproc_t pp = torchvision_pp();
    for (int rep = 0; rep < 3 && job->status == RD_OK; rep++)
        job->status = image_to_tensor(job->jpeg.data, job->jpeg.len, &pp, NULL, job->got, NULL);
    return NULL;
}

START_TEST(concurrent_calls_agree)
{
    enum { N = 4 };
    job_t jobs[N];
    pthread_t th[N];
    model_preproc_t pp = torchvision_pp();
    for (int i = 0; i < N; i++) {
        jobs[i].jpeg = read_photo(photos[i]);
        jobs[i].want = malloc(N_TENSOR * sizeof(float));
        jobs[i].got = malloc(N_TENSOR * sizeof(float));
        jobs[i].status = RD_OK;
        ck_assert_int_eq(image_to_tensor(jobs[i].jpeg.data, jobs[i].jpeg.len, &pp, NULL,
                                         jobs[i].want, NULL), RD_OK);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(jobs[i].status, RD_OK);
        ck_assert_mem_eq(jobs[i].got, jobs[i].want, N_TENSOR * sizeof(float));
        free(jobs[i].want);
        free(jobs[i].got);
        free(jobs[i].jpeg.data);
    }
}
END_TEST

START_TEST(names_are_never_null)
{
    ck_assert_str_eq(image_subsamp_str(IMAGE_SAMP_440), "4:4:0");
    ck_assert_str_eq(image_subsamp_str((image_subsamp_t)99), "unknown");
    ck_assert_str_eq(image_colorspace_str(IMAGE_CS_YCCK), "YCCK");
    ck_assert_str_eq(image_colorspace_str((image_colorspace_t)-1), "unknown");
    image_limits_t lim = image_default_limits();
    ck_assert(lim.max_pixels > 0 && lim.dct_scaling && lim.dct_headroom >= 1.0f);
}
END_TEST

/* ---- --bench: decode + preprocess per photo, full vs DCT-scaled ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Medians over reps of: decode only and decode + preprocess, at full size and
 * at the DCT scale of lim_scaled, interleaved so that machine noise hits all
 * four alike. ms[0..3] = decode full, total full, decode scaled, total scaled. */
static void bench_photo(const blob_t *b, const image_limits_t *scaled, int denom,
                        int reps, double ms[4])
{
    model_preproc_t pp = torchvision_pp();
    image_limits_t full = *scaled;
    full.dct_scaling = false;
    float *t = malloc(N_TENSOR * sizeof(float));
    double *runs = malloc(sizeof *runs * 4 * (size_t)reps);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 4; k++) {
            double t0 = now_ms();
            image_rgb_t img;
            rd_status_t st = k % 2 == 0
                ? image_decode_rgb(b->data, b->len, k == 0 ? 1 : denom, NULL, &img, NULL)
                : image_to_tensor(b->data, b->len, &pp, k == 1 ? &full : scaled, t, NULL);
            runs[k * reps + r] = now_ms() - t0;
            if (k % 2 == 0 && st == RD_OK)
                image_rgb_free(&img);
            if (st != RD_OK)
                fprintf(stderr, "bench: %s\n", rd_status_str(st));
        }
    for (int k = 0; k < 4; k++) {
        qsort(runs + k * reps, (size_t)reps, sizeof *runs, compare_doubles);
        ms[k] = runs[k * reps + reps / 2];
    }
    free(runs);
    free(t);
}

static int bench(void)
{
    printf("decode + preprocess (Resize 256, CenterCrop 224, normalise), one thread, "
           "median of 31 ms\n");
    printf("%-8s %-10s %6s | %9s %9s | %9s %9s | %s\n", "photo", "size", "scale",
           "full_dec", "full_all", "dct_dec", "dct_all", "dct_all/full_all");
    image_limits_t scaled = image_default_limits();
    scaled.dct_headroom = 1.0f; /* the plain rule: largest scale keeping >= resize */
    for (size_t i = 0; i < N_PHOTOS; i++) {
        blob_t b = load_photo(photos[i]);
        if (!b.data)
            continue;
        image_probe_t p;
        if (image_probe(b.data, b.len, &p, NULL) != RD_OK)
            continue;
        int denom = image_dct_denominator(p.width, p.height, 256, &scaled);
        double ms[4];
        bench_photo(&b, &scaled, denom, 3, ms); /* warm-up */
        bench_photo(&b, &scaled, denom, 31, ms);
        char size[32];
        snprintf(size, sizeof size, "%dx%d", p.width, p.height);
        printf("%-8s %-10s %4s1/%d | %9.2f %9.2f | %9.2f %9.2f | %.2f\n", photos[i], size, "",
               denom, ms[0], ms[1], ms[2], ms[3], ms[3] / ms[1]);
        free(b.data);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, probe_reads_darknet_headers);
    tcase_add_loop_test(tc, decodes_every_subsampling_and_progressive, 0, 7);
    tcase_add_test(tc, odd_width_440_ignores_heap_garbage);
    tcase_add_test(tc, grayscale_replicates_luma);
    tcase_add_test(tc, ycck_follows_pil_adobe_convention);
    tcase_add_test(tc, dct_scaled_decode_has_scaled_size);
    tcase_add_test(tc, dct_denominator_rule);
    tcase_add_test(tc, resized_size_matches_torchvision);
    tcase_add_test(tc, halving_uses_triangle_weights);
    tcase_add_test(tc, window_equals_crop_of_full_resize);
    tcase_add_test(tc, same_size_resize_is_identity);
    tcase_add_test(tc, part_of_image_gives_same_planes);
    tcase_add_test(tc, one_pixel_gives_constant_normalised_tensor);
    tcase_add_test(tc, caffe_planes_are_swapped_torchvision_planes);
    tcase_add_loop_test(tc, darknet_photos_preprocess, 0, N_PHOTOS);
    tcase_add_test(tc, non_square_input_and_small_resize);
    tcase_add_test(tc, rejects_non_jpeg_bytes);
    tcase_add_test(tc, rejects_truncated_jpeg);
    tcase_add_loop_test(tc, mutated_jpegs_never_crash, 0, 2);
    tcase_add_test(tc, pixel_limit_checked_from_header);
    tcase_add_test(tc, scan_count_is_limited);
    tcase_add_test(tc, scan_work_is_limited);
    tcase_add_loop_test(tc, stop_hook_is_polled_and_stops, 0, 2);
    tcase_add_test(tc, time_budget_stops_a_long_decode);
    tcase_add_test(tc, rejects_bad_arguments);
    tcase_add_test(tc, concurrent_calls_agree);
    tcase_add_test(tc, names_are_never_null);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
