/* test_convert_happy.c - test_convert's successful conversions.
 * Fixtures: convert_fixture.c. */
#include "convert_fixture.h"

START_TEST(test_converts_tiny_resnet)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    write_str(&m, "labels.json", "{\"0\": \"cat\", \"1\": \"dog\", \"2\": \"bald_eagle\"}");
    char labels[160];
    snprintf(labels, sizeof labels, "%s/labels.json", m.dir);
    rd_error_t err = {0};
    ck_assert_msg(convert_tfjs(m.path, labels, m.out, &err) == RD_OK, "%s", err.msg);

    safetensors_t *st = NULL;
    ck_assert_msg(safetensors_open(m.out, &st, &err) == RD_OK, "%s", err.msg);
    ck_assert_int_eq(safetensors_count(st), (int)json_array_size(m.weights));
    check_conv(&m, st, "conv1.weight", "conv1", 4, 3, 7);
    check_conv(&m, st, "layer1.1.conv2.weight", "res2b_branch2b", 1, 1, 3);
    check_conv(&m, st, "layer2.0.conv1.weight", "res3a_branch2a", 2, 4, 1);
    check_conv(&m, st, "layer4.0.downsample.0.weight", "res5a_branch1", 16, 12, 1);
    int64_t fc[2] = {3, 16}, c16[1] = {16}, c3[1] = {3}, c8[1] = {8};
    const safetensors_tensor_t *t = tensor(st, "fc.weight", 2, fc);
    int64_t base = offset_of(&m, "fc1000/kernel");
    for (int64_t o = 0; o < 3; o++)
        for (int64_t i = 0; i < 16; i++)
            ck_assert_float_eq(at(t, o * 16 + i), (float)(base + i * 3 + o));
    t = tensor(st, "fc.bias", 1, c3);
    ck_assert_float_eq(at(t, 2), (float)(offset_of(&m, "fc1000/bias") + 2));
    t = tensor(st, "layer4.0.downsample.1.running_var", 1, c16);
    ck_assert_float_eq(at(t, 5), (float)(offset_of(&m, "bn5a_branch1/moving_variance") + 5));
    t = tensor(st, "layer2.0.bn3.weight", 1, c8);
    ck_assert_float_eq(at(t, 7), (float)(offset_of(&m, "bn3a_branch2c/gamma") + 7));
    t = tensor(st, "layer1.0.conv3.bias", 1, (int64_t[]){4});
    ck_assert_float_eq(at(t, 0), (float)offset_of(&m, "res2a_branch2c/bias"));
    tensor(st, "bn1.running_mean", 1, (int64_t[]){4});

    ck_assert_str_eq(safetensors_metadata(st, "stride"), "v1");
    ck_assert_str_eq(safetensors_metadata(st, "bn_eps"), "0.001");
    ck_assert_str_eq(safetensors_metadata(st, "input_size"), "32");
    ck_assert_str_eq(safetensors_metadata(st, "resize"), "37");
    ck_assert_str_eq(safetensors_metadata(st, "channel_order"), "BGR");
    ck_assert_str_eq(safetensors_metadata(st, "scale"), "1");
    ck_assert_str_eq(safetensors_metadata(st, "mean"), "[103.939,116.779,123.68]");
    ck_assert_str_eq(safetensors_metadata(st, "std"), "[1,1,1]");
    ck_assert_str_eq(safetensors_metadata(st, "arch"), "resnet-custom");
    ck_assert_str_eq(safetensors_metadata(st, "labels"), "[\"cat\",\"dog\",\"bald_eagle\"]");
    safetensors_close(st);
    model_free(&m);
}
END_TEST

START_TEST(test_labels_array_and_count)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char labels[160];
    snprintf(labels, sizeof labels, "%s/labels.json", m.dir);
    write_str(&m, "labels.json", "[\"a\", \"b\"]");
    expect_error(&m, labels, RD_ERR_SHAPE, "labels.json", "2 labels");
    write_str(&m, "labels.json", "[\"a\", \"b\", 3]");
    expect_error(&m, labels, RD_ERR_FORMAT, "labels.json", "label 2");
    write_str(&m, "labels.json", "[\"a\", \"b\", \"c\"]");
    rd_error_t err = {0};
    ck_assert_msg(convert_tfjs(m.path, labels, m.out, &err) == RD_OK, "%s", err.msg);
    safetensors_t *st = NULL;
    ck_assert_msg(safetensors_open(m.out, &st, &err) == RD_OK, "%s", err.msg);
    ck_assert_str_eq(safetensors_metadata(st, "labels"), "[\"a\",\"b\",\"c\"]");
    safetensors_close(st);
    model_free(&m);
}
END_TEST

void convert_happy_tests(TCase *tc)
{
    tcase_add_test(tc, test_converts_tiny_resnet);
    tcase_add_test(tc, test_labels_array_and_count);
}
