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

/* Builds *net and fills *info from an open file. path is the file's path: it
 * gives the default name, the folder for metadata labels_file, and the prefix
 * of error messages ("path: tensor ..."); it may be NULL. params (may be NULL)
 * may override the input size and the labels. The net copies every weight, so
 * st may be closed afterwards. Fails with RD_ERR_SHAPE (a tensor missing or
 * misshapen, an inconsistent architecture or conv bias, a label count that
 * differs from fc.weight's), RD_ERR_UNSUPPORTED (a needed tensor that is not
 * F32/F16/BF16), RD_ERR_FORMAT (a bad metadata value or labels file, a
 * running_var that makes var + eps <= 0, a weight that is NaN or infinite or
 * a fold that overflows float, a labels_file outside the model's folder, a
 * model name engine_check_model_name refuses), RD_ERR_ARG (bad params), RD_ERR_IO
 * (labels file) or RD_ERR_NOMEM; err names the tensor, metadata key or file
 * at fault. On failure *net is NULL, *info is zeroed and nothing is left
 * allocated. Free with net_free and model_info_clear. Thread-safe for
 * different outputs (st is only read). */
rd_status_t loader_build(const safetensors_t *st, const char *path, const engine_params_t *params,
                         net_t **net, model_info_t *info, rd_error_t *err);

/* Frees what loader_build allocated inside info (the labels) and sets
 * info->labels to NULL. NULL or an already cleared info is a no-op. */
void model_info_clear(model_info_t *info);

#endif
