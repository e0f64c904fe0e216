/* test_convert.c - convert_tfjs and `resnetd convert` on synthetic TF.js
 * models. Each test builds a tiny but complete Keras ResNet v1 graph (stem,
 * stages res2..res5, one or two bottlenecks each, 3 classes) in the layout
 * keras.applications writes, with weights whose value is their index in the
 * shard data, split over two shard files mid-float. The happy path checks every
 * element of the transposed kernels against that formula; the error tests
 * break one thing each and check the status, that the message names the layer,
 * tensor or file, and that no output file is left behind. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "resnetd/convert.h"
#include "safetensors.h"

typedef struct {
    json_t *root, *layers, *weights; /* weights: the one manifest group's list */
    int n_act, n_add;
    char dir[64];
    char path[128];                  /* dir/model.json */
    char out[128];                   /* dir/out.safetensors */
} model_t;

static void layer(model_t *m, const char *cls, const char *name, json_t *cfg, const char *in1,
                  const char *in2)
{
    json_object_set_new(cfg, "name", json_string(name));
    json_object_set_new(cfg, "dtype", json_string("float32"));
    json_t *inbound = json_array();
    if (in1) {
        json_t *node = json_array();
        json_array_append_new(node, json_pack("[s,i,i,{}]", in1, 0, 0));
        if (in2)
            json_array_append_new(node, json_pack("[s,i,i,{}]", in2, 0, 0));
        json_array_append_new(inbound, node);
    }
    json_array_append_new(m->layers, json_pack("{s:s,s:s,s:o,s:o}", "name", name, "class_name",
                                               cls, "config", cfg, "inbound_nodes", inbound));
}

static void weight(model_t *m, const char *layer_name, const char *suffix, json_t *shape)
{
    char name[96];
    snprintf(name, sizeof name, "%s/%s", layer_name, suffix);
    json_array_append_new(m->weights, json_pack("{s:s,s:o,s:s}", "name", name, "shape", shape,
                                                "dtype", "float32"));
}

static void conv(model_t *m, const char *name, const char *from, int in, int out, int k,
                 int stride)
{
    layer(m, "Conv2D", name,
          json_pack("{s:i,s:[i,i],s:[i,i],s:s,s:s,s:b,s:[i,i],s:s}", "filters", out,
                    "kernel_size", k, k, "strides", stride, stride, "padding",
                    k == 3 ? "same" : "valid", "activation", "linear", "use_bias", 1,
                    "dilation_rate", 1, 1, "data_format", "channels_last"),
          from, NULL);
    weight(m, name, "kernel", json_pack("[i,i,i,i]", k, k, in, out));
    weight(m, name, "bias", json_pack("[i]", out));
}

static void bn(model_t *m, const char *name, const char *from, int ch)
{
    layer(m, "BatchNormalization", name,
          json_pack("{s:[i],s:f,s:f,s:b,s:b}", "axis", 3, "momentum", 0.99, "epsilon", 0.001,
                    "center", 1, "scale", 1),
          from, NULL);
    static const char *const keys[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++)
        weight(m, name, keys[i], json_pack("[i]", ch));
}

static void relu(model_t *m, const char *from, char out[32])
{
    snprintf(out, 32, m->n_act ? "activation_%d" : "activation", m->n_act);
    m->n_act++;
    layer(m, "Activation", out, json_pack("{s:s}", "activation", "relu"), from, NULL);
}

/* Bottleneck res{S}{b} with width w on *ch input channels; cur is in/out. */
static void block(model_t *m, int S, char b, char cur[32], int *ch, int w)
{
    int stride = (b == 'a' && S > 2) ? 2 : 1;
    char n[3][32], bnn[3][32], a1[32], a2[32], shortcut[32], add[32];
    for (int i = 0; i < 3; i++) {
        snprintf(n[i], 32, "res%d%c_branch2%c", S, b, 'a' + i);
        snprintf(bnn[i], 32, "bn%d%c_branch2%c", S, b, 'a' + i);
    }
    conv(m, n[0], cur, *ch, w, 1, stride);
    bn(m, bnn[0], n[0], w);
    relu(m, bnn[0], a1);
    conv(m, n[1], a1, w, w, 3, 1);
    bn(m, bnn[1], n[1], w);
    relu(m, bnn[1], a2);
    conv(m, n[2], a2, w, 4 * w, 1, 1);
    bn(m, bnn[2], n[2], 4 * w);
    snprintf(shortcut, 32, "%s", cur);
    if (b == 'a') {
        char c1[32], b1[32];
        snprintf(c1, 32, "res%da_branch1", S);
        snprintf(b1, 32, "bn%da_branch1", S);
        conv(m, c1, cur, *ch, 4 * w, 1, stride);
        bn(m, b1, c1, 4 * w);
        snprintf(shortcut, 32, "%s", b1);
    }
    snprintf(add, 32, m->n_add ? "add_%d" : "add", m->n_add);
    m->n_add++;
    layer(m, "Add", add, json_object(), bnn[2], shortcut);
    relu(m, add, cur);
    *ch = 4 * w;
}

/* The tiny ResNet: conv1 3->4, stages of width 1, 2, 3, 4 (res2 has two
 * blocks), 16 features, 3 classes, 32x32 input. */
static void model_build(model_t *m)
{
    memset(m, 0, sizeof *m);
    m->layers = json_array();
    m->weights = json_array();
    m->root = json_pack(
        "{s:s,s:{s:s,s:s,s:{s:s,s:{s:s,s:o,s:[[s,i,i]],s:[[s,i,i]]}}},s:[{s:[s,s],s:o}]}",
        "format", "layers-model", "modelTopology", "keras_version", "2.2.4-tf", "backend",
        "tensorflow", "model_config", "class_name", "Model", "config", "name", "resnet50",
        "layers", m->layers, "input_layers", "input_1", 0, 0, "output_layers", "fc1000", 0, 0,
        "weightsManifest", "paths", "group1-shard1of2.bin", "group1-shard2of2.bin", "weights",
        m->weights);
    ck_assert_ptr_nonnull(m->root);
    char cur[32], act[32];
    int ch = 4;
    layer(m, "InputLayer", "input_1", json_pack("{s:[n,i,i,i]}", "batch_input_shape", 32, 32, 3),
          NULL, NULL);
    layer(m, "ZeroPadding2D", "conv1_pad", json_pack("{s:[[i,i],[i,i]]}", "padding", 3, 3, 3, 3),
          "input_1", NULL);
    conv(m, "conv1", "conv1_pad", 3, 4, 7, 2);
    bn(m, "bn_conv1", "conv1", 4);
    relu(m, "bn_conv1", act);
    layer(m, "ZeroPadding2D", "pool1_pad", json_pack("{s:[[i,i],[i,i]]}", "padding", 1, 1, 1, 1),
          act, NULL);
    layer(m, "MaxPooling2D", "max_pooling2d",
          json_pack("{s:[i,i],s:[i,i],s:s}", "pool_size", 3, 3, "strides", 2, 2, "padding",
                    "valid"),
          "pool1_pad", NULL);
    snprintf(cur, sizeof cur, "max_pooling2d");
    for (int S = 2; S <= 5; S++)
        for (char b = 'a'; b < (S == 2 ? 'c' : 'b'); b++)
            block(m, S, b, cur, &ch, S - 1);
    layer(m, "GlobalAveragePooling2D", "avg_pool", json_object(), cur, NULL);
    layer(m, "Dense", "fc1000",
          json_pack("{s:i,s:s,s:b}", "units", 3, "activation", "softmax", "use_bias", 1),
          "avg_pool", NULL);
    weight(m, "fc1000", "kernel", json_pack("[i,i]", ch, 3));
    weight(m, "fc1000", "bias", json_pack("[i]", 3));
    /* The real manifest is alphabetical, not in graph order: do not rely on order. */
    json_t *reversed = json_array();
    for (size_t i = json_array_size(m->weights); i-- > 0;)
        json_array_append(reversed, json_array_get(m->weights, i));
    json_array_clear(m->weights);
    json_array_extend(m->weights, reversed);
    json_decref(reversed);

    snprintf(m->dir, sizeof m->dir, "/tmp/test_convert.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(m->dir));
    snprintf(m->path, sizeof m->path, "%s/model.json", m->dir);
    snprintf(m->out, sizeof m->out, "%s/out.safetensors", m->dir);
}

static int64_t n_elems(json_t *w)
{
    int64_t n = 1;
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(w, "shape"), i, d)
        n *= json_integer_value(d);
    return n;
}

/* The index in the shard data (= the value) of tensor name's first element. */
static int64_t offset_of(model_t *m, const char *name)
{
    int64_t at = 0;
    json_t *w;
    size_t i;
    json_array_foreach(m->weights, i, w) {
        if (!strcmp(json_string_value(json_object_get(w, "name")), name))
            return at;
        at += n_elems(w);
    }
    ck_abort_msg("no tensor %s", name);
    return -1;
}

static void write_file(model_t *m, const char *name, const void *data, size_t len)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", m->dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* model.json, and the data (float i = i) split mid-float over two shards;
 * drop bytes are left off the end. */
static void model_write(model_t *m, size_t drop)
{
    int64_t n = 0;
    json_t *w;
    size_t i;
    json_array_foreach(m->weights, i, w)
        n += n_elems(w);
    float *data = malloc((size_t)n * sizeof *data);
    ck_assert_ptr_nonnull(data);
    for (int64_t k = 0; k < n; k++)
        data[k] = (float)k;
    size_t len = (size_t)n * sizeof *data - drop, half = len / 2 + 1;
    write_file(m, "group1-shard1of2.bin", data, half);
    write_file(m, "group1-shard2of2.bin", (char *)data + half, len - half);
    free(data);
    ck_assert_int_eq(json_dump_file(m->root, m->path, JSON_INDENT(1)), 0);
}

static void write_str(model_t *m, const char *name, const char *text)
{
    write_file(m, name, text, strlen(text));
}

static void model_free(model_t *m)
{
    DIR *d = opendir(m->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", m->dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(m->dir);
    json_decref(m->root);
}

static json_t *find_layer(model_t *m, const char *name)
{
    json_t *l;
    size_t i;
    json_array_foreach(m->layers, i, l)
        if (!strcmp(json_string_value(json_object_get(l, "name")), name))
            return l;
    ck_abort_msg("no layer %s", name);
    return NULL;
}

static json_t *find_weight(model_t *m, const char *name)
{
    json_t *w;
    size_t i;
    json_array_foreach(m->weights, i, w)
        if (!strcmp(json_string_value(json_object_get(w, "name")), name))
            return w;
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static void expect_error(model_t *m, const char *labels, rd_status_t want, const char *needle1,
                         const char *needle2)
{
    rd_error_t err = {0};
    rd_status_t s = convert_tfjs(m->path, labels, m->out, &err);
    ck_assert_msg(s == want, "status %s, expected %s (%s)", rd_status_str(s),
                  rd_status_str(want), err.msg);
    ck_assert_msg(strstr(err.msg, needle1), "message \"%s\" lacks \"%s\"", err.msg, needle1);
    ck_assert_msg(!needle2 || strstr(err.msg, needle2), "message \"%s\" lacks \"%s\"", err.msg,
                  needle2);
    ck_assert_msg(access(m->out, F_OK) != 0, "output written despite the error");
}

static const safetensors_tensor_t *tensor(safetensors_t *st, const char *name, int ndim,
                                          const int64_t *shape)
{
    const safetensors_tensor_t *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    ck_assert_int_eq(t->dtype, SAFETENSORS_F32);
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(t->shape[d] == shape[d], "%s dim %d: %lld", name, d,
                      (long long)t->shape[d]);
    return t;
}

static float at(const safetensors_tensor_t *t, int64_t i)
{
    float v;
    memcpy(&v, t->data + 4 * i, sizeof v);
    return v;
}

/* conv HWIO -> OIHW, checked element by element against the shard values. */
static void check_conv(model_t *m, safetensors_t *st, const char *torch, const char *keras,
                       int64_t co, int64_t ci, int64_t k)
{
    int64_t shape[4] = {co, ci, k, k};
    const safetensors_tensor_t *t = tensor(st, torch, 4, shape);
    char name[96];
    snprintf(name, sizeof name, "%s/kernel", keras);
    int64_t base = offset_of(m, name);
    for (int64_t o = 0; o < co; o++)
        for (int64_t i = 0; i < ci; i++)
            for (int64_t y = 0; y < k; y++)
                for (int64_t x = 0; x < k; x++)
                    ck_assert_float_eq(at(t, ((o * ci + i) * k + y) * k + x),
                                       (float)(base + ((y * k + x) * ci + i) * co + o));
}

START_TEST(test_converts_tiny_resnet)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    write_str(&m, "labels.json", "{\"0\": \"cat\", \"1\": \"dog\", \"2\": \"bald_eagle\"}");
    char labels[160];
    snprintf(labels, sizeof labels, "%s/labels.json", m.dir);
    rd_error_t err = {0};
    ck_assert_msg(convert_tfjs(m.path, labels, m.out, &err) == RD_OK, "%s", err.msg);

    safetensors_t *st = NULL;
    ck_assert_msg(safetensors_open(m.out, &st, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(safetensors_count(st), (int)json_array_size(m.weights));
    check_conv(&m, st, "conv1.weight", "conv1", 4, 3, 7);
    check_conv(&m, st, "layer1.1.conv2.weight", "res2b_branch2b", 1, 1, 3);
    check_conv(&m, st, "layer2.0.conv1.weight", "res3a_branch2a", 2, 4, 1);
    check_conv(&m, st, "layer4.0.downsample.0.weight", "res5a_branch1", 16, 12, 1);
    int64_t fc[2] = {3, 16}, c16[1] = {16}, c3[1] = {3}, c8[1] = {8};
    const safetensors_tensor_t *t = tensor(st, "fc.weight", 2, fc);
    int64_t base = offset_of(&m, "fc1000/kernel");
    for (int64_t o = 0; o < 3; o++)
        for (int64_t i = 0; i < 16; i++)
            ck_assert_float_eq(at(t, o * 16 + i), (float)(base + i * 3 + o));
    t = tensor(st, "fc.bias", 1, c3);
    ck_assert_float_eq(at(t, 2), (float)(offset_of(&m, "fc1000/bias") + 2));
    t = tensor(st, "layer4.0.downsample.1.running_var", 1, c16);
    ck_assert_float_eq(at(t, 5), (float)(offset_of(&m, "bn5a_branch1/moving_variance") + 5));
    t = tensor(st, "layer2.0.bn3.weight", 1, c8);
    ck_assert_float_eq(at(t, 7), (float)(offset_of(&m, "bn3a_branch2c/gamma") + 7));
    t = tensor(st, "layer1.0.conv3.bias", 1, (int64_t[]){4});
    ck_assert_float_eq(at(t, 0), (float)offset_of(&m, "res2a_branch2c/bias"));
    tensor(st, "bn1.running_mean", 1, (int64_t[]){4});

    ck_assert_str_eq(safetensors_metadata(st, "stride"), "v1");
    ck_assert_str_eq(safetensors_metadata(st, "bn_eps"), "0.001");
    ck_assert_str_eq(safetensors_metadata(st, "input_size"), "32");
    ck_assert_str_eq(safetensors_metadata(st, "resize"), "37");
    ck_assert_str_eq(safetensors_metadata(st, "channel_order"), "BGR");
    ck_assert_str_eq(safetensors_metadata(st, "scale"), "1");
    ck_assert_str_eq(safetensors_metadata(st, "mean"), "[103.939,116.779,123.68]");
    ck_assert_str_eq(safetensors_metadata(st, "std"), "[1,1,1]");
    ck_assert_str_eq(safetensors_metadata(st, "arch"), "resnet-custom");
    ck_assert_str_eq(safetensors_metadata(st, "labels"), "[\"cat\",\"dog\",\"bald_eagle\"]");
    safetensors_close(st);
    model_free(&m);
}
END_TEST

START_TEST(test_labels_array_and_count)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char labels[160];
    snprintf(labels, sizeof labels, "%s/labels.json", m.dir);
    write_str(&m, "labels.json", "[\"a\", \"b\"]");
    expect_error(&m, labels, RD_ERR_SHAPE, "labels.json", "2 labels");
    write_str(&m, "labels.json", "[\"a\", \"b\", 3]");
    expect_error(&m, labels, RD_ERR_FORMAT, "labels.json", "label 2");
    write_str(&m, "labels.json", "[\"a\", \"b\", \"c\"]");
    rd_error_t err = {0};
    ck_assert_msg(convert_tfjs(m.path, labels, m.out, &err) == RD_OK, "%s", err.msg);
    safetensors_t *st = NULL;
    ck_assert_msg(safetensors_open(m.out, &st, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(safetensors_metadata(st, "labels"), "[\"a\",\"b\",\"c\"]");
    safetensors_close(st);
    model_free(&m);
}
END_TEST

START_TEST(test_not_json)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    write_str(&m, "model.json", "{\"modelTopology\": ");
    expect_error(&m, NULL, RD_ERR_FORMAT, "model.json", "not JSON");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_file)
{
    rd_error_t err = {0};
    ck_assert_int_eq(convert_tfjs("/nonexistent/model.json", NULL, "/tmp/x.safetensors", &err),
                     RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/model.json"));
    ck_assert_int_eq(convert_tfjs(NULL, NULL, "/tmp/x.safetensors", &err), RD_ERR_ARG);
}
END_TEST

START_TEST(test_missing_topology_or_manifest)
{
    model_t m;
    model_build(&m);
    json_t *mt = json_incref(json_object_get(m.root, "modelTopology"));
    json_object_del(m.root, "modelTopology");
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "modelTopology", NULL);
    json_object_set_new(m.root, "modelTopology", mt);
    json_t *manifest = json_incref(json_object_get(m.root, "weightsManifest"));
    json_object_del(m.root, "weightsManifest");
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "weightsManifest", NULL);
    json_decref(manifest);
    model_free(&m);
}
END_TEST

START_TEST(test_unknown_layer_class)
{
    model_t m;
    model_build(&m);
    layer(&m, "Dropout", "dropout_1", json_pack("{s:f}", "rate", 0.5), "avg_pool", NULL);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "dropout_1", "Dropout");
    model_free(&m);
}
END_TEST

START_TEST(test_layer_not_reached)
{
    model_t m;
    model_build(&m);
    layer(&m, "Activation", "extra_relu", json_pack("{s:s}", "activation", "relu"), "fc1000",
          NULL);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "extra_relu", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_v15_stride_refused)
{
    model_t m;
    model_build(&m);
    json_t *cfg = json_object_get(find_layer(&m, "res3a_branch2a"), "config");
    json_object_set_new(cfg, "strides", json_pack("[i,i]", 1, 1));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "res3a_branch2a", "strides");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_layer)
{
    model_t m;
    model_build(&m);
    json_t *l;
    size_t i;
    json_array_foreach(m.layers, i, l)
        if (!strcmp(json_string_value(json_object_get(l, "name")), "bn4a_branch1"))
            break;
    json_array_remove(m.layers, i);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "bn4a_branch1", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_epsilon_disagrees)
{
    model_t m;
    model_build(&m);
    json_t *cfg = json_object_get(find_layer(&m, "bn4a_branch2b"), "config");
    json_object_set_new(cfg, "epsilon", json_real(1e-5));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "bn4a_branch2b", "epsilon");
    model_free(&m);
}
END_TEST

START_TEST(test_manifest_shape_disagrees)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "res3a_branch2b/kernel"), "shape",
                        json_pack("[i,i,i,i]", 3, 3, 1, 4));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_SHAPE, "res3a_branch2b/kernel", "[3,3,2,2]");
    model_free(&m);
}
END_TEST

START_TEST(test_manifest_tensor_missing_or_extra)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "bn2b_branch2a/beta"), "name",
                        json_string("bn2b_branch2a/bias"));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "bn2b_branch2a/beta", "missing");
    json_object_set_new(find_weight(&m, "bn2b_branch2a/bias"), "name",
                        json_string("bn2b_branch2a/beta"));
    weight(&m, "stray", "kernel", json_pack("[i]", 2));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "stray/kernel", "no layer");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_shard)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/group1-shard2of2.bin", m.dir);
    ck_assert_int_eq(unlink(path), 0);
    expect_error(&m, NULL, RD_ERR_IO, "group1-shard2of2.bin", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_shards_short)
{
    model_t m;
    model_build(&m);
    model_write(&m, 4);
    /* The manifest is in reverse graph order, so its last tensor is conv1/kernel. */
    expect_error(&m, NULL, RD_ERR_FORMAT, "conv1/kernel", "truncated");
    model_write(&m, 0);
    write_str(&m, "group1-shard2of2.bin", "xxxx");
    expect_error(&m, NULL, RD_ERR_FORMAT, "group1-shard1of2.bin", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_dtype_not_float32)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "res4a_branch2c/bias"), "dtype", json_string("int32"));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "res4a_branch2c/bias", "int32");
    model_free(&m);
}
END_TEST

static int run_cli(int argc, char **argv)
{
    /* getopt prints to stderr; keep the test log readable. */
    fflush(stderr);
    return cli_convert(argc, argv);
}

START_TEST(test_cli)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char *help[] = {"convert", "--help", NULL};
    ck_assert_int_eq(run_cli(2, help), 0);
    char *none[] = {"convert", NULL};
    ck_assert_int_eq(run_cli(1, none), 2);
    char *bad[] = {"convert", "--tfjs", "/nonexistent/model.json", "--out", m.out, NULL};
    ck_assert_int_eq(run_cli(5, bad), 1);
    char *good[] = {"convert", "--tfjs", m.path, "--out", m.out, NULL};
    ck_assert_int_eq(run_cli(5, good), 0);
    ck_assert_int_eq(access(m.out, R_OK), 0);
    model_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("tfjs");
    tcase_add_test(tc, test_converts_tiny_resnet);
    tcase_add_test(tc, test_labels_array_and_count);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_missing_topology_or_manifest);
    tcase_add_test(tc, test_unknown_layer_class);
    tcase_add_test(tc, test_layer_not_reached);
    tcase_add_test(tc, test_v15_stride_refused);
    tcase_add_test(tc, test_missing_layer);
    tcase_add_test(tc, test_epsilon_disagrees);
    tcase_add_test(tc, test_manifest_shape_disagrees);
    tcase_add_test(tc, test_manifest_tensor_missing_or_extra);
    tcase_add_test(tc, test_missing_shard);
    tcase_add_test(tc, test_shards_short);
    tcase_add_test(tc, test_dtype_not_float32);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
