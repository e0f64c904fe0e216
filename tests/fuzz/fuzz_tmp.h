/* fuzz_tmp.h - writes a fuzz input to a file for the parsers that only take a
 * path (config_load_file). One file per process, reused by every input. */
#ifndef RESNETD_FUZZ_TMP_H
#define RESNETD_FUZZ_TMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Returns the path with data[0..size) in it, or NULL when it cannot write. */
static inline const char *fuzz_tmp_write(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/resnetd-fuzz-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            return NULL;
        close(fd);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t n = fwrite(data, 1, size, f);
    return fclose(f) == 0 && n == size ? path : NULL;
}

#endif
