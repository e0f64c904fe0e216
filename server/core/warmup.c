/* warmup.c - building every plan before ready (see warmup.h). Zero images
 * are enough: plan building and the first touch of the arena do not depend on
 * the pixels. */
#include "warmup.h"

#include <stdlib.h>

#include "clock.h"

rd_status_t warmup_run(engine_t *engine, int max_batch_size, warmup_result_t *out,
                       rd_error_t *err)
{
    *out = (warmup_result_t){0};
    if (max_batch_size < 1)
        return rd_error_set(err, RD_ERR_ARG, "warm-up: max_batch_size %d", max_batch_size);
    const model_info_t *mi = engine_info(engine);
    int sub = engine_sub_batch(engine);
    int largest = max_batch_size < sub ? max_batch_size : sub;
    size_t per = (size_t)3 * (size_t)mi->preproc.input_h * (size_t)mi->preproc.input_w;
    float *in = calloc((size_t)largest * per, sizeof *in);
    float *logits = malloc((size_t)largest * (size_t)mi->n_classes * sizeof *logits);
    rd_status_t st = in && logits ? RD_OK
                                  : rd_error_set(err, RD_ERR_NOMEM, "out of memory for warm-up");
    int64_t t0 = clock_now_ns();
    for (int n = 1; st == RD_OK && n <= largest; n++) {
        st = engine_run(engine, in, n, logits, err);
        if (st != RD_OK)
            rd_error_prefix(err, "warm-up at batch %d", n);
        else
            out->runs++;
    }
    out->seconds = (double)(clock_now_ns() - t0) / 1e9;
    out->largest = largest;
    free(in);
    free(logits);
    return st;
}
