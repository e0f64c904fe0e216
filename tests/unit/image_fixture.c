/* image_fixture.c - shared fixtures of the test_image* suites (see image_fixture.h). */
#include "image_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

const char *const photos[N_PHOTOS] = {"dog", "eagle", "giraffe", "horses", "kite",
                                      "person", "scream"};

blob_t load_photo(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, DARKNET "%s.jpg", name);
    blob_t b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return b;
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > 0) {
        b.len = (size_t)ftell(f);
        b.data = malloc(b.len);
        rewind(f);
        if (b.data && fread(b.data, 1, b.len, f) != b.len) {
            free(b.data);
            b.data = NULL;
        }
    }
    fclose(f);
    return b;
}

blob_t read_photo(const char *name)
{
    blob_t b = load_photo(name);
    ck_assert_msg(b.data != NULL, "cannot read " DARKNET "%s.jpg", name);
    return b;
}

/* A smooth synthetic picture (gradients and a soft disc): JPEG keeps it well. */
uint8_t *synthetic_rgb(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = x - w / 2.0, dy = y - h / 2.0;
            double disc = 80.0 * exp(-(dx * dx + dy * dy) / (w * h / 8.0));
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(40 + 150.0 * x / w);
            q[1] = (uint8_t)(30 + 120.0 * y / h + disc);
            q[2] = (uint8_t)(200 - 100.0 * x / w);
        }
    return p;
}

blob_t encode(const uint8_t *pixels, int w, int h, int pf, int samp, int flags)
{
    tjhandle tj = tjInitCompress();
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ck_assert_msg(tjCompress2(tj, pixels, w, 0, h, pf, &buf, &len, samp, 95, flags) == 0,
                  "tjCompress2: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    blob_t b = {malloc(len), len};
    memcpy(b.data, buf, len);
    tjFree(buf);
    return b;
}

double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs((int)a[i] - (int)b[i]);
    return sum / (double)n;
}

model_preproc_t torchvision_pp(void)
{
    return (model_preproc_t){256, 224, 224, MODEL_RGB, 1.0f / 255.0f,
                             {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
}

model_preproc_t caffe_pp(void)
{
    return (model_preproc_t){256, 224, 224, MODEL_BGR, 1.0f,
                             {103.939f, 116.779f, 123.68f}, {1, 1, 1}};
}
