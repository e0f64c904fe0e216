/* test_server.c - the real `resnetd serve` on 127.0.0.1, over HTTP with
 * libcurl: /classify (raw and multipart, partial failure), KServe v2 (tensor
 * logits against PyTorch's, BYTES, errors), the error statuses, concurrency
 * without mix-ups and with batches > 1, queue full, deadlines, SIGTERM drain,
 * `resnetd classify` and `resnetd healthcheck`, the bearer token (--auth-token).
 * Models: $SERVER_MODELS holds tools/reference.py's resnet18_c2_128 (2
 * classes "cat"/"dog", 128x128) and resnet18_c1000_224 (seeded random
 * weights) with PyTorch's logits for their inputs. Suite "resnet50" runs the real default model ($RESNETD_MODEL) and
 * checks its answers on the darknet photos against PyTorch's ($KERAS_DIR). */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_harness.h"
#include "test_files.h"

#define PHOTOS "/usr/share/darknet/data/"

static harness_server_t srv;
static char small_model[512], big_model[512];

static const char *models_dir(void)
{
    return harness_env("SERVER_MODELS", ".");
}

/* --- fixtures: one server per test case --- */

static void start_with(const char *model, const char *const *extra)
{
    const char *args[32] = {"--model", model, "--log-level", "info"};
    int n = 4;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    harness_start(&srv, args);
}

/* A clean exit after SIGTERM (also how sanitizer reports, which exit non-zero, surface). */
static void stop_server(void)
{
    int rc = harness_stop(&srv);
    ck_assert_msg(rc == 0, "resnetd exited with %d after SIGTERM; see %s", rc, srv.log_path);
    unlink(srv.log_path);
}

static void start_small(void)
{
    const char *extra[] = {"--max-body-bytes", "8000000", NULL};
    start_with(small_model, extra);
}

static void start_big(void)
{
    const char *extra[] = {"--max-batch-size", "8", "--max-queue-delay-us", "20000", NULL};
    start_with(big_model, extra);
}

static void start_tiny_queue(void)
{
    const char *extra[] = {"--max-queue-length", "2", "--max-images-per-request", "2",
                           "--max-batch-size", "1", "--max-queue-delay-us", "0", NULL};
    start_with(big_model, extra);
}

#define TOKEN "t0k3n-Only_The-Test-Knows"

static void start_auth(void)
{
    const char *extra[] = {"--auth-token", TOKEN, NULL};
    start_with(small_model, extra);
}

static void start_deadline(void)
{
    const char *extra[] = {"--request-timeout-ms", "1", NULL};
    start_with(small_model, extra);
}

/* --- helpers --- */

static harness_resp_t post_jpeg(const char *path, const char *file)
{
    size_t len;
    unsigned char *data = test_read_file(file, &len);
    harness_resp_t r = harness_http(&srv, "POST", path, "image/jpeg", data, len, NULL, NULL);
    free(data);
    return r;
}

static harness_resp_t post_files(const char *path, const char *const *files)
{
    return harness_http(&srv, "POST", path, NULL, NULL, 0, files, NULL);
}

static json_t *result(json_t *doc, size_t i)
{
    json_t *r = json_array_get(json_object_get(doc, "results"), i);
    ck_assert_msg(r != NULL, "no results[%zu]", i);
    return r;
}

static double top_prob(json_t *res, size_t k)
{
    json_t *p = json_array_get(json_object_get(res, "predictions"), k);
    ck_assert_msg(p != NULL, "no predictions[%zu]", k);
    return json_real_value(json_object_get(p, "probability"));
}

static const char *top_label(json_t *res)
{
    json_t *p = json_array_get(json_object_get(res, "predictions"), 0);
    ck_assert_msg(p != NULL, "no predictions");
    return json_string_value(json_object_get(p, "label"));
}

static void expect_status(harness_resp_t r, long status, const char *what)
{
    ck_assert_msg(r.status == status, "%s: status %ld, expected %ld: %.300s", what, r.status,
                  status, r.body);
}

static const char *error_code(json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
}

static float *read_f32(const char *name, size_t count)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", models_dir(), name);
    size_t len;
    unsigned char *data = test_read_file(path, &len);
    ck_assert_msg(len == count * 4, "%s: %zu bytes, expected %zu", path, len, count * 4);
    return (float *)data;
}

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
static int loopback_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

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

/* --- health, metrics --- */

START_TEST(health_and_metrics)
{
    const char *ok[] = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/v2",
                        "/v2/models/resnet18_c2_128", "/v2/models/resnet18_c2_128/ready"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        harness_resp_t r = harness_http(&srv, "GET", ok[i], NULL, NULL, 0, NULL, NULL);
        expect_status(r, 200, ok[i]);
        json_decref(harness_json(&r));
        harness_resp_free(&r);
    }
    harness_resp_t r = harness_http(&srv, "GET", "/v2/models/resnet18_c2_128", NULL, NULL, 0,
                                    NULL, NULL);
    json_t *doc = harness_json(&r);
    json_t *in0 = json_array_get(json_object_get(doc, "inputs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(in0, "datatype")), "FP32");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(in0, "shape"), 2)), 128);
    json_t *params = json_object_get(doc, "parameters");
    ck_assert_str_eq(json_string_value(json_object_get(params, "precision")), "fp32");
    ck_assert_str_eq(json_string_value(json_object_get(params, "arch")), "resnet18");
    json_decref(doc);
    harness_resp_free(&r);

    r = harness_http(&srv, "GET", "/v2/models/nosuch/ready", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 404, "other model");
    harness_resp_free(&r);

    r = harness_http(&srv, "GET", "/metrics", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "metrics");
    ck_assert_ptr_nonnull(strstr(r.headers, "text/plain"));
    harness_resp_free(&r);
    ck_assert(harness_metric(&srv, "resnetd_http_requests_total{endpoint=\"/healthz\",code=\"200\"}") >= 1);
    ck_assert(harness_metric(&srv, "resnetd_http_requests_total{endpoint=\"/v2/models/{name}/ready\",code=\"404\"}") >= 1);
    ck_assert(harness_metric(&srv, "resnetd_ready") == 1);
    ck_assert(harness_metric(&srv, "resnetd_model_info{model=\"resnet18_c2_128\",arch=\"resnet18\","
                                   "precision=\"fp32\"}") == 1);
}
END_TEST

/* --- KServe v2 --- */

#define C2 "/v2/models/resnet18_c2_128/infer"

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

/* --- concurrency, batching, queue, deadline, drain (resnet18_c1000_224) --- */

#define N_PHOTOS 7
static const char *const photos7[N_PHOTOS] = {
    PHOTOS "dog.jpg", PHOTOS "eagle.jpg", PHOTOS "giraffe.jpg", PHOTOS "horses.jpg",
    PHOTOS "kite.jpg", PHOTOS "person.jpg", PHOTOS "scream.jpg"};

typedef struct {
    int index[5];
    double prob[5];
} top5_t;

static top5_t top5_of(json_t *res)
{
    top5_t t;
    for (size_t k = 0; k < 5; k++) {
        json_t *p = json_array_get(json_object_get(res, "predictions"), k);
        ck_assert_ptr_nonnull(p);
        t.index[k] = (int)json_integer_value(json_object_get(p, "index"));
        t.prob[k] = json_real_value(json_object_get(p, "probability"));
    }
    return t;
}

static bool same_top5(const top5_t *a, const top5_t *b)
{
    for (int k = 0; k < 5; k++)
        if (a->index[k] != b->index[k] || fabs(a->prob[k] - b->prob[k]) > 1e-4)
            return false;
    return true;
}

static top5_t reference[N_PHOTOS];

typedef struct {
    int id, rounds, mismatches, failures;
} client_t;

static void *client(void *arg)
{
    client_t *c = arg;
    for (int round = 0; round < c->rounds; round++) {
        int photo = (c->id + round) % N_PHOTOS;
        harness_resp_t r = post_jpeg("/classify", photos7[photo]);
        if (r.status != 200) {
            c->failures++;
        } else {
            json_t *doc = json_loadb(r.body, r.len, 0, NULL);
            top5_t t = top5_of(result(doc, 0));
            c->mismatches += !same_top5(&t, &reference[photo]);
            json_decref(doc);
        }
        harness_resp_free(&r);
    }
    return NULL;
}

START_TEST(concurrent_clients_no_mixups_and_batches)
{
    for (int i = 0; i < N_PHOTOS; i++) {
        harness_resp_t r = post_jpeg("/classify", photos7[i]);
        expect_status(r, 200, photos7[i]);
        json_t *doc = harness_json(&r);
        reference[i] = top5_of(result(doc, 0));
        json_decref(doc);
        harness_resp_free(&r);
    }
    for (int i = 1; i < N_PHOTOS; i++)
        ck_assert_msg(!same_top5(&reference[0], &reference[i]), "photos 0 and %d look alike", i);
    enum { N_CLIENTS = 16 };
    pthread_t th[N_CLIENTS];
    client_t cl[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        cl[i] = (client_t){.id = i, .rounds = 3};
        pthread_create(&th[i], NULL, client, &cl[i]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(cl[i].failures == 0, "client %d: %d failed requests", i, cl[i].failures);
        ck_assert_msg(cl[i].mismatches == 0, "client %d: %d answers for another image", i,
                      cl[i].mismatches);
    }
    double batches = harness_metric(&srv, "resnetd_batch_size_count");
    double singles = harness_metric(&srv, "resnetd_batch_size_bucket{le=\"1\"}");
    double images = harness_metric(&srv, "resnetd_images_classified_total");
    ck_assert_double_eq(images, N_PHOTOS + N_CLIENTS * 3);
    ck_assert_msg(batches > singles, "no batch above 1 image: %g batches, %g of size 1", batches,
                  singles);
}
END_TEST

typedef struct {
    int ok, full, other, full_without_retry_after;
    char reason[256]; /* the message of the last 503 */
} queue_client_t;

static void *queue_client(void *arg)
{
    queue_client_t *c = arg;
    const char *files[] = {PHOTOS "dog.jpg", PHOTOS "eagle.jpg", NULL};
    for (int round = 0; round < 2; round++) {
        harness_resp_t r = post_files("/classify", files);
        if (r.status == 200)
            c->ok++;
        else if (r.status == 503) {
            c->full++;
            c->full_without_retry_after += !harness_has_header(&r, "Retry-After");
            json_t *doc = harness_json(&r);
            const char *m = json_string_value(
                json_object_get(json_object_get(doc, "error"), "message"));
            snprintf(c->reason, sizeof c->reason, "%s", m ? m : "");
            json_decref(doc);
        } else
            c->other++;
        harness_resp_free(&r);
    }
    return NULL;
}

/* max_queue_length 2, batches of 1: 8 clients sending 2 images each overflow it. */
/* A client that hangs up while its 32 images are queued: libmicrohttpd does
 * not watch the suspended connection, so the batcher asks the socket before
 * each batch and drops the rest of them unrun (reason "cancelled"). The hang-up
 * comes once the first of its images have been classified, so most are still
 * queued; the bound on the wait is generous and the loops stop by themselves. */
START_TEST(queued_images_of_a_departed_client_are_dropped)
{
    enum { N_IMAGES = 32 };
    size_t jpeg_len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &jpeg_len);
    ck_assert_ptr_nonnull(jpeg);
    static const char part[] = "--b0undary\r\nContent-Disposition: form-data; name=\"image\"; "
                               "filename=\"dog.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n";
    static const char last[] = "--b0undary--\r\n";
    size_t body_len = N_IMAGES * (sizeof part - 1 + jpeg_len + 2) + sizeof last - 1;
    char head[256];
    int head_len = snprintf(head, sizeof head,
                            "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "multipart/form-data; boundary=b0undary\r\nContent-Length: %zu\r\n\r\n",
                            body_len);
    double classified0 = harness_metric(&srv, "resnetd_images_classified_total");
    double cancelled0 = harness_metric(&srv, "resnetd_queue_dropped_total{reason=\"cancelled\"}");
    int fd = loopback_connect();
    ck_assert_int_eq(send(fd, head, (size_t)head_len, MSG_NOSIGNAL), head_len);
    for (int i = 0; i < N_IMAGES; i++) {
        ck_assert_int_eq(send(fd, part, sizeof part - 1, MSG_NOSIGNAL), (ssize_t)(sizeof part - 1));
        ck_assert_int_eq(send(fd, jpeg, jpeg_len, MSG_NOSIGNAL), (ssize_t)jpeg_len);
        ck_assert_int_eq(send(fd, "\r\n", 2, MSG_NOSIGNAL), 2);
    }
    ck_assert_int_eq(send(fd, last, sizeof last - 1, MSG_NOSIGNAL), (ssize_t)(sizeof last - 1));
    free(jpeg);
    struct timespec tick = {0, 2 * 1000000};
    for (int i = 0; i < 30000 && harness_metric(&srv, "resnetd_images_classified_total") <=
                                     classified0; i++)
        nanosleep(&tick, NULL);
    close(fd);
    /* > 1: the /metrics request itself is in flight */
    for (int i = 0; i < 3000 && harness_metric(&srv, "resnetd_inflight_requests") > 1; i++)
        nanosleep(&tick, NULL);
    double classified = harness_metric(&srv, "resnetd_images_classified_total") - classified0;
    double cancelled =
        harness_metric(&srv, "resnetd_queue_dropped_total{reason=\"cancelled\"}") - cancelled0;
    ck_assert_msg(classified >= 1 && cancelled >= 1 && classified + cancelled == N_IMAGES,
                  "classified %g, cancelled %g of %d", classified, cancelled, N_IMAGES);
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "after the departed client");
    harness_resp_free(&r);
}
END_TEST

START_TEST(queue_full_gets_503)
{
    enum { N = 8 };
    pthread_t th[N];
    queue_client_t cl[N] = {{0}};
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, queue_client, &cl[i]);
    int ok = 0, full = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(cl[i].other == 0, "client %d: a status other than 200/503", i);
        ck_assert_msg(cl[i].full_without_retry_after == 0, "client %d: 503 without Retry-After", i);
        ok += cl[i].ok;
        full += cl[i].full;
    }
    ck_assert_msg(full > 0, "no 503 from a full queue (%d ok)", ok);
    ck_assert_msg(ok > 0, "nothing got through");
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "after the storm");
    harness_resp_free(&r);
}
END_TEST

/* The 503 of a full queue says what the batcher said: how full, of what
 * limit, not a generic "queue full or draining". */
START_TEST(queue_full_503_gives_the_batchers_reason)
{
    enum { N = 8 };
    pthread_t th[N];
    queue_client_t cl[N] = {{0}};
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, queue_client, &cl[i]);
    const char *reason = NULL;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (cl[i].full)
            reason = cl[i].reason;
    }
    ck_assert_msg(reason, "no 503 from a full queue");
    ck_assert_msg(strstr(reason, "queue full: ") && strstr(reason, " of 2 images queued"),
                  "503 message '%s' is not the batcher's", reason);
}
END_TEST

START_TEST(deadline_gets_504)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 504, "request_timeout_ms 1");
    json_t *doc = harness_json(&r);
    ck_assert_str_eq(error_code(doc), "deadline_exceeded");
    json_decref(doc);
    harness_resp_free(&r);
    ck_assert(harness_metric(&srv, "resnetd_queue_dropped_total{reason=\"deadline\"}") >= 1);
    r = harness_http(&srv, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    expect_status(r, 200, "healthz");
    harness_resp_free(&r);
}
END_TEST

typedef struct {
    long status;
    int n_results;
} drain_client_t;

static void *drain_client(void *arg)
{
    drain_client_t *c = arg;
    const char *files[] = {PHOTOS "dog.jpg", PHOTOS "kite.jpg", PHOTOS "horses.jpg", NULL};
    harness_resp_t r = post_files("/classify", files);
    c->status = r.status;
    json_t *doc = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    c->n_results = (int)json_array_size(json_object_get(doc, "results"));
    json_decref(doc);
    harness_resp_free(&r);
    return NULL;
}

START_TEST(sigterm_drains_accepted_requests)
{
    start_big(); /* here, not in a fixture: this process must be its parent to reap it */
    enum { N = 6 };
    pthread_t th[N];
    drain_client_t cl[N] = {{0}};
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, drain_client, &cl[i]);
    /* wait until all N are accepted (the scrape itself is one more in flight) */
    double inflight = 0;
    for (int i = 0; i < 500 && inflight < N + 1; i++) {
        inflight = harness_metric(&srv, "resnetd_inflight_requests");
        if (inflight < N + 1)
            usleep(10000);
    }
    ck_assert_msg(inflight >= N + 1, "only %g requests in flight", inflight);
    /* a keep-alive connection opened before the signal sees /readyz turn 503 */
    CURL *keep = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", srv.port);
    curl_easy_setopt(keep, CURLOPT_URL, url);
    curl_easy_setopt(keep, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(keep, CURLOPT_TIMEOUT, 10L);
    long code = 0;
    ck_assert_int_eq(curl_easy_perform(keep), CURLE_OK);
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
    ck_assert_int_eq(code, 200);
    kill(srv.pid, SIGTERM);
    for (int i = 0; i < 200 && code == 200; i++) {
        usleep(5000);
        if (curl_easy_perform(keep) == CURLE_OK)
            curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_easy_cleanup(keep);
    ck_assert_msg(code == 503, "/readyz answered %ld while draining", code);
    int port = srv.port;
    int rc = harness_stop(&srv);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(cl[i].status == 200, "accepted request %d lost: status %ld", i,
                      cl[i].status);
        ck_assert_int_eq(cl[i].n_results, 3);
    }
    ck_assert_msg(rc == 0, "exit status %d after SIGTERM; see %s", rc, srv.log_path);
    unlink(srv.log_path);
    harness_server_t gone = {.port = port};
    harness_resp_t r = harness_http(&gone, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    ck_assert_int_eq(r.status, 0); /* refused */
    harness_resp_free(&r);
}
END_TEST

/* --- the CLI subcommands --- */

START_TEST(cli_classify_prints_the_same_json)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "eagle.jpg");
    json_t *doc = harness_json(&r);
    double prob = top_prob(result(doc, 0), 0);
    const char *label = top_label(result(doc, 0));
    static char out[65536];
    const char *argv[] = {harness_env("RESNETD_BIN", "resnetd"), "classify", "--model", small_model,
                          PHOTOS "eagle.jpg", "/etc/hostname", NULL};
    int rc = harness_run(argv, NULL, out, sizeof out);
    ck_assert_int_eq(rc, 1); /* one image failed */
    json_t *cli = json_loads(out, 0, NULL);
    ck_assert_msg(cli != NULL, "classify printed no JSON: %.200s", out);
    ck_assert_str_eq(json_string_value(json_object_get(cli, "model")), "resnet18_c2_128");
    ck_assert_str_eq(top_label(result(cli, 0)), label);
    ck_assert_double_eq_tol(top_prob(result(cli, 0), 0), prob, 2e-5);
    ck_assert_str_eq(error_code(result(cli, 1)), "bad_request");
    json_decref(cli);
    json_decref(doc);
    harness_resp_free(&r);

    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    const char *hc[] = {harness_env("RESNETD_BIN", "resnetd"), "healthcheck", "--port", port, NULL};
    ck_assert_int_eq(harness_run(hc, NULL, out, sizeof out), 0);
}
END_TEST

/* --- the real default model --- */

START_TEST(resnet50_dog_is_a_malamute)
{
    harness_resp_t r = post_jpeg("/classify", PHOTOS "dog.jpg");
    expect_status(r, 200, "dog.jpg on resnet50");
    json_t *doc = harness_json(&r);
    const char *label = top_label(result(doc, 0));
    ck_assert_msg(strstr(label, "malamute") || strstr(label, "husky") ||
                      strstr(label, "Eskimo dog"),
                  "dog.jpg top-1 is '%s'", label);
    json_decref(doc);
    harness_resp_free(&r);
    const char *files[] = {PHOTOS "eagle.jpg", PHOTOS "dog.jpg", NULL};
    r = post_files("/classify", files);
    expect_status(r, 200, "eagle + dog");
    doc = harness_json(&r);
    ck_assert_ptr_nonnull(strstr(top_label(result(doc, 0)), "eagle"));
    json_decref(doc);
    harness_resp_free(&r);
}
END_TEST

/* Fidelity against PyTorch: tools/keras_reference.py (PIL + torchvision
 * transforms, weights read independently from model.json) writes logits for
 * the darknet photos into $KERAS_DIR; the server must give the same top-1 and
 * each top-5 probability within FIDELITY_TOL, compared class by class both ways
 * (PyTorch's top 5 looked up in the server's answer and the server's top 5 in
 * PyTorch's softmax). */
#define FIDELITY_TOL 0.02

static json_t *keras_meta(void)
{
    const char *dir = getenv("KERAS_DIR");
    ck_assert_msg(dir != NULL, "KERAS_DIR not set (meson sets it)");
    char path[1024];
    snprintf(path, sizeof path, "%s/keras.json", dir);
    json_t *meta = json_load_file(path, 0, NULL);
    ck_assert_msg(meta != NULL, "%s unreadable", path);
    json_t *missing = json_object_get(meta, "missing_model");
    ck_assert_msg(missing == NULL, "%s was missing when the reference was made: run "
                  "tools/fetch_model.sh, then meson test again", json_string_value(missing));
    return meta;
}

static float *keras_logits(size_t count)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/keras.logits.f32", getenv("KERAS_DIR"));
    return test_read_f32(path, count);
}

/* softmax in double: PyTorch's probabilities from its logits */
static void softmax_d(const float *logits, int n, double *probs)
{
    double max = logits[0], sum = 0;
    for (int i = 1; i < n; i++)
        max = logits[i] > max ? logits[i] : max;
    for (int i = 0; i < n; i++)
        sum += probs[i] = exp((double)logits[i] - max);
    for (int i = 0; i < n; i++)
        probs[i] /= sum;
}

static void top5_indices(const double *probs, int n, int *idx)
{
    for (int k = 0; k < 5; k++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int j = 0; j < k; j++)
                taken |= idx[j] == i;
            if (!taken && (best < 0 || probs[i] > probs[best]))
                best = i;
        }
        idx[k] = best;
    }
}

/* The server's answer as probs[class] (every class: topk = n_classes). */
static void server_probs(json_t *res, int n, double *probs, const char **top1_label)
{
    json_t *preds = json_object_get(res, "predictions");
    ck_assert_int_eq((int)json_array_size(preds), n);
    for (int i = 0; i < n; i++)
        probs[i] = -1;
    for (int k = 0; k < n; k++) {
        json_t *p = json_array_get(preds, (size_t)k);
        int c = (int)json_integer_value(json_object_get(p, "index"));
        ck_assert_msg(c >= 0 && c < n && probs[c] < 0, "bad or repeated class %d", c);
        probs[c] = json_real_value(json_object_get(p, "probability"));
    }
    *top1_label = json_string_value(json_object_get(json_array_get(preds, 0), "label"));
}

/* max |server - torch| over both top-5 sets; fails on a top-1 mismatch. */
static double compare_photo(const char *name, const double *torch, const double *served, int n,
                            const char *served_label)
{
    int t5[5], s5[5];
    top5_indices(torch, n, t5);
    top5_indices(served, n, s5);
    ck_assert_msg(t5[0] == s5[0], "%s: server top-1 %d (%s), PyTorch top-1 %d", name, s5[0],
                  served_label, t5[0]);
    double worst = 0;
    for (int k = 0; k < 5; k++) {
        double d1 = fabs(served[t5[k]] - torch[t5[k]]), d2 = fabs(served[s5[k]] - torch[s5[k]]);
        worst = fmax(worst, fmax(d1, d2));
    }
    return worst;
}

START_TEST(resnet50_fidelity_against_pytorch)
{
    json_t *meta = keras_meta();
    int n_photos = (int)json_integer_value(json_object_get(meta, "n"));
    int n = (int)json_integer_value(json_object_get(meta, "classes"));
    ck_assert_int_eq(n, 1000);
    ck_assert_int_ge(n_photos, 7);
    float *logits = keras_logits((size_t)n_photos * (size_t)n);
    double *torch = malloc((size_t)n * sizeof *torch), *served = malloc((size_t)n * sizeof *served);
    ck_assert(torch && served);
    for (int i = 0; i < n_photos; i++) {
        const char *name = json_string_value(json_array_get(json_object_get(meta, "images"), (size_t)i));
        char file[512], query[64];
        snprintf(file, sizeof file, PHOTOS "%s", name);
        snprintf(query, sizeof query, "/classify?topk=%d", n);
        harness_resp_t r = post_jpeg(query, file);
        expect_status(r, 200, file);
        json_t *doc = harness_json(&r);
        const char *label;
        server_probs(result(doc, 0), n, served, &label);
        softmax_d(logits + (size_t)i * (size_t)n, n, torch);
        double worst = compare_photo(name, torch, served, n, label);
        printf("fidelity %-12s server '%s' = PyTorch '%s', max top-5 |dprob| %.2e\n", name, label,
               json_string_value(json_array_get(json_object_get(meta, "top1"), (size_t)i)), worst);
        ck_assert_msg(worst <= FIDELITY_TOL, "%s: a top-5 probability differs from PyTorch's by %.4f",
                      name, worst);
        json_decref(doc);
        harness_resp_free(&r);
    }
    free(served);
    free(torch);
    free(logits);
    json_decref(meta);
}
END_TEST

/* --- the bearer token (server started with --auth-token TOKEN) --- */

/* One request with an Authorization header value (NULL: none). */
static harness_resp_t with_auth(const char *method, const char *path, const char *authorization,
                                const char *ctype, const void *body, size_t len)
{
    struct curl_slist *h = NULL;
    char line[512];
    if (authorization) {
        snprintf(line, sizeof line, "Authorization: %s", authorization);
        h = curl_slist_append(h, line);
    }
    harness_resp_t r = harness_http(&srv, method, path, ctype, body, len, NULL, h);
    curl_slist_free_all(h);
    return r;
}

/* A 401 with the challenge header and the error body of the route's style. */
static void expect_401(harness_resp_t *r, const char *what, bool kserve)
{
    expect_status(*r, 401, what);
    ck_assert_msg(strstr(r->headers, "WWW-Authenticate: Bearer realm=\"resnetd\""),
                  "%s: no challenge in %s", what, r->headers);
    json_t *doc = harness_json(r);
    if (kserve)
        ck_assert_msg(json_is_string(json_object_get(doc, "error")), "%s: %s", what, r->body);
    else
        ck_assert_str_eq(error_code(doc), "unauthorized");
    json_decref(doc);
    harness_resp_free(r);
}

/* A metric's value from /metrics fetched with the token, or -1 when absent. */
static double auth_metric(const char *prefix)
{
    harness_resp_t r = with_auth("GET", "/metrics", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 200, "metrics with the token");
    double v = harness_metric_in(r.body, prefix);
    harness_resp_free(&r);
    return v;
}

START_TEST(auth_refuses_without_the_token)
{
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    harness_resp_t r = with_auth("POST", "/classify", NULL, "image/jpeg", jpeg, len);
    expect_401(&r, "no Authorization", false);
    r = with_auth("POST", "/classify", "Bearer wrong-token", "image/jpeg", jpeg, len);
    ck_assert_ptr_nonnull(strstr(r.headers, "error=\"invalid_token\""));
    expect_401(&r, "wrong token", false);
    r = with_auth("POST", "/classify", "Bearer " TOKEN "x", "image/jpeg", jpeg, len);
    expect_401(&r, "token + 1 byte", false);
    r = with_auth("POST", "/classify", "Basic " TOKEN, "image/jpeg", jpeg, len);
    expect_401(&r, "wrong scheme", false);
    r = with_auth("POST", "/classify", TOKEN, "image/jpeg", jpeg, len);
    expect_401(&r, "no scheme", false);
    /* everything but /healthz and /readyz is guarded, KServe health included;
     * unknown paths too (401, not 404: routes are not revealed) */
    const char *kserve[] = {"/v2", "/v2/health/live", "/v2/health/ready",
                            "/v2/models/resnet18_c2_128", "/v2/models/resnet18_c2_128/ready"};
    for (size_t i = 0; i < sizeof kserve / sizeof kserve[0]; i++) {
        r = with_auth("GET", kserve[i], NULL, NULL, NULL, 0);
        expect_401(&r, kserve[i], true);
    }
    r = with_auth("POST", C2 "", "Bearer nope", "application/json", "{}", 2);
    expect_401(&r, "KServe infer", true);
    r = with_auth("GET", "/metrics", NULL, NULL, NULL, 0);
    expect_401(&r, "/metrics", false);
    r = with_auth("GET", "/nosuch", NULL, NULL, NULL, 0);
    expect_401(&r, "unknown path", false);
    r = with_auth("GET", "/nosuch", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 404, "unknown path with the token");
    harness_resp_free(&r);
    free(jpeg);
}
END_TEST

START_TEST(auth_lets_the_token_and_probes_in)
{
    const char *open[] = {"/healthz", "/readyz"};
    for (size_t i = 0; i < 2; i++) {
        harness_resp_t r = with_auth("GET", open[i], NULL, NULL, NULL, 0);
        expect_status(r, 200, open[i]);
        ck_assert(!harness_has_header(&r, "WWW-Authenticate"));
        harness_resp_free(&r);
    }
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    harness_resp_t r = with_auth("POST", "/classify", "Bearer " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "classify with the token");
    json_t *doc = harness_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(result(doc, 0), "predictions")), 2);
    json_decref(doc);
    harness_resp_free(&r);
    r = with_auth("POST", "/classify", "bearer   " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "scheme in lower case, extra spaces");
    harness_resp_free(&r);
    r = with_auth("GET", "/v2/models/resnet18_c2_128", "Bearer " TOKEN, NULL, NULL, 0);
    expect_status(r, 200, "KServe model metadata with the token");
    doc = harness_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "resnet18_c2_128");
    json_decref(doc);
    harness_resp_free(&r);
    free(jpeg);
}
END_TEST

#define CLASSIFY_401 "resnetd_http_requests_total{endpoint=\"/classify\",code=\"401\"}"

/* A refused client's body is never decoded (checked on headers), 401s are
 * counted, the token never reaches the log, and the server goes on serving. */
START_TEST(auth_refusal_is_cheap_counted_and_unlogged)
{
    double decoded = auth_metric("resnetd_decode_duration_seconds_count");
    double refused = auth_metric(CLASSIFY_401);
    ck_assert(decoded >= 0);
    size_t len;
    unsigned char *jpeg = test_read_file(PHOTOS "dog.jpg", &len);
    for (int i = 0; i < 5; i++) {
        harness_resp_t r = with_auth("POST", "/classify", i % 2 ? "Bearer bad" : NULL, "image/jpeg",
                                     jpeg, len);
        expect_401(&r, "refused upload", false);
    }
    ck_assert_double_eq(auth_metric("resnetd_decode_duration_seconds_count"), decoded);
    ck_assert_double_eq(auth_metric(CLASSIFY_401), (refused < 0 ? 0 : refused) + 5);
    harness_resp_t r = with_auth("POST", "/classify", "Bearer " TOKEN, "image/jpeg", jpeg, len);
    expect_status(r, 200, "classify after the refusals");
    harness_resp_free(&r);
    ck_assert_double_eq(auth_metric("resnetd_decode_duration_seconds_count"), decoded + 1);
    free(jpeg);
    /* the access log has every request and never the token */
    size_t log_len;
    char *log = (char *)test_read_file(srv.log_path, &log_len);
    ck_assert_ptr_nonnull(strstr(log, "\"status\":401"));
    ck_assert_msg(!strstr(log, TOKEN), "the token is in the log %s", srv.log_path);
    free(log);
}
END_TEST

static void start_resnet50(void)
{
    const char *model = harness_env("RESNETD_MODEL", "models/resnet50.safetensors");
    ck_assert_msg(access(model, R_OK) == 0,
                  "the default model %s is missing: run tools/fetch_model.sh (or set RESNETD_MODEL)",
                  model);
    start_with(model, NULL);
}

static TCase *tcase(const char *name, void (*setup)(void), int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, setup, stop_server);
    tcase_set_timeout(tc, timeout);
    return tc;
}

int main(void)
{
    snprintf(small_model, sizeof small_model, "%s/resnet18_c2_128.safetensors", models_dir());
    snprintf(big_model, sizeof big_model, "%s/resnet18_c1000_224.safetensors", models_dir());
    curl_global_init(CURL_GLOBAL_ALL);

    Suite *s = suite_create("server");
    TCase *tc = tcase("small", start_small, 300);
    tcase_add_test(tc, classify_raw_jpeg);
    tcase_add_test(tc, classify_multipart_order_and_partial_failure);
    tcase_add_test(tc, classify_all_images_fail);
    tcase_add_test(tc, classify_topk_form_field);
    tcase_add_test(tc, bad_requests_get_their_status);
    tcase_add_test(tc, too_many_images);
    tcase_add_test(tc, aborted_and_chunked_uploads);
    tcase_add_test(tc, health_and_metrics);
    tcase_add_test(tc, kserve_tensor_json_matches_pytorch);
    tcase_add_test(tc, kserve_tensor_binary_matches_pytorch);
    tcase_add_test(tc, kserve_bytes_equals_classify);
    tcase_add_test(tc, kserve_bad_requests);
    tcase_add_test(tc, cli_classify_prints_the_same_json);
    suite_add_tcase(s, tc);
    tc = tcase("concurrency", start_big, 600);
    tcase_add_test(tc, concurrent_clients_no_mixups_and_batches);
    tcase_add_test(tc, queued_images_of_a_departed_client_are_dropped);
    suite_add_tcase(s, tc);
    tc = tcase("queue_full", start_tiny_queue, 300);
    tcase_add_test(tc, queue_full_gets_503);
    tcase_add_test(tc, queue_full_503_gives_the_batchers_reason);
    suite_add_tcase(s, tc);
    tc = tcase("auth", start_auth, 300);
    tcase_add_test(tc, auth_refuses_without_the_token);
    tcase_add_test(tc, auth_lets_the_token_and_probes_in);
    tcase_add_test(tc, auth_refusal_is_cheap_counted_and_unlogged);
    suite_add_tcase(s, tc);
    tc = tcase("deadline", start_deadline, 300);
    tcase_add_test(tc, deadline_gets_504);
    suite_add_tcase(s, tc);
    tc = tcase_create("drain");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sigterm_drains_accepted_requests);
    suite_add_tcase(s, tc);

    Suite *s50 = suite_create("resnet50");
    tc = tcase("resnet50", start_resnet50, 600);
    tcase_add_test(tc, resnet50_dog_is_a_malamute);
    tcase_add_test(tc, resnet50_fidelity_against_pytorch);
    suite_add_tcase(s50, tc);

    SRunner *sr = srunner_create(s);
    srunner_add_suite(sr, s50);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
