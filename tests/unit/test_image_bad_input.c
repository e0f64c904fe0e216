/* test_image_bad_input.c - test_image's bad input and limits: non-JPEG bytes, truncation, mutations, pixel/scan/time budgets, stop hook, concurrency.
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

void image_bad_input_tests(TCase *tc)
{
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
}
