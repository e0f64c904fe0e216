/* test_preproc.h - the ImageNet preprocessing the Python references
 * (tools/preprocess_reference.py, tools/format_fixtures.py) apply, for the
 * tests that compare the image pipeline against them. */
#ifndef RESNETD_TEST_PREPROC_H
#define RESNETD_TEST_PREPROC_H

#include <stdbool.h>

#include "resnetd/model.h"

/* Resize 256, crop 224, RGB scaled to 0..1 with torchvision's mean and std;
 * with bgr, Caffe's BGR 0..255 minus its mean. */
static inline model_preproc_t test_preproc(bool bgr)
{
    if (bgr)
        return (model_preproc_t){256, 224, 224, MODEL_BGR, 1.0f,
                                 {103.939f, 116.779f, 123.68f}, {1, 1, 1}};
    return (model_preproc_t){256, 224, 224, MODEL_RGB, 1.0f / 255.0f,
                             {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
}

#endif
