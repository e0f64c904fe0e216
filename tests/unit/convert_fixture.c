/* convert_fixture.c - shared fixtures of the test_convert suites (see convert_fixture.h). */
#include "convert_fixture.h"

void layer(model_t *m, const char *cls, const char *name, json_t *cfg, const char *in1,
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

void weight(model_t *m, const char *layer_name, const char *suffix, json_t *shape)
{
    char name[96];
    snprintf(name, sizeof name, "%s/%s", layer_name, suffix);
    json_array_append_new(m->weights, json_pack("{s:s,s:o,s:s}", "name", name, "shape", shape,
                                                "dtype", "float32"));
}

void conv(model_t *m, const char *name, const char *from, int in, int out, int k,
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

void bn(model_t *m, const char *name, const char *from, int ch)
{
    layer(m, "BatchNormalization", name,
          json_pack("{s:[i],s:f,s:f,s:b,s:b}", "axis", 3, "momentum", 0.99, "epsilon", 0.001,
                    "center", 1, "scale", 1),
          from, NULL);
    static const char *const keys[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++)
        weight(m, name, keys[i], json_pack("[i]", ch));
}

void relu(model_t *m, const char *from, char out[32])
{
    snprintf(out, 32, m->n_act ? "activation_%d" : "activation", m->n_act);
    m->n_act++;
    layer(m, "Activation", out, json_pack("{s:s}", "activation", "relu"), from, NULL);
}

/* Bottleneck res{S}{b} with width w on *ch input channels; cur is in/out. */
void block(model_t *m, int S, char b, char cur[32], int *ch, int w)
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
void model_build(model_t *m)
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

int64_t n_elems(json_t *w)
{
    int64_t n = 1;
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(w, "shape"), i, d)
        n *= json_integer_value(d);
    return n;
}

/* The index in the shard data (= the value) of tensor name's first element. */
int64_t offset_of(model_t *m, const char *name)
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

void write_file(model_t *m, const char *name, const void *data, size_t len)
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
void model_write(model_t *m, size_t drop)
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

void write_str(model_t *m, const char *name, const char *text)
{
    write_file(m, name, text, strlen(text));
}

void model_free(model_t *m)
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

json_t *find_layer(model_t *m, const char *name)
{
    json_t *l;
    size_t i;
    json_array_foreach(m->layers, i, l)
        if (!strcmp(json_string_value(json_object_get(l, "name")), name))
            return l;
    ck_abort_msg("no layer %s", name);
    return NULL;
}

json_t *find_weight(model_t *m, const char *name)
{
    json_t *w;
    size_t i;
    json_array_foreach(m->weights, i, w)
        if (!strcmp(json_string_value(json_object_get(w, "name")), name))
            return w;
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

void expect_error(model_t *m, const char *labels, rd_status_t want, const char *needle1,
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

const safetensors_tensor_t *tensor(safetensors_t *st, const char *name, int ndim,
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

float at(const safetensors_tensor_t *t, int64_t i)
{
    float v;
    memcpy(&v, t->data + 4 * i, sizeof v);
    return v;
}

/* conv HWIO -> OIHW, checked element by element against the shard values. */
void check_conv(model_t *m, safetensors_t *st, const char *torch, const char *keras,
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
