/* test_files.h - reading the fixtures integration tests compare against: whole
 * files (JPEGs) and raw little-endian float32 arrays written by the Python
 * references. Failures are check assertions, so call these from tests only. */
#ifndef RESNETD_TEST_FILES_H
#define RESNETD_TEST_FILES_H

#include <stddef.h>

/* The whole file at path (*len bytes, plus a NUL after them); caller frees. */
unsigned char *test_read_file(const char *path, size_t *len);

/* Exactly count floats from path (fails if the file is shorter or longer); caller frees. */
float *test_read_f32(const char *path, size_t count);

/* "dir/namesuffix" (suffix may be ""); caller frees. */
char *test_path(const char *dir, const char *name, const char *suffix);

/* test_read_f32 of test_path(dir, name, suffix). */
float *test_read_f32_in(const char *dir, const char *name, const char *suffix, size_t count);

#endif
