/* loader_fixture.h - tiny torchvision-named ResNets written with the
 * safetensors writer into a temporary folder, for the loader's unit tests
 * (test_loader.c, test_loader_checks.c). setup/teardown make and remove the
 * folder (dir); write_model writes dir/<file> and sets model_path. */
#ifndef RESNETD_LOADER_FIXTURE_H
#define RESNETD_LOADER_FIXTURE_H

#include <check.h>
#include <stdbool.h>

#include "loader.h"

typedef struct {
    bool bottleneck, bias;
    int stem, widths[4], blocks[4], classes;
    const char *skip;        /* a tensor to leave out */
    const char *reshape;     /* a tensor written with new_shape instead */
    int new_ndim;
    int64_t new_shape[4];
    const char *extra;       /* an extra [extra_len] tensor */
    int extra_len;
    const char *meta[24];    /* key, value, ..., NULL */
    const char *poison;      /* a tensor whose element 1 is written as poison_value */
    float poison_value;
} spec_t;

extern char dir[64];
extern char model_path[512];

void write_model(const spec_t *sp, const char *file);
void patch_header(const char *from, const char *to);
spec_t basic_spec(void);
spec_t bottleneck_spec(void);
/* Opens model_path and runs the loader; the file is closed before return. */
rd_status_t load(const engine_params_t *params, net_t **net, model_info_t *info, rd_error_t *err);
/* Writes sp as bad.safetensors and checks that loading fails with code and a
 * message that starts with the path and contains want. */
void expect_fail(const spec_t *sp, const engine_params_t *params, rd_status_t code,
                 const char *want);
void write_text(const char *file, const char *text);
void setup(void);
void teardown(void);

#endif
