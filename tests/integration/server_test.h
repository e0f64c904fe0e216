/* server_test.h - what the test_server*.c files share: the resnetd under test
 * (one per check TCase, started by the TCase's fixture and stopped after its
 * last test), the fixtures, and request helpers. The files follow the
 * source: test_server_classify.c (server/api/route_classify.c, multipart),
 * _kserve.c (route_kserve.c, kserve_tensor.c), _health.c (route_health.c,
 * route_metrics.c), _queue.c (the batcher through HTTP: batches, queue full,
 * deadline, drain), _auth.c (the bearer token in server/http/), _cli.c (cli/),
 * _resnet50.c (the real default model); test_server.c has main. */
#ifndef RESNETD_SERVER_TEST_H
#define RESNETD_SERVER_TEST_H

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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
#define C2 "/v2/models/resnet18_c2_128/infer" /* KServe infer on the small model */

extern harness_server_t srv;
extern char small_model[512], big_model[512]; /* resnet18_c2_128, resnet18_c1000_224 */

const char *models_dir(void);

/* fixtures */
void start_with(const char *model, const char *const *extra);
void stop_server(void); /* a clean exit after SIGTERM */
void start_small(void); /* the 2-class model, --max-body-bytes 8000000 */
TCase *server_tcase(const char *name, void (*setup)(void), int timeout);

/* helpers */
harness_resp_t post_jpeg(const char *path, const char *file);
harness_resp_t post_files(const char *path, const char *const *files);
json_t *result(json_t *doc, size_t i);
double top_prob(json_t *res, size_t k);
const char *top_label(json_t *res);
void expect_status(harness_resp_t r, long status, const char *what);
const char *error_code(json_t *doc);
float *read_f32(const char *name, size_t count);
int loopback_connect(void);

/* each file's TCases */
void add_classify_tests(Suite *s);
void add_health_tests(Suite *s);
void add_kserve_tests(Suite *s);
void add_cli_tests(Suite *s);
void add_queue_tests(Suite *s);
void add_auth_tests(Suite *s);
void add_resnet50_tests(Suite *s);

#endif
