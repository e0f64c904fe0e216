/* test_model_repo.c - reading a model repository (model_repo.c) from real
 * folders written in a temporary directory: the version folders and the
 * version policies (latest N, all, specific), a model's config.json over the
 * server's config, and its errors naming the file and the key. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_repo.h"
#include "tmpdir_fixture.h"

static char root[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* DIR/NAME/V/model.safetensors for each version (content is not read here). */
static void make_model(const char *name, const int *versions, int n, const char *config)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    mkdir(path, 0755);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%d", root, name, versions[i]);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/%s/%d/model.safetensors", root, name, versions[i]);
        write_file(path, "x");
    }
    if (config) {
        snprintf(path, sizeof path, "%s/%s/config.json", root, name);
        write_file(path, config);
    }
}

static void setup(void)
{
    tmpdir_make(root, sizeof root, "test_model_repo");
}

static void teardown(void)
{
    tmpdir_remove(root);
}

static rd_status_t read_model(const char *name, repo_model_t *m, rd_error_t *err)
{
    config_t base = config_default_params();
    return repo_read_model(root, name, &base, m, err);
}

START_TEST(latest_one_by_default)
{
    make_model("a", (int[]){1, 3, 2, 10}, 4, NULL);
    char other[512];
    snprintf(other, sizeof other, "%s/a/07", root); /* not a version: leading zero */
    mkdir(other, 0755);
    repo_model_t *m = malloc(sizeof *m);
    rd_error_t err = {0};
    ck_assert_int_eq(read_model("a", m, &err), RD_OK);
    ck_assert_str_eq(m->name, "a");
    ck_assert_int_eq(m->n_versions, 1);
    ck_assert_int_eq(m->versions[0].version, 10);
    ck_assert_ptr_nonnull(strstr(m->versions[0].path, "/a/10/model.safetensors"));
    free(m);
}
END_TEST

START_TEST(policies)
{
    int v[] = {1, 2, 3, 4};
    make_model("l", v, 4, "{\"version_policy\":{\"latest\":{\"num_versions\":2}}}");
    make_model("all", v, 4, "{\"version_policy\":{\"all\":{}}}");
    make_model("s", v, 4, "{\"version_policy\":{\"specific\":{\"versions\":[3,1,9]}}}");
    repo_model_t *m = malloc(sizeof *m);
    rd_error_t err = {0};
    ck_assert_int_eq(read_model("l", m, &err), RD_OK);
    ck_assert_int_eq(m->n_versions, 2);
    ck_assert_int_eq(m->versions[0].version, 3);
    ck_assert_int_eq(m->versions[1].version, 4);
    ck_assert_int_eq(read_model("all", m, &err), RD_OK);
    ck_assert_int_eq(m->n_versions, 4);
    ck_assert_int_eq(read_model("s", m, &err), RD_OK);
    ck_assert_int_eq(m->n_versions, 2);
    ck_assert_int_eq(m->versions[0].version, 1);
    ck_assert_int_eq(m->versions[1].version, 3);
    free(m);
}
END_TEST

START_TEST(config_overrides)
{
    make_model("c", (int[]){1}, 1,
               "{\"precision\":\"bf16\",\"max_batch_size\":4,\"max_queue_delay_us\":0,"
               "\"max_queue_length\":40,\"input_size\":\"128x96\",\"resize\":150,"
               "\"channel_order\":\"BGR\",\"mean\":[1,2,3],\"labels\":\"labels.txt\","
               "\"instances\":1}");
    repo_model_t *m = malloc(sizeof *m);
    rd_error_t err = {0};
    ck_assert_msg(read_model("c", m, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(m->cfg.precision, RD_BF16);
    ck_assert_int_eq(m->cfg.max_batch_size, 4);
    ck_assert_int_eq(m->cfg.max_queue_delay_us, 0);
    ck_assert_int_eq(m->cfg.max_queue_length, 40);
    ck_assert_int_eq(m->cfg.input_h, 128);
    ck_assert_int_eq(m->cfg.input_w, 96);
    ck_assert_int_eq(m->cfg.resize, 150);
    ck_assert_str_eq(m->cfg.channel_order, "BGR");
    ck_assert(m->cfg.has_mean && m->cfg.mean[2] == 3);
    char want[512];
    snprintf(want, sizeof want, "%s/c/labels.txt", root); /* relative to the model's folder */
    ck_assert_str_eq(m->cfg.labels, want);
    free(m);
}
END_TEST

/* Each bad config.json fails with a message naming the file and the key. */
START_TEST(config_errors)
{
    static const struct { const char *json, *key; } cases[] = {
        {"{\"max_batch_sise\":4}", "max_batch_sise"},
        {"{\"port\":8081}", "port"}, /* a server key, not a model's */
        {"{\"max_batch_size\":0}", "max_batch_size"},
        {"{\"max_batch_size\":\"big\"}", "max_batch_size"},
        {"{\"precision\":\"fp64\"}", "precision"},
        {"{\"instances\":2}", "instances"},
        {"{\"version_policy\":{\"latest\":{\"num_versions\":0}}}", "num_versions"},
        {"{\"version_policy\":{\"newest\":{}}}", "version_policy"},
        {"{\"version_policy\":{\"specific\":{\"versions\":[0]}}}", "versions"},
        {"{\"max_queue_length\":4,\"max_batch_size\":2", "config.json:1"},
        {"{\"channel_order\":\"RBG\"}", "channel_order"},
    };
    repo_model_t *m = malloc(sizeof *m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "bad%zu", i);
        make_model(name, (int[]){1}, 1, cases[i].json);
        rd_error_t err = {0};
        ck_assert_int_ne(read_model(name, m, &err), RD_OK);
        char file[300];
        snprintf(file, sizeof file, "%s/%s/config.json", root, name);
        ck_assert_msg(strstr(err.msg, file), "case %zu: '%s' does not name %s", i, err.msg, file);
        ck_assert_msg(strstr(err.msg, cases[i].key), "case %zu: '%s' does not name %s", i,
                      err.msg, cases[i].key);
    }
    free(m);
}
END_TEST

START_TEST(listing_and_missing)
{
    make_model("b", (int[]){1}, 1, NULL);
    make_model("a", (int[]){2}, 1, NULL);
    make_model("empty", NULL, 0, NULL);
    make_model("s", (int[]){1}, 1, "{\"version_policy\":{\"specific\":{\"versions\":[2]}}}");
    char path[300];
    snprintf(path, sizeof path, "%s/README", root);
    write_file(path, "not a model");
    char names[REPO_MAX_MODELS][REPO_NAME_MAX];
    int n;
    rd_error_t err = {0};
    ck_assert_int_eq(repo_list(root, names, REPO_MAX_MODELS, &n, &err), RD_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(names[0], "a");
    ck_assert_str_eq(names[1], "b");
    ck_assert_int_eq(repo_list(root, names, 2, &n, &err), RD_ERR_LIMIT);
    repo_model_t *m = malloc(sizeof *m);
    ck_assert_int_eq(read_model("empty", m, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "no version folder"));
    ck_assert_int_eq(read_model("s", m, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "specific"));
    ck_assert_int_eq(repo_list("/nonexistent/repo", names, 4, &n, &err), RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/repo"));
    free(m);
}
END_TEST

/* A file replaced in place (rename over it, as a deployment does) is a
 * different file; the same file stat'ed twice is the same. */
START_TEST(replaced_file)
{
    make_model("r", (int[]){1}, 1, NULL);
    repo_model_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    rd_error_t err = {0};
    ck_assert_int_eq(read_model("r", a, &err), RD_OK);
    ck_assert_int_eq(read_model("r", b, &err), RD_OK);
    ck_assert(repo_same_file(&a->versions[0], &b->versions[0]));
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/r/new", root);
    write_file(tmp, "y");
    ck_assert_int_eq(rename(tmp, a->versions[0].path), 0);
    ck_assert_int_eq(read_model("r", b, &err), RD_OK);
    ck_assert(!repo_same_file(&a->versions[0], &b->versions[0]));
    free(a);
    free(b);
}
END_TEST

/* config/repository/cats/config.json, the shipped example, reads cleanly. */
START_TEST(shipped_example)
{
    const char *src = getenv("SRCDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/config/repository/cats/config.json", src ? src : "../..");
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    repo_model_t *m = malloc(sizeof *m);
    memset(m, 0, sizeof *m);
    m->cfg = config_default_params();
    rd_error_t err = {0};
    ck_assert_msg(repo_parse_config(text, len, path, m, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(m->policy.kind, REPO_POLICY_LATEST);
    ck_assert_int_eq(m->policy.latest, 2);
    ck_assert_int_eq(m->cfg.input_h, 128);
    free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_repo");
    TCase *tc = tcase_create("model_repo");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, latest_one_by_default);
    tcase_add_test(tc, policies);
    tcase_add_test(tc, config_overrides);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, listing_and_missing);
    tcase_add_test(tc, replaced_file);
    tcase_add_test(tc, shipped_example);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
