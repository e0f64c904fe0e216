/* fuzz_grpc.c - libFuzzer harness: what the gRPC front end reads from a
 * client before any model is involved: a grpc-timeout header value and a
 * ModelInferRequest message (protobuf-c's unpack, then grpc_parse_infer's
 * checks: one input, its shape, the raw BYTES layout, the outputs), every
 * span it hands on read to its end. Input: the grpc-timeout value, '\n',
 * then the message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "grpc_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char timeout[64];
    const uint8_t *msg;
    size_t len;
    if (!fuzz_split_line(data, size, timeout, sizeof timeout, &msg, &len))
        return 0;
    volatile int64_t ns = grpc_parse_timeout((const uint8_t *)timeout, strlen(timeout));
    (void)ns;
    grpc_infer_req_t r;
    grpc_status_t st = GRPC_STATUS_OK;
    char why[256];
    bool ok = grpc_parse_infer(msg, len, 4, &r, &st, why, sizeof why);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds parse */
        fprintf(stderr, "grpc: %s %d %s\n", ok ? "ok" : "refused", (int)st, ok ? "" : why);
    volatile uint8_t sum = 0;
    for (int i = 0; ok && !r.fp32 && i < r.n; i++)
        for (size_t k = 0; k < r.images[i].len; k++)
            sum += r.images[i].data[k];
    for (size_t k = 0; ok && r.raw && k < r.raw_len; k++)
        sum += r.raw[k];
    volatile float f = 0;
    for (size_t k = 0; ok && k < r.n_floats; k++)
        f += r.floats[k];
    (void)sum;
    (void)f;
    grpc_infer_req_free(&r);
    return 0;
}
