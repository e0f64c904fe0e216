/* test_explain.c - the engine's features and class activation maps against
 * PyTorch. For every case NAME.json in $EXPLAIN_DIR (tools/reference_explain.py:
 * ResNet-18 and ResNet-50 at 224, ResNet-18 at 128 with a 4x4 map; noise and
 * photos), runs the images in one FP32 batch that mixes images asking for
 * features, for the map, for both and for neither, and requires:
 *   - features within TOL x max|feature| of PyTorch's float64 model with
 *     fc = Identity, and the feature map of layer4's float64 output;
 *   - engine_cam of the top-1 and the last class within TOL x max|CAM| of
 *     the float64 CAM sum_k fc.weight[c][k] * layer4[k];
 *   - images that did not ask get nothing written, and the logits equal
 *     engine_run's (the extra outputs change nothing).
 * Then the same in BF16 (no recheck) within BF16_TOL, the conversion to FP32
 * being the engine's job; and in BF16 with every image rechecked in FP32,
 * within TOL (the rechecked images' features are FP32's).
 *
 * TOL is a few times the largest error observed relative to the largest value
 * over the cases (on AMX): 3.4e-7 (features), 1.4e-6 (map), 6.6e-7 (CAM);
 * BF16_TOL likewise, 3.6e-3, 1.2e-2 and 7.1e-3.
 * Planted bugs, each caught: the CAM from class c+1's row of fc.weight,
 * features copied from the wrong image of the sub-batch, the pooled sum
 * instead of the mean (49x), the rechecked images keeping BF16's features. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnetd/engine.h"
#include "test_files.h"

#define MAX_CASES 16
#define TOL 4e-6
#define BF16_TOL 0.03

static char *dir;
static char *case_names[MAX_CASES];
static int n_cases;

typedef struct {
    int n, c, h, w, classes, channels, map_h, map_w;
    float *input, *features, *fmap, *cam;
    json_t *cam_classes;
    json_t *root;
} ref_t;

static int json_int(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    ck_assert_msg(json_is_integer(v), "explain json: \"%s\" missing", key);
    return (int)json_integer_value(v);
}

static void ref_read(const char *name, ref_t *r)
{
    char *path = test_path(dir, name, ".json");
    json_error_t jerr;
    r->root = json_load_file(path, 0, &jerr);
    ck_assert_msg(r->root != NULL, "%s: %s", path, jerr.text);
    free(path);
    r->n = json_int(r->root, "n");
    r->c = json_int(r->root, "c");
    r->h = json_int(r->root, "h");
    r->w = json_int(r->root, "w");
    r->classes = json_int(r->root, "classes");
    r->channels = json_int(r->root, "channels");
    r->map_h = json_int(r->root, "map_h");
    r->map_w = json_int(r->root, "map_w");
    r->cam_classes = json_object_get(r->root, "cam_classes");
    size_t px = (size_t)r->map_h * r->map_w;
    r->input = test_read_f32_in(dir, name, ".input.f32", (size_t)r->n * r->c * r->h * r->w);
    r->features = test_read_f32_in(dir, name, ".features.f32", (size_t)r->n * r->channels);
    r->fmap = test_read_f32_in(dir, name, ".fmap.f32", (size_t)r->n * r->channels * px);
    r->cam = test_read_f32_in(dir, name, ".cam.f32", (size_t)r->n * 2 * px);
}

static void ref_free(ref_t *r)
{
    free(r->input);
    free(r->features);
    free(r->fmap);
    free(r->cam);
    json_decref(r->root);
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Checks max|got - want| <= tol * scale and prints the error. */
static void compare(const char *what, const float *got, const float *want, size_t n,
                    double scale, double tol)
{
    double max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(got[i]), "%s: value %zu is %f", what, i, got[i]);
        max_diff = fmax(max_diff, fabs((double)got[i] - want[i]));
    }
    printf("%-36s max|diff| %.3g = %.2e x max %.3f\n", what, max_diff, max_diff / scale, scale);
    fflush(stdout);
    ck_assert_msg(max_diff <= tol * scale, "%s: max|diff| %g > %g x %g", what, max_diff, tol,
                  scale);
}

/* Runs every image of r in one batch on eng, image i asking for features
 * when i % 2 == 0 and for the map when i % 3 != 1, and checks them (tol)
 * and what the images that did not ask kept. */
static void check_engine(const char *name, const char *prec, engine_t *eng, const ref_t *r,
                         double tol)
{
    engine_feature_shape_t fs = engine_feature_shape(eng);
    ck_assert_int_eq(fs.channels, r->channels);
    ck_assert_int_eq(fs.height, r->map_h);
    ck_assert_int_eq(fs.width, r->map_w);
    size_t px = (size_t)fs.height * fs.width, map_n = (size_t)fs.channels * px;
    float *feat = malloc((size_t)r->n * fs.channels * sizeof *feat);
    float *map = malloc((size_t)r->n * map_n * sizeof *map);
    float *logits = malloc((size_t)r->n * r->classes * sizeof *logits);
    float *plain = malloc((size_t)r->n * r->classes * sizeof *plain);
    float *cam = malloc(px * sizeof *cam);
    float **fp = calloc((size_t)r->n, sizeof *fp), **mp = calloc((size_t)r->n, sizeof *mp);
    ck_assert(feat && map && logits && plain && cam && fp && mp);
    memset(feat, 0xff, (size_t)r->n * fs.channels * sizeof *feat); /* NaN: untouched */
    memset(map, 0xff, (size_t)r->n * map_n * sizeof *map);
    for (int i = 0; i < r->n; i++) {
        fp[i] = i % 2 == 0 ? feat + (size_t)i * fs.channels : NULL;
        mp[i] = i % 3 != 1 ? map + (size_t)i * map_n : NULL;
    }
    rd_error_t err;
    engine_outputs_t outs = {.features = fp, .feature_map = mp};
    ck_assert_msg(engine_run_outputs(eng, r->input, r->n, logits, &outs, &err) == RD_OK, "%s",
                  err.msg);
    ck_assert_msg(engine_run(eng, r->input, r->n, plain, &err) == RD_OK, "%s", err.msg);
    ck_assert_msg(!memcmp(logits, plain, (size_t)r->n * r->classes * sizeof *plain),
                  "%s %s: logits differ when outputs are asked for", name, prec);
    double feat_max = max_abs(r->features, (size_t)r->n * fs.channels);
    double map_max = max_abs(r->fmap, (size_t)r->n * map_n);
    double cam_max = max_abs(r->cam, (size_t)r->n * 2 * px);
    char what[96];
    for (int i = 0; i < r->n; i++) {
        const float *f = feat + (size_t)i * fs.channels, *m = map + (size_t)i * map_n;
        snprintf(what, sizeof what, "%s %s image %d features", name, prec, i);
        if (fp[i])
            compare(what, f, r->features + (size_t)i * fs.channels, fs.channels, feat_max, tol);
        else
            ck_assert_msg(isnan(f[0]) && isnan(f[fs.channels - 1]), "%s: written", what);
        snprintf(what, sizeof what, "%s %s image %d map", name, prec, i);
        if (!mp[i]) {
            ck_assert_msg(isnan(m[0]) && isnan(m[map_n - 1]), "%s: written", what);
            continue;
        }
        compare(what, m, r->fmap + (size_t)i * map_n, map_n, map_max, tol);
        for (int j = 0; j < 2; j++) {
            int cls = (int)json_integer_value(json_array_get(json_array_get(r->cam_classes, i), j));
            ck_assert_msg(engine_cam(eng, m, cls, cam, &err) == RD_OK, "%s", err.msg);
            snprintf(what, sizeof what, "%s %s image %d CAM class %d", name, prec, i, cls);
            compare(what, cam, r->cam + ((size_t)i * 2 + j) * px, px, cam_max, tol);
        }
    }
    free(feat);
    free(map);
    free(logits);
    free(plain);
    free(cam);
    free(fp);
    free(mp);
}

START_TEST(fp32_matches_pytorch)
{
    ref_t r = {0};
    ref_read(case_names[_i], &r);
    char *model = test_path(dir, case_names[_i], ".safetensors");
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(model, NULL, &eng, &err) == RD_OK, "%s", err.msg);
    check_engine(case_names[_i], "fp32", eng, &r, TOL);
    engine_free(eng);
    free(model);
    ref_free(&r);
}
END_TEST

START_TEST(bf16_converts)
{
    ref_t r = {0};
    ref_read(case_names[_i], &r);
    char *model = test_path(dir, case_names[_i], ".safetensors");
    engine_params_t p = engine_default_params();
    p.precision = RD_BF16;
    p.int8_recheck = -1;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(model, &p, &eng, &err) == RD_OK, "%s", err.msg);
    check_engine(case_names[_i], "bf16", eng, &r, BF16_TOL);
    engine_free(eng);
    free(model);
    ref_free(&r);
}
END_TEST

/* BF16 with a recheck margin so wide that every image runs again in FP32:
 * then every feature is FP32's (engine_run_outputs takes the rechecked
 * images' features from the FP32 plan, like their logits). */
START_TEST(bf16_rechecked_are_fp32)
{
    ref_t r = {0};
    ref_read(case_names[_i], &r);
    char *model = test_path(dir, case_names[_i], ".safetensors");
    engine_params_t p = engine_default_params();
    p.precision = RD_BF16;
    p.int8_recheck = 999.0f;
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(model, &p, &eng, &err) == RD_OK, "%s", err.msg);
    check_engine(case_names[_i], "bf16 rechecked", eng, &r, TOL);
    ck_assert_uint_gt(engine_rechecked(eng), 0);
    engine_free(eng);
    free(model);
    ref_free(&r);
}
END_TEST

START_TEST(cam_rejects_bad_class)
{
    char *model = test_path(dir, case_names[0], ".safetensors");
    engine_t *eng;
    rd_error_t err;
    ck_assert_msg(engine_load(model, NULL, &eng, &err) == RD_OK, "%s", err.msg);
    engine_feature_shape_t fs = engine_feature_shape(eng);
    float *map = calloc((size_t)fs.channels * fs.height * fs.width, sizeof *map);
    float cam[64 * 64];
    int n = engine_info(eng)->n_classes;
    ck_assert_int_eq(engine_cam(eng, map, n, cam, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "is not in 0.."));
    ck_assert_int_eq(engine_cam(eng, map, -1, cam, &err), RD_ERR_ARG);
    ck_assert_int_eq(engine_cam(eng, NULL, 0, cam, &err), RD_ERR_ARG);
    free(map);
    engine_free(eng);
    free(model);
}
END_TEST

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    dir = getenv("EXPLAIN_DIR");
    if (!dir) {
        fprintf(stderr, "EXPLAIN_DIR not set (tools/reference_explain.py writes it)\n");
        return 1;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n_cases < MAX_CASES) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            case_names[n_cases++] = strndup(e->d_name, len - 5);
    }
    if (d)
        closedir(d);
    if (n_cases == 0) {
        fprintf(stderr, "no cases in %s\n", dir);
        return 1;
    }
    qsort(case_names, (size_t)n_cases, sizeof *case_names, by_name);
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, fp32_matches_pytorch, 0, n_cases);
    tcase_add_loop_test(tc, bf16_converts, 0, n_cases);
    tcase_add_loop_test(tc, bf16_rechecked_are_fp32, 0, n_cases);
    tcase_add_test(tc, cam_rejects_bad_class);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < n_cases; i++)
        free(case_names[i]);
    return failed ? 1 : 0;
}
