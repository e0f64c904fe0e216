/* golden_cases.c - reading $GOLDEN_DIR's cases (golden_cases.h). */
#include "golden_cases.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_files.h"

#define MAX_CASES 64

static const char *golden_dir;
static char *case_names[MAX_CASES];
static int n_cases;

const char *golden_case(int i) { return case_names[i]; }

char *golden_path(const char *name, const char *suffix)
{
    return test_path(golden_dir, name, suffix);
}

static int json_int(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    ck_assert_msg(json_is_integer(v), "golden json: \"%s\" missing", key);
    return (int)json_integer_value(v);
}

void golden_read(const char *name, golden_t *g)
{
    char *path = golden_path(name, ".json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
    g->n = json_int(root, "n");
    g->c = json_int(root, "c");
    g->h = json_int(root, "h");
    g->w = json_int(root, "w");
    g->classes = json_int(root, "classes");
    g->labels = json_object_get(root, "labels");
    g->expect = root;
    free(path);
    g->input = test_read_f32_in(golden_dir, name, ".input.f32", (size_t)g->n * g->c * g->h * g->w);
    g->logits = test_read_f32_in(golden_dir, name, ".logits.f32", (size_t)g->n * g->classes);
    json_t *np = json_object_get(root, "n_photos");
    g->n_photos = json_is_integer(np) ? (int)json_integer_value(np) : 0;
    if (g->n_photos) {
        g->photos = test_read_f32_in(golden_dir, name, ".photos.f32",
                                     (size_t)g->n_photos * g->c * g->h * g->w);
        g->photo_logits = test_read_f32_in(golden_dir, name, ".photos_logits.f32",
                                           (size_t)g->n_photos * g->classes);
    }
}

void golden_free(golden_t *g)
{
    free(g->input);
    free(g->logits);
    free(g->photos);
    free(g->photo_logits);
    json_decref(g->expect);
}

double golden_max_abs(const float *v, size_t count)
{
    double m = 0;
    for (size_t i = 0; i < count; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects NAME for every NAME.json in golden_dir, sorted. */
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

int golden_main(const char *suite, const char *tcase, double timeout_s, const TTest *test)
{
    golden_dir = getenv("GOLDEN_DIR");
    if (!golden_dir || find_cases() <= 0) {
        fprintf(stderr, "test_%s: no NAME.json cases in GOLDEN_DIR=%s\n", suite,
                golden_dir ? golden_dir : "(unset)");
        return 1;
    }
    Suite *s = suite_create(suite);
    TCase *tc = tcase_create(tcase);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_loop_test(tc, test, 0, n_cases);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < n_cases; i++)
        free(case_names[i]);
    return failed ? 1 : 0;
}
