/* fuzz_safetensors.c - libFuzzer harness: safetensors_parse on arbitrary bytes,
 * then (when it parses) every lookup, the float conversion and loader_build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loader.h"
#include "safetensors.h"

static void touch_tensors(const safetensors_t *st)
{
    for (int i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor_t *t = safetensors_at(st, i);
        if (safetensors_find(st, t->name) == NULL)
            abort(); /* a listed tensor must be found by its name */
        if (safetensors_check_float(t, NULL) != RD_OK || t->n_elems > (1 << 20))
            continue;
        float *dst = malloc((size_t)t->n_elems * sizeof *dst + 1);
        if (dst) {
            safetensors_to_f32(t, dst);
            free(dst);
        }
    }
    (void)safetensors_metadata(st, "name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    safetensors_t *st = NULL;
    rd_error_t err;
    if (safetensors_parse(data, size, &st, &err) != RD_OK)
        return 0;
    touch_tensors(st);
    net_t *net = NULL;
    model_info_t info = {0};
    rd_status_t s = loader_build(st, "/nonexistent/fuzz.safetensors", NULL, &net, &info, &err);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds load */
        fprintf(stderr, "loader_build: %s\n", s == RD_OK ? "ok" : err.msg);
    if (s == RD_OK) {
        net_free(net);
        model_info_clear(&info);
    }
    safetensors_close(st);
    return 0;
}
