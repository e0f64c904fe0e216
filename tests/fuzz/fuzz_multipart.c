/* fuzz_multipart.c - libFuzzer harness: multipart_parse. Input: the
 * Content-Type header value, '\n', then the body. libmicrohttpd's
 * PostProcessor needs a connection only for its header lookups here (see
 * fuzz_mhd_stub.h), so a zeroed stand-in is passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_mhd_stub.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ct[512];
    static _Alignas(64) unsigned char fake_conn[64 * 1024];
    const uint8_t *body;
    size_t len;
    if (!fuzz_split_line(data, size, ct, sizeof ct, &body, &len))
        return 0;
    /* the body gets its own allocation so ASan sees reads past its end */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    memcpy(copy, body, len);
    fuzz_header_name = MHD_HTTP_HEADER_CONTENT_TYPE;
    fuzz_header_value = ct;
    multipart_t mp;
    rd_error_t err;
    rd_status_t st = multipart_parse((struct MHD_Connection *)fake_conn, copy, len, 8, &mp, &err);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds parse */
        fprintf(stderr, "multipart: %s\n", st == RD_OK ? "ok" : err.msg);
    if (st == RD_OK) {
        for (int i = 0; i < mp.n_parts; i++)
            if (!mp.parts[i].name || (mp.parts[i].len && !mp.parts[i].data))
                abort(); /* every part has a name, and data when it has bytes */
        multipart_free(&mp);
    }
    free(copy);
    return 0;
}
