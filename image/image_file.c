/* image_file.c - image_file_to_tensor: image_to_tensor on a file, for the
 * offline commands (classify, calibrate); the server gets its bytes from HTTP. */
#include <stdio.h>
#include <stdlib.h>

#include "file.h"
#include "image.h"

rd_status_t image_file_to_tensor(const char *path, const model_preproc_t *pp,
                                 const image_limits_t *lim, float *out, rd_error_t *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    rd_status_t st = file_read_all(path, 0, &data, &len, err);
    if (st == RD_OK && (st = image_to_tensor(data, len, pp, lim, out, err)) != RD_OK)
        rd_error_prefix(err, "%s", path);
    free(data);
    return st;
}
