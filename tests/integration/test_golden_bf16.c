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
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnetd/engine.h"
#include "test_files.h"

#define MAX_CASES 64
#define TOLERANCE 0.01

static char *golden_dir;
static char *case_names[MAX_CASES];
static int n_cases;

static int json_int_of(const char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    ck_assert_msg(p != NULL, "golden json: \"%s\" missing", key);
    return atoi(p + strlen(pat));
}

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
    const char *name = case_names[_i];
    char *json_path = test_path(golden_dir, name, ".json"), *model =
        test_path(golden_dir, name, ".safetensors");
    size_t len;
    char *text = (char *)test_read_file(json_path, &len);
    int n = json_int_of(text, "n"), c = json_int_of(text, "c"), h = json_int_of(text, "h"),
        w = json_int_of(text, "w"), classes = json_int_of(text, "classes");
    float *input = test_read_f32_in(golden_dir, name, ".input.f32", (size_t)n * c * h * w);
    float *want = test_read_f32_in(golden_dir, name, ".logits.f32", (size_t)n * classes);
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
    double max_logit = 0, max_err = 0;
    for (size_t i = 0; i < (size_t)n * classes; i++) {
        max_logit = fmax(max_logit, fabs(want[i]));
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
    free(want);
    free(input);
    free(text);
    free(model);
    free(json_path);
}
END_TEST

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_cases(void)
{
    DIR *dir = opendir(golden_dir);
    if (!dir)
        return -1;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n_cases < MAX_CASES) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            case_names[n_cases++] = strndup(e->d_name, len - 5);
    }
    closedir(dir);
    qsort(case_names, (size_t)n_cases, sizeof *case_names, by_name);
    return n_cases;
}

int main(void)
{
    golden_dir = getenv("GOLDEN_DIR");
    if (!golden_dir || find_cases() <= 0) {
        fprintf(stderr, "test_golden_bf16: no NAME.json cases in GOLDEN_DIR=%s\n",
                golden_dir ? golden_dir : "(unset)");
        return 1;
    }
    Suite *s = suite_create("golden_bf16");
    TCase *tc = tcase_create("pytorch_float64");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, bf16_matches_pytorch_float64, 0, n_cases);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < n_cases; i++)
        free(case_names[i]);
    return failed ? 1 : 0;
}
