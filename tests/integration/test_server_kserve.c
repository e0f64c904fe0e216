/* test_server_kserve.c - KServe v2 infer: FP32 tensors (JSON and binary) against PyTorch, BYTES against /classify, errors (see server_test.h). */
#include "server_test.h"

/* --- KServe v2 --- */

/* PyTorch's logits for the fixture inputs against the server's, relative to max|logit|. */
static void check_logits(const float *got, const float *ref, int n)
{
    float max = 0;
    for (int i = 0; i < n; i++)
        max = fmaxf(max, fabsf(ref[i]));
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - ref[i]) <= 1e-4f * max, "logit %d: %g vs PyTorch %g", i,
                      (double)got[i], (double)ref[i]);
}

START_TEST(kserve_tensor_json_matches_pytorch)
{
    const size_t n = 5, img = 3 * 128 * 128;
    float *x = read_f32("resnet18_c2_128.input.f32", n * img);
    float *ref = read_f32("resnet18_c2_128.logits.f32", n * 2);
    /* nested [N][3][H][W] for images 0..1, as clients that send nested lists do */
    json_t *data = json_array();
    for (size_t i = 0; i < 2; i++) {
        json_t *im = json_array();
        for (size_t c = 0; c < 3; c++) {
            json_t *ch = json_array();
            for (size_t y = 0; y < 128; y++) {
                json_t *row = json_array();
                for (size_t xx = 0; xx < 128; xx++)
                    json_array_append_new(row, json_real(x[i * img + c * 128 * 128 + y * 128 + xx]));
                json_array_append_new(ch, row);
            }
            json_array_append_new(im, ch);
        }
        json_array_append_new(data, im);
    }
    json_t *req = json_pack("{s:s, s:[{s:s, s:s, s:[i,i,i,i], s:o}], s:[{s:s}, {s:s}]}", "id",
                            "req-1", "inputs", "name", "input", "datatype", "FP32", "shape", 2, 3,
                            128, 128, "data", data, "outputs", "name", "logits", "name",
                            "probabilities");
    char *body = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(req);
    harness_resp_t r = harness_http(&srv, "POST", C2, "application/json", body, strlen(body),
                                    NULL, NULL);
    free(body);
    expect_status(r, 200, "kserve JSON tensor");
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "id")), "req-1");
    json_t *outs = json_object_get(doc, "outputs");
    ck_assert_int_eq(json_array_size(outs), 2);
    json_t *logits = json_array_get(outs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(logits, "name")), "logits");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(logits, "shape"), 0)), 2);
    float got[4];
    for (int i = 0; i < 4; i++)
        got[i] = (float)json_real_value(json_array_get(json_object_get(logits, "data"), (size_t)i));
    check_logits(got, ref, 4);
    json_t *probs = json_object_get(json_array_get(outs, 1), "data");
    double e0 = exp(ref[0] - ref[1]);
    ck_assert_double_eq_tol(json_real_value(json_array_get(probs, 1)), 1 / (1 + e0), 1e-5);
    json_decref(doc);
    harness_resp_free(&r);
    free(x);
    free(ref);
}
END_TEST

/* A binary-extension request: JSON header then raw bytes. */
static harness_resp_t post_binary(const char *path, const char *header, const void *bin,
                                  size_t bin_len)
{
    size_t hlen = strlen(header);
    char *body = malloc(hlen + bin_len);
    memcpy(body, header, hlen);
    memcpy(body + hlen, bin, bin_len);
    char h[96];
    snprintf(h, sizeof h, "Inference-Header-Content-Length: %zu", hlen);
    struct curl_slist *extra = curl_slist_append(NULL, h);
    harness_resp_t r = harness_http(&srv, "POST", path, "application/octet-stream", body,
                                    hlen + bin_len, NULL, extra);
    curl_slist_free_all(extra);
    free(body);
    return r;
}

START_TEST(kserve_tensor_binary_matches_pytorch)
{
    const size_t n = 5, img = 3 * 128 * 128;
    float *x = read_f32("resnet18_c2_128.input.f32", n * img);
    float *ref = read_f32("resnet18_c2_128.logits.f32", n * 2);
    char header[512];
    snprintf(header, sizeof header,
             "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[5,3,128,128],"
             "\"parameters\":{\"binary_data_size\":%zu}}],"
             "\"outputs\":[{\"name\":\"logits\",\"parameters\":{\"binary_data\":true}}]}",
             n * img * 4);
    harness_resp_t r = post_binary(C2, header, x, n * img * 4);
    expect_status(r, 200, "kserve binary tensor");
    const char *h = strcasestr(r.headers, "Inference-Header-Content-Length:");
    ck_assert_ptr_nonnull(h);
    size_t json_len = (size_t)atol(h + strlen("Inference-Header-Content-Length:"));
    ck_assert_uint_eq(r.len, json_len + n * 2 * 4);
    float got[10];
    memcpy(got, r.body + json_len, sizeof got);
    check_logits(got, ref, 10);
    harness_resp_free(&r);

    x[7] = NAN;
    r = post_binary(C2, header, x, n * img * 4);
    expect_status(r, 422, "NaN in the tensor");
    json_t *doc = harness_json(&r);
    ck_assert(json_is_string(json_object_get(doc, "error")));
    json_decref(doc);
    harness_resp_free(&r);
    r = post_binary(C2, header, x, n * img * 4 - 4);
    expect_status(r, 400, "binary data shorter than declared");
    harness_resp_free(&r);
    free(x);
    free(ref);
}
END_TEST

static char *base64(const unsigned char *d, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = 0;
    return out;
}

START_TEST(kserve_bytes_equals_classify)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    json_t *doc = harness_json(&r);
    json_t *res = result(doc, 0);
    json_t *p0 = json_array_get(json_object_get(res, "predictions"), 0);
    int idx = (int)json_integer_value(json_object_get(p0, "index"));
    double prob = top_prob(res, 0);
    json_decref(doc);
    harness_resp_free(&r);

    size_t len;
    unsigned char *dog = test_read_file(PHOTOS "dog.jpg", &len);
    char *b64 = base64(dog, len);
    json_t *req = json_pack("{s:[{s:s, s:s, s:[i], s:[s, {s:s}]}]}", "inputs", "name", "image",
                            "datatype", "BYTES", "shape", 2, "data", b64, "b64", b64);
    char *body = json_dumps(req, JSON_COMPACT);
    r = harness_http(&srv, "POST", C2, "application/json", body, strlen(body), NULL, NULL);
    expect_status(r, 200, "kserve BYTES");
    doc = harness_json(&r);
    json_t *out = json_array_get(json_object_get(doc, "outputs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "name")), "probabilities");
    json_t *data = json_object_get(out, "data");
    ck_assert_int_eq(json_array_size(data), 4);
    ck_assert_double_eq_tol(json_real_value(json_array_get(data, (size_t)idx)), prob, 2e-5);
    ck_assert_double_eq_tol(json_real_value(json_array_get(data, (size_t)(2 + idx))), prob, 2e-5);
    json_decref(doc);
    harness_resp_free(&r);

    /* the binary extension: 4-byte little-endian length, then the JPEG */
    unsigned char *bin = malloc(len + 4);
    bin[0] = (unsigned char)len;
    bin[1] = (unsigned char)(len >> 8);
    bin[2] = (unsigned char)(len >> 16);
    bin[3] = (unsigned char)(len >> 24);
    memcpy(bin + 4, dog, len);
    char header[256];
    snprintf(header, sizeof header,
             "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
             "\"parameters\":{\"binary_data_size\":%zu}}]}", len + 4);
    r = post_binary(C2, header, bin, len + 4);
    expect_status(r, 200, "kserve BYTES binary");
    doc = harness_json(&r);
    data = json_object_get(json_array_get(json_object_get(doc, "outputs"), 0), "data");
    ck_assert_double_eq_tol(json_real_value(json_array_get(data, (size_t)idx)), prob, 2e-5);
    json_decref(doc);
    harness_resp_free(&r);

    /* a BYTES element that is not a JPEG fails the request with 400 */
    json_decref(req);
    free(body);
    req = json_pack("{s:[{s:s, s:s, s:[i], s:[s]}]}", "inputs", "name", "image", "datatype",
                    "BYTES", "shape", 1, "data", "aGVsbG8=");
    body = json_dumps(req, JSON_COMPACT);
    r = harness_http(&srv, "POST", C2, "application/json", body, strlen(body), NULL, NULL);
    expect_status(r, 400, "BYTES not a JPEG");
    harness_resp_free(&r);
    json_decref(req);
    free(body);
    free(bin);
    free(b64);
    free(dog);
}
END_TEST

START_TEST(kserve_bad_requests)
{
    static const struct {
        const char *path, *body;
        long status;
    } cases[] = {
        {"/v2/models/nosuch/infer", "{}", 404},
        {C2, "{not json", 400},
        {C2, "{\"inputs\":[]}", 400},
        {C2, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}", 422},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"INT8\",\"shape\":[1,3,128,128],\"data\":[1]}]}", 422},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,64,64],\"data\":[1]}]}", 422},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,128,128],\"data\":[1,2,3]}]}", 422},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,128,128],\"data\":[\"a\"]}]}", 422},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,128,128],\"data\":[1]}],\"outputs\":[{\"name\":\"nope\"}]}", 400},
        {C2, "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"!!\"]}]}", 400},
        {C2, "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[99,3,128,128],\"data\":[1]}]}", 413},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_resp_t r = harness_http(&srv, "POST", cases[i].path, "application/json",
                                        cases[i].body, strlen(cases[i].body), NULL, NULL);
        char what[64];
        snprintf(what, sizeof what, "kserve case %zu", i);
        expect_status(r, cases[i].status, what);
        json_t *doc = harness_json(&r);
        ck_assert_msg(json_is_string(json_object_get(doc, "error")), "%s: no error string", what);
        json_decref(doc);
        harness_resp_free(&r);
    }
    harness_resp_t r = harness_http(&srv, "GET", "/v2/health/ready", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "ready after bad requests");
    harness_resp_free(&r);
}
END_TEST

void add_kserve_tests(Suite *s)
{
    TCase *tc = server_tcase("kserve", start_small, 300);
    tcase_add_test(tc, kserve_tensor_json_matches_pytorch);
    tcase_add_test(tc, kserve_tensor_binary_matches_pytorch);
    tcase_add_test(tc, kserve_bytes_equals_classify);
    tcase_add_test(tc, kserve_bad_requests);
    suite_add_tcase(s, tc);
}
