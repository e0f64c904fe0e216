/* fuzz_multipart.c - libFuzzer harness: the multipart reader on bytes alone.
 * Input: the Content-Type header value, '\n', then the body. The body is fed
 * whole and again in chunks cut where its first byte says, and both must give
 * the same parts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "multipart.h"

static rd_status_t read_chunked(const char *ct, const uint8_t *body, size_t len, size_t step,
                                multipart_t *mp, rd_error_t *err)
{
    multipart_reader_t *r;
    rd_status_t st = multipart_begin(ct, 8, &r, err);
    if (st != RD_OK)
        return st;
    for (size_t at = 0; at < len; at += step)
        multipart_feed(r, body + at, len - at < step ? len - at : step);
    st = multipart_finish(r, mp, err);
    multipart_reader_free(r);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ct[512];
    const uint8_t *body;
    size_t len;
    if (!fuzz_split_line(data, size, ct, sizeof ct, &body, &len))
        return 0;
    /* the body gets its own allocation so ASan sees reads past its end */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    memcpy(copy, body, len);
    multipart_t mp, mp2;
    rd_error_t err, err2;
    rd_status_t st = multipart_parse(ct, copy, len, 8, &mp, &err);
    rd_status_t st2 = read_chunked(ct, copy, len, len ? 1 + copy[0] % 17 : 1, &mp2, &err2);
    if (getenv("FUZZ_VERBOSE")) /* to check that the seeds parse */
        fprintf(stderr, "multipart: %s\n", st == RD_OK ? "ok" : err.msg);
    if (st != st2)
        abort(); /* the split of the body into chunks changed the outcome */
    if (st == RD_OK) {
        if (mp.n_parts != mp2.n_parts)
            abort();
        for (int i = 0; i < mp.n_parts; i++) {
            if (!mp.parts[i].name || (mp.parts[i].len && !mp.parts[i].data))
                abort(); /* every part has a name, and data when it has bytes */
            if (mp.parts[i].len != mp2.parts[i].len ||
                (mp.parts[i].len && memcmp(mp.parts[i].data, mp2.parts[i].data, mp.parts[i].len)))
                abort();
        }
        multipart_free(&mp);
        multipart_free(&mp2);
    }
    free(copy);
    return 0;
}
