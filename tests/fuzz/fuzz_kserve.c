/* fuzz_kserve.c - libFuzzer harness: kserve_parse_request on a KServe v2 body
 * (JSON, or JSON + binary tail). Input: the Inference-Header-Content-Length
 * value (empty line = header absent), '\n', then the body. The model is a
 * 4-class one with a 16x16 input and the pixel limit is 4 MP, so BYTES
 * inputs (JPEGs, base64 or binary) are decoded cheaply. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_mhd_stub.h"
#include "kserve_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char hlen[64];
    const uint8_t *body;
    size_t len;
    if (!fuzz_split_line(data, size, hlen, sizeof hlen, &body, &len))
        return 0;
    static config_t cfg;
    cfg = config_default_params();
    cfg.max_pixels = 4000000;
    cfg.max_images_per_request = 4;
    model_info_t model = {.n_classes = 4};
    model_preproc_t pp = {.resize = 18, .input_h = 16, .input_w = 16,
                          .channel_order = MODEL_RGB, .scale = 1.0f / 255,
                          .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
    http_deps_t deps = {.cfg = &cfg, .model = &model, .preproc = &pp, .model_name = "fuzz"};
    /* http.c keeps the body NUL-terminated; so does this copy */
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return 0;
    memcpy(copy, body, len);
    copy[len] = 0;
    http_request_t *req = calloc(1, sizeof *req);
    if (!req) {
        free(copy);
        return 0;
    }
    req->deps = &deps;
    req->body = copy;
    req->body_len = len;
    fuzz_header_name = "Inference-Header-Content-Length";
    fuzz_header_value = hlen[0] ? hlen : NULL;
    infer_job_t job = {0};
    kserve_request_t kr;
    char msg[256];
    int status = kserve_parse_request(req, &job, &kr, msg, sizeof msg);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds parse */
        fprintf(stderr, "kserve: %d %s\n", status, status ? msg : "");
    kserve_request_free(&kr);
    infer_job_free(&job);
    free(req);
    free(copy);
    return 0;
}
