/* safetensors.h - reading and writing the safetensors format
 * (8-byte little-endian header length, a JSON header, then raw tensor bytes).
 * The reader maps the file and checks every header entry before anything uses
 * it: offsets inside the data area, sizes that match dtype x shape, no overlap.
 * It is the only code that parses weight files, so every malformed-file error
 * comes from here with the tensor's name in the message. */
#ifndef RESNETD_SAFETENSORS_H
#define RESNETD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

#define SAFETENSORS_MAX_DIMS 8

typedef enum { SAFETENSORS_F32, SAFETENSORS_F16, SAFETENSORS_BF16 } safetensors_dtype_t;

typedef struct {
    const char *name;
    safetensors_dtype_t dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t n_elems;
    const uint8_t *data;      /* points into the mapped file; n_elems * dtype size bytes */
} safetensors_tensor_t;

typedef struct safetensors safetensors_t;

/* Maps and validates path. *out is owned by the caller (safetensors_close). */
rd_status_t safetensors_open(const char *path, safetensors_t **out, rd_error_t *err);

/* Validates an in-memory file (len bytes at buf, which must outlive *out). */
rd_status_t safetensors_parse(const uint8_t *buf, size_t len, safetensors_t **out,
                              rd_error_t *err);

/* The tensor called name, or NULL. */
const safetensors_tensor_t *safetensors_find(const safetensors_t *st, const char *name);

/* Number of tensors, and the i-th (in header order). */
int safetensors_count(const safetensors_t *st);
const safetensors_tensor_t *safetensors_at(const safetensors_t *st, int i);

/* The __metadata__ string for key, or NULL when absent. */
const char *safetensors_metadata(const safetensors_t *st, const char *key);

/* Converts t to float32 into dst (t->n_elems floats). Cannot fail. */
void safetensors_to_f32(const safetensors_tensor_t *t, float *dst);

/* Unmaps and frees. NULL is a no-op. */
void safetensors_close(safetensors_t *st);

/* Writer: collects F32 tensors (copied) and metadata, then writes the file in
 * one go, tensors sorted by name, header padded with spaces to 8 bytes as the
 * reference implementation does. */
typedef struct safetensors_writer safetensors_writer_t;

rd_status_t safetensors_writer_create(safetensors_writer_t **out, rd_error_t *err);
rd_status_t safetensors_writer_add(safetensors_writer_t *w, const char *name, int ndim,
                                   const int64_t *shape, const float *data, rd_error_t *err);
rd_status_t safetensors_writer_meta(safetensors_writer_t *w, const char *key,
                                    const char *value, rd_error_t *err);
/* Writes to path via a temporary file and rename, so a crash never leaves half a file. */
rd_status_t safetensors_writer_save(safetensors_writer_t *w, const char *path, rd_error_t *err);
void safetensors_writer_free(safetensors_writer_t *w);

#endif
