/* image_file.c - image_file_to_tensor: image_to_tensor on a file, for the
 * offline commands (classify, calibrate); the server gets its bytes from HTTP. */
#include <stdio.h>
#include <stdlib.h>

#include "image.h"

static rd_status_t read_file(const char *path, uint8_t **data, size_t *len, rd_error_t *err)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rd_error_set(err, RD_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
            }
            buf = p;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return rd_error_set(err, buf ? RD_ERR_IO : RD_ERR_NOMEM, "%s: cannot read", path);
    }
    *data = buf;
    *len = n;
    return RD_OK;
}

rd_status_t image_file_to_tensor(const char *path, const model_preproc_t *pp,
                                 const image_limits_t *lim, float *out, rd_error_t *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    rd_status_t st = read_file(path, &data, &len, err);
    if (st == RD_OK && (st = image_to_tensor(data, len, pp, lim, out, err)) != RD_OK)
        rd_error_prefix(err, "%s", path);
    free(data);
    return st;
}
