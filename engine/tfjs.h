/* tfjs.h - the two halves of reading a TF.js layers model (convert_tfjs.c puts
 * them together): the topology walker, which checks that the Keras layer graph
 * is a ResNet v1 and says which torchvision name each weighted layer gets, and
 * the weights manifest, which locates every tensor in the shard files.
 * Names returned here point into the caller's parsed model.json (jansson), so
 * they live as long as that json_t. */
#ifndef RESNETD_TFJS_H
#define RESNETD_TFJS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "resnetd/error.h"

typedef enum { TFJS_CONV, TFJS_BN, TFJS_DENSE } tfjs_kind_t;

/* A layer that owns weights, in graph order. */
typedef struct {
    const char *keras;    /* Keras layer name, e.g. "res3a_branch2a" */
    char torch[32];       /* torchvision prefix, e.g. "layer2.0.conv1" */
    tfjs_kind_t kind;
    int64_t in_ch;        /* input channels (conv, dense) */
    int64_t out_ch;       /* filters, BN channels, dense units */
    int64_t kh, kw;       /* conv kernel size */
    bool bias;            /* conv/dense use_bias */
} tfjs_layer_t;

typedef struct {
    tfjs_layer_t *layers; /* owned; n_layers entries */
    int n_layers;
    int stage_blocks[4];  /* blocks in res2..res5 */
    double bn_eps;        /* the one epsilon every BatchNormalization layer uses */
    int input_h, input_w; /* from InputLayer; 224 where the model leaves it open */
    int64_t n_classes;    /* the Dense layer's units */
} tfjs_topology_t;

/* Checks that layers (model_config.config.layers) is a Keras ResNet v1:
 * stem (ZeroPadding 3, 7x7/2 conv, BN, ReLU, ZeroPadding 1, 3x3/2 max pool),
 * four stages of res{S}{b}_branch2{a,b,c} bottlenecks with res{S}a_branch1
 * shortcuts, Add + ReLU, global average pooling and a Dense classifier, and
 * nothing else. Fails with RD_ERR_FORMAT (malformed JSON structure),
 * RD_ERR_UNSUPPORTED (a layer class or option resnetd does not run) or
 * RD_ERR_SHAPE (channels that do not chain), naming the layer. On success the
 * caller frees *out with tfjs_topology_free. */
rd_status_t tfjs_topology_parse(json_t *layers, tfjs_topology_t *out, rd_error_t *err);
void tfjs_topology_free(tfjs_topology_t *t);

typedef struct {
    const char *name;     /* e.g. "res2a_branch2a/kernel" */
    int ndim;
    int64_t shape[4];
    int64_t n_elems;
    int group;            /* index into the manifest's groups */
    int64_t offset;       /* byte offset inside the group's concatenated shards */
    bool used;            /* set by the caller once matched to a layer */
} tfjs_weight_t;

typedef struct {
    int n_paths;
    char **paths;         /* owned: folder of model.json + the manifest's path */
    int64_t *sizes;       /* bytes of each shard file */
} tfjs_group_t;

typedef struct {
    tfjs_weight_t *weights; /* owned, manifest order */
    int n_weights;
    tfjs_group_t *groups;   /* owned */
    int n_groups;
} tfjs_manifest_t;

/* Parses weightsManifest; dir is the folder its paths are relative to. Checks
 * that every dtype is float32 (RD_ERR_UNSUPPORTED otherwise), that names are
 * unique, that every shard exists (RD_ERR_IO) and that each group's shards
 * hold exactly the bytes its tensors need (RD_ERR_FORMAT, naming the tensor
 * or file). On success the caller frees *out with tfjs_manifest_free. */
rd_status_t tfjs_manifest_parse(json_t *manifest, const char *dir, tfjs_manifest_t *out,
                                rd_error_t *err);

/* The tensor called name, or NULL. */
tfjs_weight_t *tfjs_manifest_find(tfjs_manifest_t *m, const char *name);

/* Reads w's little-endian float32 values (w->n_elems of them) into dst. */
rd_status_t tfjs_manifest_read(const tfjs_manifest_t *m, const tfjs_weight_t *w, float *dst,
                               rd_error_t *err);

/* Frees what tfjs_manifest_parse allocated; a zeroed manifest is a no-op. */
void tfjs_manifest_free(tfjs_manifest_t *m);

#endif
