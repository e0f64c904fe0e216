/* test_loader.c - architecture inference, BN folding, metadata and labels.
 * Each test writes a tiny ResNet-like model with the safetensors writer
 * (stem 4 channels, stage widths 4/8/16/32) in torchvision's key names, then
 * checks what the loader makes of it, or that it names the tensor or metadata
 * key that makes the file wrong. BN folding is checked against the formula
 * computed here in double from the file's raw tensors. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

typedef struct {
    bool bottleneck, bias;
    int stem, widths[4], blocks[4], classes;
    const char *skip;        /* a tensor to leave out */
    const char *reshape;     /* a tensor written with new_shape instead */
    int new_ndim;
    int64_t new_shape[4];
    const char *extra;       /* an extra [extra_len] tensor */
    int extra_len;
    const char *meta[24];    /* key, value, ..., NULL */
} spec_t;

static char dir[64];
static char model_path[128];
static uint32_t rng = 12345;

static float uniform(float lo, float hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng >> 8) / (float)(1u << 24);
}

static void add(safetensors_writer_t *w, const spec_t *sp, const char *name, int ndim,
                const int64_t *shape, float lo, float hi)
{
    if (sp->skip && strcmp(name, sp->skip) == 0)
        return;
    if (sp->reshape && strcmp(name, sp->reshape) == 0) {
        ndim = sp->new_ndim;
        shape = sp->new_shape;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *data = malloc((size_t)(n ? n : 1) * sizeof *data);
    for (int64_t i = 0; i < n; i++)
        data[i] = uniform(lo, hi);
    rd_error_t err;
    ck_assert_int_eq(safetensors_writer_add(w, name, ndim, shape, data, &err), RD_OK);
    free(data);
}

static void add_conv_bn(safetensors_writer_t *w, const spec_t *sp, const char *conv,
                        const char *bn, int oc, int ic, int k)
{
    char name[96];
    snprintf(name, sizeof name, "%s.weight", conv);
    add(w, sp, name, 4, (int64_t[]){ oc, ic, k, k }, -1, 1);
    if (sp->bias) {
        snprintf(name, sizeof name, "%s.bias", conv);
        add(w, sp, name, 1, (int64_t[]){ oc }, -1, 1);
    }
    static const char *keys[4] = { "weight", "bias", "running_mean", "running_var" };
    static const float lo[4] = { 0.5f, -1, -1, 0.5f }, hi[4] = { 1.5f, 1, 1, 1.5f };
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, keys[i]);
        add(w, sp, name, 1, (int64_t[]){ oc }, lo[i], hi[i]);
    }
    /* F32 [2] here; write_model rewrites it to torchvision's I64 [1], same bytes */
    snprintf(name, sizeof name, "%s.num_batches_tracked", bn);
    add(w, sp, name, 1, (int64_t[]){ 2 }, 0, 1);
}

static void add_block(safetensors_writer_t *w, const spec_t *sp, int s, int i, int in, int width,
                      int out)
{
    char conv[64], bn[64];
    int n = sp->bottleneck ? 3 : 2;
    for (int j = 0; j < n; j++) {
        snprintf(conv, sizeof conv, "layer%d.%d.conv%d", s, i, j + 1);
        snprintf(bn, sizeof bn, "layer%d.%d.bn%d", s, i, j + 1);
        int oc = j == n - 1 ? out : width, ic = j == 0 ? in : width;
        int k = sp->bottleneck && j != 1 ? 1 : 3;
        add_conv_bn(w, sp, conv, bn, oc, ic, k);
    }
    if (i == 0 && (s > 1 || in != out)) { /* torchvision's rule */
        snprintf(conv, sizeof conv, "layer%d.%d.downsample.0", s, i);
        snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s, i);
        add_conv_bn(w, sp, conv, bn, out, in, 1);
    }
}

/* Replaces every from with to (same length) in model_path's JSON header:
 * the writer only writes F32, and a few tests need other dtypes. */
static void patch_header(const char *from, const char *to)
{
    size_t n = strlen(from);
    ck_assert_uint_eq(strlen(to), n);
    FILE *f = fopen(model_path, "r+b");
    ck_assert_ptr_nonnull(f);
    uint8_t len_le[8];
    ck_assert_uint_eq(fread(len_le, 1, 8, f), 8);
    size_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | len_le[i];
    char *header = malloc(len + 1);
    ck_assert_uint_eq(fread(header, 1, len, f), len);
    header[len] = 0;
    int hits = 0;
    for (char *p = header; (p = strstr(p, from)); p += n, hits++)
        memcpy(p, to, n);
    ck_assert_int_gt(hits, 0);
    fseek(f, 8, SEEK_SET);
    ck_assert_uint_eq(fwrite(header, 1, len, f), len);
    fclose(f);
    free(header);
}

/* Writes sp as dir/<file> and remembers the path in model_path. */
static void write_model(const spec_t *sp, const char *file)
{
    snprintf(model_path, sizeof model_path, "%s/%s", dir, file);
    safetensors_writer_t *w;
    rd_error_t err;
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    add_conv_bn(w, sp, "conv1", "bn1", sp->stem, 3, 7);
    int in = sp->stem;
    for (int s = 0; s < 4; s++) {
        int out = sp->widths[s] * (sp->bottleneck ? 4 : 1);
        for (int i = 0; i < sp->blocks[s]; i++, in = out)
            add_block(w, sp, s + 1, i, in, sp->widths[s], out);
    }
    add(w, sp, "fc.weight", 2, (int64_t[]){ sp->classes, in }, -1, 1);
    add(w, sp, "fc.bias", 1, (int64_t[]){ sp->classes }, -1, 1);
    if (sp->extra)
        add(w, sp, sp->extra, 1, (int64_t[]){ sp->extra_len }, -1, 1);
    for (int i = 0; sp->meta[i]; i += 2)
        ck_assert_int_eq(safetensors_writer_meta(w, sp->meta[i], sp->meta[i + 1], &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_save(w, model_path, &err), RD_OK);
    safetensors_writer_free(w);
    patch_header("num_batches_tracked\":{\"dtype\":\"F32\",\"shape\":[2]",
                 "num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[1]");
}

static spec_t basic_spec(void)
{
    return (spec_t){ .stem = 4, .widths = { 4, 8, 16, 32 }, .blocks = { 1, 2, 2, 1 },
                     .classes = 5 };
}

static spec_t bottleneck_spec(void)
{
    return (spec_t){ .bottleneck = true, .stem = 4, .widths = { 4, 8, 16, 32 },
                     .blocks = { 1, 1, 2, 1 }, .classes = 3 };
}

/* Opens model_path and runs the loader; the file is closed again before return,
 * which also checks that the net does not point into the mapping. */
static rd_status_t load(const engine_params_t *params, net_t **net, model_info_t *info,
                        rd_error_t *err)
{
    safetensors_t *st;
    rd_status_t s = safetensors_open(model_path, &st, err);
    ck_assert_msg(s == RD_OK, "%s", err->msg);
    *net = (net_t *)st; /* must be reset */
    s = loader_build(st, model_path, params, net, info, err);
    safetensors_close(st);
    return s;
}

static void expect_fail(const spec_t *sp, const engine_params_t *params, rd_status_t code,
                        const char *want)
{
    write_model(sp, "bad.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err = { 0 };
    rd_status_t s = load(params, &net, &info, &err);
    ck_assert_msg(s == code, "status %d, want %d: %s", s, code, err.msg);
    ck_assert_ptr_null(net);
    ck_assert_ptr_null(info.labels);
    ck_assert_msg(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
    ck_assert_ptr_eq(strstr(err.msg, model_path), err.msg);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_loader_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    static const char *files[] = { "bad.safetensors", "m.safetensors", "labels.txt",
                                   "labels.json", "resnet18.safetensors" };
    char path[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}

static void check_conv(const net_conv_t *c, int oc, int ic, int k, int stride, int pad)
{
    ck_assert_int_eq(c->oc, oc);
    ck_assert_int_eq(c->ic, ic);
    ck_assert_int_eq(c->kh, k);
    ck_assert_int_eq(c->kw, k);
    ck_assert_int_eq(c->stride, stride);
    ck_assert_int_eq(c->pad, pad);
    ck_assert_ptr_nonnull(c->weight);
    ck_assert_ptr_nonnull(c->bias);
}

START_TEST(infers_basic_model)
{
    spec_t sp = basic_spec();
    write_model(&sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert(!info.bottleneck);
    ck_assert(!info.conv_bias);
    ck_assert_int_eq(memcmp(info.stage_blocks, (int[]){ 1, 2, 2, 1 }, sizeof info.stage_blocks), 0);
    ck_assert_int_eq(memcmp(net->stage_blocks, info.stage_blocks, sizeof info.stage_blocks), 0);
    ck_assert_int_eq(info.n_classes, 5);
    ck_assert_str_eq(info.arch, "resnet-custom");
    ck_assert_str_eq(info.name, "m");
    ck_assert_int_eq(net->n_blocks, 6);
    check_conv(&net->stem, 4, 3, 7, 2, 3);
    /* layer1.0: 4 -> 4, stride 1, no downsample */
    ck_assert_int_eq(net->blocks[0].n_convs, 2);
    check_conv(&net->blocks[0].conv[0], 4, 4, 3, 1, 1);
    ck_assert(!net->blocks[0].has_downsample);
    /* layer2.0: stride 2 on conv1, downsample 1x1 stride 2 */
    check_conv(&net->blocks[1].conv[0], 8, 4, 3, 2, 1);
    check_conv(&net->blocks[1].conv[1], 8, 8, 3, 1, 1);
    ck_assert(net->blocks[1].has_downsample);
    check_conv(&net->blocks[1].downsample, 8, 4, 1, 2, 0);
    check_conv(&net->blocks[2].conv[0], 8, 8, 3, 1, 1);
    ck_assert(!net->blocks[2].has_downsample);
    check_conv(&net->blocks[5].conv[1], 32, 32, 3, 1, 1);
    ck_assert_int_eq(net->fc_in, 32);
    ck_assert_int_eq(net->n_classes, 5);
    ck_assert_str_eq(info.labels[0], "class_0");
    ck_assert_str_eq(info.labels[4], "class_4");
    /* metadata defaults */
    ck_assert_int_eq(info.stride, MODEL_STRIDE_V1_5);
    ck_assert_float_eq(info.bn_eps, 1e-5f);
    ck_assert_int_eq(info.preproc.input_h, 224);
    ck_assert_int_eq(info.preproc.input_w, 224);
    ck_assert_int_eq(info.preproc.resize, 256);
    ck_assert_int_eq(info.preproc.channel_order, MODEL_RGB);
    ck_assert_float_eq_tol(info.preproc.scale, 1.0f / 255, 1e-9);
    ck_assert_float_eq(info.preproc.mean[1], 0.456f);
    ck_assert_float_eq(info.preproc.std[2], 0.225f);
    net_free(net);
    model_info_clear(&info);
    ck_assert_ptr_null(info.labels);
}
END_TEST

static void check_bottleneck(model_stride_t stride)
{
    spec_t sp = bottleneck_spec();
    if (stride == MODEL_STRIDE_V1)
        sp.meta[0] = "stride", sp.meta[1] = "v1";
    write_model(&sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert(info.bottleneck);
    ck_assert_int_eq(info.stride, stride);
    ck_assert_int_eq(memcmp(info.stage_blocks, (int[]){ 1, 1, 2, 1 }, sizeof info.stage_blocks), 0);
    ck_assert_int_eq(info.n_classes, 3);
    /* layer1.0: 4 -> 16 at stride 1 still needs the projection */
    ck_assert_int_eq(net->blocks[0].n_convs, 3);
    check_conv(&net->blocks[0].conv[0], 4, 4, 1, 1, 0);
    check_conv(&net->blocks[0].conv[1], 4, 4, 3, 1, 1);
    check_conv(&net->blocks[0].conv[2], 16, 4, 1, 1, 0);
    check_conv(&net->blocks[0].downsample, 16, 4, 1, 1, 0);
    /* layer2.0: 16 -> 32, the stride on conv1 (v1) or conv2 (v1.5) */
    int s1 = stride == MODEL_STRIDE_V1 ? 2 : 1, s2 = 3 - s1;
    check_conv(&net->blocks[1].conv[0], 8, 16, 1, s1, 0);
    check_conv(&net->blocks[1].conv[1], 8, 8, 3, s2, 1);
    check_conv(&net->blocks[1].conv[2], 32, 8, 1, 1, 0);
    check_conv(&net->blocks[1].downsample, 32, 16, 1, 2, 0);
    /* layer3.1: no stride anywhere, identity shortcut */
    check_conv(&net->blocks[3].conv[0], 16, 64, 1, 1, 0);
    check_conv(&net->blocks[3].conv[1], 16, 16, 3, 1, 1);
    ck_assert(!net->blocks[3].has_downsample);
    ck_assert_int_eq(net->fc_in, 128);
    net_free(net);
    model_info_clear(&info);
}

START_TEST(infers_bottleneck_v1_5)
{
    check_bottleneck(MODEL_STRIDE_V1_5);
}
END_TEST

START_TEST(infers_bottleneck_v1)
{
    check_bottleneck(MODEL_STRIDE_V1);
}
END_TEST

static float *raw(const safetensors_t *st, const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const safetensors_tensor_t *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL, "%s", name);
    float *v = malloc((size_t)t->n_elems * sizeof *v);
    safetensors_to_f32(t, v);
    return v;
}

/* Folded conv == w * gamma / sqrt(var + eps), (b - mean) * that + beta, in double. */
static void check_fold(const safetensors_t *st, const net_conv_t *c, const char *conv,
                       const char *bn, bool bias, double eps)
{
    float *w = raw(st, "%s.weight", conv), *g = raw(st, "%s.weight", bn);
    float *beta = raw(st, "%s.bias", bn), *mean = raw(st, "%s.running_mean", bn);
    float *var = raw(st, "%s.running_var", bn), *b = bias ? raw(st, "%s.bias", conv) : NULL;
    int per = c->ic * c->kh * c->kw;
    for (int o = 0; o < c->oc; o++) {
        double s = g[o] / sqrt((double)var[o] + eps);
        double want_b = ((b ? b[o] : 0.0) - mean[o]) * s + beta[o];
        ck_assert_double_eq_tol(c->bias[o], want_b, 1e-6 * (1 + fabs(want_b)));
        for (int j = 0; j < per; j += 5) {
            double want = w[o * per + j] * s;
            ck_assert_double_eq_tol(c->weight[o * per + j], want, 1e-6 * (1 + fabs(want)));
        }
    }
    free(w), free(g), free(beta), free(mean), free(var), free(b);
}

static void check_folding(bool bias, const char *eps_text, double eps)
{
    spec_t sp = bottleneck_spec();
    sp.bias = bias;
    sp.meta[0] = "bn_eps", sp.meta[1] = eps_text;
    write_model(&sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(info.conv_bias, bias);
    ck_assert_float_eq(info.bn_eps, (float)eps);
    safetensors_t *st;
    ck_assert_int_eq(safetensors_open(model_path, &st, &err), RD_OK);
    check_fold(st, &net->stem, "conv1", "bn1", bias, eps);
    check_fold(st, &net->blocks[1].conv[1], "layer2.0.conv2", "layer2.0.bn2", bias, eps);
    check_fold(st, &net->blocks[1].downsample, "layer2.0.downsample.0", "layer2.0.downsample.1",
               bias, eps);
    check_fold(st, &net->blocks[4].conv[2], "layer4.0.conv3", "layer4.0.bn3", bias, eps);
    float *fw = raw(st, "fc.weight"), *fb = raw(st, "fc.bias");
    ck_assert_int_eq(memcmp(net->fc_weight, fw, 3 * 128 * sizeof *fw), 0);
    ck_assert_int_eq(memcmp(net->fc_bias, fb, 3 * sizeof *fb), 0);
    free(fw), free(fb);
    safetensors_close(st);
    net_free(net);
    model_info_clear(&info);
}

START_TEST(folds_batchnorm)
{
    check_folding(false, "1e-05", 1e-5);
}
END_TEST

START_TEST(folds_batchnorm_with_conv_bias)
{
    check_folding(true, "0.001", 1e-3);
}
END_TEST

START_TEST(reads_metadata_and_overrides)
{
    spec_t sp = basic_spec();
    const char *meta[] = { "name", "tiny-net", "arch", "whatever", "input_size", "128x96",
                           "channel_order", "BGR", "scale", "1", "mean",
                           "[103.939, 116.779, 123.68]", "std", "[1,1,1]", "resize", "150", NULL };
    memcpy(sp.meta, meta, sizeof meta);
    write_model(&sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(info.name, "tiny-net");
    ck_assert_str_eq(info.arch, "resnet-custom");
    ck_assert_int_eq(info.preproc.input_h, 128);
    ck_assert_int_eq(info.preproc.input_w, 96);
    ck_assert_int_eq(info.preproc.resize, 150);
    ck_assert_int_eq(info.preproc.channel_order, MODEL_BGR);
    ck_assert_float_eq(info.preproc.scale, 1.0f);
    ck_assert_float_eq(info.preproc.mean[0], 103.939f);
    ck_assert_float_eq(info.preproc.mean[2], 123.68f);
    ck_assert_float_eq(info.preproc.std[1], 1.0f);
    net_free(net);
    model_info_clear(&info);

    /* params override the input size; the default resize follows it */
    sp.meta[8] = NULL; /* keep name, arch, input_size, channel_order */
    write_model(&sp, "m.safetensors");
    engine_params_t p = { 0 };
    p.input_h = p.input_w = 160;
    ck_assert_msg(load(&p, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(info.preproc.input_h, 160);
    ck_assert_int_eq(info.preproc.input_w, 160);
    ck_assert_int_eq(info.preproc.resize, 183); /* round(160 * 256 / 224) */
    net_free(net);
    model_info_clear(&info);
}
END_TEST

static void write_text(const char *file, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void check_labels(const spec_t *sp, const engine_params_t *p, const char *first,
                         const char *last)
{
    write_model(sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(p, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(info.labels[0], first);
    ck_assert_str_eq(info.labels[info.n_classes - 1], last);
    net_free(net);
    model_info_clear(&info);
}

START_TEST(loads_labels)
{
    spec_t sp = basic_spec();
    sp.meta[0] = "labels", sp.meta[1] = "[\"cat\",\"dog\",\"eel\",\"fox\",\"gnu\"]";
    check_labels(&sp, NULL, "cat", "gnu");

    write_text("labels.txt", "tench\r\ngoldfish\n\nshark\nray\n\n");
    sp.meta[0] = "labels_file", sp.meta[1] = "labels.txt";
    check_labels(&sp, NULL, "tench", "ray");

    write_text("labels.json", "{\"1\": \"b\", \"0\": \"a\", \"2\": \"c\", \"3\": \"d\", \"4\": \"e\"}");
    sp.meta[1] = "labels.json";
    check_labels(&sp, NULL, "a", "e");

    /* params->labels_path wins over the metadata; relative to the working folder */
    char path[160];
    snprintf(path, sizeof path, "%s/labels.json", dir);
    write_text("labels.json", " [\"v\",\"w\",\"x\",\"y\",\"z\"]");
    engine_params_t p = { 0 };
    p.labels_path = path;
    sp.meta[1] = "labels.txt";
    check_labels(&sp, &p, "v", "z");
}
END_TEST

START_TEST(rejects_bad_labels)
{
    spec_t sp = basic_spec();
    sp.meta[0] = "labels", sp.meta[1] = "[\"cat\",\"dog\"]";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "metadata labels: 2 labels for 5 classes");
    sp.meta[1] = "cat,dog";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "metadata labels: not a JSON array");
    sp.meta[1] = "[\"a\",\"b\",\"c\",\"d\",5]";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "metadata labels: label 4 is not a string");
    sp.meta[2] = "labels_file", sp.meta[3] = "labels.txt";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "labels and labels_file");

    spec_t f = basic_spec();
    f.meta[0] = "labels_file", f.meta[1] = "labels.txt";
    write_text("labels.txt", "a\nb\nc\nd\ne\nf\n");
    expect_fail(&f, NULL, RD_ERR_SHAPE, "labels.txt: 6 labels for 5 classes");
    write_text("labels.txt", "a\nb\n\xff\xfe\nd\ne\n");
    expect_fail(&f, NULL, RD_ERR_FORMAT, "label 2 is not valid UTF-8");
    write_text("labels.json", "{\"0\": \"a\", \"1\": \"b\", \"2\": \"c\", \"3\": \"d\", \"5\": \"e\"}");
    f.meta[1] = "labels.json";
    expect_fail(&f, NULL, RD_ERR_FORMAT, "labels.json: label 4 is missing");
    write_text("labels.json", "[\"a\", ");
    expect_fail(&f, NULL, RD_ERR_FORMAT, "labels.json: bad JSON");
    f.meta[1] = "nonexistent.txt";
    expect_fail(&f, NULL, RD_ERR_IO, "nonexistent.txt");
}
END_TEST

START_TEST(rejects_missing_and_misshapen_tensors)
{
    spec_t sp = basic_spec();
    sp.skip = "layer2.0.bn1.running_var";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer2.0.bn1.running_var missing");
    sp = basic_spec();
    sp.skip = "fc.bias";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor fc.bias missing");
    sp = basic_spec();
    sp.skip = "conv1.weight";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor conv1.weight missing");
    sp = basic_spec();
    sp.reshape = "layer3.1.conv2.weight", sp.new_ndim = 4;
    memcpy(sp.new_shape, (int64_t[]){ 16, 8, 3, 3 }, sizeof sp.new_shape);
    expect_fail(&sp, NULL, RD_ERR_SHAPE,
                "tensor layer3.1.conv2.weight: shape [16,16,3,3] expected, file has [16,8,3,3]");
    sp.reshape = "layer2.0.downsample.0.weight";
    memcpy(sp.new_shape, (int64_t[]){ 8, 4, 3, 3 }, sizeof sp.new_shape);
    expect_fail(&sp, NULL, RD_ERR_SHAPE,
                "tensor layer2.0.downsample.0.weight: shape [8,4,1,1] expected, file has [8,4,3,3]");
    sp.reshape = "layer1.0.bn2.bias", sp.new_ndim = 1;
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer1.0.bn2.bias: shape [4] expected, file has [8]");
    sp.reshape = "fc.weight", sp.new_ndim = 2;
    memcpy(sp.new_shape, (int64_t[4]){ 5, 16 }, sizeof sp.new_shape);
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor fc.weight: shape [5,32] expected, file has [5,16]");
    sp.reshape = "conv1.weight", sp.new_ndim = 4;
    memcpy(sp.new_shape, (int64_t[]){ 4, 1, 7, 7 }, sizeof sp.new_shape);
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor conv1.weight: shape [4,3,7,7] expected");
    sp.reshape = "layer4.0.conv1.weight", sp.new_ndim = 2;
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer4.0.conv1.weight: 4-d");
    sp = basic_spec();
    sp.skip = "layer2.0.downsample.0.weight";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer2.0.downsample.0.weight missing");
    sp = basic_spec();
    sp.skip = "layer3.1.conv1.weight"; /* layer3.1's other tensors are still there */
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer3.1.conv1.weight missing");
    sp = basic_spec();
    sp.blocks[3] = 0;
    sp.widths[3] = 16;
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer4.0.conv1.weight missing");
    /* a bottleneck's later stage without conv3 */
    sp = bottleneck_spec();
    sp.skip = "layer3.1.conv3.weight";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer3.1.conv3.weight missing");
}
END_TEST

START_TEST(rejects_integer_weights)
{
    spec_t sp = basic_spec();
    write_model(&sp, "bad.safetensors");
    patch_header("\"layer1.0.bn1.running_var\":{\"dtype\":\"F32\",\"shape\":[4]",
                 "\"layer1.0.bn1.running_var\":{\"dtype\":\"I64\",\"shape\":[2]");
    safetensors_t *st;
    rd_error_t err;
    ck_assert_int_eq(safetensors_open(model_path, &st, &err), RD_OK);
    net_t *net;
    model_info_t info;
    ck_assert_int_eq(loader_build(st, NULL, NULL, &net, &info, &err), RD_ERR_UNSUPPORTED);
    ck_assert_ptr_null(net);
    ck_assert_str_eq(err.msg, "tensor layer1.0.bn1.running_var: dtype I64 not supported "
                              "(F32, F16, BF16)");
    safetensors_close(st);
}
END_TEST

START_TEST(rejects_inconsistent_bias)
{
    spec_t sp = basic_spec();
    sp.extra = "layer2.1.conv2.bias", sp.extra_len = 8;
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer2.1.conv2.bias: conv1.bias is absent");
    sp = bottleneck_spec();
    sp.bias = true;
    sp.skip = "layer1.0.downsample.0.bias";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer1.0.downsample.0.bias missing");
    sp.skip = "conv1.bias";
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer1.0.conv1.bias: conv1.bias is absent");
    sp.skip = NULL;
    sp.reshape = "layer1.0.conv3.bias", sp.new_ndim = 1, sp.new_shape[0] = 4;
    expect_fail(&sp, NULL, RD_ERR_SHAPE, "tensor layer1.0.conv3.bias: shape [16] expected");
}
END_TEST

START_TEST(rejects_bad_metadata)
{
    static const char *cases[][3] = {
        { "stride", "v2", "metadata stride" },          { "stride", "V1", "metadata stride" },
        { "bn_eps", "0", "metadata bn_eps" },           { "bn_eps", "-1e-5", "metadata bn_eps" },
        { "bn_eps", "abc", "metadata bn_eps" },         { "bn_eps", "nan", "metadata bn_eps" },
        { "bn_eps", "1e-5x", "metadata bn_eps" },       { "input_size", "16", "metadata input_size" },
        { "input_size", "5000", "metadata input_size" }, { "input_size", "128x", "metadata input_size" },
        { "input_size", "axb", "metadata input_size" }, { "input_size", "224x224x3", "metadata input_size" },
        { "input_size", "-224", "metadata input_size" }, { "input_size", "", "metadata input_size" },
        { "mean", "[1,2]", "metadata mean" },            { "mean", "1,2,3", "metadata mean" },
        { "mean", "[1,2,\"3\"]", "metadata mean" },      { "std", "[1,0,1]", "metadata std" },
        { "std", "[1,1,1,1]", "metadata std" },          { "channel_order", "rgb", "metadata channel_order" },
        { "scale", "0", "metadata scale" },              { "scale", "", "metadata scale" },
        { "resize", "100", "metadata resize" },          { "resize", "2.5e2", "metadata resize" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec_t sp = basic_spec();
        sp.meta[0] = cases[i][0], sp.meta[1] = cases[i][1];
        expect_fail(&sp, NULL, RD_ERR_FORMAT, cases[i][2]);
    }
    spec_t sp = basic_spec();
    engine_params_t p = { 0 };
    p.input_h = 8;
    expect_fail(&sp, &p, RD_ERR_ARG, "input size 8x224");
}
END_TEST

/* The real resnet18 geometry (11.7M parameters) gets its torchvision name. */
START_TEST(names_resnet18)
{
    spec_t sp = { .stem = 64, .widths = { 64, 128, 256, 512 }, .blocks = { 2, 2, 2, 2 },
                  .classes = 10 };
    write_model(&sp, "resnet18.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(info.arch, "resnet18");
    ck_assert_str_eq(info.name, "resnet18");
    net_free(net);
    model_info_clear(&info);
}
END_TEST

START_TEST(rejects_null_arguments)
{
    net_t *net;
    model_info_t info;
    rd_error_t err;
    ck_assert_int_eq(loader_build(NULL, NULL, NULL, &net, &info, &err), RD_ERR_ARG);
    model_info_clear(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, infers_basic_model);
    tcase_add_test(tc, infers_bottleneck_v1_5);
    tcase_add_test(tc, infers_bottleneck_v1);
    tcase_add_test(tc, folds_batchnorm);
    tcase_add_test(tc, folds_batchnorm_with_conv_bias);
    tcase_add_test(tc, reads_metadata_and_overrides);
    tcase_add_test(tc, loads_labels);
    tcase_add_test(tc, rejects_bad_labels);
    tcase_add_test(tc, rejects_missing_and_misshapen_tensors);
    tcase_add_test(tc, rejects_integer_weights);
    tcase_add_test(tc, rejects_inconsistent_bias);
    tcase_add_test(tc, rejects_bad_metadata);
    tcase_add_test(tc, names_resnet18);
    tcase_add_test(tc, rejects_null_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
