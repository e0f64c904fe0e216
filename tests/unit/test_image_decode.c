/* test_image_decode.c - test_image's probing and decoding: headers, subsamplings, gray, YCCK, DCT scaling.
 * Fixtures: image_fixture.c. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "image_fixture.h"

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

void image_decode_tests(TCase *tc)
{
    tcase_add_test(tc, probe_reads_darknet_headers);
    tcase_add_loop_test(tc, decodes_every_subsampling_and_progressive, 0, 7);
    tcase_add_test(tc, odd_width_440_ignores_heap_garbage);
    tcase_add_test(tc, grayscale_replicates_luma);
    tcase_add_test(tc, ycck_follows_pil_adobe_convention);
    tcase_add_test(tc, dct_scaled_decode_has_scaled_size);
    tcase_add_test(tc, dct_denominator_rule);
}
