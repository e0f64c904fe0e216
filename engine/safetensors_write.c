/* safetensors_write.c - the safetensors writer (see safetensors.h): used by the
 * TF.js converter and by tests that build model files. Tensors are F32 and
 * written in name order, the header is padded with spaces to a multiple of 8
 * so that the data area starts aligned, and the file appears atomically. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors_write.c writes host floats as little-endian"
#endif

typedef struct {
    char *name;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t n_elems;
    float *data;
} entry_t;

struct safetensors_writer {
    entry_t *entries;
    int n_entries, cap;
    json_t *metadata;
};

rd_status_t safetensors_writer_create(safetensors_writer_t **out, rd_error_t *err)
{
    if (!out)
        return rd_error_set(err, RD_ERR_ARG, "safetensors_writer_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (*out && !((*out)->metadata = json_object())) {
        free(*out);
        *out = NULL;
    }
    if (!*out)
        return rd_error_set(err, RD_ERR_NOMEM, "safetensors writer: out of memory");
    return RD_OK;
}

static rd_status_t check_entry(const safetensors_writer_t *w, const char *name, int ndim,
                               const int64_t *shape, const float *data, int64_t *n_elems,
                               rd_error_t *err)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return rd_error_set(err, RD_ERR_ARG, "safetensors writer: invalid tensor name");
    for (int i = 0; i < w->n_entries; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return rd_error_set(err, RD_ERR_ARG, "tensor %s: added twice", name);
    if (ndim < 0 || ndim > SAFETENSORS_MAX_DIMS || (ndim > 0 && !shape))
        return rd_error_set(err, RD_ERR_ARG, "tensor %s: %d dimensions (0..%d)", name, ndim,
                            SAFETENSORS_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rd_error_set(err, RD_ERR_ARG, "tensor %s: shape[%d] is negative", name, i);
        if (shape[i] && n > INT64_MAX / 8 / shape[i])
            return rd_error_set(err, RD_ERR_ARG, "tensor %s: element count overflows", name);
        n *= shape[i];
    }
    if (n && !data)
        return rd_error_set(err, RD_ERR_ARG, "tensor %s: NULL data", name);
    *n_elems = n;
    return RD_OK;
}

rd_status_t safetensors_writer_add(safetensors_writer_t *w, const char *name, int ndim,
                                   const int64_t *shape, const float *data, rd_error_t *err)
{
    if (!w)
        return rd_error_set(err, RD_ERR_ARG, "safetensors_writer_add: NULL writer");
    int64_t n = 0;
    rd_status_t s = check_entry(w, name, ndim, shape, data, &n, err);
    if (s != RD_OK)
        return s;
    if (w->n_entries == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        entry_t *grown = realloc(w->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return rd_error_set(err, RD_ERR_NOMEM, "tensor %s: out of memory", name);
        w->entries = grown;
        w->cap = cap;
    }
    entry_t e = { .ndim = ndim, .n_elems = n };
    if (ndim > 0)
        memcpy(e.shape, shape, (size_t)ndim * sizeof *shape);
    e.name = strdup(name);
    e.data = malloc(n ? (size_t)n * sizeof *e.data : 1);
    if (!e.name || !e.data) {
        free(e.name);
        free(e.data);
        return rd_error_set(err, RD_ERR_NOMEM, "tensor %s: out of memory", name);
    }
    if (n)
        memcpy(e.data, data, (size_t)n * sizeof *e.data);
    w->entries[w->n_entries++] = e;
    return RD_OK;
}

rd_status_t safetensors_writer_meta(safetensors_writer_t *w, const char *key, const char *value,
                                    rd_error_t *err)
{
    if (!w || !key || !value)
        return rd_error_set(err, RD_ERR_ARG, "safetensors_writer_meta: NULL argument");
    json_t *v = json_string(value);
    if (!v || json_object_set_new(w->metadata, key, v) != 0)
        return rd_error_set(err, RD_ERR_ARG, "metadata %s: not valid UTF-8 or out of memory",
                            key);
    return RD_OK;
}

rd_status_t safetensors_writer_add_file(safetensors_writer_t *w, const safetensors_t *src,
                                        const char *except, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    for (int i = 0; st == RD_OK && i < safetensors_count(src); i++) {
        const safetensors_tensor_t *t = safetensors_at(src, i);
        if (t->dtype == SAFETENSORS_OTHER || (except && strcmp(t->name, except) == 0))
            continue;
        float *data = malloc(t->n_elems ? (size_t)t->n_elems * sizeof *data : 1);
        if (!data)
            return rd_error_set(err, RD_ERR_NOMEM, "out of memory copying %s", t->name);
        safetensors_to_f32(t, data);
        st = safetensors_writer_add(w, t->name, t->ndim, t->shape, data, err);
        free(data);
    }
    const char *key;
    for (int i = 0; st == RD_OK && (key = safetensors_metadata_key(src, i)); i++)
        st = safetensors_writer_meta(w, key, safetensors_metadata(src, key), err);
    return st;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->name, ((const entry_t *)b)->name);
}

static json_t *entry_json(const entry_t *e, int64_t begin, int64_t end)
{
    json_t *shape = json_array();
    for (int d = 0; shape && d < e->ndim; d++) {
        if (json_array_append_new(shape, json_integer(e->shape[d])) != 0) {
            json_decref(shape);
            shape = NULL;
        }
    }
    if (!shape)
        return NULL;
    /* "o" steals shape, also when json_pack fails */
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                     (json_int_t)begin, (json_int_t)end);
}

/* The JSON header for the entries (already sorted), or NULL when out of memory. */
static char *build_header(const safetensors_writer_t *w)
{
    json_t *root = json_object();
    int ok = root != NULL;
    if (ok && json_object_size(w->metadata) > 0)
        ok = json_object_set(root, "__metadata__", w->metadata) == 0;
    int64_t offset = 0;
    for (int i = 0; ok && i < w->n_entries; i++) {
        int64_t end = offset + w->entries[i].n_elems * 4;
        json_t *entry = entry_json(&w->entries[i], offset, end);
        ok = entry && json_object_set_new(root, w->entries[i].name, entry) == 0;
        offset = end;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

static int write_file(FILE *f, const safetensors_writer_t *w, const char *header)
{
    size_t len = strlen(header), padded = (len + 7) / 8 * 8;
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if (fwrite(len_le, 1, 8, f) != 8 || fwrite(header, 1, len, f) != len)
        return -1;
    for (size_t i = len; i < padded; i++)
        if (fputc(' ', f) == EOF)
            return -1;
    for (int i = 0; i < w->n_entries; i++) {
        size_t n = (size_t)w->entries[i].n_elems;
        if (fwrite(w->entries[i].data, sizeof(float), n, f) != n)
            return -1;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        return -1;
    return 0;
}

rd_status_t safetensors_writer_save(safetensors_writer_t *w, const char *path, rd_error_t *err)
{
    if (!w || !path)
        return rd_error_set(err, RD_ERR_ARG, "safetensors_writer_save: NULL argument");
    qsort(w->entries, (size_t)w->n_entries, sizeof *w->entries, entry_cmp);
    char *header = build_header(w);
    size_t tmp_len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(tmp_len);
    if (!header || !tmp) {
        free(header);
        free(tmp);
        return rd_error_set(err, RD_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    rd_status_t s = RD_OK;
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        s = rd_error_set(err, RD_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        goto done;
    }
    fchmod(fd, 0644);
    int failed = write_file(f, w, header);
    int saved_errno = errno;
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        s = rd_error_set(err, RD_ERR_IO, "%s: cannot write: %s", path, strerror(saved_errno));
        unlink(tmp);
    }
done:
    free(tmp);
    free(header);
    return s;
}

void safetensors_writer_free(safetensors_writer_t *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n_entries; i++) {
        free(w->entries[i].name);
        free(w->entries[i].data);
    }
    free(w->entries);
    json_decref(w->metadata);
    free(w);
}
