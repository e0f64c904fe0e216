/* fuzz_image.c - libFuzzer harness: the image path of every request, JPEG
 * header probe (PNG and WebP, told apart by their bytes, go straight on) then
 * decode + resize + crop + normalise into a 32x32 tensor, with a
 * 256K-pixel limit: a corrupt header claiming megapixels makes libjpeg decode
 * them all (grey), which costs milliseconds under ASan and slowed the fuzzer
 * to about 1,000 inputs a second without adding coverage; the limit's own
 * check is exercised either way. The first input byte picks
 * the preprocessing shape (resize, crop, DCT scaling) so those branches are
 * fuzzed too. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"

#define FUZZ_MAX_SIDE 48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    image_probe_t probe;
    rd_error_t err;
    image_format_t format = image_format_sniff(data, size);
    if (format != IMAGE_FORMAT_PNG && format != IMAGE_FORMAT_WEBP &&
        image_probe(data, size, &probe, &err) != RD_OK)
        return 0;
    model_preproc_t pp = {
        .input_h = 8 + (sel & 7) * 5,
        .input_w = 8 + ((sel >> 3) & 7) * 5,
        .channel_order = (sel & 0x40) ? MODEL_BGR : MODEL_RGB,
        .scale = 1.0f / 255,
        .mean = {0.485f, 0.456f, 0.406f},
        .std = {0.229f, 0.224f, 0.225f},
    };
    int crop = pp.input_h > pp.input_w ? pp.input_h : pp.input_w;
    pp.resize = crop + (sel >> 7) * 9;
    image_limits_t lim = image_default_limits();
    lim.max_pixels = 256 * 1024;
    lim.dct_scaling = (sel & 0x80) != 0;
    float *out = malloc(3 * FUZZ_MAX_SIDE * FUZZ_MAX_SIDE * sizeof *out);
    if (!out)
        return 0;
    (void)image_to_tensor(data, size, &pp, &lim, out, &err);
    free(out);
    return 0;
}
