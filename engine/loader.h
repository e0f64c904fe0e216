/* loader.h - from a safetensors file with torchvision key names to a BN-folded
 * net_t and its model_info_t. The architecture (block type, blocks per stage,
 * classes, conv bias) is inferred from the tensors; __metadata__ supplies what
 * tensors cannot say (see README "Model format"). */
#ifndef RESNETD_LOADER_H
#define RESNETD_LOADER_H

#include "net.h"
#include "resnetd/engine.h"
#include "resnetd/model.h"
#include "safetensors.h"

/* Builds *net and fills *info from an open file. params may override the input
 * size and labels. On failure nothing is left allocated and err names the
 * tensor or metadata key at fault. Free with net_free and model_info_clear. */
rd_status_t loader_build(const safetensors_t *st, const char *path, const engine_params_t *params,
                         net_t **net, model_info_t *info, rd_error_t *err);

/* Frees what loader_build allocated inside info (the labels). */
void model_info_clear(model_info_t *info);

#endif
