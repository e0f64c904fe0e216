/* test_server_queue.c - the batcher seen through HTTP: concurrent clients without mix-ups and batches > 1, a departed client's images dropped, queue full, deadlines, SIGTERM drain (see server_test.h). */
#include "server_test.h"

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

static void start_deadline(void)
{
    const char *extra[] = {"--request-timeout-ms", "1", NULL};
    start_with(small_model, extra);
}

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

void add_queue_tests(Suite *s)
{
    TCase *tc = server_tcase("concurrency", start_big, 600);
    tcase_add_test(tc, concurrent_clients_no_mixups_and_batches);
    tcase_add_test(tc, queued_images_of_a_departed_client_are_dropped);
    suite_add_tcase(s, tc);
    tc = server_tcase("queue_full", start_tiny_queue, 300);
    tcase_add_test(tc, queue_full_gets_503);
    tcase_add_test(tc, queue_full_503_gives_the_batchers_reason);
    suite_add_tcase(s, tc);
    tc = server_tcase("deadline", start_deadline, 300);
    tcase_add_test(tc, deadline_gets_504);
    suite_add_tcase(s, tc);
    tc = tcase_create("drain");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sigterm_drains_accepted_requests);
    suite_add_tcase(s, tc);
}
