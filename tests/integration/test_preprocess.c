/* test_preprocess.c - fidelity of image_to_tensor against PIL + torchvision.
 * tools/preprocess_reference.py writes PIL-encoded JPEG variants (gray, CMYK,
 * progressive, 4:4:4/4:2:2/4:2:0, odd and tiny sizes) and the reference
 * tensors (torchvision RGB and Caffe BGR) for them and the darknet photos;
 * this suite compares in 0..255 pixel units (normalisation undone).
 * Full-size decode must give PIL's pixels exactly: the Caffe tensor (pixel
 * minus mean) bit for bit, the torchvision one to float rounding (it divides
 * by 255 where resnetd multiplies by the scale: at most 4.1e-5 of a level
 * observed, 1e-4 allowed, where one wrong pixel level anywhere fails).
 * DCT-scaled decode is allowed a small mean difference, a little above the
 * largest observed. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "test_files.h"
#include "test_preproc.h"

#define DARKNET "/usr/share/darknet/data/"

static const char *const images[] = {
    DARKNET "dog.jpg", DARKNET "eagle.jpg", DARKNET "giraffe.jpg", DARKNET "horses.jpg",
    DARKNET "kite.jpg", DARKNET "person.jpg", DARKNET "scream.jpg",
    "fx_gray.jpg", "fx_cmyk.jpg", "fx_progressive.jpg", "fx_444.jpg", "fx_422.jpg",
    "fx_420.jpg", "fx_odd_420.jpg", "fx_portrait.jpg", "fx_tiny.jpg", "fx_large.jpg",
};
#define N_IMAGES (sizeof images / sizeof images[0])
#define N_VALUES (3 * 224 * 224)

static char work_dir[256];

/* Full decode, torchvision normalisation: float rounding only (observed 4.1e-5). */
#define ROUNDING_LEVELS 1e-4

typedef struct {
    double max_abs, mean_abs, frac_above_half;
    size_t unequal; /* values whose float bits differ from the reference */
    int denom; /* DCT scale used */
} diff_t;

static void image_path(const char *name, char *out, size_t cap)
{
    if (name[0] == '/')
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "%s/%s", work_dir, name);
}

static int denom_of(const uint8_t *jpeg, size_t len, const model_preproc_t *pp,
                    const image_limits_t *lim)
{
    image_probe_t probe;
    ck_assert_int_eq(image_probe(jpeg, len, &probe, NULL), RD_OK);
    return image_dct_denominator(probe.width, probe.height, pp->resize, lim);
}

static diff_t compare(const char *name, bool bgr, bool dct, float headroom)
{
    char path[512], ref_path[600], base[128];
    image_path(name, path, sizeof path);
    snprintf(base, sizeof base, "%s", strrchr(path, '/') + 1);
    *strrchr(base, '.') = '\0';
    snprintf(ref_path, sizeof ref_path, "%s/%s.%s.f32", work_dir, base, bgr ? "bgr" : "rgb");
    size_t jpeg_len;
    uint8_t *jpeg = test_read_file(path, &jpeg_len);
    float *ref = test_read_f32(ref_path, N_VALUES);
    float *out = malloc(N_VALUES * sizeof(float));
    model_preproc_t pp = test_preproc(bgr);
    image_limits_t lim = image_default_limits();
    lim.dct_scaling = dct;
    lim.dct_headroom = headroom;
    rd_error_t err = {0};
    ck_assert_msg(image_to_tensor(jpeg, jpeg_len, &pp, &lim, out, &err) == RD_OK,
                  "%s: %s", name, err.msg);
    diff_t d = {.denom = denom_of(jpeg, jpeg_len, &pp, &lim)};
    size_t above = 0;
    for (size_t i = 0; i < N_VALUES; i++) {
        int c = (int)(i / (224 * 224));
        double pixels = fabs((double)out[i] - ref[i]) * pp.std[c] / pp.scale;
        d.max_abs = fmax(d.max_abs, pixels);
        d.mean_abs += pixels;
        above += pixels > 0.5;
        d.unequal += memcmp(&out[i], &ref[i], sizeof *out) != 0;
    }
    d.mean_abs /= N_VALUES;
    d.frac_above_half = (double)above / N_VALUES;
    printf("%-15s %-15s dct %-3s headroom %.1f (1/%d): max %9.3g mean %.5f frac>0.5 %.6f "
           "unequal %zu\n", base, bgr ? "BGR/caffe" : "RGB/torchvision", dct ? "on" : "off",
           headroom, d.denom, d.max_abs, d.mean_abs, d.frac_above_half, d.unequal);
    free(out);
    free(ref);
    free(jpeg);
    return d;
}

/* Full decode: same libjpeg-turbo, same resample arithmetic -> PIL's pixels. */
static void check_exact(const char *name, bool bgr, const diff_t *d)
{
    if (bgr)
        ck_assert_msg(d->unequal == 0, "%s: %zu values not bit-identical (max diff %.3g levels)",
                      name, d->unequal, d->max_abs);
    else
        ck_assert_msg(d->max_abs <= ROUNDING_LEVELS, "%s: max diff %.3g pixel levels", name,
                      d->max_abs);
}

START_TEST(test_full_decode_matches_torchvision)
{
    bool bgr = _i % 2;
    const char *name = images[_i / 2];
    diff_t d = compare(name, bgr, false, 1.0f);
    check_exact(name, bgr, &d);
}
END_TEST

/* DCT-scaled decode resamples a different (smaller) source: close, not exact.
 * Headroom 1 is the plain rule (scaled shorter side >= resize): a 512-pixel
 * photo is decoded at 256 and resampled 1:1, the worst case. */
START_TEST(test_dct_scaled_close_to_torchvision)
{
    bool bgr = _i % 2;
    const char *name = images[_i / 2];
    diff_t d = compare(name, bgr, true, 1.0f);
    ck_assert_msg(d.mean_abs < 4.0, "%s: mean diff %.3f pixel levels", name, d.mean_abs);
    ck_assert_msg(d.max_abs < 64.0, "%s: max diff %.1f pixel levels", name, d.max_abs);
    d = compare(name, bgr, true, 1.5f);
    ck_assert_msg(d.mean_abs < 1.0, "%s: mean diff %.3f pixel levels", name, d.mean_abs);
}
END_TEST

/* The default limits (headroom 2) leave photos under 1024 pixels exact and
 * larger ones within half a level on average. */
START_TEST(test_defaults_close_to_torchvision)
{
    bool bgr = _i % 2;
    const char *name = images[_i / 2];
    diff_t d = compare(name, bgr, true, image_default_limits().dct_headroom);
    if (d.denom == 1)
        check_exact(name, bgr, &d);
    else
        ck_assert_msg(d.mean_abs < 0.5, "%s: mean diff %.3f levels", name, d.mean_abs);
}
END_TEST

/* The darknet photos are large enough that DCT scaling is really exercised. */
START_TEST(test_dct_scaling_is_used)
{
    model_preproc_t pp = test_preproc(false);
    image_probe_t probe;
    size_t len;
    uint8_t *jpeg = test_read_file(DARKNET "kite.jpg", &len);
    ck_assert_int_eq(image_probe(jpeg, len, &probe, NULL), RD_OK);
    image_limits_t lim = image_default_limits();
    lim.dct_headroom = 1.0f;
    ck_assert_int_eq(image_dct_denominator(probe.width, probe.height, pp.resize, &lim), 2);
    lim.dct_headroom = 2.0f; /* 900 / 2 < 2 * 256 */
    ck_assert_int_eq(image_dct_denominator(probe.width, probe.height, pp.resize, &lim), 1);
    free(jpeg);
}
END_TEST

static int run_reference(const char *srcdir)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 %s/tools/preprocess_reference.py --make-fixtures %s "
                     "--out %s", srcdir, work_dir, work_dir);
    for (size_t i = 0; i < N_IMAGES; i++) {
        char path[512];
        image_path(images[i], path, sizeof path);
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", path);
    }
    return system(cmd);
}

int main(void)
{
    const char *srcdir = getenv("SRCDIR") ? getenv("SRCDIR") : ".";
    snprintf(work_dir, sizeof work_dir, "/tmp/resnetd_preprocess_XXXXXX");
    if (!mkdtemp(work_dir) || run_reference(srcdir) != 0) {
        fprintf(stderr, "preprocess_reference.py failed\n");
        return 1;
    }
    Suite *s = suite_create("preprocess");
    TCase *tc = tcase_create("fidelity");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_full_decode_matches_torchvision, 0, 2 * N_IMAGES);
    tcase_add_loop_test(tc, test_dct_scaled_close_to_torchvision, 0, 2 * N_IMAGES);
    tcase_add_loop_test(tc, test_defaults_close_to_torchvision, 0, 2 * N_IMAGES);
    tcase_add_test(tc, test_dct_scaling_is_used);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", work_dir);
    return failed ? 1 : 0;
}
