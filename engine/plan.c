/* plan.c - builds and runs the oneDNN primitives of a net_t for one batch size.
 *
 * Layouts: every primitive's activations are `format_tag any`, and each takes
 * the previous primitive's chosen layout as its source, so activations stay in
 * oneDNN's layout from the stem to the global pooling; the only reorders are
 * the input (user NCHW -> the stem's layout; none in Winograd plans, whose
 * stem reads NCHW and writes the blocked layout Winograd wants). The logits
 * come out plain.
 * Residual blocks: the last conv of a block computes in place into the
 * shortcut's buffer with a sum post-op then ReLU, so the add costs no pass.
 *
 * Memory: activations live in arena slots (plan_mem.c's shared arena). Three
 * slots hold every block's tensors (a fourth only behind a layout reorder);
 * the stem's output, 4x larger than later activations but dead after max
 * pooling, overlaps slots 1.. so it needs no buffer of its own. Offsets are
 * fixed when the plan is complete; buffers are bound to memories at run time
 * only when the shared arena has moved (plan_steps.c, plan_run.c).
 * INT8 plans (PLAN_INT8): the same graph on u8/s8 activations, with the
 * quantized weights and scales of quant.c; see the README's INT8 section.
 * BF16 plans (PLAN_BF16): bf16 activations and weights (converted from the
 * folded f32 weights when reordered), f32 biases and accumulation, the same
 * fused ReLU and sum; the stem, max pool, global pooling and fc in f32. */
#include "dims.h"
#include "plan_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>

#define WINOGRAD_MIN_PIXELS (14 * 14)

typedef enum { POST_NONE, POST_RELU, POST_SUM_RELU } post_t;

/* An INT8 conv's attributes (quant.c): per-channel output scales and the
 * residual sum's scale and data type. */
typedef struct {
    const float *oscale;
    int n_oscale;
    float sum_scale;
    dnnl_data_type_t sum_dt;
} qattr_t;

/* The implementation oneDNN lists first for op, or the first whose name
 * contains prefer when there is one. For Winograd with 1-3 images oneDNN
 * lists jit_fp32_wino_2x3 before jit_wino_4x3, yet on one image 4x3 ran a
 * 3x3 conv in about half the time of the direct kernel (docs/performance.md). */
static dnnl_status_t pick_impl(const_dnnl_op_desc_t op, const_dnnl_primitive_attr_t attr,
                               dnnl_engine_t engine, const char *prefer,
                               dnnl_primitive_desc_t *pd)
{
    if (!prefer)
        return dnnl_primitive_desc_create(pd, op, attr, engine, NULL);
    dnnl_primitive_desc_iterator_t it;
    dnnl_status_t s = dnnl_primitive_desc_iterator_create(&it, op, attr, engine, NULL);
    if (s != dnnl_success)
        return s;
    dnnl_primitive_desc_t first = NULL, chosen = NULL;
    do {
        dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
        const char *name = NULL;
        if (!cand)
            break;
        dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &name);
        if (name && strstr(name, prefer))
            chosen = cand;
        else if (!first)
            first = cand;
        else
            dnnl_primitive_desc_destroy(cand);
    } while (!chosen && dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    if (chosen && first)
        dnnl_primitive_desc_destroy(first);
    *pd = chosen ? chosen : first;
    return *pd ? dnnl_success : dnnl_unimplemented;
}

/* A primitive descriptor for op with the plan's attributes: user scratchpad,
 * and the fused post-ops; prefer as in pick_impl. */
static rd_status_t make_pd(plan_t *p, const_dnnl_op_desc_t op, post_t post, const qattr_t *q,
                           const char *prefer, dnnl_primitive_desc_t *pd, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (q)
        DNNL_TRY(dnnl_primitive_attr_set_output_scales(attr, q->n_oscale, 1 << 1, q->oscale));
    if (post != POST_NONE) {
        DNNL_TRY(dnnl_post_ops_create(&po));
        if (post == POST_SUM_RELU && q)
            DNNL_TRY(dnnl_post_ops_append_sum_v2(po, q->sum_scale, q->sum_dt));
        else if (post == POST_SUM_RELU)
            DNNL_TRY(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    DNNL_TRY(pick_impl(op, attr, plan_ctx_engine(p->ctx), prefer, pd));
fail:
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st;
}

/* A reorder from tensor from to tensor to, multiplying by scale: quantizing
 * or dequantizing where the data types differ, 1 where only layouts do. */
static rd_status_t add_reorder(plan_t *p, int from, int to, float scale, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_engine_t eng = plan_ctx_engine(p->ctx);
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (scale != 1.0f)
        DNNL_TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale));
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, &p->tensors[from].md, eng,
                                                &p->tensors[to].md, eng, attr));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->tensors[from].mem},
                              {DNNL_ARG_TO, p->tensors[to].mem}};
    st = plan_add_step(p, pd, args, 2, err);
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st;
}

/* The weights memory for what pd wants, reordered once and shared (plan_mem.c). */
static rd_status_t weights_for(plan_t *p, const_dnnl_primitive_desc_t pd, dnnl_query_t what,
                               const void *src, dnnl_data_type_t dt, int ndims,
                               const dnnl_dims_t dims, dnnl_format_tag_t user_tag,
                               dnnl_memory_t *out, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_memory_desc_t user_md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&user_md, ndims, dims, dt, user_tag));
    return plan_ctx_weights(p->ctx, src, &user_md, dnnl_primitive_desc_query_md(pd, what, 0), out,
                            err);
fail:
    return st;
}

/* The data type of a quantization point's tensor in this plan. */
static dnnl_data_type_t point_dt(const plan_t *p, int pt)
{
    if (p->bf16)
        return dnnl_bf16;
    return !p->int8 ? dnnl_f32 : p->net->points[pt].is_signed ? dnnl_s8 : dnnl_u8;
}

/* Convolution weights: s8 (quant.c), bf16 (reordered from the folded f32
 * ones by plan_ctx_weights, so BN is folded in f32 first), or f32. */
static dnnl_data_type_t weights_dt(const plan_t *p)
{
    return p->int8 ? dnnl_s8 : p->bf16 ? dnnl_bf16 : dnnl_f32;
}

static float input_scale(const plan_t *p) { return p->int8 ? p->net->points[0].scale : 1.0f; }

/* md with another data type of the same layout (strides count elements). */
static dnnl_memory_desc_t as_type(const dnnl_memory_desc_t *md, dnnl_data_type_t dt)
{
    dnnl_memory_desc_t r = *md;
    r.data_type = dt;
    return r;
}

static rd_status_t conv_pd(plan_t *p, const net_conv_t *c, const dnnl_memory_desc_t *src_md,
                           dnnl_alg_kind_t alg, dnnl_format_tag_t dst_tag, post_t post,
                           dnnl_primitive_desc_t *pd, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    const dnnl_dim_t *sd = src_md->dims;
    if (sd[1] != c->ic)
        return rd_error_set(err, RD_ERR_SHAPE, "a %dx%d conv expects %d input channels, gets %lld",
                            c->kh, c->kw, c->ic, (long long)sd[1]);
    dnnl_dim_t oh = (sd[2] + 2 * c->pad - c->kh) / c->stride + 1;
    dnnl_dim_t ow = (sd[3] + 2 * c->pad - c->kw) / c->stride + 1;
    if (sd[2] + 2 * c->pad < c->kh || sd[3] + 2 * c->pad < c->kw)
        return rd_error_set(err, RD_ERR_ARG, "input too small: %lldx%lld reaches a %dx%d conv",
                            (long long)sd[2], (long long)sd[3], c->kh, c->kw);
    dnnl_memory_desc_t w_md, b_md, d_md;
    dnnl_convolution_desc_t desc;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_md, 4, (dnnl_dims_t){c->oc, c->ic, c->kh, c->kw},
                                          weights_dt(p), dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_x));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&d_md, 4, (dnnl_dims_t){sd[0], c->oc, oh, ow},
                                          point_dt(p, c->dst_pt), dst_tag));
    DNNL_TRY(dnnl_convolution_forward_desc_init(
        &desc, dnnl_forward_inference, alg, src_md, &w_md, &b_md, &d_md,
        (dnnl_dims_t){c->stride, c->stride}, (dnnl_dims_t){c->pad, c->pad},
        (dnnl_dims_t){c->pad, c->pad}));
    qattr_t q = {c->oscale, c->oc, c->sum_scale, c->sum_pt >= 0 ? point_dt(p, c->sum_pt) : dnnl_u8};
    return make_pd(p, &desc, post, p->int8 ? &q : NULL,
                   alg == dnnl_convolution_winograd ? "wino_4x3" : NULL, pd, err);
fail:
    return st;
}

/* For the last conv of a block: *dst is the shortcut on entry and, on return,
 * the tensor the conv accumulates into (the sum post-op reads the shortcut in
 * its own data type). A reorder copies the shortcut when the conv chose
 * another layout; a second view of the buffer gives the output's data type
 * when it differs (INT8: an s8 downsample into a u8 block output). */
static rd_status_t sum_target(plan_t *p, const dnnl_memory_desc_t *d_md, int *dst,
                              rd_error_t *err)
{
    rd_status_t st = RD_OK;
    const tensor_t *sc = &p->tensors[*dst];
    char sbuf[DIMS_STR_MAX], dbuf[DIMS_STR_MAX];
    if (sc->md.ndims != d_md->ndims ||
        memcmp(sc->md.dims, d_md->dims, (size_t)d_md->ndims * sizeof *d_md->dims) != 0)
        return rd_error_set(err, RD_ERR_SHAPE,
                            "a block's shortcut %s and main path %s differ in shape",
                            dims_format(sc->md.dims, sc->md.ndims, sbuf, sizeof sbuf),
                            dims_format(d_md->dims, d_md->ndims, dbuf, sizeof dbuf));
    dnnl_data_type_t sc_dt = sc->md.data_type;
    dnnl_memory_desc_t want = as_type(d_md, sc_dt);
    if (!dnnl_memory_desc_equal(&sc->md, &want)) {
        int copy;
        st = plan_new_tensor(p, &want, BIND_ARENA, -1, NULL, &copy, err);
        if (st == RD_OK)
            st = add_reorder(p, *dst, copy, 1.0f, err);
        if (st != RD_OK)
            return st;
        plan_release(p, *dst);
        *dst = copy;
    }
    if (sc_dt == d_md->data_type)
        return RD_OK;
    int slot = p->tensors[*dst].slot;
    plan_release(p, *dst); /* the view takes the slot over */
    return plan_new_tensor(p, d_md, BIND_ARENA, slot, NULL, dst, err);
}

/* Completes a conv whose pd exists: weights, destination, step. For
 * POST_SUM_RELU, *dst is the shortcut on entry and the block's output on
 * return (sum_target). Otherwise *dst is a new arena tensor in slot (or the
 * first free one when slot < 0). */
static rd_status_t conv_finish(plan_t *p, const_dnnl_primitive_desc_t pd, const net_conv_t *c,
                               int src, post_t post, int slot, int *dst, rd_error_t *err)
{
    dnnl_memory_t w, b;
    rd_status_t st = weights_for(p, pd, dnnl_query_weights_md,
                                 p->int8 ? (const void *)c->qweight : c->weight,
                                 p->int8 ? dnnl_s8 : dnnl_f32, 4,
                                 (dnnl_dims_t){c->oc, c->ic, c->kh, c->kw}, dnnl_oihw, &w, err);
    /* The bias was asked for plain (dnnl_x), so this wraps the bias itself. */
    const dnnl_memory_desc_t *b_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
    if (st == RD_OK)
        st = plan_ctx_weights(p->ctx, p->int8 ? c->qbias : c->bias, b_md, b_md, &b, err);
    if (st != RD_OK)
        return st;
    const dnnl_memory_desc_t *d_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (post == POST_SUM_RELU)
        st = sum_target(p, d_md, dst, err);
    else
        st = plan_new_tensor(p, d_md, BIND_ARENA, slot, NULL, dst, err);
    if (st != RD_OK)
        return st;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->tensors[src].mem},
                              {DNNL_ARG_WEIGHTS, w},
                              {DNNL_ARG_BIAS, b},
                              {DNNL_ARG_DST, p->tensors[*dst].mem}};
    st = plan_add_step(p, pd, args, 4, err);
    if (st == RD_OK) {
        p->steps[p->n_steps - 1].point = c->dst_pt;
        p->steps[p->n_steps - 1].point_mem = p->tensors[*dst].mem;
    }
    return st;
}

/* Winograd F(4x4,3x3) (oneDNN's jit_wino_4x3, chosen by name in pick_impl)
 * runs a 3x3 stride-1 conv in about half the time of the direct brgemm kernel
 * on 2 AVX-512 cores, at any batch size, with 4x larger weights. On 7x7 maps
 * it gained nothing measurable and cost most of the extra weights; in
 * bottleneck nets the 3x3 convs are a minority and the layout changes around
 * them made ResNet-50 ~12% slower, so basic-block nets only
 * (docs/performance.md). Its activations are nChw16c; build_stem starts such
 * plans in that layout, and add_conv reorders a source that is not. */
static int plan_wants_winograd(const net_t *net)
{
    return net->n_blocks > 0 && net->blocks[0].n_convs == 2;
}

static int use_winograd(const plan_t *p, const net_conv_t *c, const dnnl_memory_desc_t *src_md)
{
    return p->winograd && c->kh == 3 && c->kw == 3 && c->stride == 1 &&
           src_md->dims[2] * src_md->dims[3] >= WINOGRAD_MIN_PIXELS;
}

/* Winograd with the source's layout, else with the layout it prefers;
 * failure (unimplemented) only means falling back to the direct conv. */
static int winograd_pd(plan_t *p, const net_conv_t *c, int src, post_t post,
                       dnnl_primitive_desc_t *pd)
{
    rd_error_t ignored;
    dnnl_memory_desc_t md = p->tensors[src].md;
    const dnnl_alg_kind_t wino = dnnl_convolution_winograd;
    if (conv_pd(p, c, &md, wino, dnnl_format_tag_any, post, pd, &ignored) == RD_OK)
        return 1;
    if (dnnl_memory_desc_init_by_tag(&md, 4, p->tensors[src].md.dims, dnnl_f32,
                                     dnnl_format_tag_any) != dnnl_success)
        return 0;
    return conv_pd(p, c, &md, wino, dnnl_format_tag_any, post, pd, &ignored) == RD_OK;
}

static rd_status_t add_conv(plan_t *p, const net_conv_t *c, int src, post_t post, int *dst,
                            rd_error_t *err)
{
    dnnl_primitive_desc_t pd = NULL;
    rd_status_t st = RD_OK;
    int in = src;
    if (!use_winograd(p, c, &p->tensors[src].md) || !winograd_pd(p, c, src, post, &pd))
        st = conv_pd(p, c, &p->tensors[src].md, dnnl_convolution_direct, dnnl_format_tag_any,
                     post, &pd, err);
    const dnnl_memory_desc_t *want =
        st == RD_OK ? dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0) : NULL;
    if (want && !dnnl_memory_desc_equal(want, &p->tensors[src].md)) {
        st = plan_new_tensor(p, want, BIND_ARENA, -1, NULL, &in, err);
        if (st == RD_OK)
            st = add_reorder(p, src, in, 1.0f, err);
    }
    if (st == RD_OK)
        st = conv_finish(p, pd, c, in, post, -1, dst, err);
    if (in != src)
        plan_release(p, in);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Pooling over k_h x k_w windows into a new arena tensor in slot (< 0: any free). */
static rd_status_t add_pool(plan_t *p, dnnl_alg_kind_t alg, int src, int k_h, int k_w,
                            int stride, int pad, int slot, int *dst, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_dim_t *sd = p->tensors[src].md.dims;
    dnnl_memory_desc_t d_md;
    dnnl_pooling_desc_t desc;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(
        &d_md, 4,
        (dnnl_dims_t){sd[0], sd[1], (sd[2] + 2 * pad - k_h) / stride + 1,
                      (sd[3] + 2 * pad - k_w) / stride + 1},
        p->tensors[src].md.data_type, dnnl_format_tag_any));
    DNNL_TRY(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, alg,
                                            &p->tensors[src].md, &d_md,
                                            (dnnl_dims_t){stride, stride}, (dnnl_dims_t){k_h, k_w},
                                            (dnnl_dims_t){pad, pad}, (dnnl_dims_t){pad, pad}));
    st = make_pd(p, &desc, POST_NONE, NULL, NULL, &pd, err);
    if (st == RD_OK)
        st = plan_new_tensor(p, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), BIND_ARENA, slot,
                        NULL, dst, err);
    if (st == RD_OK) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->tensors[src].mem},
                                  {DNNL_ARG_DST, p->tensors[*dst].mem}};
        st = plan_add_step(p, pd, args, 2, err);
    }
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Input reorder (when the stem wants another layout than NCHW), stem conv +
 * ReLU into its own slot, max pool 3x3/2 pad 1. */
static rd_status_t build_stem(plan_t *p, const net_t *net, int h, int w, int *out,
                              rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t user_md, any_md;
    dnnl_dims_t dims = {p->n_images, 3, h, w};
    int src, stem;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&user_md, 4, dims, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&any_md, 4, dims, point_dt(p, 0), dnnl_format_tag_any));
    /* With Winograd ahead, the stem writes its blocked layout, so that the max
     * pool and the first block need no reorder. */
    rd_error_t ignored;
    if (!p->winograd || conv_pd(p, &net->stem, &any_md, dnnl_convolution_direct, dnnl_nChw16c,
                                POST_RELU, &pd, &ignored) != RD_OK)
        st = conv_pd(p, &net->stem, &any_md, dnnl_convolution_direct, dnnl_format_tag_any,
                     POST_RELU, &pd, err);
    if (st == RD_OK)
        st = plan_new_tensor(p, &user_md, BIND_INPUT, -1, NULL, &p->input_t, err);
    if (st != RD_OK)
        goto fail;
    src = p->input_t;
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    if (!dnnl_memory_desc_equal(src_md, &user_md)) {
        st = plan_new_tensor(p, src_md, BIND_ARENA, 0, NULL, &src, err);
        if (st == RD_OK)
            st = add_reorder(p, p->input_t, src, input_scale(p), err);
    }
    if (st == RD_OK)
        st = conv_finish(p, pd, &net->stem, src, POST_RELU, SLOT_STEM, &stem, err);
    if (st != RD_OK)
        goto fail;
    /* Slot 0 is free again, and the only one the stem's output does not overlap. */
    plan_release(p, src);
    st = add_pool(p, dnnl_pooling_max, stem, 3, 3, 2, 1, 0, out, err);
    plan_release(p, stem);
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

/* One residual block; *x is its input on entry and its output on return. */
static rd_status_t build_block(plan_t *p, const net_block_t *b, int *x, rd_error_t *err)
{
    int in = *x, cur = in, sc = in, last = b->n_convs - 1;
    for (int i = 0; i < last; i++) {
        int next;
        rd_status_t st = add_conv(p, &b->conv[i], cur, POST_RELU, &next, err);
        if (st != RD_OK)
            return st;
        if (cur != in)
            plan_release(p, cur);
        cur = next;
    }
    if (b->has_downsample) {
        rd_status_t st = add_conv(p, &b->downsample, in, POST_NONE, &sc, err);
        if (st != RD_OK)
            return st;
        plan_release(p, in);
    }
    rd_status_t st = add_conv(p, &b->conv[last], cur, POST_SUM_RELU, &sc, err);
    if (st != RD_OK)
        return st;
    plan_release(p, cur);
    if (sc != in)
        plan_release(p, in);
    *x = sc;
    return RD_OK;
}

/* Replaces *x by a copy in data type dt, in its layout, multiplied by scale. */
static rd_status_t retype(plan_t *p, int *x, dnnl_data_type_t dt, float scale, rd_error_t *err)
{
    dnnl_memory_desc_t md = as_type(&p->tensors[*x].md, dt);
    int out;
    rd_status_t st = plan_new_tensor(p, &md, BIND_ARENA, -1, NULL, &out, err);
    if (st == RD_OK)
        st = add_reorder(p, *x, out, scale, err);
    if (st == RD_OK) {
        plan_release(p, *x);
        *x = out;
    }
    return st;
}

/* INT8 and BF16: the last block's output back to f32, in its layout. The
 * pooling and fc that follow run in f32: together under 1% of the work, and
 * the 7x7 mean keeps precision that a u8 or bf16 result would round away. */
static rd_status_t dequantize(plan_t *p, int *x, rd_error_t *err)
{
    return retype(p, x, dnnl_f32,
                  p->int8 ? 1.0f / p->net->points[p->net->n_points - 1].scale : 1.0f, err);
}

/* Global average pooling, then fc into the caller's logits (plain nc). */
static rd_status_t build_head(plan_t *p, const net_t *net, int x, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_dim_t *xd = p->tensors[x].md.dims;
    int pooled;
    if (xd[1] != net->fc_in)
        return rd_error_set(err, RD_ERR_SHAPE, "fc expects %d features, the last block gives %lld",
                            net->fc_in, (long long)xd[1]);
    if ((p->int8 || p->bf16) && (st = dequantize(p, &x, err)) != RD_OK)
        return st;
    st = add_pool(p, dnnl_pooling_avg_exclude_padding, x, (int)xd[2], (int)xd[3], 1, 0, -1,
                  &pooled, err);
    if (st != RD_OK)
        return st;
    p->feature_t = x; /* neither is released, so no later tensor reuses their slots */
    p->pooled_t = pooled;
    dnnl_dims_t w_dims = {net->n_classes, net->fc_in, 1, 1};
    dnnl_memory_desc_t w_md, b_md, d_md;
    dnnl_inner_product_desc_t desc;
    dnnl_memory_t w, b;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_md, 4, w_dims, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, (dnnl_dims_t){net->n_classes}, dnnl_f32, dnnl_x));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&d_md, 2, (dnnl_dims_t){p->n_images, net->n_classes},
                                          dnnl_f32, dnnl_nc));
    DNNL_TRY(dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_inference,
                                                  &p->tensors[pooled].md, &w_md, &b_md, &d_md));
    st = make_pd(p, &desc, POST_NONE, NULL, NULL, &pd, err);
    if (st == RD_OK)
        st = weights_for(p, pd, dnnl_query_weights_md, net->fc_weight, dnnl_f32, 4, w_dims,
                         dnnl_oihw, &w, err);
    if (st == RD_OK)
        st = plan_ctx_weights(p->ctx, net->fc_bias, &b_md,
                              dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), &b, err);
    if (st == RD_OK)
        st = plan_new_tensor(p, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), BIND_OUTPUT, -1,
                        NULL, &p->output_t, err);
    if (st == RD_OK) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->tensors[pooled].mem},
                                  {DNNL_ARG_WEIGHTS, w},
                                  {DNNL_ARG_BIAS, b},
                                  {DNNL_ARG_DST, p->tensors[p->output_t].mem}};
        st = plan_add_step(p, pd, args, 4, err);
    }
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

rd_status_t plan_create(plan_ctx_t *ctx, const net_t *net, int n_images, int input_h,
                        int input_w, unsigned flags, plan_t **out, rd_error_t *err)
{
    *out = NULL;
    if ((flags & PLAN_INT8) && !net->stem.qweight)
        return rd_error_set(err, RD_ERR_ARG, "an INT8 plan needs a quantized net");
    if ((flags & PLAN_INT8) && (flags & PLAN_BF16))
        return rd_error_set(err, RD_ERR_ARG, "a plan is INT8 or BF16, not both");
    if (n_images < 1 || input_h < 1 || input_w < 1)
        return rd_error_set(err, RD_ERR_ARG, "plan for %d images of %dx%d", n_images, input_h,
                            input_w);
    plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory building a plan");
    p->ctx = ctx;
    p->n_images = n_images;
    p->net = net;
    p->int8 = (flags & PLAN_INT8) != 0;
    p->bf16 = (flags & PLAN_BF16) != 0;
    /* oneDNN's Winograd is f32 only. */
    p->winograd = (flags & PLAN_WINOGRAD) && !p->int8 && !p->bf16 && plan_wants_winograd(net);
    int x;
    /* BF16: the stem and max pool run in f32, then one reorder to bf16. A bf16
     * input rounds Caffe-style pixels (0..255 minus the mean) by up to 0.5,
     * which doubled the largest top-5 probability error on the evaluation
     * photos (0.039 against 0.020) for a 6-20% slower net (docs/performance.md). */
    int bf16 = p->bf16;
    p->bf16 = 0;
    rd_status_t st = build_stem(p, net, input_h, input_w, &x, err);
    p->bf16 = bf16;
    if (st == RD_OK && bf16)
        st = retype(p, &x, dnnl_bf16, 1.0f, err);
    for (int i = 0; st == RD_OK && i < net->n_blocks; i++)
        st = build_block(p, &net->blocks[i], &x, err);
    if (st == RD_OK)
        st = build_head(p, net, x, err);
    if (st == RD_OK) {
        plan_layout(p);
        st = plan_ctx_reserve(ctx, p->arena_bytes, p->scratch_bytes, err);
    }
    if (st != RD_OK) {
        plan_free(p);
        return rd_error_prefix(err, "batch of %d", n_images);
    }
    *out = p;
    return RD_OK;
}
