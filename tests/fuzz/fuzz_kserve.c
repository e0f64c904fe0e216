/* fuzz_kserve.c - libFuzzer harness: the KServe v2 codec on bytes alone
 * (JSON, or JSON + binary tail), then what the infer route does with its
 * output: decode each JPEG (4 MP limit, a 16x16 input, so decoding is cheap),
 * the tail checks, and encoding a response to made-up logits. Input: the
 * Inference-Header-Content-Length value (empty line = header absent), '\n',
 * then the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "image.h"
#include "kserve_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char hlen[64];
    const uint8_t *body;
    size_t len;
    if (!fuzz_split_line(data, size, hlen, sizeof hlen, &body, &len))
        return 0;
    /* the HTTP layer keeps the body NUL-terminated; so does this copy */
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return 0;
    memcpy(copy, body, len);
    copy[len] = 0;
    kserve_limits_t lim = {.max_images = 4, .input_h = 16, .input_w = 16};
    model_preproc_t pp = {.resize = 18, .input_h = 16, .input_w = 16,
                          .channel_order = MODEL_RGB, .scale = 1.0f / 255,
                          .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
    image_limits_t ilim = image_default_limits();
    ilim.max_pixels = 4000000;
    kserve_request_t kr;
    rd_error_t err;
    rd_status_t st = kserve_parse(copy, len, hlen[0] ? hlen : NULL, &lim, &kr, &err);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds parse */
        fprintf(stderr, "kserve: %s %s\n", rd_status_str(st), st ? err.msg : "");
    if (st == RD_OK) {
        float pixels[3 * 16 * 16];
        for (int i = 0; kr.images && i < kr.n_images; i++)
            if (image_to_tensor(kr.images[i].data, kr.images[i].len, &pp, &ilim, pixels, &err))
                break;
        kserve_check_tail(&kr, &err);
        float logits[4 * 4] = {1, 2, 3, 4, -1, 0, 1, 2, 5, 5, 5, 5, 0, 0, 0, 1};
        kserve_response_t out;
        if (kserve_encode(&kr, "fuzz", logits, 4, &out, &err) == RD_OK)
            kserve_response_free(&out);
        kserve_request_free(&kr);
    }
    free(copy);
    return 0;
}
