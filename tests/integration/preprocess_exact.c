/* preprocess_exact.c - the preprocessed tensor, bit for bit, against the
 * scalar pipeline it replaced: decode at the same DCT scale (image_decode_rgb),
 * resize the WHOLE image with the pre-vectorisation scalar transcription of
 * PIL's Resample.c kept below, center-crop, then normalise through the same
 * float formula, and memcmp with image_to_tensor. Both torchvision (RGB, /255,
 * mean/std) and Caffe (BGR, mean only) settings, DCT scaling on (defaults) and
 * off, every .jpg in the folders given. Files neither path can decode count as
 * skipped, and must fail in both. A test for the suites (ci-calib, ci-eval)
 * and a tool for the full sets:
 *     build/tests/integration/preprocess_exact DIR...
 * Exit status 0 when every tensor is identical. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "file.h"
#include "image.h"

#define PRECISION_BITS (32 - 8 - 2)

/* The weights of `count` consecutive outputs starting at output `first`. */
typedef struct {
    int ksize;   /* weights reserved per output */
    int *bounds; /* per output: first input index, number of inputs */
    int32_t *k;  /* per output: ksize fixed-point weights */
} coeffs_t;

static double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int32_t to_fixed(double w)
{
    double f = w * (double)(1 << PRECISION_BITS);
    return (int32_t)(w < 0 ? -0.5 + f : 0.5 + f);
}

static void coeffs_free(coeffs_t *c)
{
    free(c->bounds);
    free(c->k);
}

/* One output's weights; pre has room for c->ksize doubles. */
static void output_weights(int in_size, double scale, double support, int xx,
                           double *pre, int *bounds, int32_t *k, int ksize)
{
    double ss = 1.0 / support; /* bilinear: support = 1 * filterscale */
    double center = (xx + 0.5) * scale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0)
        xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size)
        xmax = in_size;
    int n = xmax - xmin;
    if (n > ksize)
        n = ksize;
    double ww = 0.0;
    for (int x = 0; x < n; x++) {
        pre[x] = triangle((x + xmin - center + 0.5) * ss);
        ww += pre[x];
    }
    for (int x = 0; x < ksize; x++)
        k[x] = x < n ? to_fixed(ww != 0.0 ? pre[x] / ww : pre[x]) : 0;
    bounds[0] = xmin;
    bounds[1] = n;
}

static rd_status_t ref_coeffs(int in_size, int out_size, int first, int count,
                               coeffs_t *c, rd_error_t *err)
{
    /* PIL keeps the box in float; sizes below 2^24 convert exactly. */
    double scale = (double)(float)in_size / out_size;
    double support = scale < 1.0 ? 1.0 : scale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof *c->bounds * 2 * (size_t)count);
    c->k = malloc(sizeof *c->k * (size_t)c->ksize * (size_t)count);
    double *pre = malloc(sizeof *pre * (size_t)c->ksize);
    if (!c->bounds || !c->k || !pre) {
        free(pre);
        coeffs_free(c);
        return rd_error_set(err, RD_ERR_NOMEM, "resize: weights for %d outputs", count);
    }
    for (int i = 0; i < count; i++)
        output_weights(in_size, scale, support, first + i, pre, c->bounds + 2 * i,
                       c->k + (size_t)i * c->ksize, c->ksize);
    free(pre);
    return RD_OK;
}

static uint8_t clip8(int32_t ss)
{
    if (ss >= (1 << PRECISION_BITS << 8))
        return 255;
    if (ss <= 0)
        return 0;
    return (uint8_t)(ss >> PRECISION_BITS);
}

/* Rows [y0, y0+rows) of src, resampled horizontally to the window columns. */
static void ref_horizontal(const image_rgb_t *src, int y0, int rows,
                            const coeffs_t *hc, int cw, uint8_t *tmp)
{
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = src->pixels + (size_t)(y0 + r) * src->width * 3;
        uint8_t *out = tmp + (size_t)r * cw * 3;
        for (int x = 0; x < cw; x++) {
            const int32_t *k = hc->k + (size_t)x * hc->ksize;
            const uint8_t *p = in + (size_t)hc->bounds[2 * x] * 3;
            int n = hc->bounds[2 * x + 1];
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < n; t++, p += 3) {
                s0 += p[0] * k[t];
                s1 += p[1] * k[t];
                s2 += p[2] * k[t];
            }
            out[3 * x + 0] = clip8(s0);
            out[3 * x + 1] = clip8(s1);
            out[3 * x + 2] = clip8(s2);
        }
    }
}

/* acc[x] += row[x] * w. Blocks of 16 independent lanes let GCC's -O2
 * (straight-line SLP) vectorisation handle what its cheap loop vectoriser
 * leaves scalar. */
static void accumulate_row(int32_t *acc, const uint8_t *row, int32_t w, size_t n)
{
    size_t x = 0;
    for (; x + 16 <= n; x += 16)
        for (int j = 0; j < 16; j++)
            acc[x + j] += row[x + j] * w;
    for (; x < n; x++)
        acc[x] += row[x] * w;
}

/* The window rows from tmp (whose row 0 is source row y0). acc holds one
 * row of sums; accumulating whole rows keeps the inner loop contiguous, so
 * the compiler vectorises it. */
static void ref_vertical(const uint8_t *tmp, int y0, const coeffs_t *vc,
                          int cw, int ch, int32_t *acc, uint8_t *dst)
{
    size_t stride = (size_t)cw * 3;
    for (int y = 0; y < ch; y++) {
        const int32_t *k = vc->k + (size_t)y * vc->ksize;
        const uint8_t *in = tmp + (size_t)(vc->bounds[2 * y] - y0) * stride;
        int n = vc->bounds[2 * y + 1];
        for (size_t x = 0; x < stride; x++)
            acc[x] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < n; t++)
            accumulate_row(acc, in + (size_t)t * stride, k[t], stride);
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++)
            out[x] = clip8(acc[x]);
    }
}


/* The full rw x rh resize (old scalar code, window = whole image), then the crop. */
static int ref_resize_crop(const image_rgb_t *src, int rw, int rh, int left, int top,
                           int cw, int ch, uint8_t *dst)
{
    coeffs_t hc = {0}, vc = {0};
    if (ref_coeffs(src->width, rw, 0, rw, &hc, NULL) != RD_OK)
        return -1;
    if (ref_coeffs(src->height, rh, 0, rh, &vc, NULL) != RD_OK) {
        coeffs_free(&hc);
        return -1;
    }
    uint8_t *tmp = malloc((size_t)src->height * rw * 3);
    uint8_t *full = malloc((size_t)rw * rh * 3);
    int32_t *acc = malloc(sizeof *acc * (size_t)rw * 3);
    int rc = tmp && full && acc ? 0 : -1;
    if (rc == 0) {
        ref_horizontal(src, 0, src->height, &hc, rw, tmp);
        ref_vertical(tmp, 0, &vc, rw, rh, acc, full);
        for (int y = 0; y < ch; y++)
            memcpy(dst + (size_t)y * cw * 3, full + ((size_t)(top + y) * rw + left) * 3,
                   (size_t)cw * 3);
    }
    free(acc);
    free(full);
    free(tmp);
    coeffs_free(&vc);
    coeffs_free(&hc);
    return rc;
}

/* torchvision's center crop offset, int(round(d / 2.0)) with halves to even. */
static int crop_offset(int size, int crop)
{
    int d = size - crop;
    int half = d / 2;
    return (d % 2 == 0 || half % 2 == 0) ? half : half + 1;
}

/* The reference tensor; -1 when the JPEG does not decode. */
static int ref_tensor(const uint8_t *jpeg, size_t len, const model_preproc_t *pp,
                      const image_limits_t *lim, float *out)
{
    image_probe_t probe;
    if (image_probe(jpeg, len, &probe, NULL) != RD_OK)
        return -1;
    int rw, rh, denom = image_dct_denominator(probe.width, probe.height, pp->resize, lim);
    image_resized_size(probe.width, probe.height, pp->resize, &rw, &rh);
    image_rgb_t img;
    if (image_decode_rgb(jpeg, len, denom, lim, &img, NULL) != RD_OK)
        return -1;
    int cw = pp->input_w, ch = pp->input_h;
    uint8_t *win = malloc((size_t)cw * ch * 3);
    int rc = win ? ref_resize_crop(&img, rw, rh, crop_offset(rw, cw), crop_offset(rh, ch),
                                   cw, ch, win) : -1;
    for (int c = 0; rc == 0 && c < 3; c++) {
        int src_c = pp->channel_order == MODEL_BGR ? 2 - c : c;
        for (size_t i = 0; i < (size_t)cw * ch; i++)
            out[(size_t)c * cw * ch + i] =
                ((float)win[3 * i + src_c] * pp->scale - pp->mean[c]) / pp->std[c];
    }
    free(win);
    image_rgb_free(&img);
    return rc;
}

/* The whole file (common/file.h), or NULL when it cannot be read. */
static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    return file_read_all(path, 0, &data, len, NULL) == RD_OK ? data : NULL;
}

typedef struct {
    int files, compared, skipped, failed;
} tally_t;

/* One file under every setting; prints and counts each mismatch. */
static void check_file(const char *path, tally_t *t)
{
    static const model_preproc_t settings[2] = {
        {256, 224, 224, MODEL_RGB, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f},
         {0.229f, 0.224f, 0.225f}},
        {256, 224, 224, MODEL_BGR, 1.0f, {103.939f, 116.779f, 123.68f}, {1, 1, 1}},
    };
    size_t len, n = 3 * 224 * 224;
    uint8_t *jpeg = read_all(path, &len);
    float *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
    t->files++;
    if (!jpeg || !got || !want) {
        printf("FAIL %s: cannot read\n", path);
        t->failed++;
    }
    for (int k = 0; jpeg && got && want && k < 4; k++) {
        const model_preproc_t *pp = &settings[k % 2];
        image_limits_t lim = image_default_limits();
        lim.dct_scaling = k < 2;
        int ok_ref = ref_tensor(jpeg, len, pp, &lim, want) == 0;
        rd_error_t err = {0};
        int ok_new = image_to_tensor(jpeg, len, pp, &lim, got, &err) == RD_OK;
        const char *what = k % 2 ? "caffe" : "torchvision";
        if (!ok_ref && !ok_new) {
            t->skipped++;
            continue;
        }
        size_t i = 0;
        if (ok_ref && ok_new)
            while (i < n && memcmp(&got[i], &want[i], sizeof got[i]) == 0)
                i++;
        t->compared++;
        if (ok_ref != ok_new || i < n) {
            t->failed++;
            printf("FAIL %s (%s, dct %s): ", path, what, lim.dct_scaling ? "on" : "off");
            if (ok_ref != ok_new)
                printf("%s\n", ok_new ? "only the reference failed" : err.msg);
            else
                printf("value %zu is %.9g, reference %.9g\n", i, got[i], want[i]);
        }
    }
    free(want);
    free(got);
    free(jpeg);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.jpg / *.jpeg in dir, in name order. */
static void check_dir(const char *dir, tally_t *t)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("FAIL %s: cannot open the folder\n", dir);
        t->failed++;
        return;
    }
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg")))
            continue;
        char **grown = realloc(names, sizeof *names * (count + 1));
        if (!grown)
            break;
        names = grown;
        size_t cap = strlen(dir) + strlen(e->d_name) + 2;
        if ((names[count] = malloc(cap)))
            snprintf(names[count++], cap, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        check_file(names[i], t);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: preprocess_exact DIR...\n");
        return 2;
    }
    tally_t t = {0};
    for (int i = 1; i < argc; i++)
        check_dir(argv[i], &t);
    printf("%d files, %d tensors identical to the scalar reference, %d skipped (undecodable), "
           "%d different\n", t.files, t.compared - t.failed, t.skipped, t.failed);
    return t.failed || t.compared == 0 ? 1 : 0;
}
