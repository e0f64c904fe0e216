/* test_convert_errors.c - test_convert's refused models.
 * Fixtures: convert_fixture.c. */
#include "convert_fixture.h"

START_TEST(test_not_json)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    write_str(&m, "model.json", "{\"modelTopology\": ");
    expect_error(&m, NULL, RD_ERR_FORMAT, "model.json", "not JSON");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_file)
{
    rd_error_t err = {0};
    ck_assert_int_eq(convert_tfjs("/nonexistent/model.json", NULL, "/tmp/x.safetensors", &err),
                     RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/model.json"));
    ck_assert_int_eq(convert_tfjs(NULL, NULL, "/tmp/x.safetensors", &err), RD_ERR_ARG);
}
END_TEST

START_TEST(test_missing_topology_or_manifest)
{
    model_t m;
    model_build(&m);
    json_t *mt = json_incref(json_object_get(m.root, "modelTopology"));
    json_object_del(m.root, "modelTopology");
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "modelTopology", NULL);
    json_object_set_new(m.root, "modelTopology", mt);
    json_t *manifest = json_incref(json_object_get(m.root, "weightsManifest"));
    json_object_del(m.root, "weightsManifest");
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "weightsManifest", NULL);
    json_decref(manifest);
    model_free(&m);
}
END_TEST

START_TEST(test_unknown_layer_class)
{
    model_t m;
    model_build(&m);
    layer(&m, "Dropout", "dropout_1", json_pack("{s:f}", "rate", 0.5), "avg_pool", NULL);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "dropout_1", "Dropout");
    model_free(&m);
}
END_TEST

START_TEST(test_layer_not_reached)
{
    model_t m;
    model_build(&m);
    layer(&m, "Activation", "extra_relu", json_pack("{s:s}", "activation", "relu"), "fc1000",
          NULL);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "extra_relu", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_v15_stride_refused)
{
    model_t m;
    model_build(&m);
    json_t *cfg = json_object_get(find_layer(&m, "res3a_branch2a"), "config");
    json_object_set_new(cfg, "strides", json_pack("[i,i]", 1, 1));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "res3a_branch2a", "strides");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_layer)
{
    model_t m;
    model_build(&m);
    json_t *l;
    size_t i;
    json_array_foreach(m.layers, i, l)
        if (!strcmp(json_string_value(json_object_get(l, "name")), "bn4a_branch1"))
            break;
    json_array_remove(m.layers, i);
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "bn4a_branch1", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_epsilon_disagrees)
{
    model_t m;
    model_build(&m);
    json_t *cfg = json_object_get(find_layer(&m, "bn4a_branch2b"), "config");
    json_object_set_new(cfg, "epsilon", json_real(1e-5));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "bn4a_branch2b", "epsilon");
    model_free(&m);
}
END_TEST

START_TEST(test_manifest_shape_disagrees)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "res3a_branch2b/kernel"), "shape",
                        json_pack("[i,i,i,i]", 3, 3, 1, 4));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_SHAPE, "res3a_branch2b/kernel", "[3,3,2,2]");
    model_free(&m);
}
END_TEST

START_TEST(test_manifest_tensor_missing_or_extra)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "bn2b_branch2a/beta"), "name",
                        json_string("bn2b_branch2a/bias"));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "bn2b_branch2a/beta", "missing");
    json_object_set_new(find_weight(&m, "bn2b_branch2a/bias"), "name",
                        json_string("bn2b_branch2a/beta"));
    weight(&m, "stray", "kernel", json_pack("[i]", 2));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_FORMAT, "stray/kernel", "no layer");
    model_free(&m);
}
END_TEST

START_TEST(test_missing_shard)
{
    model_t m;
    model_build(&m);
    model_write(&m, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/group1-shard2of2.bin", m.dir);
    ck_assert_int_eq(unlink(path), 0);
    expect_error(&m, NULL, RD_ERR_IO, "group1-shard2of2.bin", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_shards_short)
{
    model_t m;
    model_build(&m);
    model_write(&m, 4);
    /* The manifest is in reverse graph order, so its last tensor is conv1/kernel. */
    expect_error(&m, NULL, RD_ERR_FORMAT, "conv1/kernel", "truncated");
    model_write(&m, 0);
    write_str(&m, "group1-shard2of2.bin", "xxxx");
    expect_error(&m, NULL, RD_ERR_FORMAT, "group1-shard1of2.bin", NULL);
    model_free(&m);
}
END_TEST

START_TEST(test_dtype_not_float32)
{
    model_t m;
    model_build(&m);
    json_object_set_new(find_weight(&m, "res4a_branch2c/bias"), "dtype", json_string("int32"));
    model_write(&m, 0);
    expect_error(&m, NULL, RD_ERR_UNSUPPORTED, "res4a_branch2c/bias", "int32");
    model_free(&m);
}
END_TEST

void convert_errors_tests(TCase *tc)
{
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_missing_topology_or_manifest);
    tcase_add_test(tc, test_unknown_layer_class);
    tcase_add_test(tc, test_layer_not_reached);
    tcase_add_test(tc, test_v15_stride_refused);
    tcase_add_test(tc, test_missing_layer);
    tcase_add_test(tc, test_epsilon_disagrees);
    tcase_add_test(tc, test_manifest_shape_disagrees);
    tcase_add_test(tc, test_manifest_tensor_missing_or_extra);
    tcase_add_test(tc, test_missing_shard);
    tcase_add_test(tc, test_shards_short);
    tcase_add_test(tc, test_dtype_not_float32);
}
