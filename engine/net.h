/* net.h - the ResNet as the engine runs it: convolutions with batchnorm already
 * folded into weight and bias, grouped into residual blocks. The loader builds
 * a net_t from a safetensors file (loader.c); the planner turns it into oneDNN
 * primitives (plan.c). Read-only once built, so plans for several batch sizes
 * may share it. */
#ifndef RESNETD_NET_H
#define RESNETD_NET_H

#include <stdint.h>

typedef struct {
    int oc, ic;     /* output and input channels */
    int kh, kw;     /* kernel size */
    int stride;     /* same in both directions */
    int pad;        /* symmetric zero padding, same in both directions */
    float *weight;  /* [oc][ic][kh][kw] (OIHW), BN folded; owned */
    float *bias;    /* [oc], BN folded; never NULL; owned */
    /* INT8 (quant.c). Quantization points (see net_t.points) of the input, the
     * output and, for the last conv of a block, the shortcut (else -1). */
    int src_pt, dst_pt, sum_pt;
    /* Set by quant_apply (quant.h), NULL before: s8 weights [oc][ic][kh][kw],
     * the bias in accumulator units, and per-channel output scales. */
    int8_t *qweight;
    float *qbias, *oscale;
    float sum_scale; /* shortcut units -> output units */
} net_conv_t;

/* An INT8 quantization point (see net_t.points): how one activation tensor
 * is stored in an INT8 plan. */
typedef struct {
    int is_signed; /* s8 (the input, downsample outputs) or u8 */
    float scale;   /* 0 until quant_apply */
} net_point_t;

/* A residual block. Main path: conv[0] -> ReLU -> ... -> conv[n_convs-1];
 * then + shortcut, then ReLU. The shortcut is the block input, or
 * downsample(input) (a 1x1 strided conv, no ReLU) when has_downsample. */
typedef struct {
    int n_convs;              /* 2 for basic blocks, 3 for bottlenecks */
    net_conv_t conv[3];
    int has_downsample;
    net_conv_t downsample;
} net_block_t;

typedef struct {
    net_conv_t stem;          /* 7x7 stride 2 pad 3, then ReLU, then max pool 3x3 stride 2 pad 1 */
    int n_blocks;             /* all stages, in order */
    net_block_t *blocks;      /* owned */
    int stage_blocks[4];
    int fc_in, n_classes;     /* after global average pooling */
    float *fc_weight;         /* [n_classes][fc_in]; owned */
    float *fc_bias;           /* [n_classes]; owned */
    /* Quantization points: 0 is the network input, then every conv's output
     * in plan order (the stem's, then per block its main-path convs before
     * the last, the downsample, the block output). An INT8 plan stores each as
     * u8 (after a ReLU) or s8 with a per-tensor scale: q = x * scale. */
    int n_points;
    net_point_t *points;      /* [n_points]; owned */
} net_t;

/* Frees every buffer the net owns, then the net. NULL is a no-op. */
void net_free(net_t *net);

#endif
