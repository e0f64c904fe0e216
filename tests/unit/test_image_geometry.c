/* test_image_geometry.c - test_image's geometry and preprocessing: resize sizes and weights, windows, crops, normalisation.
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

void image_geometry_tests(TCase *tc)
{
    tcase_add_test(tc, resized_size_matches_torchvision);
    tcase_add_test(tc, halving_uses_triangle_weights);
    tcase_add_test(tc, window_equals_crop_of_full_resize);
    tcase_add_test(tc, same_size_resize_is_identity);
    tcase_add_test(tc, part_of_image_gives_same_planes);
    tcase_add_test(tc, one_pixel_gives_constant_normalised_tensor);
    tcase_add_test(tc, caffe_planes_are_swapped_torchvision_planes);
    tcase_add_loop_test(tc, darknet_photos_preprocess, 0, N_PHOTOS);
    tcase_add_test(tc, non_square_input_and_small_resize);
}
