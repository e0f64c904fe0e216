/* loader.c - builds a BN-folded net_t from torchvision-named tensors (see
 * loader.h). The architecture is inferred from the tensors alone: block type
 * from layer1.0.conv3, blocks per stage from the layerS.i indices, widths from
 * each stage's first block; then every tensor's shape is checked against what
 * that architecture needs, so a wrong file fails here with the tensor's name
 * rather than later inside oneDNN. Metadata and labels: loader_meta.c,
 * loader_labels.c. */
#include "loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dims.h"
#include "loader_meta.h"

#define NAME_MAX_LEN 96

typedef struct {
    const safetensors_t *st;
    bool bottleneck;
    bool has_bias;       /* conv1.bias exists, so every conv must have one */
    model_stride_t stride;
    double eps;
    rd_error_t *err;
} ctx_t;

/* What a conv needs: tensor name prefixes and its expected geometry. */
typedef struct {
    const char *conv, *bn;   /* "layer1.0.conv1", "layer1.0.bn1" */
    int oc, ic, k, stride;
} conv_spec_t;

static rd_status_t shape_error(const ctx_t *c, const safetensors_tensor_t *t, int ndim,
                               const int64_t *want)
{
    char expected[DIMS_STR_MAX], got[DIMS_STR_MAX];
    return rd_error_set(c->err, RD_ERR_SHAPE, "tensor %s: shape %s expected, file has %s",
                        t->name, dims_format(want, ndim, expected, sizeof expected),
                        dims_format(t->shape, t->ndim, got, sizeof got));
}

/* Finds the tensor called name and checks its dtype and shape; missing is an
 * error. Only tensors the net needs are checked, so unknown keys of any dtype
 * (num_batches_tracked is int64) are ignored. */
static rd_status_t require(const ctx_t *c, const char *name, int ndim, const int64_t *want,
                           const safetensors_tensor_t **out)
{
    *out = safetensors_find(c->st, name);
    if (!*out)
        return rd_error_set(c->err, RD_ERR_SHAPE, "tensor %s missing", name);
    if (safetensors_check_float(*out, c->err) != RD_OK)
        return RD_ERR_UNSUPPORTED;
    if ((*out)->ndim != ndim || memcmp((*out)->shape, want, (size_t)ndim * sizeof *want) != 0)
        return shape_error(c, *out, ndim, want);
    return RD_OK;
}

/* The output channels of a 4-d conv weight, before its full shape is known. */
static rd_status_t peek_oc(const ctx_t *c, const char *name, int *oc)
{
    const safetensors_tensor_t *t = safetensors_find(c->st, name);
    if (!t)
        return rd_error_set(c->err, RD_ERR_SHAPE, "tensor %s missing", name);
    char got[DIMS_STR_MAX];
    dims_format(t->shape, t->ndim, got, sizeof got);
    if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 65536)
        return rd_error_set(c->err, RD_ERR_SHAPE,
                            "tensor %s: 4-d [out,in,kh,kw] with 1..65536 outputs expected, "
                            "file has %s", name, got);
    *oc = (int)t->shape[0];
    return RD_OK;
}

/* Every weight must be a finite number: a NaN or Inf would make every answer
 * NaN, which softmax and top-k cannot rank. n values of tensor name. */
static rd_status_t check_finite(const ctx_t *c, const char *name, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return rd_error_set(c->err, RD_ERR_FORMAT,
                                "tensor %s: element %zu is %s (weights must be finite)", name, i,
                                isnan(v[i]) ? "NaN" : v[i] > 0 ? "+Inf" : "-Inf");
    return RD_OK;
}

/* Either every conv has a bias or none has (decided by conv1.bias). */
static rd_status_t find_bias(const ctx_t *c, const char *conv, int oc,
                             const safetensors_tensor_t **bias)
{
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s.bias", conv);
    *bias = safetensors_find(c->st, name);
    if (c->has_bias && !*bias)
        return rd_error_set(c->err, RD_ERR_SHAPE,
                            "tensor %s missing: conv1.bias exists, so every conv needs a bias "
                            "(all or none)", name);
    if (!c->has_bias && *bias)
        return rd_error_set(c->err, RD_ERR_SHAPE,
                            "tensor %s: conv1.bias is absent, so no conv may have a bias "
                            "(all or none)", name);
    return *bias ? require(c, name, 1, (int64_t[]){ oc }, bias) : RD_OK;
}

/* w' = w * s and b' = (b - mean) * s + beta, with s = gamma / sqrt(var + eps). */
static rd_status_t fold_bn(const ctx_t *c, const conv_spec_t *spec,
                           const safetensors_tensor_t *bn[4], const float *conv_bias,
                           net_conv_t *out)
{
    size_t oc = (size_t)spec->oc, per_oc = (size_t)spec->ic * (size_t)spec->k * (size_t)spec->k;
    float *p = malloc(4 * oc * sizeof *p);
    if (!p)
        return rd_error_set(c->err, RD_ERR_NOMEM, "tensor %s.weight: out of memory", spec->conv);
    float *gamma = p, *beta = p + oc, *mean = p + 2 * oc, *var = p + 3 * oc;
    rd_status_t s = RD_OK;
    for (int i = 0; i < 4 && s == RD_OK; i++) {
        safetensors_to_f32(bn[i], p + (size_t)i * oc);
        s = check_finite(c, bn[i]->name, p + (size_t)i * oc, oc);
    }
    for (size_t o = 0; o < oc && s == RD_OK; o++) {
        double d = (double)var[o] + c->eps, scale = gamma[o] / sqrt(d);
        if (!(d > 0) || !isfinite(scale)) {
            s = rd_error_set(c->err, RD_ERR_FORMAT,
                             "tensor %s.running_var: channel %zu: var %g + eps gives no finite "
                             "scale", spec->bn, o, (double)var[o]);
            break;
        }
        double b = conv_bias ? conv_bias[o] : 0.0;
        out->bias[o] = (float)((b - mean[o]) * scale + beta[o]);
        bool finite = isfinite(out->bias[o]); /* finite inputs can still overflow float here */
        for (size_t j = 0; j < per_oc; j++) {
            out->weight[o * per_oc + j] = (float)(out->weight[o * per_oc + j] * scale);
            finite &= isfinite(out->weight[o * per_oc + j]) != 0;
        }
        if (!finite)
            s = rd_error_set(c->err, RD_ERR_FORMAT,
                             "tensor %s.weight: channel %zu: folding %s gives a non-finite "
                             "weight or bias (scale %g)", spec->conv, o, spec->bn, scale);
    }
    free(p);
    return s;
}

/* Loads spec's conv weight, optional bias and BN into out, folded. On failure
 * out may hold buffers; net_free releases them. */
static rd_status_t load_conv(const ctx_t *c, const conv_spec_t *spec, net_conv_t *out)
{
    static const char *bn_keys[4] = { "weight", "bias", "running_mean", "running_var" };
    const safetensors_tensor_t *w, *b, *bn[4];
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s.weight", spec->conv);
    int64_t shape[4] = { spec->oc, spec->ic, spec->k, spec->k };
    rd_status_t s = require(c, name, 4, shape, &w);
    if (s == RD_OK)
        s = find_bias(c, spec->conv, spec->oc, &b);
    for (int i = 0; i < 4 && s == RD_OK; i++) {
        snprintf(name, sizeof name, "%s.%s", spec->bn, bn_keys[i]);
        s = require(c, name, 1, shape, &bn[i]);
    }
    if (s != RD_OK)
        return s;
    *out = (net_conv_t){ .oc = spec->oc, .ic = spec->ic, .kh = spec->k, .kw = spec->k,
                         .stride = spec->stride, .pad = spec->k / 2 };
    out->weight = malloc((size_t)w->n_elems * sizeof *out->weight);
    out->bias = malloc((size_t)spec->oc * sizeof *out->bias);
    if (!out->weight || !out->bias)
        return rd_error_set(c->err, RD_ERR_NOMEM, "tensor %s: out of memory", w->name);
    safetensors_to_f32(w, out->weight);
    s = check_finite(c, w->name, out->weight, (size_t)w->n_elems);
    if (b && s == RD_OK) { /* into out->bias, which fold_bn then overwrites channel by channel */
        safetensors_to_f32(b, out->bias);
        s = check_finite(c, b->name, out->bias, (size_t)spec->oc);
    }
    return s == RD_OK ? fold_bn(c, spec, bn, b ? out->bias : NULL, out) : s;
}

/* "layer12.3.conv1.weight" -> stage 12, block 3; -1 when name is not like that. */
static int parse_block_key(const char *name, int *stage, int *block)
{
    if (strncmp(name, "layer", 5) != 0)
        return -1;
    const char *p = name + 5;
    int v[2];
    for (int k = 0; k < 2; k++) {
        if (*p < '0' || *p > '9')
            return -1;
        for (v[k] = 0; *p >= '0' && *p <= '9' && v[k] < 100000; p++)
            v[k] = v[k] * 10 + (*p - '0');
        if (*p++ != '.')
            return -1;
    }
    *stage = v[0];
    *block = v[1];
    return 0;
}

/* Blocks per stage: consecutive layerS.i.conv1.weight from i = 0; any other
 * layerS.j.* past the count means a block is missing in between. */
static rd_status_t count_blocks(const ctx_t *c, int counts[4])
{
    char name[NAME_MAX_LEN];
    for (int s = 0; s < 4; s++) {
        counts[s] = 0;
        for (;;) {
            snprintf(name, sizeof name, "layer%d.%d.conv1.weight", s + 1, counts[s]);
            if (!safetensors_find(c->st, name))
                break;
            counts[s]++;
        }
    }
    for (int i = 0; i < safetensors_count(c->st); i++) {
        const char *key = safetensors_at(c->st, i)->name;
        int stage, block;
        if (parse_block_key(key, &stage, &block) == 0 && stage >= 1 && stage <= 4 &&
            block >= counts[stage - 1])
            return rd_error_set(c->err, RD_ERR_SHAPE, "tensor layer%d.%d.conv1.weight missing "
                                "(the file has %s)", stage, counts[stage - 1], key);
    }
    for (int s = 0; s < 4; s++)
        if (counts[s] == 0)
            return rd_error_set(c->err, RD_ERR_SHAPE, "tensor layer%d.0.conv1.weight missing",
                                s + 1);
    return RD_OK;
}

/* One residual block: in_ch -> out_ch with stride on the first block of stages 2-4. */
static rd_status_t load_block(const ctx_t *c, int stage, int index, int in_ch, int width,
                              int out_ch, net_block_t *b)
{
    char conv[3][NAME_MAX_LEN], bn[3][NAME_MAX_LEN], ds_conv[NAME_MAX_LEN], ds_bn[NAME_MAX_LEN];
    int stride = stage > 1 && index == 0 ? 2 : 1;
    for (int j = 0; j < 3; j++) {
        snprintf(conv[j], sizeof conv[j], "layer%d.%d.conv%d", stage, index, j + 1);
        snprintf(bn[j], sizeof bn[j], "layer%d.%d.bn%d", stage, index, j + 1);
    }
    conv_spec_t spec[3];
    if (c->bottleneck) {
        bool v1 = c->stride == MODEL_STRIDE_V1;
        spec[0] = (conv_spec_t){ conv[0], bn[0], width, in_ch, 1, v1 ? stride : 1 };
        spec[1] = (conv_spec_t){ conv[1], bn[1], width, width, 3, v1 ? 1 : stride };
        spec[2] = (conv_spec_t){ conv[2], bn[2], out_ch, width, 1, 1 };
    } else {
        spec[0] = (conv_spec_t){ conv[0], bn[0], width, in_ch, 3, stride };
        spec[1] = (conv_spec_t){ conv[1], bn[1], out_ch, width, 3, 1 };
    }
    b->n_convs = c->bottleneck ? 3 : 2;
    rd_status_t s = RD_OK;
    for (int j = 0; j < b->n_convs && s == RD_OK; j++)
        s = load_conv(c, &spec[j], &b->conv[j]);
    snprintf(ds_conv, sizeof ds_conv, "layer%d.%d.downsample.0", stage, index);
    snprintf(ds_bn, sizeof ds_bn, "layer%d.%d.downsample.1", stage, index);
    char ds_weight[NAME_MAX_LEN + 8];
    snprintf(ds_weight, sizeof ds_weight, "%s.weight", ds_conv);
    bool present = safetensors_find(c->st, ds_weight) != NULL;
    if (s == RD_OK && !present && (stride != 1 || in_ch != out_ch))
        s = rd_error_set(c->err, RD_ERR_SHAPE,
                         "tensor %s missing: the block goes from %d to %d channels with stride "
                         "%d, so it needs a 1x1 downsample", ds_weight, in_ch, out_ch, stride);
    if (s == RD_OK && present) {
        b->has_downsample = 1;
        conv_spec_t ds = { ds_conv, ds_bn, out_ch, in_ch, 1, stride };
        s = load_conv(c, &ds, &b->downsample);
    }
    return s;
}

/* Stage widths come from the stage's first block; every block must match. */
static rd_status_t load_stages(const ctx_t *c, net_t *net, int *in_ch, int widths[4],
                               int outs[4])
{
    char name[NAME_MAX_LEN];
    net_block_t *b = net->blocks;
    for (int s = 0; s < 4; s++) {
        snprintf(name, sizeof name, "layer%d.0.conv1.weight", s + 1);
        rd_status_t st = peek_oc(c, name, &widths[s]);
        outs[s] = widths[s];
        if (st == RD_OK && c->bottleneck) {
            snprintf(name, sizeof name, "layer%d.0.conv3.weight", s + 1);
            st = peek_oc(c, name, &outs[s]);
        }
        for (int i = 0; i < net->stage_blocks[s] && st == RD_OK; i++, b++) {
            st = load_block(c, s + 1, i, *in_ch, widths[s], outs[s], b);
            *in_ch = outs[s];
        }
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

static rd_status_t load_fc(const ctx_t *c, net_t *net, int in_ch)
{
    const safetensors_tensor_t *w = safetensors_find(c->st, "fc.weight"), *b;
    if (!w)
        return rd_error_set(c->err, RD_ERR_SHAPE, "tensor fc.weight missing");
    if (w->ndim != 2 || w->shape[0] < 1 || w->shape[0] > 1000000) {
        char got[DIMS_STR_MAX];
        dims_format(w->shape, w->ndim, got, sizeof got);
        return rd_error_set(c->err, RD_ERR_SHAPE,
                            "tensor fc.weight: [classes,%d] with 1..1000000 classes expected, "
                            "file has %s", in_ch, got);
    }
    net->n_classes = (int)w->shape[0];
    net->fc_in = in_ch;
    rd_status_t s = require(c, "fc.weight", 2, (int64_t[]){ net->n_classes, in_ch }, &w);
    if (s == RD_OK)
        s = require(c, "fc.bias", 1, (int64_t[]){ net->n_classes }, &b);
    if (s != RD_OK)
        return s;
    net->fc_weight = malloc((size_t)w->n_elems * sizeof *net->fc_weight);
    net->fc_bias = malloc((size_t)net->n_classes * sizeof *net->fc_bias);
    if (!net->fc_weight || !net->fc_bias)
        return rd_error_set(c->err, RD_ERR_NOMEM, "tensor fc.weight: out of memory");
    safetensors_to_f32(w, net->fc_weight);
    safetensors_to_f32(b, net->fc_bias);
    s = check_finite(c, "fc.weight", net->fc_weight, (size_t)w->n_elems);
    return s == RD_OK ? check_finite(c, "fc.bias", net->fc_bias, (size_t)net->n_classes) : s;
}

/* "resnet50" when the shapes are exactly torchvision's, else "resnet-custom". */
static void name_arch(const net_t *net, bool bottleneck, const int widths[4], const int outs[4],
                      char *dst, size_t size)
{
    static const struct { const char *name; bool bottleneck; int blocks[4]; } known[] = {
        { "resnet18", false, { 2, 2, 2, 2 } },   { "resnet34", false, { 3, 4, 6, 3 } },
        { "resnet50", true, { 3, 4, 6, 3 } },    { "resnet101", true, { 3, 4, 23, 3 } },
        { "resnet152", true, { 3, 8, 36, 3 } },
    };
    bool standard = net->stem.oc == 64;
    for (int s = 0; s < 4; s++)
        standard &= widths[s] == 64 << s && outs[s] == (64 << s) * (bottleneck ? 4 : 1);
    snprintf(dst, size, "resnet-custom");
    for (size_t i = 0; standard && i < sizeof known / sizeof known[0]; i++)
        if (known[i].bottleneck == bottleneck &&
            memcmp(known[i].blocks, net->stage_blocks, sizeof known[i].blocks) == 0)
            snprintf(dst, size, "%s", known[i].name);
}

static rd_status_t build_net(ctx_t *c, net_t *net, model_info_t *info)
{
    rd_status_t s = count_blocks(c, net->stage_blocks);
    if (s != RD_OK)
        return s;
    int n_blocks = 0;
    for (int i = 0; i < 4; i++)
        n_blocks += net->stage_blocks[i];
    net->blocks = calloc((size_t)n_blocks, sizeof *net->blocks);
    if (!net->blocks) /* n_blocks stays 0, so net_free walks no blocks */
        return rd_error_set(c->err, RD_ERR_NOMEM, "out of memory");
    net->n_blocks = n_blocks;
    int stem_oc, in_ch, widths[4], outs[4];
    if ((s = peek_oc(c, "conv1.weight", &stem_oc)) != RD_OK)
        return s;
    conv_spec_t stem = { "conv1", "bn1", stem_oc, 3, 7, 2 };
    if ((s = load_conv(c, &stem, &net->stem)) != RD_OK)
        return s;
    net->stem.pad = 3;
    in_ch = stem_oc;
    if ((s = load_stages(c, net, &in_ch, widths, outs)) != RD_OK ||
        (s = load_fc(c, net, in_ch)) != RD_OK)
        return s;
    name_arch(net, c->bottleneck, widths, outs, info->arch, sizeof info->arch);
    return RD_OK;
}

rd_status_t loader_build(const safetensors_t *st, const char *path, const engine_params_t *params,
                         net_t **net, model_info_t *info, rd_error_t *err)
{
    if (!st || !net || !info)
        return rd_error_set(err, RD_ERR_ARG, "loader_build: NULL argument");
    *net = NULL;
    memset(info, 0, sizeof *info);
    net_t *n = calloc(1, sizeof *n);
    rd_status_t s = n ? RD_OK : rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    if (s != RD_OK || (s = loader_meta_parse(st, path, params, info, err)) != RD_OK)
        goto fail;
    ctx_t c = { .st = st, .err = err, .stride = info->stride, .eps = info->bn_eps,
                .bottleneck = safetensors_find(st, "layer1.0.conv3.weight") != NULL,
                .has_bias = safetensors_find(st, "conv1.bias") != NULL };
    if ((s = build_net(&c, n, info)) != RD_OK)
        goto fail;
    info->bottleneck = c.bottleneck;
    info->conv_bias = c.has_bias;
    info->n_classes = n->n_classes;
    memcpy(info->stage_blocks, n->stage_blocks, sizeof info->stage_blocks);
    s = loader_labels_load(st, path, params ? params->labels_path : NULL, n->n_classes,
                           &info->labels, err);
    if (s != RD_OK)
        goto fail;
    *net = n;
    return RD_OK;
fail:
    net_free(n);
    memset(info, 0, sizeof *info);
    if (path)
        rd_error_prefix(err, "%s", path);
    return s;
}

void model_info_clear(model_info_t *info)
{
    if (!info)
        return;
    loader_labels_free(info->labels, info->n_classes);
    info->labels = NULL;
}
