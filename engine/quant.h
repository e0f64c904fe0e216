/* quant.h - internal: INT8 quantization of a net_t. Numbering the points where
 * activations are quantized is common to both precisions (calibration observes
 * them in an FP32 plan); quantizing needs each point's calibrated range. */
#ifndef RESNETD_QUANT_H
#define RESNETD_QUANT_H

#include "net.h"
#include "resnetd/error.h"

/* The tensor in a calibrated model file that holds each point's range. */
#define QUANT_TENSOR "resnetd.activation_max"

/* Numbers the quantization points (net.h) and sets every conv's src_pt,
 * dst_pt and sum_pt. Fails only with RD_ERR_NOMEM. */
rd_status_t quant_number_points(net_t *net, rd_error_t *err);

/* Quantizes every conv: per-output-channel symmetric s8 weights (scale
 * 127 / max|w|), the bias and output scales that map the s32 accumulator to
 * the output point's units, and the residual sum's scale. amax[p] (n values,
 * n == net->n_points) is the largest activation magnitude kept at point p;
 * larger values saturate. Fails with RD_ERR_SHAPE (wrong n), RD_ERR_FORMAT (an
 * amax that is not finite and positive) or RD_ERR_NOMEM. */
rd_status_t quant_apply(net_t *net, const float *amax, int n, rd_error_t *err);

#endif
