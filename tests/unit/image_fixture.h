/* image_fixture.h - shared fixtures of the test_image* suites: darknet
 * photos, a synthetic picture, in-memory JPEG encoding, the torchvision and
 * Caffe preprocessing of ResNets. */
#ifndef IMAGE_FIXTURE_H
#define IMAGE_FIXTURE_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "image_internal.h"

#define DARKNET "/usr/share/darknet/data/"
#define N_PHOTOS 7
#define N_TENSOR (3 * 224 * 224)

extern const char *const photos[N_PHOTOS];

typedef struct {
    uint8_t *data;
    size_t len;
} blob_t;

/* Reads a darknet photo; data is NULL if it cannot be read. */
blob_t load_photo(const char *name);
/* load_photo that fails the test if the photo cannot be read. */
blob_t read_photo(const char *name);
/* A smooth synthetic picture (gradients and a soft disc): JPEG keeps it well. */
uint8_t *synthetic_rgb(int w, int h);
/* Encodes pixels (TurboJPEG pixel format pf) into a malloc'ed JPEG. */
blob_t encode(const uint8_t *pixels, int w, int h, int pf, int samp, int flags);
double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n);
model_preproc_t torchvision_pp(void);
model_preproc_t caffe_pp(void);

/* Each group file adds its tests to the one test case of test_image. */
void image_decode_tests(TCase *tc);
void image_geometry_tests(TCase *tc);
void image_bad_input_tests(TCase *tc);

#endif
