/* quant.c - INT8 quantization of a net_t (see quant.h). Symmetric throughout:
 * s8 weights with one scale per output channel, computed after BN folding so
 * that the folded per-channel magnitudes get their own scales; activations
 * with one scale per point, u8 after a ReLU and s8 otherwise. A conv then
 * computes, with s_x the input's scale, s_w[oc] the weights' and s_y the
 * output's,
 *     y_q = s_y / (s_x * s_w[oc]) * (acc_s32 + bias * s_x * s_w[oc])
 *           [+ s_y / s_sc * shortcut_q]
 * which is oneDNN's output-scales attribute, a bias in accumulator units, and
 * the sum post-op's scale. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>

#define S8_MAX 127.0f
#define U8_MAX 255.0f

static void number_conv(net_conv_t *c, int src, int dst, int sum)
{
    c->src_pt = src;
    c->dst_pt = dst;
    c->sum_pt = sum;
}

rd_status_t quant_number_points(net_t *net, rd_error_t *err)
{
    int n = 2;
    for (int i = 0; i < net->n_blocks; i++)
        n += net->blocks[i].n_convs + net->blocks[i].has_downsample;
    free(net->points);
    net->points = calloc((size_t)n, sizeof *net->points);
    if (!net->points)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for quantization points");
    net->n_points = n;
    net->points[0].is_signed = 1;
    number_conv(&net->stem, 0, 1, -1);
    int next = 2, in = 1;
    for (int i = 0; i < net->n_blocks; i++) {
        net_block_t *b = &net->blocks[i];
        int cur = in, sc = in, last = b->n_convs - 1;
        for (int j = 0; j < last; j++, cur = next++)
            number_conv(&b->conv[j], cur, next, -1);
        if (b->has_downsample) {
            number_conv(&b->downsample, in, next, -1);
            net->points[next].is_signed = 1;
            sc = next++;
        }
        number_conv(&b->conv[last], cur, next, sc);
        in = next++;
    }
    return RD_OK;
}

static rd_status_t quantize_conv(const net_t *net, net_conv_t *c, rd_error_t *err)
{
    size_t per_oc = (size_t)c->ic * (size_t)c->kh * (size_t)c->kw;
    c->qweight = malloc((size_t)c->oc * per_oc);
    c->qbias = malloc((size_t)c->oc * sizeof *c->qbias);
    c->oscale = malloc((size_t)c->oc * sizeof *c->oscale);
    if (!c->qweight || !c->qbias || !c->oscale)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory quantizing weights");
    float s_x = net->points[c->src_pt].scale, s_y = net->points[c->dst_pt].scale;
    for (int o = 0; o < c->oc; o++) {
        const float *w = c->weight + (size_t)o * per_oc;
        float wmax = 0;
        for (size_t i = 0; i < per_oc; i++)
            wmax = fmaxf(wmax, fabsf(w[i]));
        float s_w = wmax > 0 ? S8_MAX / wmax : 1.0f;
        for (size_t i = 0; i < per_oc; i++)
            c->qweight[(size_t)o * per_oc + i] = (int8_t)fmaxf(-S8_MAX, fminf(S8_MAX, nearbyintf(w[i] * s_w)));
        c->qbias[o] = c->bias[o] * s_x * s_w;
        c->oscale[o] = s_y / (s_x * s_w);
    }
    c->sum_scale = c->sum_pt >= 0 ? s_y / net->points[c->sum_pt].scale : 0;
    return RD_OK;
}

rd_status_t quant_apply(net_t *net, const float *amax, int n, rd_error_t *err)
{
    if (n != net->n_points)
        return rd_error_set(err, RD_ERR_SHAPE, "%s: %d activation ranges for a net with %d "
                            "quantization points", QUANT_TENSOR, n, net->n_points);
    for (int p = 0; p < n; p++) {
        if (!(isfinite(amax[p]) && amax[p] > 0))
            return rd_error_set(err, RD_ERR_FORMAT, "%s[%d] = %g: must be finite and > 0",
                                QUANT_TENSOR, p, (double)amax[p]);
        net->points[p].scale = (net->points[p].is_signed ? S8_MAX : U8_MAX) / amax[p];
    }
    rd_status_t st = quantize_conv(net, &net->stem, err);
    for (int i = 0; st == RD_OK && i < net->n_blocks; i++) {
        net_block_t *b = &net->blocks[i];
        for (int j = 0; st == RD_OK && j < b->n_convs; j++)
            st = quantize_conv(net, &b->conv[j], err);
        if (st == RD_OK && b->has_downsample)
            st = quantize_conv(net, &b->downsample, err);
    }
    return st;
}
