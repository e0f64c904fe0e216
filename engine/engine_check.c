/* engine_check.c - checks on what crosses the engine's edge: a model name fit
 * for a KServe URL is in loader_meta.c; here, whether an image's logits are
 * numbers that softmax and top-k can rank (resnetd/engine.h). */
#include <math.h>

#include "resnetd/engine.h"

rd_status_t engine_check_logits(const float *logits, int n_classes, rd_error_t *err)
{
    if (!logits || n_classes < 1)
        return rd_error_set(err, RD_ERR_ARG, "engine_check_logits: NULL logits or no classes");
    for (int i = 0; i < n_classes; i++)
        if (!isfinite(logits[i]))
            return rd_error_set(err, RD_ERR_NONFINITE,
                                "the model's output is not finite (logit %d is %s): the input "
                                "values overflow inside the network", i,
                                isnan(logits[i]) ? "NaN" : logits[i] > 0 ? "+Inf" : "-Inf");
    return RD_OK;
}
