/* test_photos.c - every real photo of tests/fixtures/photos.tsv (fetched into
 * .cache/photos/{calib,eval,ci-calib,ci-eval} by tools/fetch_photos.sh) still
 * decodes under the decoder's work limits (max_scans, max_scan_work,
 * budget_ms at their defaults), and to exactly the pixels that TurboJPEG's
 * tjDecompress2 gives with the flags resnetd decoded with before
 * (TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING), at full size and at every DCT
 * scale. Equal pixels make equal tensors: resize and normalise are unchanged.
 * The folders come as arguments; missing ones are skipped (CI fetches only the
 * ci-* subsets), but at least one photo must be found. Prints the most scans
 * and scan work a photo needed, the margin the defaults leave. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "image.h"
#include "test_files.h"

static char **dirs;
static int n_dirs;

/* PIL's CMYK;I -> RGB (as server/image_decode.c documents it). */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n)
{
    for (size_t i = 0; i < n; i++, cmyk += 4, rgb += 3)
        for (int c = 0; c < 3; c++) {
            int nk = cmyk[3], t = (255 - cmyk[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            rgb[c] = (uint8_t)(v < 0 ? 0 : v);
        }
}

/* The old decode path: tjDecompress2 at 1/denom, as packed RGB. */
static uint8_t *tj_decode(const uint8_t *jpeg, size_t len, int denom, int *w, int *h)
{
    tjhandle tj = tjInitDecompress();
    int W, H, samp, cs;
    ck_assert_int_eq(tjDecompressHeader3(tj, jpeg, (unsigned long)len, &W, &H, &samp, &cs), 0);
    *w = (W + denom - 1) / denom;
    *h = (H + denom - 1) / denom;
    bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    size_t n = (size_t)*w * (size_t)*h;
    uint8_t *raw = malloc(n * (cmyk ? 4 : 3));
    ck_assert_msg(tjDecompress2(tj, jpeg, (unsigned long)len, raw, *w, 0, *h,
                                cmyk ? TJPF_CMYK : TJPF_RGB,
                                TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING) == 0,
                  "tjDecompress2: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    if (!cmyk)
        return raw;
    uint8_t *rgb = malloc(n * 3);
    cmyk_to_rgb(raw, rgb, n);
    free(raw);
    return rgb;
}

/* SOS markers in the file: the scan count. */
static int count_scans(const uint8_t *p, size_t len)
{
    int n = 0;
    for (size_t i = 2; i + 3 < len;) {
        if (p[i] != 0xff) { i++; continue; }
        uint8_t m = p[i + 1];
        if (m == 0xd9)
            break;
        if (m == 0xff || m == 0x00 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
            i += m == 0xff ? 1 : 2;
            continue;
        }
        n += m == 0xda;
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
        if (m == 0xda) /* skip entropy-coded data up to the next real marker */
            while (i + 1 < len && !(p[i] == 0xff && p[i + 1] != 0 && (p[i + 1] < 0xd0 || p[i + 1] > 0xd7)))
                i++;
    }
    return n;
}

/* The least max_scan_work this photo decodes with (1..16; 17 = more). */
static int work_needed(const uint8_t *jpeg, size_t len)
{
    image_limits_t lim = image_default_limits();
    for (int w = 1; w <= 16; w++) {
        lim.max_scan_work = w;
        image_rgb_t img;
        if (image_decode_rgb(jpeg, len, 8, &lim, &img, NULL) == RD_OK) {
            image_rgb_free(&img);
            return w;
        }
    }
    return 17;
}

START_TEST(every_photo_decodes_as_before)
{
    model_preproc_t pp = {256, 224, 224, MODEL_BGR, 1.0f, {103.939f, 116.779f, 123.68f}, {1, 1, 1}};
    image_limits_t lim = image_default_limits();
    float *tensor = malloc(3 * 224 * 224 * sizeof *tensor);
    int n_photos = 0, most_scans = 0, most_work = 0;
    char most_scans_name[300] = "", most_work_name[300] = "";
    for (int d = 0; d < n_dirs; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) {
            printf("%s: missing, skipped\n", dirs[d]);
            continue;
        }
        int n_here = 0;
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            size_t nl = strlen(e->d_name);
            if (nl < 5 || strcmp(e->d_name + nl - 4, ".jpg") != 0)
                continue;
            char *path = test_path(dirs[d], e->d_name, "");
            size_t len;
            uint8_t *jpeg = test_read_file(path, &len);
            rd_error_t err = {0};
            ck_assert_msg(image_to_tensor(jpeg, len, &pp, &lim, tensor, &err) == RD_OK,
                          "%s refused under the default limits: %s", path, err.msg);
            for (int denom = 1; denom <= 8; denom *= 2) {
                image_rgb_t img;
                ck_assert_msg(image_decode_rgb(jpeg, len, denom, &lim, &img, &err) == RD_OK,
                              "%s at 1/%d: %s", path, denom, err.msg);
                int w, h;
                uint8_t *want = tj_decode(jpeg, len, denom, &w, &h);
                ck_assert_int_eq(img.width, w);
                ck_assert_int_eq(img.height, h);
                ck_assert_msg(memcmp(img.pixels, want, (size_t)w * h * 3) == 0,
                              "%s at 1/%d: pixels differ from tjDecompress2", path, denom);
                free(want);
                image_rgb_free(&img);
            }
            int scans = count_scans(jpeg, len), work = work_needed(jpeg, len);
            ck_assert_msg(work <= lim.max_scan_work, "%s needs max_scan_work > 16", path);
            if (scans > most_scans) {
                most_scans = scans;
                snprintf(most_scans_name, sizeof most_scans_name, "%s", e->d_name);
            }
            if (work > most_work) {
                most_work = work;
                snprintf(most_work_name, sizeof most_work_name, "%s", e->d_name);
            }
            free(jpeg);
            free(path);
            n_here++;
        }
        closedir(dir);
        printf("%s: %d photos\n", dirs[d], n_here);
        n_photos += n_here;
    }
    printf("%d photos; most scans %d (%s, limit %d); most scan work %d passes (%s, limit %d)\n",
           n_photos, most_scans, most_scans_name, lim.max_scans, most_work, most_work_name,
           lim.max_scan_work);
    ck_assert_msg(n_photos > 0, "no photos found: run tools/fetch_photos.sh .cache/photos");
    free(tensor);
}
END_TEST

int main(int argc, char **argv)
{
    dirs = argv + 1;
    n_dirs = argc - 1;
    Suite *s = suite_create("photos");
    TCase *tc = tcase_create("photos");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, every_photo_decodes_as_before);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
