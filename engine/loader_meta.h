/* loader_meta.h - internal to the loader: the model's __metadata__ (see the
 * key list in README "Model format") and its labels, turned into the parts of
 * a model_info_t that the tensors cannot say. */
#ifndef RESNETD_LOADER_META_H
#define RESNETD_LOADER_META_H

#include "resnetd/engine.h"
#include "resnetd/model.h"
#include "safetensors.h"

/* Fills info->name, stride, bn_eps and preproc from the metadata, the model's
 * path (for the default name; may be NULL) and params (may be NULL; its input
 * size overrides the metadata's). Fails with RD_ERR_FORMAT naming the metadata
 * key whose value is malformed or out of range (a name that
 * engine_check_model_name refuses, from the metadata or the file name), or
 * RD_ERR_ARG for a bad override. Allocates nothing. */
rd_status_t loader_meta_parse(const safetensors_t *st, const char *path,
                              const engine_params_t *params, model_info_t *info,
                              rd_error_t *err);

/* Loads n_classes labels into *labels (an array of n_classes malloc'd strings,
 * freed with loader_labels_free): from labels_path when not NULL (relative to
 * the working directory), else metadata "labels" (JSON array), else metadata
 * "labels_file" (relative to model_path's folder, and refused with
 * RD_ERR_FORMAT unless it resolves inside it: no absolute path, no "..", no
 * symlink out), else "class_0".."class_N-1".
 * A file is a JSON array of strings, a JSON object {"0": "tench", ...}, or one
 * label per line. Fails with RD_ERR_IO, RD_ERR_FORMAT or RD_ERR_SHAPE (count
 * != n_classes), naming the file or key; *labels is NULL then. */
rd_status_t loader_labels_load(const safetensors_t *st, const char *model_path,
                               const char *labels_path, int n_classes, char ***labels,
                               rd_error_t *err);

void loader_labels_free(char **labels, int n);

#endif
