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

/* The float dtypes resnetd converts, and OTHER for the rest of the format's
 * dtypes (I64, F64, BOOL, ...): those are validated and listed, so that files
 * carrying bookkeeping tensors such as torchvision's int64 num_batches_tracked
 * load, but they cannot be converted; the loader rejects one that it needs. */
typedef enum {
    SAFETENSORS_F32,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_OTHER,
} safetensors_dtype_t;

typedef struct {
    const char *name;
    safetensors_dtype_t dtype;
    const char *dtype_name;   /* as in the file: "F32", "I64", ... */
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t n_elems;
    size_t n_bytes;           /* n_elems * element size */
    const uint8_t *data;      /* points into the mapped file; n_bytes bytes */
} safetensors_tensor_t;

typedef struct safetensors safetensors_t;

/* Maps and validates path. *out is owned by the caller (safetensors_close).
 * Fails with RD_ERR_IO (open/mmap), RD_ERR_FORMAT (truncated file, bad header
 * length, bad JSON, bad entry, offsets out of range or overlapping, byte count
 * != dtype x shape) or RD_ERR_UNSUPPORTED (a dtype that is not in the
 * safetensors format, more than 8 dimensions); err->msg starts with "path: "
 * and names the tensor at fault. On failure *out is NULL. Thread-safe (no
 * shared state). */
rd_status_t safetensors_open(const char *path, safetensors_t **out, rd_error_t *err);

/* Validates an in-memory file (len bytes at buf, which must outlive *out).
 * Same checks and statuses as safetensors_open, without the path prefix. */
rd_status_t safetensors_parse(const uint8_t *buf, size_t len, safetensors_t **out,
                              rd_error_t *err);

/* RD_OK when t is F32, F16 or BF16; otherwise RD_ERR_UNSUPPORTED with
 * "tensor NAME: dtype I64 not supported (F32, F16, BF16)". */
rd_status_t safetensors_check_float(const safetensors_tensor_t *t, rd_error_t *err);

/* Lookups. A safetensors_t is read-only after open, so any number of threads
 * may call these; every returned pointer lives until safetensors_close. */

/* The tensor called name, or NULL. */
const safetensors_tensor_t *safetensors_find(const safetensors_t *st, const char *name);

/* Number of tensors, and the i-th (in header order). */
int safetensors_count(const safetensors_t *st);
const safetensors_tensor_t *safetensors_at(const safetensors_t *st, int i);

/* The __metadata__ string for key, or NULL when absent. */
const char *safetensors_metadata(const safetensors_t *st, const char *key);

/* The i-th __metadata__ key (i from 0), or NULL past the last. */
const char *safetensors_metadata_key(const safetensors_t *st, int i);

/* Converts t (F32, F16 or BF16: see safetensors_check_float) to float32 into
 * dst (t->n_elems floats). Cannot fail; an OTHER tensor gives zeros. */
void safetensors_to_f32(const safetensors_tensor_t *t, float *dst);

/* Unmaps and frees. NULL is a no-op. */
void safetensors_close(safetensors_t *st);

/* Writer: collects F32 tensors (copied) and metadata, then writes the file in
 * one go, tensors sorted by name, header padded with spaces to 8 bytes as the
 * reference implementation does. One writer belongs to one thread.
 * writer_add fails with RD_ERR_ARG for a NULL/empty/duplicate name, the name
 * "__metadata__", ndim outside 0..8, a negative dimension, or NULL data for a
 * non-empty tensor; writer_meta replaces an existing key. */
typedef struct safetensors_writer safetensors_writer_t;

rd_status_t safetensors_writer_create(safetensors_writer_t **out, rd_error_t *err);
rd_status_t safetensors_writer_add(safetensors_writer_t *w, const char *name, int ndim,
                                   const int64_t *shape, const float *data, rd_error_t *err);
rd_status_t safetensors_writer_meta(safetensors_writer_t *w, const char *key,
                                    const char *value, rd_error_t *err);
/* Adds every float tensor of src as F32, except the one called except (may be
 * NULL) and those of other dtypes, such as torchvision's int64
 * num_batches_tracked; and every metadata entry. */
rd_status_t safetensors_writer_add_file(safetensors_writer_t *w, const safetensors_t *src,
                                        const char *except, rd_error_t *err);
/* Writes to path via a temporary file ("path.tmp.XXXXXX", same folder) and
 * rename, so a crash never leaves half a file. RD_ERR_IO names the path and the
 * reason (strerror); the temporary file is removed on failure. */
rd_status_t safetensors_writer_save(safetensors_writer_t *w, const char *path, rd_error_t *err);
/* Frees the writer and its copies of the data. NULL is a no-op. */
void safetensors_writer_free(safetensors_writer_t *w);

#endif
