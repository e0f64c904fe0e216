/* tfjs_topology.c - checks that a Keras layer graph (TF.js model.json) is a
 * ResNet v1 as keras.applications.ResNet50 builds it, and lists its weighted
 * layers with their torchvision names (see tfjs.h). The walk follows the data
 * from the InputLayer, checking every layer's class, options and inputs, and
 * finally refuses any layer it did not reach, so nothing in the graph goes
 * unchecked. Keras names the activations and adds generically (activation_7,
 * add_2), so those are found by what they consume, the weighted layers by name. */
#include "tfjs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name, *cls;
    json_t *cfg;
    int n_in;
    const char *in[2];
    bool visited;
} node_t;

typedef struct {
    node_t *nodes;
    int n_nodes;
    tfjs_topology_t *topo;
    int cap;          /* capacity of topo->layers */
    bool have_eps;
} walk_t;

static const char *const known_classes[] = {
    "InputLayer", "ZeroPadding2D", "Conv2D", "BatchNormalization", "Activation",
    "MaxPooling2D", "Add", "GlobalAveragePooling2D", "Dense",
};

static bool known_class(const char *cls)
{
    for (size_t i = 0; i < sizeof known_classes / sizeof known_classes[0]; i++)
        if (!strcmp(cls, known_classes[i]))
            return true;
    return false;
}

/* inbound_nodes is [] or [[[name, node_index, tensor_index, kwargs], ...]]. */
static rd_status_t parse_inbound(node_t *n, json_t *inbound, rd_error_t *err)
{
    if (!json_is_array(inbound))
        return rd_error_set(err, RD_ERR_FORMAT, "layer '%s': inbound_nodes is not an array",
                            n->name);
    if (json_array_size(inbound) == 0)
        return RD_OK;
    json_t *node = json_array_get(inbound, 0);
    if (json_array_size(inbound) != 1)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': called %zu times (shared layers are not supported)",
                            n->name, json_array_size(inbound));
    if (!json_is_array(node) || json_array_size(node) < 1 || json_array_size(node) > 2)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': expected 1 or 2 inputs in inbound_nodes", n->name);
    for (size_t i = 0; i < json_array_size(node); i++) {
        json_t *ref = json_array_get(node, i);
        json_t *src = json_array_get(ref, 0);
        json_t *node_idx = json_array_get(ref, 1), *tensor_idx = json_array_get(ref, 2);
        if (!json_is_string(src))
            return rd_error_set(err, RD_ERR_FORMAT,
                                "layer '%s': inbound entry %zu has no layer name", n->name, i);
        if ((node_idx && json_integer_value(node_idx) != 0) ||
            (tensor_idx && json_integer_value(tensor_idx) != 0))
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "layer '%s': input from a second node or output of '%s'",
                                n->name, json_string_value(src));
        n->in[n->n_in++] = json_string_value(src);
    }
    return RD_OK;
}

static node_t *find(walk_t *w, const char *name)
{
    for (int i = 0; i < w->n_nodes; i++)
        if (!strcmp(w->nodes[i].name, name))
            return &w->nodes[i];
    return NULL;
}

static rd_status_t parse_nodes(walk_t *w, json_t *layers, rd_error_t *err)
{
    if (!json_is_array(layers) || json_array_size(layers) == 0)
        return rd_error_set(err, RD_ERR_FORMAT, "model_config has no layer list");
    w->n_nodes = (int)json_array_size(layers);
    w->nodes = calloc((size_t)w->n_nodes, sizeof *w->nodes);
    if (!w->nodes)
        return rd_error_set(err, RD_ERR_NOMEM, "no memory for %d layers", w->n_nodes);
    for (int i = 0; i < w->n_nodes; i++) {
        json_t *l = json_array_get(layers, (size_t)i);
        node_t *n = &w->nodes[i];
        n->name = json_string_value(json_object_get(l, "name"));
        n->cls = json_string_value(json_object_get(l, "class_name"));
        n->cfg = json_object_get(l, "config");
        if (!n->name || !n->cls || !json_is_object(n->cfg))
            return rd_error_set(err, RD_ERR_FORMAT,
                                "layer %d (%s): needs string name and class_name and an "
                                "object config", i, n->name ? n->name : "unnamed");
        if (find(w, n->name) != n)
            return rd_error_set(err, RD_ERR_FORMAT, "layer '%s': name used twice", n->name);
        if (!known_class(n->cls))
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "layer '%s': class %s is not part of a Keras ResNet", n->name,
                                n->cls);
        rd_status_t st = parse_inbound(n, json_object_get(l, "inbound_nodes"), err);
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

/* The layer called name: it must exist, be of class cls and take only from. */
static rd_status_t take(walk_t *w, const char *name, const char *cls, const char *from,
                        node_t **out, rd_error_t *err)
{
    node_t *n = find(w, name);
    if (!n)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s' missing (a Keras ResNet v1 has it after '%s')", name,
                            from);
    if (strcmp(n->cls, cls))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s' is a %s, expected %s", name,
                            n->cls, cls);
    if (n->n_in != 1 || strcmp(n->in[0], from))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s' takes its input from '%s', expected '%s' alone", name,
                            n->n_in ? n->in[0] : "nothing", from);
    if (n->visited)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s' reached twice", name);
    n->visited = true;
    *out = n;
    return RD_OK;
}

/* The one unvisited layer of class cls that consumes from (Keras names these
 * generically). Single-input classes must take from alone. */
static rd_status_t follow(walk_t *w, const char *from, const char *cls, node_t **out,
                          rd_error_t *err)
{
    node_t *found = NULL;
    for (int i = 0; i < w->n_nodes; i++) {
        node_t *n = &w->nodes[i];
        bool consumes = (n->n_in > 0 && !strcmp(n->in[0], from)) ||
                        (n->n_in > 1 && !strcmp(n->in[1], from));
        if (!consumes || strcmp(n->cls, cls) || n->visited)
            continue;
        if (found)
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "layers '%s' and '%s' both consume '%s' (expected one %s)",
                                found->name, n->name, from, cls);
        found = n;
    }
    if (!found)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "no %s layer after '%s' (a Keras ResNet v1 has one there)", cls,
                            from);
    if (strcmp(cls, "Add") && found->n_in != 1)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': %d inputs, expected 1",
                            found->name, found->n_in);
    found->visited = true;
    *out = found;
    return RD_OK;
}

/* A Keras size option: absent (def), an integer, or a pair [a, b]. */
static bool cfg_pair(json_t *cfg, const char *key, int64_t def, int64_t out[2])
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        out[0] = out[1] = def;
        return true;
    }
    if (json_is_integer(v)) {
        out[0] = out[1] = json_integer_value(v);
        return true;
    }
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)))
        return false;
    out[0] = json_integer_value(json_array_get(v, 0));
    out[1] = json_integer_value(json_array_get(v, 1));
    return true;
}

static bool cfg_str_is(json_t *cfg, const char *key, const char *def, const char *want)
{
    json_t *v = json_object_get(cfg, key);
    const char *s = v && !json_is_null(v) ? json_string_value(v) : def;
    return s && !strcmp(s, want);
}

static bool cfg_true(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return !v || json_is_true(v);
}

static rd_status_t check_channels_last(const node_t *n, rd_error_t *err)
{
    if (!cfg_str_is(n->cfg, "data_format", "channels_last", "channels_last"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': data_format must be "
                            "channels_last", n->name);
    return RD_OK;
}

/* ZeroPadding2D with p on every side: p, [p, p] or [[p, p], [p, p]]. */
static rd_status_t check_zero_pad(const node_t *n, int64_t want, rd_error_t *err)
{
    json_t *v = json_object_get(n->cfg, "padding");
    int64_t p[4] = {-1, -1, -1, -1};
    if (json_is_integer(v)) {
        p[0] = p[1] = p[2] = p[3] = json_integer_value(v);
    } else if (json_is_array(v) && json_array_size(v) == 2) {
        for (int d = 0; d < 2; d++) {
            json_t *e = json_array_get(v, (size_t)d);
            int64_t pair[2];
            if (json_is_integer(e))
                pair[0] = pair[1] = json_integer_value(e);
            else if (json_is_array(e) && json_array_size(e) == 2)
                for (int k = 0; k < 2; k++)
                    pair[k] = json_is_integer(json_array_get(e, (size_t)k))
                                  ? json_integer_value(json_array_get(e, (size_t)k)) : -1;
            else
                pair[0] = pair[1] = -1;
            p[2 * d] = pair[0];
            p[2 * d + 1] = pair[1];
        }
    }
    for (int i = 0; i < 4; i++)
        if (p[i] != want)
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "layer '%s': expected zero padding %lld on every side",
                                n->name, (long long)want);
    return check_channels_last(n, err);
}

static rd_status_t push_layer(walk_t *w, const node_t *n, tfjs_kind_t kind, const char *torch,
                              tfjs_layer_t **out, rd_error_t *err)
{
    tfjs_topology_t *t = w->topo;
    if (t->n_layers == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        tfjs_layer_t *grown = realloc(t->layers, (size_t)cap * sizeof *grown);
        if (!grown)
            return rd_error_set(err, RD_ERR_NOMEM, "no memory for layer '%s'", n->name);
        t->layers = grown;
        w->cap = cap;
    }
    tfjs_layer_t *l = &t->layers[t->n_layers++];
    memset(l, 0, sizeof *l);
    l->keras = n->name;
    l->kind = kind;
    snprintf(l->torch, sizeof l->torch, "%s", torch);
    *out = l;
    return RD_OK;
}

/* A k x k Conv2D with the given stride on in_ch channels; 1x1 may say valid or
 * same (identical for 1x1), 3x3 must be same (pad 1), 7x7 valid after an
 * explicit ZeroPadding2D. */
static rd_status_t check_conv(walk_t *w, const node_t *n, int64_t k, int64_t stride,
                              int64_t in_ch, const char *torch, int64_t *out_ch, rd_error_t *err)
{
    json_t *c = n->cfg;
    json_t *filters = json_object_get(c, "filters");
    int64_t ks[2], st[2], dil[2], groups[2];
    if (!json_is_integer(filters) || json_integer_value(filters) < 1)
        return rd_error_set(err, RD_ERR_FORMAT, "layer '%s': filters missing", n->name);
    if (!cfg_pair(c, "kernel_size", -1, ks) || ks[0] != k || ks[1] != k)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': kernel_size must be [%lld,%lld]",
                            n->name, (long long)k, (long long)k);
    if (!cfg_pair(c, "strides", 1, st) || st[0] != stride || st[1] != stride)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': strides must be [%lld,%lld] in a ResNet v1", n->name,
                            (long long)stride, (long long)stride);
    if (!cfg_pair(c, "dilation_rate", 1, dil) || dil[0] != 1 || dil[1] != 1 ||
        !cfg_pair(c, "groups", 1, groups) || groups[0] != 1)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': dilated or grouped convolution", n->name);
    bool same = cfg_str_is(c, "padding", "valid", "same");
    bool valid = cfg_str_is(c, "padding", "valid", "valid");
    if ((k == 3 && !same) || (k == 7 && !valid) || (k == 1 && !same && !valid))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': padding must be '%s'",
                            n->name, k == 3 ? "same" : "valid");
    if (!cfg_str_is(c, "activation", "linear", "linear"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': a fused activation is not supported", n->name);
    rd_status_t s = check_channels_last(n, err);
    tfjs_layer_t *l;
    if (s == RD_OK)
        s = push_layer(w, n, TFJS_CONV, torch, &l, err);
    if (s != RD_OK)
        return s;
    l->in_ch = in_ch;
    l->out_ch = *out_ch = json_integer_value(filters);
    l->kh = l->kw = k;
    l->bias = cfg_true(c, "use_bias");
    return RD_OK;
}

static bool bn_axis_ok(json_t *axis)
{
    if (json_is_array(axis) && json_array_size(axis) == 1)
        axis = json_array_get(axis, 0);
    return !axis || (json_is_integer(axis) &&
                     (json_integer_value(axis) == 3 || json_integer_value(axis) == -1));
}

static rd_status_t check_bn(walk_t *w, const node_t *n, int64_t ch, const char *torch,
                            rd_error_t *err)
{
    json_t *eps = json_object_get(n->cfg, "epsilon");
    if (!bn_axis_ok(json_object_get(n->cfg, "axis")))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': axis must be the channels",
                            n->name);
    if (!cfg_true(n->cfg, "center") || !cfg_true(n->cfg, "scale"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': center and scale must be true", n->name);
    if (!json_is_number(eps) || json_number_value(eps) <= 0)
        return rd_error_set(err, RD_ERR_FORMAT, "layer '%s': epsilon missing or not positive",
                            n->name);
    double e = json_number_value(eps);
    if (w->have_eps && e != w->topo->bn_eps)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': epsilon %g differs from the other layers' %g", n->name,
                            e, w->topo->bn_eps);
    w->topo->bn_eps = e;
    w->have_eps = true;
    tfjs_layer_t *l;
    rd_status_t s = push_layer(w, n, TFJS_BN, torch, &l, err);
    if (s == RD_OK)
        l->out_ch = ch;
    return s;
}

static rd_status_t check_relu(const node_t *n, rd_error_t *err)
{
    if (!cfg_str_is(n->cfg, "activation", "", "relu"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': activation must be relu",
                            n->name);
    return RD_OK;
}

/* conv named name after from, then its BN (bn_name), optionally a ReLU.
 * *from becomes the last layer's name. */
static rd_status_t conv_bn(walk_t *w, const char **from, const char *name, const char *bn_name,
                           int64_t k, int64_t stride, int64_t *ch, const char *torch_conv,
                           const char *torch_bn, bool relu, rd_error_t *err)
{
    node_t *conv, *bn, *act;
    rd_status_t s = take(w, name, "Conv2D", *from, &conv, err);
    if (s == RD_OK)
        s = check_conv(w, conv, k, stride, *ch, torch_conv, ch, err);
    if (s == RD_OK)
        s = take(w, bn_name, "BatchNormalization", name, &bn, err);
    if (s == RD_OK)
        s = check_bn(w, bn, *ch, torch_bn, err);
    if (s != RD_OK)
        return s;
    *from = bn->name;
    if (!relu)
        return RD_OK;
    s = follow(w, bn->name, "Activation", &act, err);
    if (s != RD_OK)
        return s;
    *from = act->name;
    return check_relu(act, err);
}

static rd_status_t stem(walk_t *w, const char **cur, int64_t *ch, rd_error_t *err)
{
    node_t *pad, *pool;
    rd_status_t s = follow(w, *cur, "ZeroPadding2D", &pad, err);
    if (s == RD_OK)
        s = check_zero_pad(pad, 3, err);
    *cur = s == RD_OK ? pad->name : *cur;
    if (s == RD_OK)
        s = conv_bn(w, cur, "conv1", "bn_conv1", 7, 2, ch, "conv1", "bn1", true, err);
    if (s == RD_OK)
        s = follow(w, *cur, "ZeroPadding2D", &pad, err);
    if (s == RD_OK)
        s = check_zero_pad(pad, 1, err);
    if (s == RD_OK)
        s = follow(w, pad->name, "MaxPooling2D", &pool, err);
    if (s != RD_OK)
        return s;
    int64_t size[2], st[2];
    if (!cfg_pair(pool->cfg, "pool_size", -1, size) || size[0] != 3 || size[1] != 3 ||
        !cfg_pair(pool->cfg, "strides", -1, st) || st[0] != 2 || st[1] != 2 ||
        !cfg_str_is(pool->cfg, "padding", "valid", "valid"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': expected a 3x3 stride 2 'valid' max pool", pool->name);
    *cur = pool->name;
    return check_channels_last(pool, err);
}

/* One bottleneck res{S}{b}: three conv+BN on the main path, res{S}a_branch1 +
 * bn{S}a_branch1 on the shortcut of the first block, Add, ReLU. */
static rd_status_t block(walk_t *w, int stage, char b, const char **cur, int64_t *ch,
                         rd_error_t *err)
{
    int64_t stride = (b == 'a' && stage > 2) ? 2 : 1, main_ch = *ch, short_ch = *ch;
    const char *main_from = *cur, *shortcut = *cur;
    char name[32], bn_name[32], tconv[32], tbn[32];
    rd_status_t s = RD_OK;
    for (int i = 0; i < 3 && s == RD_OK; i++) {
        snprintf(name, sizeof name, "res%d%c_branch2%c", stage, b, 'a' + i);
        snprintf(bn_name, sizeof bn_name, "bn%d%c_branch2%c", stage, b, 'a' + i);
        snprintf(tconv, sizeof tconv, "layer%d.%d.conv%d", stage - 1, b - 'a', i + 1);
        snprintf(tbn, sizeof tbn, "layer%d.%d.bn%d", stage - 1, b - 'a', i + 1);
        s = conv_bn(w, &main_from, name, bn_name, i == 1 ? 3 : 1, i == 0 ? stride : 1,
                    &main_ch, tconv, tbn, i < 2, err);
    }
    if (s == RD_OK && b == 'a') {
        snprintf(name, sizeof name, "res%da_branch1", stage);
        snprintf(bn_name, sizeof bn_name, "bn%da_branch1", stage);
        snprintf(tconv, sizeof tconv, "layer%d.0.downsample.0", stage - 1);
        snprintf(tbn, sizeof tbn, "layer%d.0.downsample.1", stage - 1);
        s = conv_bn(w, &shortcut, name, bn_name, 1, stride, &short_ch, tconv, tbn, false, err);
    }
    if (s != RD_OK)
        return s;
    node_t *add, *act;
    s = follow(w, main_from, "Add", &add, err);
    if (s != RD_OK)
        return s;
    if (add->n_in != 2 || (strcmp(add->in[0], shortcut) && strcmp(add->in[1], shortcut)))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': must add '%s' and the shortcut '%s'", add->name,
                            main_from, shortcut);
    if (main_ch != short_ch)
        return rd_error_set(err, RD_ERR_SHAPE, "layer '%s': adds %lld to %lld channels",
                            add->name, (long long)main_ch, (long long)short_ch);
    s = follow(w, add->name, "Activation", &act, err);
    if (s != RD_OK)
        return s;
    *cur = act->name;
    *ch = main_ch;
    return check_relu(act, err);
}

static rd_status_t stages(walk_t *w, const char **cur, int64_t *ch, rd_error_t *err)
{
    for (int stage = 2; stage <= 5; stage++) {
        int n = 0;
        for (char b = 'a'; b <= 'z'; b++, n++) {
            char name[32];
            snprintf(name, sizeof name, "res%d%c_branch2a", stage, b);
            if (!find(w, name))
                break;
            rd_status_t s = block(w, stage, b, cur, ch, err);
            if (s != RD_OK)
                return s;
        }
        if (n == 0)
            return rd_error_set(err, RD_ERR_UNSUPPORTED,
                                "layer 'res%da_branch2a' missing: a ResNet has stages res2..res5",
                                stage);
        w->topo->stage_blocks[stage - 2] = n;
    }
    return RD_OK;
}

static rd_status_t head(walk_t *w, const char *cur, int64_t ch, rd_error_t *err)
{
    node_t *gap, *dense;
    rd_status_t s = follow(w, cur, "GlobalAveragePooling2D", &gap, err);
    if (s == RD_OK)
        s = check_channels_last(gap, err);
    if (s == RD_OK)
        s = follow(w, gap->name, "Dense", &dense, err);
    if (s != RD_OK)
        return s;
    json_t *units = json_object_get(dense->cfg, "units");
    if (!json_is_integer(units) || json_integer_value(units) < 1)
        return rd_error_set(err, RD_ERR_FORMAT, "layer '%s': units missing", dense->name);
    /* The engine returns logits; softmax (or none) on top does not change them. */
    if (!cfg_str_is(dense->cfg, "activation", "linear", "softmax") &&
        !cfg_str_is(dense->cfg, "activation", "linear", "linear"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': activation must be softmax or linear", dense->name);
    tfjs_layer_t *l;
    s = push_layer(w, dense, TFJS_DENSE, "fc", &l, err);
    if (s != RD_OK)
        return s;
    l->in_ch = ch;
    l->out_ch = w->topo->n_classes = json_integer_value(units);
    l->bias = cfg_true(dense->cfg, "use_bias");
    return RD_OK;
}

/* InputLayer: batch_input_shape [null, H, W, 3], H and W possibly null. */
static rd_status_t input(walk_t *w, const char **cur, rd_error_t *err)
{
    node_t *in = NULL;
    for (int i = 0; i < w->n_nodes && !in; i++)
        if (!strcmp(w->nodes[i].cls, "InputLayer"))
            in = &w->nodes[i];
    if (!in)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "no InputLayer");
    json_t *shape = json_object_get(in->cfg, "batch_input_shape");
    json_t *h = json_array_get(shape, 1), *wd = json_array_get(shape, 2);
    json_t *c = json_array_get(shape, 3);
    if (json_array_size(shape) != 4 || !json_is_integer(c) || json_integer_value(c) != 3)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "layer '%s': batch_input_shape must be [null, H, W, 3]", in->name);
    w->topo->input_h = json_is_integer(h) ? (int)json_integer_value(h) : 224;
    w->topo->input_w = json_is_integer(wd) ? (int)json_integer_value(wd) : 224;
    if (w->topo->input_h < 32 || w->topo->input_w < 32 || w->topo->input_h > 4096 ||
        w->topo->input_w > 4096)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "layer '%s': input size %dx%d",
                            in->name, w->topo->input_h, w->topo->input_w);
    in->visited = true;
    *cur = in->name;
    return RD_OK;
}

static rd_status_t walk(walk_t *w, json_t *layers, rd_error_t *err)
{
    const char *cur = NULL;
    int64_t ch = 3;
    rd_status_t s = parse_nodes(w, layers, err);
    if (s == RD_OK)
        s = input(w, &cur, err);
    if (s == RD_OK)
        s = stem(w, &cur, &ch, err);
    if (s == RD_OK)
        s = stages(w, &cur, &ch, err);
    if (s == RD_OK)
        s = head(w, cur, ch, err);
    for (int i = 0; i < w->n_nodes && s == RD_OK; i++)
        if (!w->nodes[i].visited)
            s = rd_error_set(err, RD_ERR_UNSUPPORTED,
                             "layer '%s' (%s) is not part of a Keras ResNet v1 graph",
                             w->nodes[i].name, w->nodes[i].cls);
    return s;
}

rd_status_t tfjs_topology_parse(json_t *layers, tfjs_topology_t *out, rd_error_t *err)
{
    memset(out, 0, sizeof *out);
    walk_t w = {.topo = out};
    rd_status_t s = walk(&w, layers, err);
    free(w.nodes);
    if (s != RD_OK)
        tfjs_topology_free(out);
    return s;
}

void tfjs_topology_free(tfjs_topology_t *t)
{
    if (!t)
        return;
    free(t->layers);
    memset(t, 0, sizeof *t);
}
