/* test_formats.c - PNG and WebP through image_to_tensor against PIL +
 * torchvision, and the files the decoders must refuse cheaply.
 * tools/format_fixtures.py writes, in this run, every PNG colour type and bit
 * depth PIL reads and lossy/lossless WebP with and without alpha, with their
 * reference tensors (Image.open().convert("RGB"), Resize, CenterCrop,
 * ToTensor/Normalize or Caffe BGR), plus hostile files listed in hostile.txt.
 * Compared in 0..255 pixel units (normalisation undone): PNG is lossless, so
 * it must match exactly (float rounding only); WebP within WEBP_TOL. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "test_files.h"
#include "test_preproc.h"

#define N_VALUES (3 * 224 * 224)
/* float rounding of the normalisation, in levels. PIL decodes WebP with the
 * same libwebp (and its default fancy upsampling): measured max 0 levels on
 * every WebP fixture, as on every PNG, so WebP is held to exactness too
 * (the JPEG tests allow one level). */
#define EXACT_TOL 1e-3
#define WEBP_TOL EXACT_TOL

static const char *const images[] = {
    "fx_png_rgb.png", "fx_png_rgba.png", "fx_png_gray.png", "fx_png_gray_alpha.png",
    "fx_png_palette.png", "fx_png_palette_trns.png", "fx_png_palette_4bit.png",
    "fx_png_1bit.png", "fx_png_tiny.png", "fx_png_rgb_trns.png", "fx_png_rgb16.png",
    "fx_png_rgba16.png", "fx_png_la16.png", "fx_png_l16.png", "fx_png_interlaced.png",
    "fx_png_spare_bytes.png",
    "fx_webp_lossy.webp", "fx_webp_lossless.webp", "fx_webp_alpha.webp",
    "fx_webp_alpha_lossless.webp", "fx_webp_gray.webp",
};
#define N_IMAGES (sizeof images / sizeof images[0])

static char work_dir[256];

static uint8_t *fixture(const char *name, size_t *len)
{
    char *path = test_path(work_dir, name, "");
    uint8_t *data = test_read_file(path, len);
    free(path);
    return data;
}

/* The largest difference from the reference, in pixel levels. */
static double max_diff(const char *name, bool bgr)
{
    char base[128];
    snprintf(base, sizeof base, "%s", name);
    *strrchr(base, '.') = '\0';
    size_t len;
    uint8_t *data = fixture(name, &len);
    float *ref = test_read_f32_in(work_dir, base, bgr ? ".bgr.f32" : ".rgb.f32", N_VALUES);
    float *out = malloc(N_VALUES * sizeof(float));
    model_preproc_t pp = test_preproc(bgr);
    image_limits_t lim = image_default_limits();
    rd_error_t err = {0};
    ck_assert_msg(image_to_tensor(data, len, &pp, &lim, out, &err) == RD_OK, "%s: %s", name,
                  err.msg);
    double max_abs = 0, mean_abs = 0;
    for (size_t i = 0; i < N_VALUES; i++) {
        int c = (int)(i / (224 * 224));
        double levels = fabs((double)out[i] - ref[i]) * pp.std[c] / pp.scale;
        max_abs = fmax(max_abs, levels);
        mean_abs += levels;
    }
    printf("%-28s %-15s max %7.4f mean %.5f levels\n", name, bgr ? "BGR/caffe" : "RGB/torchvision",
           max_abs, mean_abs / N_VALUES);
    free(out);
    free(ref);
    free(data);
    return max_abs;
}

START_TEST(test_matches_pil)
{
    const char *name = images[_i / 2];
    double d = max_diff(name, _i % 2);
    bool webp = strstr(name, ".webp") != NULL;
    ck_assert_msg(d <= (webp ? WEBP_TOL : EXACT_TOL), "%s: max diff %.4f levels", name, d);
}
END_TEST

static rd_status_t status_of(const char *name, const image_limits_t *lim, rd_error_t *err)
{
    size_t len;
    uint8_t *data = fixture(name, &len);
    float *out = malloc(N_VALUES * sizeof(float));
    model_preproc_t pp = test_preproc(false);
    rd_status_t st = image_to_tensor(data, len, &pp, lim, out, err);
    printf("%-24s -> %s: %s\n", name, rd_status_str(st), err->msg);
    free(out);
    free(data);
    return st;
}

/* Every line of hostile.txt: the file and the status it must get. */
START_TEST(test_hostile_files_refused)
{
    char *list = test_path(work_dir, "hostile.txt", "");
    FILE *f = fopen(list, "r");
    ck_assert_ptr_nonnull(f);
    char name[128], want[32];
    int n = 0;
    while (fscanf(f, "%127s %31s", name, want) == 2) {
        rd_status_t expect = !strcmp(want, "limit")         ? RD_ERR_LIMIT
                             : !strcmp(want, "unsupported") ? RD_ERR_UNSUPPORTED
                                                            : RD_ERR_FORMAT;
        image_limits_t lim = image_default_limits();
        rd_error_t err = {0};
        rd_status_t st = status_of(name, &lim, &err);
        ck_assert_msg(st == expect, "%s: %s (%s), expected %s", name, rd_status_str(st), err.msg,
                      rd_status_str(expect));
        n++;
    }
    fclose(f);
    free(list);
    ck_assert_int_ge(n, 7);
}
END_TEST

/* The pixel limit is the configured one, read from the header. */
START_TEST(test_pixel_limit_from_header)
{
    image_limits_t lim = image_default_limits();
    rd_error_t err = {0};
    lim.max_pixels = 768 * 576;
    ck_assert_int_eq(status_of("fx_png_rgb.png", &lim, &err), RD_OK);
    ck_assert_int_eq(status_of("fx_webp_lossy.webp", &lim, &err), RD_OK);
    lim.max_pixels = 768 * 576 - 1;
    ck_assert_int_eq(status_of("fx_png_rgb.png", &lim, &err), RD_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "PNG is 768x576"));
    ck_assert_int_eq(status_of("fx_webp_lossy.webp", &lim, &err), RD_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "WebP is 768x576"));
}
END_TEST

/* limits.formats turns PNG and WebP off; JPEG stays on. */
START_TEST(test_formats_turned_off)
{
    image_limits_t lim = image_default_limits();
    rd_error_t err = {0};
    lim.formats = IMAGE_FORMAT_BIT(IMAGE_FORMAT_JPEG) | IMAGE_FORMAT_BIT(IMAGE_FORMAT_WEBP);
    ck_assert_int_eq(status_of("fx_png_rgb.png", &lim, &err), RD_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "PNG images are turned off"));
    ck_assert_int_eq(status_of("fx_webp_lossy.webp", &lim, &err), RD_OK);
    lim.formats = IMAGE_FORMAT_BIT(IMAGE_FORMAT_PNG);
    ck_assert_int_eq(status_of("fx_webp_lossy.webp", &lim, &err), RD_ERR_UNSUPPORTED);
    ck_assert_int_eq(status_of("fx_png_rgb.png", &lim, &err), RD_OK);
}
END_TEST

START_TEST(test_sniff)
{
    size_t len;
    uint8_t *png = fixture("fx_png_rgb.png", &len);
    ck_assert_int_eq(image_format_sniff(png, len), IMAGE_FORMAT_PNG);
    ck_assert_int_eq(image_format_sniff(png, 7), IMAGE_FORMAT_UNKNOWN);
    free(png);
    uint8_t *webp = fixture("fx_webp_lossy.webp", &len);
    ck_assert_int_eq(image_format_sniff(webp, len), IMAGE_FORMAT_WEBP);
    webp[8] = 'X'; /* RIFF, but not WEBP (a WAV or an AVI) */
    ck_assert_int_eq(image_format_sniff(webp, len), IMAGE_FORMAT_UNKNOWN);
    free(webp);
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0};
    ck_assert_int_eq(image_format_sniff(jpeg, sizeof jpeg), IMAGE_FORMAT_JPEG);
    ck_assert_int_eq(image_format_sniff(NULL, 0), IMAGE_FORMAT_UNKNOWN);
    ck_assert_str_eq(image_format_str(IMAGE_FORMAT_WEBP), "WebP");
}
END_TEST

int main(void)
{
    const char *srcdir = getenv("SRCDIR") ? getenv("SRCDIR") : ".";
    snprintf(work_dir, sizeof work_dir, "/tmp/resnetd_formats_XXXXXX");
    char cmd[1024];
    if (!mkdtemp(work_dir))
        return 1;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/format_fixtures.py --out %s", srcdir,
             work_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "format_fixtures.py failed\n");
        return 1;
    }
    Suite *s = suite_create("formats");
    TCase *tc = tcase_create("formats");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_matches_pil, 0, 2 * N_IMAGES);
    tcase_add_test(tc, test_hostile_files_refused);
    tcase_add_test(tc, test_pixel_limit_from_header);
    tcase_add_test(tc, test_formats_turned_off);
    tcase_add_test(tc, test_sniff);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", work_dir);
    return failed ? 1 : 0;
}
