/* file.c - whole-file reads (see file.h). The buffer grows by doubling; each
 * growth copies into a fresh block and wipes the old one, because realloc
 * would leave a copy of a key's bytes behind in freed memory. */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wipe_free(uint8_t *buf, size_t n)
{
    if (buf)
        explicit_bzero(buf, n);
    free(buf);
}

/* A buffer of cap + 1 bytes holding the n bytes of buf (which is wiped and freed). */
static uint8_t *grow(uint8_t *buf, size_t n, size_t cap)
{
    uint8_t *p = malloc(cap + 1);
    if (p && n)
        memcpy(p, buf, n);
    wipe_free(buf, n);
    return p;
}

rd_status_t file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                          rd_error_t *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rd_error_set(err, RD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap + 1);
    rd_status_t st = RD_OK;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (max_bytes && n > max_bytes) {
            st = rd_error_set(err, RD_ERR_LIMIT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        if (n == cap)
            buf = grow(buf, n, cap *= 2);
    }
    int e = errno;
    if (!buf)
        st = rd_error_set(err, RD_ERR_NOMEM, "%s: out of memory", path);
    else if (st == RD_OK && ferror(f))
        st = rd_error_set(err, RD_ERR_IO, "%s: %s", path, strerror(e));
    fclose(f);
    if (st != RD_OK) {
        wipe_free(buf, n);
        return st;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return RD_OK;
}
