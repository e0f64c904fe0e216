/* image_resize.c - PIL's antialiased bilinear resample (Image.resize with
 * BILINEAR, as torchvision's Resize calls it on PIL images), restricted to a
 * crop window. Same arithmetic as PIL's Resample.c: triangle filter whose
 * support grows with the downscale factor, per-output weights normalised in
 * double, converted to 22-bit fixed point, horizontal pass first with 8-bit
 * rounding, then the vertical pass. Each output pixel depends only on its own
 * weights, so computing just the window gives the same values as resizing the
 * whole image and cropping. The vertical pass's output step also applies the
 * model's normalisation (image_resize_crop_planes), so the tensor is written
 * once, with no packed window in between. THREADS: no shared state. */
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

/* PIL's filter box: input pixels per output (kept in float) and the
 * triangle's half-width in input pixels. */
static void filter_box(int in_size, int out_size, double *scale, double *support)
{
    /* sizes below 2^24 convert to float exactly */
    *scale = (double)(float)in_size / out_size;
    *support = *scale < 1.0 ? 1.0 : *scale;
}

/* The inputs [*xmin, *xmax) output xx reads (weights of 0 at the ends included). */
static double tap_range(int in_size, double scale, double support, int xx, int *xmin,
                        int *xmax)
{
    double center = (xx + 0.5) * scale;
    *xmin = (int)(center - support + 0.5);
    if (*xmin < 0)
        *xmin = 0;
    *xmax = (int)(center + support + 0.5);
    if (*xmax > in_size)
        *xmax = in_size;
    return center;
}

/* One output's weights; pre has room for c->ksize doubles. */
static void output_weights(int in_size, double scale, double support, int xx,
                           double *pre, int *bounds, int32_t *k, int ksize)
{
    double ss = 1.0 / support; /* bilinear: support = 1 * filterscale */
    int xmin, xmax;
    double center = tap_range(in_size, scale, support, xx, &xmin, &xmax);
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
    double scale, support;
    filter_box(in_size, out_size, &scale, &support);
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

/* PIL's clip8: ss >> 22 clamped to 0..255 (written as a clamp so that it
 * vectorises; same values as PIL's branches). */
static inline uint8_t clip8(int32_t ss)
{
    int32_t v = ss >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [y0, y0+rows) of the full image (src holds them, from its row part->y0
 * and column part->x0 on), resampled horizontally to the window columns.
 * Scalar on purpose. Measured on dog.jpg (768x576 -> 341x256, crop 224, best
 * of 200, AVX-512 machine; this loop takes 0.50 of the resize's 0.72 ms):
 * 16-row transposed tiles, so that every tap is one multiply-add across rows
 * (GCC vectorises it), 0.94 ms at baseline x86-64 (SSE2 has no 32-bit vector
 * multiply) and 0.80 ms with AVX-512 clones (target_clones): the byte
 * transpose and the scatter back cost more than the 5 taps save; four lanes
 * per pixel (R, G, B, pad) with AVX2/AVX-512 clones, 1.22 ms; red and blue in
 * the two halves of one 64-bit multiply, 0.74 ms. docs/performance.md. */
static void pass_horizontal(const image_rgb_t *src, const image_part_t *part, int y0,
                            int rows, const coeffs_t *hc, int cw, uint8_t *tmp)
{
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = src->pixels + (size_t)(y0 + r - part->y0) * src->width * 3;
        uint8_t *out = tmp + (size_t)r * cw * 3;
        for (int x = 0; x < cw; x++) {
            const int32_t *k = hc->k + (size_t)x * hc->ksize;
            const uint8_t *p = in + (size_t)(hc->bounds[2 * x] - part->x0) * 3;
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
static void accumulate_row(int32_t *restrict acc, const uint8_t *restrict row, int32_t w,
                           size_t n)
{
    size_t x = 0;
    for (; x + 16 <= n; x += 16)
        for (int j = 0; j < 16; j++)
            acc[x + j] += row[x + j] * w;
    for (; x < n; x++)
        acc[x] += row[x] * w;
}

/* Where the vertical pass writes: packed RGB, or normalised planes. */
typedef struct {
    uint8_t *rgb;              /* cw * ch * 3, or NULL */
    float *planes;             /* [3][ch][cw] when rgb is NULL */
    const float (*lut)[256];   /* lut[p][v]: plane p's value for level v */
    const int *src_channel;    /* plane p reads source channel src_channel[p] */
} sink_t;

static void emit_row(const int32_t *acc, int cw, int ch, int y, const sink_t *sink)
{
    if (sink->rgb) {
        uint8_t *out = sink->rgb + (size_t)y * cw * 3;
        for (size_t x = 0; x < (size_t)cw * 3; x++)
            out[x] = clip8(acc[x]);
        return;
    }
    size_t plane = (size_t)cw * ch;
    for (int p = 0; p < 3; p++) {
        const float *lut = sink->lut[p];
        const int32_t *a = acc + sink->src_channel[p];
        float *out = sink->planes + plane * p + (size_t)y * cw;
        for (int x = 0; x < cw; x++)
            out[x] = lut[clip8(a[3 * x])];
    }
}

/* The window rows from tmp (whose row 0 is source row y0). acc holds one
 * row of sums; accumulating whole rows keeps the inner loop contiguous, so
 * the compiler vectorises it. */
static void pass_vertical(const uint8_t *tmp, int y0, const coeffs_t *vc,
                          int cw, int ch, int32_t *acc, const sink_t *sink)
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
        emit_row(acc, cw, ch, y, sink);
    }
}

static rd_status_t resize_window(const image_rgb_t *src, const image_part_t *part, int rw,
                                 int rh, int left, int top, int cw, int ch, const sink_t *sink,
                                 rd_error_t *err)
{
    if (!src || !src->pixels || src->width < 1 || src->height < 1)
        return rd_error_set(err, RD_ERR_ARG, "resize: empty source");
    if (cw < 1 || ch < 1 || left < 0 || top < 0 || rw < left + cw || rh < top + ch)
        return rd_error_set(err, RD_ERR_ARG,
                            "resize: window %dx%d at (%d,%d) outside the %dx%d image",
                            cw, ch, left, top, rw, rh);
    image_part_t whole = {0, 0, src->width, src->height};
    if (!part)
        part = &whole;
    int full_w = part->full_width, full_h = part->full_height;
    int x0, y0, x1, y1;
    if (full_w < src->width || full_h < src->height)
        return rd_error_set(err, RD_ERR_ARG, "resize: part %dx%d of a %dx%d image",
                            src->width, src->height, full_w, full_h);
    image_resize_source_rect(full_w, full_h, rw, rh, left, top, cw, ch, &x0, &y0, &x1, &y1);
    if (part->x0 < 0 || part->y0 < 0 || x0 < part->x0 || y0 < part->y0 ||
        x1 > part->x0 + src->width || y1 > part->y0 + src->height)
        return rd_error_set(err, RD_ERR_ARG,
                            "resize: needs source [%d,%d)x[%d,%d), has [%d,%d)x[%d,%d)",
                            x0, x1, y0, y1, part->x0, part->x0 + src->width, part->y0,
                            part->y0 + src->height);
    coeffs_t hc = {0}, vc = {0};
    rd_status_t st = coeffs_make(full_w, rw, left, cw, &hc, err);
    if (st != RD_OK)
        return st;
    st = coeffs_make(full_h, rh, top, ch, &vc, err);
    if (st != RD_OK) {
        coeffs_free(&hc);
        return st;
    }
    int32_t *acc = malloc(sizeof *acc * (size_t)cw * 3);
    uint8_t *tmp = malloc((size_t)(y1 - y0) * cw * 3);
    if (!tmp || !acc) {
        st = rd_error_set(err, RD_ERR_NOMEM, "resize: %d intermediate rows", y1 - y0);
    } else {
        pass_horizontal(src, part, y0, y1 - y0, &hc, cw, tmp);
        pass_vertical(tmp, y0, &vc, cw, ch, acc, sink);
    }
    free(tmp);
    free(acc);
    coeffs_free(&vc);
    coeffs_free(&hc);
    return st;
}

rd_status_t image_resize_crop(const image_rgb_t *src, int rw, int rh,
                              int left, int top, int cw, int ch,
                              uint8_t *dst, rd_error_t *err)
{
    if (!dst)
        return rd_error_set(err, RD_ERR_ARG, "resize: no output");
    sink_t sink = {.rgb = dst};
    return resize_window(src, NULL, rw, rh, left, top, cw, ch, &sink, err);
}

rd_status_t image_resize_crop_planes(const image_rgb_t *src, const image_part_t *part,
                                     int rw, int rh, int left, int top, int cw, int ch,
                                     const float lut[3][256], const int src_channel[3],
                                     float *out, rd_error_t *err)
{
    if (!out || !lut || !src_channel)
        return rd_error_set(err, RD_ERR_ARG, "resize: no output");
    for (int p = 0; p < 3; p++)
        if (src_channel[p] < 0 || src_channel[p] > 2)
            return rd_error_set(err, RD_ERR_ARG, "resize: source channel %d", src_channel[p]);
    sink_t sink = {.planes = out, .lut = lut, .src_channel = src_channel};
    return resize_window(src, part, rw, rh, left, top, cw, ch, &sink, err);
}

void image_resize_source_rect(int in_w, int in_h, int rw, int rh, int left, int top,
                              int cw, int ch, int *x0, int *y0, int *x1, int *y1)
{
    /* outputs read monotonically: the first output's taps start lowest and
     * the last output's end highest */
    double scale, support;
    int unused;
    filter_box(in_w, rw, &scale, &support);
    tap_range(in_w, scale, support, left, x0, &unused);
    tap_range(in_w, scale, support, left + cw - 1, &unused, x1);
    filter_box(in_h, rh, &scale, &support);
    tap_range(in_h, scale, support, top, y0, &unused);
    tap_range(in_h, scale, support, top + ch - 1, &unused, y1);
    if (*x1 <= *x0)
        *x1 = *x0 + 1; /* cannot happen for valid sizes; keeps the rect non-empty */
    if (*y1 <= *y0)
        *y1 = *y0 + 1;
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
