/* image_resize.c - PIL's antialiased bilinear resample (Image.resize with
 * BILINEAR, as torchvision's Resize calls it on PIL images), restricted to a
 * crop window. Same arithmetic as PIL's Resample.c: triangle filter whose
 * support grows with the downscale factor, per-output weights normalised in
 * double, converted to 22-bit fixed point, horizontal pass first with 8-bit
 * rounding, then the vertical pass. Each output pixel depends only on its own
 * weights, so computing just the window gives the same values as resizing the
 * whole image and cropping. THREADS: no shared state. */
#include "image_internal.h"

#include <math.h>
#include <stdlib.h>

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

static rd_status_t coeffs_make(int in_size, int out_size, int first, int count,
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
static void pass_horizontal(const image_rgb_t *src, int y0, int rows,
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
static void pass_vertical(const uint8_t *tmp, int y0, const coeffs_t *vc,
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

rd_status_t image_resize_crop(const image_rgb_t *src, int rw, int rh,
                              int left, int top, int cw, int ch,
                              uint8_t *dst, rd_error_t *err)
{
    if (!src || !src->pixels || !dst || src->width < 1 || src->height < 1)
        return rd_error_set(err, RD_ERR_ARG, "resize: empty source");
    if (cw < 1 || ch < 1 || left < 0 || top < 0 || rw < left + cw || rh < top + ch)
        return rd_error_set(err, RD_ERR_ARG,
                            "resize: window %dx%d at (%d,%d) outside the %dx%d image",
                            cw, ch, left, top, rw, rh);
    coeffs_t hc = {0}, vc = {0};
    rd_status_t st = coeffs_make(src->width, rw, left, cw, &hc, err);
    if (st != RD_OK)
        return st;
    st = coeffs_make(src->height, rh, top, ch, &vc, err);
    if (st != RD_OK) {
        coeffs_free(&hc);
        return st;
    }
    int y0 = vc.bounds[0];
    int y1 = vc.bounds[2 * (ch - 1)] + vc.bounds[2 * (ch - 1) + 1];
    if (y1 <= y0)
        y1 = y0 + 1; /* cannot happen for valid sizes; keeps tmp non-empty */
    uint8_t *tmp = malloc((size_t)(y1 - y0) * cw * 3);
    int32_t *acc = malloc(sizeof *acc * (size_t)cw * 3);
    if (!tmp || !acc) {
        st = rd_error_set(err, RD_ERR_NOMEM, "resize: %d intermediate rows", y1 - y0);
    } else {
        pass_horizontal(src, y0, y1 - y0, &hc, cw, tmp);
        pass_vertical(tmp, y0, &vc, cw, ch, acc, dst);
    }
    free(acc);
    free(tmp);
    coeffs_free(&vc);
    coeffs_free(&hc);
    return st;
}

void image_resized_size(int in_w, int in_h, int resize, int *out_w, int *out_h)
{
    int shorter = in_w <= in_h ? in_w : in_h;
    int longer = in_w <= in_h ? in_h : in_w;
    /* Python's int(resize * long / short): exact product, one rounded division, truncation. */
    int new_long = (int)((double)((int64_t)resize * longer) / shorter);
    *out_w = in_w <= in_h ? resize : new_long;
    *out_h = in_w <= in_h ? new_long : resize;
}
