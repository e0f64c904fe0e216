/* test_kserve_tensor.c - the KServe v2 codec on bytes alone: FP32 tensors
 * (JSON and binary), BYTES inputs (base64 and binary spans into the body),
 * outputs and the id, the statuses of bad requests, the tail checks, and the
 * encoded response (softmax probabilities against naive double maths, the
 * binary tail). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kserve_tensor.h"

static const kserve_limits_t lim = {.max_images = 2, .input_h = 2, .input_w = 2};

static rd_status_t parse(const char *json, kserve_request_t *kr, rd_error_t *err)
{
    return kserve_parse((const uint8_t *)json, strlen(json), NULL, &lim, kr, err);
}

START_TEST(fp32_json_tensor)
{
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(parse("{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\","
                           "\"shape\":[1,3,2,2],\"data\":[[1,2,3,4],[5,6,7,8],[9,10,11,12.5]]}],"
                           "\"outputs\":[{\"name\":\"logits\"},{\"name\":\"probabilities\","
                           "\"parameters\":{\"binary_data\":true}}]}",
                           &kr, &err),
                     RD_OK);
    ck_assert_int_eq(kr.n_images, 1);
    ck_assert_ptr_null(kr.images);
    ck_assert_ptr_nonnull(kr.tensor);
    ck_assert_float_eq(kr.tensor[0], 1.0f);
    ck_assert_float_eq(kr.tensor[11], 12.5f);
    ck_assert_int_eq(kr.n_outputs, 2);
    ck_assert_int_eq(kr.outputs[0], KSERVE_OUT_LOGITS);
    ck_assert_int_eq(kr.outputs[1], KSERVE_OUT_PROBABILITIES);
    ck_assert(!kr.binary[0] && kr.binary[1]);
    ck_assert_str_eq(json_string_value(kr.id), "r1");
    ck_assert_int_eq(kserve_check_tail(&kr, &err), RD_OK);
    kserve_request_free(&kr);
}
END_TEST

/* Bodies denser in values or containers than max_images images can need are
 * refused with RD_ERR_LIMIT (413) before jansson builds a tree of them;
 * brackets inside strings are not counted. */
static void dense(const char *unit, int repeat, const char *tail, rd_status_t want)
{
    size_t n = strlen(unit) * (size_t)repeat + 256;
    char *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    int at = snprintf(body, n, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\","
                               "\"shape\":[1,3,2,2],\"data\":[");
    for (int i = 0; i < repeat; i++)
        at += snprintf(body + at, n - (size_t)at, "%s", unit);
    snprintf(body + at, n - (size_t)at, "%s", tail);
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(parse(body, &kr, &err), want);
    if (want == RD_ERR_LIMIT)
        ck_assert_ptr_nonnull(strstr(err.msg, "max_images_per_request"));
    kserve_request_free(&kr);
    free(body);
}

START_TEST(token_dense_bodies_are_refused_before_the_tree)
{
    dense("{},", 2000, "0]}]}", RD_ERR_LIMIT);
    dense("[],", 2000, "0]}]}", RD_ERR_LIMIT);
    dense("0,", 2000, "0]}]}", RD_ERR_LIMIT);
    dense("0,", 500, "0]}]}", RD_ERR_SHAPE); /* within the bound: counted, 422 */
    dense("", 0, "1,2,3,4,5,6,7,8,9,10,11,12],\"id\":\"[[[[{{{{,,,,\\\"[[\"}]}", RD_OK);
}
END_TEST

/* "JSON" + binary tail: two BYTES elements; the spans point into the body. */
START_TEST(bytes_binary_spans_into_the_body)
{
    char json[256];
    int n = snprintf(json, sizeof json,
                     "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],"
                     "\"parameters\":{\"binary_data_size\":%d}}]}", 4 + 3 + 4 + 1);
    uint8_t body[512];
    memcpy(body, json, (size_t)n);
    static const uint8_t tail[] = {3, 0, 0, 0, 'a', 'b', 'c', 1, 0, 0, 0, 'z'};
    memcpy(body + n, tail, sizeof tail);
    char hlen[16];
    snprintf(hlen, sizeof hlen, "%d", n);
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(kserve_parse(body, (size_t)n + sizeof tail, hlen, &lim, &kr, &err), RD_OK);
    ck_assert_int_eq(kr.n_images, 2);
    ck_assert_ptr_eq(kr.images[0].data, body + n + 4);
    ck_assert_uint_eq(kr.images[0].len, 3);
    ck_assert_ptr_null(kr.images[0].owned);
    ck_assert_uint_eq(kr.images[1].len, 1);
    ck_assert_int_eq(kr.images[1].data[0], 'z');
    ck_assert_int_eq(kserve_check_tail(&kr, &err), RD_OK);
    kserve_request_free(&kr);
    /* a byte after the elements: the tail check, not the parse, refuses it */
    body[n + sizeof tail] = 0;
    ck_assert_int_eq(kserve_parse(body, (size_t)n + sizeof tail + 1, hlen, &lim, &kr, &err), RD_OK);
    ck_assert_int_eq(kserve_check_tail(&kr, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "1 bytes of binary data left over"));
    kserve_request_free(&kr);
    /* binary_data_size that does not add up to the elements */
    n = snprintf(json, sizeof json,
                 "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],"
                 "\"parameters\":{\"binary_data_size\":%d}}]}", 11);
    memcpy(body, json, (size_t)n);
    memcpy(body + n, tail, sizeof tail);
    snprintf(hlen, sizeof hlen, "%d", n);
    ck_assert_int_eq(kserve_parse(body, (size_t)n + sizeof tail, hlen, &lim, &kr, &err), RD_OK);
    ck_assert_int_eq(kserve_check_tail(&kr, &err), RD_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "binary_data_size"));
    kserve_request_free(&kr);
}
END_TEST

START_TEST(bytes_base64)
{
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
                           "\"data\":[{\"b64\":\"aGk=\"}]}]}", &kr, &err),
                     RD_OK);
    ck_assert_int_eq(kr.n_images, 1);
    ck_assert_uint_eq(kr.images[0].len, 2);
    ck_assert_mem_eq(kr.images[0].data, "hi", 2);
    ck_assert_ptr_eq(kr.images[0].data, kr.images[0].owned);
    kserve_request_free(&kr);
}
END_TEST

START_TEST(bad_requests_have_their_status)
{
    static const struct {
        const char *json;
        rd_status_t want;
        const char *needle;
    } cases[] = {
        {"[1]", RD_ERR_FORMAT, "not a JSON object"},
        {"{}", RD_ERR_FORMAT, "'inputs'"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\"}]}", RD_ERR_SHAPE, "unknown input"},
        {"{\"inputs\":[{\"name\":\"input\",\"datatype\":\"INT8\"}]}", RD_ERR_SHAPE, "FP32"},
        {"{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,4,4]}]}",
         RD_ERR_SHAPE, "[N,3,2,2]"},
        {"{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[3,3,2,2]}]}",
         RD_ERR_LIMIT, "max_images_per_request 2"},
        {"{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,2],"
         "\"data\":[1,2]}]}", RD_ERR_SHAPE, "2 values for shape of 12"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
         "\"data\":[\"!!\"]}]}", RD_ERR_FORMAT, "element 0"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
         "\"data\":[\"aGk=\"]}],\"outputs\":[{\"name\":\"nope\"}]}", RD_ERR_FORMAT, "unknown output"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kserve_request_t kr;
        rd_error_t err = {0};
        rd_status_t st = parse(cases[i].json, &kr, &err);
        ck_assert_msg(st == cases[i].want, "case %zu: %s (%s)", i, rd_status_str(st), err.msg);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "case %zu: '%s'", i, err.msg);
        ck_assert_ptr_null(kr.images);
        ck_assert_ptr_null(kr.tensor);
        ck_assert_ptr_null(kr.id);
    }
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(kserve_parse((const uint8_t *)"{}", 2, "3", &lim, &kr, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "Inference-Header-Content-Length"));
}
END_TEST

#define ONE_IMAGE "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1]," \
                  "\"data\":[\"aGk=\"]}],\"outputs\":"

/* features and cam: the class parameter, its range and its place. */
START_TEST(feature_outputs_parse)
{
    static const kserve_limits_t lim10 = {.max_images = 2, .input_h = 2, .input_w = 2,
                                          .n_classes = 10};
    static const struct {
        const char *outputs;
        rd_status_t want;
        const char *needle;
        int cam_class;
    } cases[] = {
        {"[{\"name\":\"features\"},{\"name\":\"cam\"}]", RD_OK, "", -1},
        {"[{\"name\":\"cam\",\"parameters\":{\"class\":9}}]", RD_OK, "", 9},
        {"[{\"name\":\"cam\",\"parameters\":{\"class\":10}}]", RD_ERR_FORMAT, "0..9", 0},
        {"[{\"name\":\"cam\",\"parameters\":{\"class\":-1}}]", RD_ERR_FORMAT, "0..9", 0},
        {"[{\"name\":\"cam\",\"parameters\":{\"class\":\"3\"}}]", RD_ERR_FORMAT, "0..9", 0},
        {"[{\"name\":\"features\",\"parameters\":{\"class\":3}}]", RD_ERR_FORMAT,
         "'cam' output only", 0},
        {"[{\"name\":\"cam\"},{\"name\":\"cam\"}]", RD_ERR_FORMAT, "requested twice", 0},
        {"[{\"name\":\"logits\"},{\"name\":\"probabilities\"},{\"name\":\"features\"},"
         "{\"name\":\"cam\"},{\"name\":\"logits\"}]", RD_ERR_FORMAT, "1 to 4", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, ONE_IMAGE "%s}", cases[i].outputs);
        kserve_request_t kr;
        rd_error_t err = {0};
        rd_status_t st = kserve_parse((const uint8_t *)json, strlen(json), NULL, &lim10, &kr, &err);
        ck_assert_msg(st == cases[i].want, "case %zu: %s (%s)", i, rd_status_str(st), err.msg);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "case %zu: '%s'", i, err.msg);
        if (st == RD_OK) {
            ck_assert_int_eq(kr.cam_class, cases[i].cam_class);
            ck_assert(kserve_wants(&kr, KSERVE_OUT_CAM));
            ck_assert(!kserve_wants(&kr, KSERVE_OUT_LOGITS));
        }
        kserve_request_free(&kr);
    }
}
END_TEST

/* Each output with its own shape; binary ones in request order after the JSON. */
START_TEST(encode_features_and_cam)
{
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(parse(ONE_IMAGE "[{\"name\":\"cam\",\"parameters\":{\"binary_data\":true}},"
                           "{\"name\":\"features\"},{\"name\":\"logits\",\"parameters\":"
                           "{\"binary_data\":true}}]}", &kr, &err),
                     RD_OK);
    const float logits[3] = {1, 2, 3}, features[2] = {0.25f, 4}, cams[6] = {1, 2, 3, 4, 5, 6};
    kserve_values_t v = {.logits = logits, .n_classes = 3, .features = features, .channels = 2,
                         .cams = cams, .cam_h = 2, .cam_w = 3};
    kserve_response_t out;
    ck_assert_int_eq(kserve_encode_values(&kr, "m", &v, &out, &err), RD_OK);
    ck_assert_uint_eq(out.len, out.json_len + sizeof cams + sizeof logits);
    ck_assert_mem_eq(out.body + out.json_len, cams, sizeof cams);
    ck_assert_mem_eq(out.body + out.json_len + sizeof cams, logits, sizeof logits);
    json_error_t jerr;
    json_t *doc = json_loadb(out.body, out.json_len, 0, &jerr);
    ck_assert_ptr_nonnull(doc);
    json_t *outs = json_object_get(doc, "outputs");
    json_t *cam = json_array_get(outs, 0), *feat = json_array_get(outs, 1);
    ck_assert_str_eq(json_string_value(json_object_get(cam, "name")), "cam");
    json_t *shape = json_object_get(cam, "shape");
    ck_assert_int_eq(json_array_size(shape), 3);
    ck_assert_int_eq(json_integer_value(json_array_get(shape, 2)), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(cam, "parameters"),
                                                        "binary_data_size")), 24);
    ck_assert_str_eq(json_string_value(json_object_get(feat, "name")), "features");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(feat, "shape"), 1)), 2);
    ck_assert_double_eq(json_real_value(json_array_get(json_object_get(feat, "data"), 1)), 4.0);
    json_decref(doc);
    kserve_response_free(&out);
    kserve_request_free(&kr);
}
END_TEST

START_TEST(encode_json_and_binary)
{
    kserve_request_t kr;
    rd_error_t err = {0};
    ck_assert_int_eq(parse("{\"id\":7,\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\","
                           "\"shape\":[1],\"data\":[\"aGk=\"]}],\"outputs\":[{\"name\":"
                           "\"probabilities\"},{\"name\":\"logits\",\"parameters\":"
                           "{\"binary_data\":true}}]}", &kr, &err),
                     RD_OK);
    const float logits[3] = {1.0f, 2.0f, 0.5f};
    kserve_response_t out;
    ck_assert_int_eq(kserve_encode(&kr, "m", logits, 3, &out, &err), RD_OK);
    ck_assert(out.binary);
    ck_assert_uint_eq(out.len, out.json_len + sizeof logits);
    ck_assert_mem_eq(out.body + out.json_len, logits, sizeof logits);
    json_error_t jerr;
    json_t *doc = json_loadb(out.body, out.json_len, 0, &jerr);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "model_name")), "m");
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "id")), 7);
    json_t *probs = json_object_get(json_array_get(json_object_get(doc, "outputs"), 0), "data");
    double sum = exp(1.0) + exp(2.0) + exp(0.5);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(json_real_value(json_array_get(probs, (size_t)i)),
                                exp((double)logits[i]) / sum, 1e-6);
    json_t *lo = json_array_get(json_object_get(doc, "outputs"), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(lo, "parameters"),
                                                        "binary_data_size")), 12);
    json_decref(doc);
    kserve_response_free(&out);
    kserve_request_free(&kr);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kserve_tensor");
    TCase *tp = tcase_create("parse");
    tcase_add_test(tp, fp32_json_tensor);
    tcase_add_test(tp, bytes_binary_spans_into_the_body);
    tcase_add_test(tp, bytes_base64);
    tcase_add_test(tp, bad_requests_have_their_status);
    tcase_add_test(tp, token_dense_bodies_are_refused_before_the_tree);
    tcase_add_test(tp, feature_outputs_parse);
    suite_add_tcase(s, tp);
    TCase *te = tcase_create("encode");
    tcase_add_test(te, encode_json_and_binary);
    tcase_add_test(te, encode_features_and_cam);
    suite_add_tcase(s, te);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
