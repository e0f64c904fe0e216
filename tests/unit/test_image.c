/* test_image.c - the image pipeline (server/image*.c) on real and generated
 * JPEGs. Fixtures are encoded in memory at test time with TurboJPEG's
 * compressor (every subsampling, gray, progressive, YCCK, 1x1) from a
 * synthetic picture, so the expected pixels are known independently of the
 * decoder; the darknet photos (/usr/share/darknet/data) are the real ones.
 * Fidelity against PIL/torchvision lives in tests/integration/test_preprocess.c.
 * `test_image --bench` prints decode+preprocess timings instead (no asserts).
 * The tests are grouped in test_image_{decode,geometry,bad_input}.c. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "image_fixture.h"

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
    image_decode_tests(tc);
    image_geometry_tests(tc);
    image_bad_input_tests(tc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
