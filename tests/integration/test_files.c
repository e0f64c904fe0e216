/* test_files.c - fixture reading for the integration tests (see test_files.h). */
#include "test_files.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_msg(n >= 0, "%s: cannot tell its size", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(fread(buf, 1, (size_t)n, f) == (size_t)n, "%s: short read", path);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

float *test_read_f32(const char *path, size_t count)
{
    size_t len;
    unsigned char *bytes = test_read_file(path, &len);
    ck_assert_msg(len == count * sizeof(float), "%s: %zu bytes, expected %zu floats", path, len,
                  count);
    return (float *)bytes;
}

char *test_path(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *path = malloc(len);
    ck_assert_ptr_nonnull(path);
    snprintf(path, len, "%s/%s%s", dir, name, suffix);
    return path;
}

float *test_read_f32_in(const char *dir, const char *name, const char *suffix, size_t count)
{
    char *path = test_path(dir, name, suffix);
    float *data = test_read_f32(path, count);
    free(path);
    return data;
}
