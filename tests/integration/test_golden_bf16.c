/* test_golden_bf16.c - the BF16 engine against PyTorch float64. For every
 * case NAME.json in $GOLDEN_DIR (tools/reference.py: seeded models, 5 seeded
 * images, logits computed in float64), loads NAME.safetensors with
 * precision bf16 and no FP32 recheck, runs the 5 images, and requires
 *   - every logit within TOLERANCE x max|logit| of PyTorch's, and
 *   - the same top-1 class where PyTorch's top two differ by more than
 *     2 x TOLERANCE x max|logit| (a closer call may flip within tolerance).
 * The largest error measured on these cases was 0.51% of max|logit| on AMX
 * (avx512_core_amx) and the same with ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI
 * (docs/performance.md), so the tolerance is about 2x that. It also checks
 * that the engine reports bf16 and that auto resolves as the effective ISA
 * says (engine_isa_fast_bf16). Without AMX BF16 (e.g. ONEDNN_MAX_CPU_ISA=
 * AVX512_CORE_VNNI, where oneDNN's BF16 convolutions are its reference code,
 * ~20x slower than FP32) only the first image of each case runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_cases.h"
#include "resnetd/engine.h"

#define TOLERANCE 0.01

static int argmax(const float *v, int n, float *gap)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != best && v[i] > second)
            second = v[i];
    *gap = v[best] - second;
    return best;
}

static engine_t *load(const char *model, rd_precision_t prec)
{
    engine_params_t p = engine_default_params();
    p.precision = prec;
    p.int8_recheck = -1; /* pure BF16: the recheck would hide its errors */
    engine_t *eng = NULL;
    rd_error_t err;
    ck_assert_msg(engine_load(model, &p, &eng, &err) == RD_OK, "%s: engine_load: %s", model,
                  err.msg);
    return eng;
}

START_TEST(bf16_matches_pytorch_float64)
{
    const char *name = golden_case(_i);
    char *model = golden_path(name, ".safetensors");
    golden_t g = {0};
    golden_read(name, &g);
    int n = g.n, classes = g.classes;
    const float *input = g.input, *want = g.logits;
    float *got = malloc((size_t)n * classes * sizeof *got);
    ck_assert_ptr_nonnull(got);
    engine_t *eng = load(model, RD_BF16);
    ck_assert_int_eq(engine_info(eng)->precision, RD_BF16);
    if (!engine_isa_fast_bf16())
        n = 1;
    rd_error_t err;
    memset(got, 0xff, (size_t)n * classes * sizeof *got); /* NaN: catch no-writes */
    ck_assert_msg(engine_run(eng, input, n, got, &err) == RD_OK, "%s: engine_run: %s", name,
                  err.msg);
    double max_logit = golden_max_abs(want, (size_t)n * classes), max_err = 0;
    for (size_t i = 0; i < (size_t)n * classes; i++) {
        double d = fabs((double)got[i] - want[i]);
        max_err = isnan(got[i]) ? INFINITY : fmax(max_err, d);
    }
    printf("%s: bf16 on %s: max |logit - float64| = %.3g = %.3f%% of max|logit| %.3g\n", name,
           engine_isa_name(), max_err, 100 * max_err / max_logit, max_logit);
    ck_assert_msg(max_err <= TOLERANCE * max_logit, "%s: bf16 max error %.3g > %.3g x %.3g",
                  name, max_err, TOLERANCE, max_logit);
    for (int i = 0; i < n; i++) {
        float gap, ignored;
        int ref = argmax(want + (size_t)i * classes, classes, &gap);
        if (gap > 2 * TOLERANCE * max_logit)
            ck_assert_msg(argmax(got + (size_t)i * classes, classes, &ignored) == ref,
                          "%s image %d: bf16 top-1 differs, float64 gap %.3g", name, i, gap);
    }
    engine_free(eng);
    eng = load(model, RD_AUTO);
    ck_assert_int_eq(engine_info(eng)->precision, engine_isa_fast_bf16() ? RD_BF16 : RD_FP32);
    ck_assert_msg(strstr(engine_precision_note(eng), engine_isa_name()) != NULL,
                  "auto's note '%s' names no ISA", engine_precision_note(eng));
    engine_free(eng);
    free(got);
    golden_free(&g);
    free(model);
}
END_TEST

int main(void)
{
    return golden_main("golden_bf16", "pytorch_float64", 900, bf16_matches_pytorch_float64);
}
