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

#include "loader_fixture.h"


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
