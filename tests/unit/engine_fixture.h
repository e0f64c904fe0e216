/* engine_fixture.h - shared fixtures of the test_engine suites (engine_fixture.c); the test
 * groups live in test_engine_*.c and are registered by test_engine.c. */
#ifndef ENGINE_FIXTURE_H
#define ENGINE_FIXTURE_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnetd/calibrate.h"
#include "resnetd/engine.h"
#include "safetensors.h"

#define MAX_TENSORS 160
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    float *data;
} tensor_t;

typedef struct {
    tensor_t t[MAX_TENSORS];
    int n;
    uint64_t rng;
} store_t;

float uniform(store_t *s, float lo, float hi);
float *add(store_t *s, const char *name, int ndim, const int64_t *shape, float lo, float hi);
const float *get(const store_t *s, const char *prefix, const char *suffix);
void add_conv_bn(store_t *s, const char *conv, const char *bn, int oc, int ic, int k,
                 int bias);
typedef struct {
    int bottleneck;
    int blocks[4];
    int bias;     /* every conv has a bias (Keras style) */
    int v1;       /* stride on the first 1x1 conv of a bottleneck */
    float eps;
    int n_classes;
} arch_t;

extern const int stem_width, widths[4];
void build_store(store_t *s, const arch_t *a);
void write_store(const store_t *s, const arch_t *a, const char *path);
void free_store(store_t *s);
typedef struct {
    int c, h, w;
    float *d;
} fmap_t;

fmap_t fmap(int c, int h, int w);
#define AT(m, ch, y, x) ((m).d[((size_t)(ch) * (m).h + (y)) * (m).w + (x)])
fmap_t ref_conv(const fmap_t *x, const float *w, const float *bias, int oc, int k,
                int stride, int pad);
fmap_t ref_conv_bn(const store_t *s, const char *conv, const char *bn, const fmap_t *x,
                   int oc, int k, int stride, int pad, float eps, int relu);
fmap_t ref_maxpool(const fmap_t *x);
fmap_t ref_block(const store_t *s, const arch_t *a, int st, int i, fmap_t x);
void ref_forward(const store_t *s, const arch_t *a, const float *img, int h, int w,
                 float *logits);
void temp_path(char *path, size_t size);
void check_batch(engine_t *eng, const store_t *s, const arch_t *a, int h, int w,
                 int n_images, uint64_t seed);
void check_arch_batches(const arch_t *a, int h, int w, const int *sizes, int n_sizes,
                        int sub_batch, bool no_winograd);
void check_arch(const arch_t *a, int h, int w);

/* Adds the tests of test_engine_fp32.c to tc. */
void engine_fp32_tests(TCase *tc);
/* Adds the tests of test_engine_int8.c to tc. */
void engine_int8_tests(TCase *tc);

#endif
