/* test_server_classify.c - POST /classify: raw and multipart bodies, topk, partial failure, the error statuses, aborted and chunked uploads (see server_test.h). */
#include "server_test.h"

/* --- /classify --- */

START_TEST(classify_raw_jpeg)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "raw dog.jpg");
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "model")), "resnet18_c2_128");
    ck_assert_int_eq(json_array_size(json_object_get(doc, "results")), 1);
    json_t *res = result(doc, 0);
    json_t *preds = json_object_get(res, "predictions");
    ck_assert_int_eq(json_array_size(preds), 2); /* topk 5 capped at 2 classes */
    double p0 = top_prob(res, 0), p1 = top_prob(res, 1);
    ck_assert(p0 >= p1);
    ck_assert_double_eq_tol(p0 + p1, 1.0, 1e-5);
    const char *label = top_label(res);
    ck_assert(!strcmp(label, "cat") || !strcmp(label, "dog"));
    json_t *t = json_object_get(res, "timings_ms");
    ck_assert(json_is_number(json_object_get(t, "decode")));
    ck_assert(json_is_number(json_object_get(t, "queue")));
    ck_assert(json_is_number(json_object_get(t, "inference")));
    json_decref(doc);
    harness_resp_free(&r);

    r = post_jpeg("/classify?topk=1", PHOTOS "dog.jpg");
    expect_status(r, 200, "topk=1");
    doc = harness_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(result(doc, 0), "predictions")), 1);
    ck_assert_double_eq_tol(top_prob(result(doc, 0), 0), p0, 1e-5);
    json_decref(doc);
    harness_resp_free(&r);
}
END_TEST

START_TEST(classify_multipart_order_and_partial_failure)
{
    /* each image alone first: the reference for its entry */
    const char *photos[] = {PHOTOS "dog.jpg", PHOTOS "eagle.jpg", PHOTOS "giraffe.jpg"};
    double alone[3];
    for (int i = 0; i < 3; i++) {
        harness_resp_t r = post_jpeg("/classify?topk=1", photos[i]);
        expect_status(r, 200, photos[i]);
        json_t *doc = harness_json(&r);
        alone[i] = top_prob(result(doc, 0), 0);
        json_decref(doc);
        harness_resp_free(&r);
    }
    const char *files[] = {photos[0], "/etc/hostname", photos[1], photos[2], NULL};
    harness_resp_t r = post_files("/classify?topk=1", files);
    expect_status(r, 200, "multipart with one bad part");
    json_t *doc = harness_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "results")), 4);
    ck_assert_ptr_null(json_object_get(doc, "error"));
    int expect_photo[] = {0, -1, 1, 2};
    for (int i = 0; i < 4; i++) {
        json_t *res = result(doc, (size_t)i);
        ck_assert_int_eq(json_integer_value(json_object_get(res, "index")), i);
        if (expect_photo[i] < 0) {
            ck_assert_str_eq(json_string_value(json_object_get(res, "filename")), "hostname");
            ck_assert_str_eq(error_code(res), "bad_request");
            ck_assert_ptr_null(json_object_get(res, "predictions"));
        } else {
            ck_assert_ptr_null(json_object_get(res, "error"));
            ck_assert_double_eq_tol(top_prob(res, 0), alone[expect_photo[i]], 2e-5);
        }
    }
    json_decref(doc);
    harness_resp_free(&r);
}
END_TEST

/* A multipart body by hand: dog.jpg as part "image" and, when topk is not
 * NULL, a plain form field "topk" (before the image, as forms often send it). */
static harness_resp_t post_with_topk_field(const char *path, const char *topk)
{
    size_t jpeg_len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &jpeg_len);
    static const char boundary[] = "resnetd-test-boundary-7d3f";
    char head[512];
    int n = 0;
    if (topk)
        n = snprintf(head, sizeof head,
                     "--%s\r\nContent-Disposition: form-data; name=\"topk\"\r\n\r\n%s\r\n",
                     boundary, topk);
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"dog.jpg\"\r\n"
                  "Content-Type: image/jpeg\r\n\r\n", boundary);
    char tail[64];
    int t = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
    size_t len = (size_t)n + jpeg_len + (size_t)t;
    char *body = malloc(len);
    ck_assert_ptr_nonnull(body);
    memcpy(body, head, (size_t)n);
    memcpy(body + n, jpeg, jpeg_len);
    memcpy(body + n + jpeg_len, tail, (size_t)t);
    char ctype[128];
    snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=%s", boundary);
    harness_resp_t r = harness_http(&srv, "POST", path, ctype, body, len, NULL, NULL);
    free(body);
    free(jpeg);
    return r;
}

static size_t n_predictions(const harness_resp_t *r)
{
    json_t *doc = harness_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "results")), 1); /* the field is no image */
    size_t n = json_array_size(json_object_get(result(doc, 0), "predictions"));
    json_decref(doc);
    return n;
}

START_TEST(classify_topk_form_field)
{
    static const struct {
        const char *path, *field;
        long status;
        size_t preds; /* the small model has 2 classes: default topk 5 gives 2 */
    } cases[] = {
        {"/classify", NULL, 200, 2},
        {"/classify", "1", 200, 1},
        {"/classify", "", 200, 2},            /* a blank form input: the default */
        {"/classify?topk=2", "1", 200, 2},    /* the query wins */
        {"/classify?topk=1", "2", 200, 1},
        {"/classify", "0", 400, 0},
        {"/classify", "3", 400, 0},           /* more than the class count */
        {"/classify", "two", 400, 0},
        {"/classify", "1000000000000000000000000000001", 400, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_resp_t r = post_with_topk_field(cases[i].path, cases[i].field);
        char what[160];
        snprintf(what, sizeof what, "%s with field topk=%s", cases[i].path,
                 cases[i].field ? cases[i].field : "(none)");
        expect_status(r, cases[i].status, what);
        if (cases[i].status == 200)
            ck_assert_msg(n_predictions(&r) == cases[i].preds, "%s: %zu predictions expected", what,
                          cases[i].preds);
        harness_resp_free(&r);
    }
}
END_TEST

START_TEST(classify_all_images_fail)
{
    const char *files[] = {"/etc/hostname", "/etc/hostname", NULL};
    harness_resp_t r = post_files("/classify", files);
    expect_status(r, 400, "every part bad");
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(error_code(doc), "bad_request");
    ck_assert_int_eq(json_array_size(json_object_get(doc, "results")), 2);
    json_decref(doc);
    harness_resp_free(&r);
}
END_TEST

/* A copy of dog.jpg whose frame header claims 65500 x 65500 pixels. */
static unsigned char *huge_header_jpeg(size_t *len)
{
    unsigned char *d = test_read_file(PHOTOS "dog.jpg", len);
    for (size_t i = 2; i + 9 < *len; i++)
        if (d[i] == 0xFF && (d[i + 1] == 0xC0 || d[i + 1] == 0xC1 || d[i + 1] == 0xC2)) {
            d[i + 5] = d[i + 7] = 0xFF;
            d[i + 6] = d[i + 8] = 0xDC;
            return d;
        }
    ck_abort_msg("dog.jpg: no SOF marker");
    return NULL;
}

START_TEST(bad_requests_get_their_status)
{
    harness_resp_t r = harness_http(&srv, "GET", "/nope", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 404, "unknown path");
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(error_code(doc), "not_found");
    json_decref(doc);
    harness_resp_free(&r);

    r = harness_http(&srv, "GET", "/classify", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 405, "GET /classify");
    ck_assert(harness_has_header(&r, "Allow"));
    harness_resp_free(&r);

    r = harness_http(&srv, "DELETE", "/healthz", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 405, "DELETE /healthz");
    ck_assert(harness_has_header(&r, "Allow"));
    harness_resp_free(&r);

    r = harness_http(&srv, "POST", "/classify", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 411, "POST without a length");
    harness_resp_free(&r);

    size_t big = 8500000;
    char *zeros = calloc(1, big);
    struct curl_slist *expect = curl_slist_append(NULL, "Expect: 100-continue");
    r = harness_http(&srv, "POST", "/classify", "image/jpeg", zeros, big, NULL, expect);
    expect_status(r, 413, "body over max_body_bytes");
    curl_slist_free_all(expect);
    harness_resp_free(&r);
    free(zeros);

    size_t len;
    unsigned char *huge = huge_header_jpeg(&len);
    r = harness_http(&srv, "POST", "/classify", "image/jpeg", huge, len, NULL, NULL);
    expect_status(r, 413, "65500x65500 JPEG header");
    free(huge);
    harness_resp_free(&r);

    r = harness_http(&srv, "POST", "/classify", "text/plain", "hello", 5, NULL, NULL);
    expect_status(r, 415, "text/plain body");
    harness_resp_free(&r);

    r = harness_http(&srv, "POST", "/classify", "image/jpeg", "hello", 5, NULL, NULL);
    expect_status(r, 400, "not a JPEG");
    harness_resp_free(&r);

    unsigned char *dog = test_read_file(PHOTOS "dog.jpg", &len);
    r = harness_http(&srv, "POST", "/classify", "image/jpeg", dog, len / 2, NULL, NULL);
    expect_status(r, 400, "truncated JPEG");
    harness_resp_free(&r);
    const char *bad_topk[] = {"/classify?topk=0", "/classify?topk=3", "/classify?topk=x"};
    for (int i = 0; i < 3; i++) {
        r = harness_http(&srv, "POST", bad_topk[i], "image/jpeg", dog, len, NULL, NULL);
        expect_status(r, 400, bad_topk[i]);
        harness_resp_free(&r);
    }
    free(dog);

    r = harness_http(&srv, "POST", "/classify", "multipart/form-data; boundary=xyz", "junk", 4,
                     NULL, NULL);
    expect_status(r, 400, "malformed multipart");
    harness_resp_free(&r);

    /* still healthy and still right */
    r = harness_http(&srv, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "healthz after bad requests");
    harness_resp_free(&r);
    r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "classify after bad requests");
    harness_resp_free(&r);
}
END_TEST

/* A TCP connection to the server under test. */
/* A client that hangs up mid-upload costs nothing lasting; a chunked body
 * over the limit is read, discarded and answered 413; HEAD gets headers only. */
START_TEST(aborted_and_chunked_uploads)
{
    int fd = loopback_connect();
    static const char head[] = "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                               "Content-Length: 50000\r\n\r\n";
    char part[1000] = {0};
    ck_assert_int_eq(write(fd, head, sizeof head - 1), (ssize_t)(sizeof head - 1));
    ck_assert_int_eq(write(fd, part, sizeof part), (ssize_t)sizeof part);
    usleep(200000);
    close(fd);
    double inflight = 2;
    for (int i = 0; i < 200 && inflight > 1; i++) { /* the scrape itself is 1 */
        usleep(10000);
        inflight = harness_metric(&srv, "resnetd_inflight_requests");
    }
    ck_assert_msg(inflight == 1, "%g requests still in flight after the client left", inflight);

    size_t big = 8500000;
    char *zeros = calloc(1, big);
    struct curl_slist *chunked = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    harness_resp_t r = harness_http(&srv, "POST", "/classify", "image/jpeg", zeros, big, NULL,
                                    chunked);
    expect_status(r, 413, "chunked body over max_body_bytes");
    curl_slist_free_all(chunked);
    free(zeros);
    harness_resp_free(&r);

    r = harness_http(&srv, "HEAD", "/healthz", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "HEAD /healthz");
    ck_assert_uint_eq(r.len, 0);
    harness_resp_free(&r);
    r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "classify afterwards");
    harness_resp_free(&r);
}
END_TEST

START_TEST(too_many_images)
{
    const char *files[40];
    for (int i = 0; i < 33; i++)
        files[i] = PHOTOS "dog.jpg";
    files[33] = NULL;
    harness_resp_t r = post_files("/classify", files);
    expect_status(r, 413, "33 images > max_images_per_request 32");
    harness_resp_free(&r);
}
END_TEST

void add_classify_tests(Suite *s)
{
    TCase *tc = server_tcase("classify", start_small, 300);
    tcase_add_test(tc, classify_raw_jpeg);
    tcase_add_test(tc, classify_multipart_order_and_partial_failure);
    tcase_add_test(tc, classify_all_images_fail);
    tcase_add_test(tc, classify_topk_form_field);
    tcase_add_test(tc, bad_requests_get_their_status);
    tcase_add_test(tc, too_many_images);
    tcase_add_test(tc, aborted_and_chunked_uploads);
    suite_add_tcase(s, tc);
}
