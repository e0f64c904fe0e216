/* test_golden.c - the engine against PyTorch. For every case NAME.json in
 * $GOLDEN_DIR (written by tools/reference.py), loads NAME.safetensors, runs the
 * 5 images of NAME.input.f32, then image 0 alone, then the 5 again in the same
 * engine (so plans for two batch sizes coexist), then the real photos of
 * NAME.photos.f32 when the case has them, and requires every logit to be
 * within TOLERANCE x max|logit| of PyTorch's float64 logits.
 *
 * TOLERANCE is a few times the error observed: at most 8.4e-7 x max|logit|
 * over the cases and inputs (ResNet-101, noise), on AMX and with
 * ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI alike (FP32 runs the same AVX-512
 * kernels there), 6.3e-7 with ONEDNN_MAX_CPU_ISA=AVX2; PyTorch's own float32
 * lands 0.7-1.9e-6 from its float64. A real bug is far above it: leaving out the BN
 * epsilon moves the logits by 2.8e-5 (eps 1e-5) to 5.5e-3 (eps 1e-3). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_cases.h"
#include "resnetd/engine.h"

#define TOLERANCE 3e-6

/* max |got - want| over n rows, after checking it against the tolerance. */
static double compare(const char *what, const float *got, const float *want, size_t count,
                      double max_logit)
{
    double max_diff = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert_msg(isfinite(got[i]), "%s: logit %zu is %f", what, i, got[i]);
        double d = fabs((double)got[i] - want[i]);
        if (d > max_diff)
            max_diff = d;
    }
    printf("%-24s max|diff| %.3g = %.2e x max|logit| (%.3f)\n", what, max_diff,
           max_diff / max_logit, max_logit);
    fflush(stdout); /* a failed check ends the forked test without flushing */
    ck_assert_msg(max_diff <= TOLERANCE * max_logit,
                  "%s: max|diff| %g > %g x max|logit| %g", what, max_diff, TOLERANCE, max_logit);
    return max_diff;
}

/* The engine's description against what reference.py built; keys other than
 * classes and size are optional in NAME.json. */
static void check_info(const char *name, const model_info_t *mi, const golden_t *g)
{
    ck_assert_msg(mi->n_classes == g->classes, "%s: %d classes, expected %d", name,
                  mi->n_classes, g->classes);
    ck_assert_msg(mi->preproc.input_h == g->h && mi->preproc.input_w == g->w,
                  "%s: input %dx%d, expected %dx%d", name, mi->preproc.input_h,
                  mi->preproc.input_w, g->h, g->w);
    for (size_t i = 0; i < json_array_size(g->labels); i++)
        ck_assert_str_eq(mi->labels[i], json_string_value(json_array_get(g->labels, i)));
    json_t *v;
    if ((v = json_object_get(g->expect, "arch")))
        ck_assert_str_eq(mi->arch, json_string_value(v));
    if ((v = json_object_get(g->expect, "bottleneck")))
        ck_assert_int_eq(mi->bottleneck, json_is_true(v));
    if ((v = json_object_get(g->expect, "conv_bias")))
        ck_assert_int_eq(mi->conv_bias, json_is_true(v));
    if ((v = json_object_get(g->expect, "stride")))
        ck_assert_int_eq(mi->stride, strcmp(json_string_value(v), "v1") == 0 ? MODEL_STRIDE_V1
                                                                          : MODEL_STRIDE_V1_5);
    if ((v = json_object_get(g->expect, "bn_eps")))
        ck_assert_float_eq_tol(mi->bn_eps, json_number_value(v), 1e-9);
    json_t *blocks = json_object_get(g->expect, "stage_blocks");
    for (size_t i = 0; i < json_array_size(blocks) && i < 4; i++)
        ck_assert_int_eq(mi->stage_blocks[i], json_integer_value(json_array_get(blocks, i)));
}

START_TEST(matches_pytorch)
{
    const char *name = golden_case(_i);
    golden_t g = {0};
    golden_read(name, &g);
    char *model = golden_path(name, ".safetensors");
    engine_t *eng = NULL;
    rd_error_t err;
    rd_status_t s = engine_load(model, NULL, &eng, &err);
    ck_assert_msg(s == RD_OK, "%s: engine_load: %s", name, err.msg);
    check_info(name, engine_info(eng), &g);

    double max_logit = golden_max_abs(g.logits, (size_t)g.n * g.classes);
    float *got = malloc((size_t)g.n * g.classes * sizeof *got);
    ck_assert_ptr_nonnull(got);
    char what[128];
    static const int batches[] = {0, 1, 0}; /* 0 = all n images */
    for (int r = 0; r < 3; r++) {
        int n = batches[r] ? batches[r] : g.n;
        memset(got, 0xff, (size_t)g.n * g.classes * sizeof *got); /* NaN: catch no-writes */
        s = engine_run(eng, g.input, n, got, &err);
        ck_assert_msg(s == RD_OK, "%s batch %d: engine_run: %s", name, n, err.msg);
        snprintf(what, sizeof what, "%s b%d%s", name, n, r == 2 ? " again" : "");
        compare(what, got, g.logits, (size_t)n * g.classes, max_logit);
    }
    if (g.n_photos) {
        double photo_max = golden_max_abs(g.photo_logits, (size_t)g.n_photos * g.classes);
        float *pgot = malloc((size_t)g.n_photos * g.classes * sizeof *pgot);
        ck_assert_ptr_nonnull(pgot);
        memset(pgot, 0xff, (size_t)g.n_photos * g.classes * sizeof *pgot);
        s = engine_run(eng, g.photos, g.n_photos, pgot, &err);
        ck_assert_msg(s == RD_OK, "%s photos: engine_run: %s", name, err.msg);
        snprintf(what, sizeof what, "%s photos b%d", name, g.n_photos);
        compare(what, pgot, g.photo_logits, (size_t)g.n_photos * g.classes, photo_max);
        free(pgot);
    }
    free(got);
    engine_free(eng);
    free(model);
    golden_free(&g);
}
END_TEST

int main(void)
{
    return golden_main("golden", "pytorch", 600, matches_pytorch);
}
