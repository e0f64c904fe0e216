/* bench_decode.c - what a JPEG costs the server before inference: for each file,
 * the best of N runs of image_decode_rgb at DCT scales 1, 1/2, 1/4 and 1/8 (1/8
 * is close to the entropy decoding alone, which no scaling skips) and of the
 * whole image_to_tensor pipeline as served (decode at the server's DCT scale,
 * resize, crop, normalise), in ms on one thread. A benchmark, not a test:
 *     build/server/bench_decode [--runs N] [--resize R --crop C] [--cpu 1] FILE.jpg...
 * --cpu 1 times with the thread's CPU clock instead of the wall clock: on a
 * shared machine a run that is preempted then costs what it used, not what it
 * waited (tools/load_test.sh sets the server's CPU per image against this).
 * (docs/performance.md, "Why the two targets are out of reach"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "file.h"
#include "image.h"

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The whole file (common/file.h), or NULL when it cannot be read. */
static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    return file_read_all(path, 0, &data, len, NULL) == RD_OK ? data : NULL;
}

/* Best of runs of one decode at 1/denom; negative when it fails. */
static double best_decode(const unsigned char *jpeg, size_t len, int denom, int runs)
{
    double best = -1;
    for (int r = 0; r < runs; r++) {
        image_rgb_t img;
        rd_error_t err;
        double t0 = now_ms();
        if (image_decode_rgb(jpeg, len, denom, NULL, &img, &err) != RD_OK)
            return -1;
        double t = now_ms() - t0;
        image_rgb_free(&img);
        if (best < 0 || t < best)
            best = t;
    }
    return best;
}

static double best_pipeline(const unsigned char *jpeg, size_t len, const model_preproc_t *pp,
                            float *out, int runs)
{
    image_limits_t lim = image_default_limits();
    double best = -1;
    for (int r = 0; r < runs; r++) {
        rd_error_t err;
        double t0 = now_ms();
        if (image_to_tensor(jpeg, len, pp, &lim, out, &err) != RD_OK)
            return -1;
        double t = now_ms() - t0;
        if (best < 0 || t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    int runs = 20, first = 1;
    model_preproc_t pp = {.resize = 256, .input_h = 224, .input_w = 224, .scale = 1.0f,
                          .std = {1, 1, 1}, .channel_order = MODEL_RGB};
    for (; first + 1 < argc && !strncmp(argv[first], "--", 2); first += 2) {
        int v = atoi(argv[first + 1]);
        if (!strcmp(argv[first], "--runs"))
            runs = v;
        else if (!strcmp(argv[first], "--resize"))
            pp.resize = v;
        else if (!strcmp(argv[first], "--crop"))
            pp.input_h = pp.input_w = v;
        else if (!strcmp(argv[first], "--cpu"))
            clock_id = v ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    }
    if (first >= argc || runs < 1 || pp.resize < 1 || pp.input_h < 1) {
        fprintf(stderr, "usage: bench_decode [--runs N] [--resize R --crop C] [--cpu 1] FILE.jpg...\n");
        return 2;
    }
    float *out = malloc(sizeof *out * 3 * (size_t)pp.input_h * (size_t)pp.input_w);
    if (!out)
        return 1;
    printf("| file | bytes | full | 1/2 | 1/4 | 1/8 | pipeline as served |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    int rc = 0;
    for (int i = first; i < argc; i++) {
        size_t len;
        uint8_t *jpeg = read_all(argv[i], &len);
        if (!jpeg) {
            fprintf(stderr, "bench_decode: cannot read %s\n", argv[i]);
            rc = 1;
            continue;
        }
        printf("| %s | %zu", argv[i], len);
        for (int denom = 1; denom <= 8; denom *= 2)
            printf(" | %.2f", best_decode(jpeg, len, denom, runs));
        printf(" | %.2f |\n", best_pipeline(jpeg, len, &pp, out, runs));
        free(jpeg);
    }
    free(out);
    return rc;
}
