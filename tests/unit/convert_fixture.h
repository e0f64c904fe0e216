/* convert_fixture.h - shared fixtures of the test_convert suites (convert_fixture.c); the test
 * groups live in test_convert_*.c and are registered by test_convert.c. */
#ifndef CONVERT_FIXTURE_H
#define CONVERT_FIXTURE_H

#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "resnetd/convert.h"
#include "safetensors.h"

typedef struct {
    json_t *root, *layers, *weights; /* weights: the one manifest group's list */
    int n_act, n_add;
    char dir[64];
    char path[128];                  /* dir/model.json */
    char out[128];                   /* dir/out.safetensors */
} model_t;

void layer(model_t *m, const char *cls, const char *name, json_t *cfg, const char *in1,
           const char *in2);
void weight(model_t *m, const char *layer_name, const char *suffix, json_t *shape);
void conv(model_t *m, const char *name, const char *from, int in, int out, int k,
          int stride);
void bn(model_t *m, const char *name, const char *from, int ch);
void relu(model_t *m, const char *from, char out[32]);
void block(model_t *m, int S, char b, char cur[32], int *ch, int w);
void model_build(model_t *m);
int64_t n_elems(json_t *w);
int64_t offset_of(model_t *m, const char *name);
void write_file(model_t *m, const char *name, const void *data, size_t len);
void model_write(model_t *m, size_t drop);
void write_str(model_t *m, const char *name, const char *text);
void model_free(model_t *m);
json_t *find_layer(model_t *m, const char *name);
json_t *find_weight(model_t *m, const char *name);
void expect_error(model_t *m, const char *labels, rd_status_t want, const char *needle1,
                  const char *needle2);
const safetensors_tensor_t *tensor(safetensors_t *st, const char *name, int ndim,
                                   const int64_t *shape);
float at(const safetensors_tensor_t *t, int64_t i);
void check_conv(model_t *m, safetensors_t *st, const char *torch, const char *keras,
                int64_t co, int64_t ci, int64_t k);

/* Adds the tests of test_convert_happy.c to tc. */
void convert_happy_tests(TCase *tc);
/* Adds the tests of test_convert_errors.c to tc. */
void convert_errors_tests(TCase *tc);
/* Adds the tests of test_convert_cli.c to tc. */
void convert_cli_tests(TCase *tc);

#endif
