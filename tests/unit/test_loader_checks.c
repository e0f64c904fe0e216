/* test_loader_checks.c - what the loader refuses so that a model file cannot
 * surprise the server: non-finite weights (named by tensor), a labels_file
 * outside the model's folder (absolute, "..", or a symlink out), and model
 * names that cannot be a KServe URL segment; and engine_check_logits on a
 * real run whose input overflows inside the net. Models are the tiny ones of
 * loader_fixture.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader_fixture.h"
#include "resnetd/engine.h"

static void expect_load(const spec_t *sp, const char *file)
{
    write_model(sp, file);
    net_t *net;
    model_info_t info;
    rd_error_t err = { 0 };
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    net_free(net);
    model_info_clear(&info);
}

/* Each kind of tensor the loader reads, poisoned with NaN, +Inf or -Inf. */
START_TEST(refuses_non_finite_weights)
{
    static const char *tensors[] = { "conv1.weight", "bn1.running_var", "bn1.weight",
                                     "layer2.0.bn1.running_mean", "layer3.1.conv2.weight",
                                     "layer2.0.downsample.1.bias", "fc.weight", "fc.bias" };
    const float values[] = { NAN, INFINITY, -INFINITY };
    const char *names[] = { "NaN", "+Inf", "-Inf" };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        spec_t sp = basic_spec();
        sp.poison = tensors[i];
        sp.poison_value = values[i % 3];
        char want[128];
        snprintf(want, sizeof want, "tensor %s: element 1 is %s (weights must be finite)",
                 tensors[i], names[i % 3]);
        expect_fail(&sp, NULL, RD_ERR_FORMAT, want);
    }
    /* the conv bias of a model with biases */
    spec_t sp = bottleneck_spec();
    sp.bias = true;
    sp.poison = "layer4.0.conv3.bias";
    sp.poison_value = NAN;
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "tensor layer4.0.conv3.bias: element 1 is NaN");
}
END_TEST

/* Finite tensors whose fold overflows float: gamma 3e38 with var ~1. */
START_TEST(refuses_a_fold_that_overflows)
{
    spec_t sp = basic_spec();
    sp.poison = "layer1.0.bn2.weight";
    sp.poison_value = 3e38f;
    expect_fail(&sp, NULL, RD_ERR_FORMAT,
                "tensor layer1.0.conv2.weight: channel 1: folding layer1.0.bn2 gives a "
                "non-finite weight or bias");
    sp.poison_value = 1e30f; /* large but foldable: loads */
    expect_load(&sp, "m.safetensors");
}
END_TEST

START_TEST(labels_file_stays_in_the_model_folder)
{
    spec_t sp = basic_spec();
    sp.meta[0] = "labels_file";
    /* a file with 5 lines outside the folder, which the escapes would reach */
    char outside[160], link[160];
    snprintf(outside, sizeof outside, "%s.outside.txt", dir);
    FILE *f = fopen(outside, "w");
    ck_assert_ptr_nonnull(f);
    fputs("a\nb\nc\nd\ne\n", f);
    fclose(f);
    sp.meta[1] = outside;
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "must be a path inside the model's folder");
    sp.meta[1] = "/etc/passwd";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "\"/etc/passwd\" must be a path inside");
    const char *base = strrchr(outside, '/') + 1;
    char climb[200];
    snprintf(climb, sizeof climb, "../%s", base);
    sp.meta[1] = climb;
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "no absolute path, no \"..\"");
    snprintf(climb, sizeof climb, "sub/../../%s", base);
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "no absolute path, no \"..\"");
    /* a symlink inside the folder that points out of it */
    snprintf(link, sizeof link, "%s/labels.txt", dir);
    ck_assert_int_eq(symlink(outside, link), 0);
    sp.meta[1] = "labels.txt";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "outside the model's folder");
    ck_assert_int_eq(unlink(link), 0);
    /* inside: a plain file, a file in a subfolder, a symlink to a file inside,
     * and names that merely start with two dots */
    write_text("labels.txt", "a\nb\nc\nd\ne\n");
    expect_load(&sp, "m.safetensors");
    char sub[160];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_text("sub/..labels", "a\nb\nc\nd\ne\n");
    sp.meta[1] = "sub/..labels";
    expect_load(&sp, "m.safetensors");
    snprintf(link, sizeof link, "%s/sub/link.txt", dir);
    ck_assert_int_eq(symlink("../labels.txt", link), 0);
    sp.meta[1] = "sub/link.txt";
    expect_load(&sp, "m.safetensors");
    ck_assert_int_eq(unlink(outside), 0);
}
END_TEST

START_TEST(refuses_unreachable_model_names)
{
    spec_t sp = basic_spec();
    sp.meta[0] = "name", sp.meta[1] = "team/resnet";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "metadata name: model name \"team/resnet\": byte 4 "
                                          "is '/'");
    sp.meta[1] = "tab\there";
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "byte 3 is a control character");
    char name[200];
    memset(name, 'n', 128);
    name[128] = 0;
    sp.meta[1] = name;
    expect_fail(&sp, NULL, RD_ERR_FORMAT, "128 bytes, must be 1..127");
    name[127] = 0; /* 127 bytes: the longest, kept whole */
    write_model(&sp, "m.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err = { 0 };
    ck_assert_msg(load(NULL, &net, &info, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(info.name, name);
    net_free(net);
    model_info_clear(&info);
    sp.meta[1] = "caf\xc3\xa9-r\xc3\xa9seau"; /* UTF-8 is fine */
    expect_load(&sp, "m.safetensors");
    /* the default name comes from the file name, which can be as long */
    spec_t plain = basic_spec();
    memset(name, 'f', 130);
    snprintf(name + 130, sizeof name - 130, ".safetensors");
    write_model(&plain, name);
    ck_assert_int_eq(load(NULL, &net, &info, &err), RD_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "the file name (set metadata name): model name"), "%s",
                  err.msg);
    unlink(model_path);
    ck_assert_int_eq(engine_check_model_name("", &err), RD_ERR_FORMAT);
    ck_assert_int_eq(engine_check_model_name("bad\xff", &err), RD_ERR_FORMAT);
    ck_assert_int_eq(engine_check_model_name("resnet50-imagenet", &err), RD_OK);
}
END_TEST

/* A real engine run: huge FP32 inputs overflow inside the net, and
 * engine_check_logits says so for that image only. This net is positively
 * homogeneous at such scales (logits grow as the input: 1.8e38 at 1e31), so
 * 1e32 overflows the logits; far larger inputs can come back finite, since
 * ReLU maps the NaN of inf - inf to 0 (1e33 does here). */
START_TEST(reports_non_finite_logits)
{
    spec_t sp = basic_spec();
    sp.meta[0] = "input_size", sp.meta[1] = "32";
    write_model(&sp, "m.safetensors");
    engine_t *eng;
    rd_error_t err = { 0 };
    ck_assert_msg(engine_load(model_path, NULL, &eng, &err) == RD_OK, "%s", err.msg);
    size_t per = 3 * 32 * 32;
    float *in = calloc(2 * per, sizeof *in), logits[10];
    for (size_t i = 0; i < per; i++) {
        in[i] = 0.5f * (float)(i % 7) - 1.5f;
        in[per + i] = 1e32f;
    }
    ck_assert_msg(engine_run(eng, in, 2, logits, &err) == RD_OK, "%s", err.msg);
    ck_assert_msg(engine_check_logits(logits, 5, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(engine_check_logits(logits + 5, 5, &err), RD_ERR_NONFINITE);
    ck_assert_msg(strstr(err.msg, "the model's output is not finite (logit 0 is"), "%s", err.msg);
    free(in);
    engine_free(eng);
    float ok[3] = { 1, -2, 3 }, bad[3] = { 1, -INFINITY, NAN };
    ck_assert_int_eq(engine_check_logits(ok, 3, &err), RD_OK);
    ck_assert_int_eq(engine_check_logits(bad, 3, &err), RD_ERR_NONFINITE);
    ck_assert_msg(strstr(err.msg, "logit 1 is -Inf"), "%s", err.msg);
    ck_assert_int_eq(engine_check_logits(NULL, 3, &err), RD_ERR_ARG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader_checks");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, refuses_non_finite_weights);
    tcase_add_test(tc, refuses_a_fold_that_overflows);
    tcase_add_test(tc, labels_file_stays_in_the_model_folder);
    tcase_add_test(tc, refuses_unreachable_model_names);
    tcase_add_test(tc, reports_non_finite_logits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
