/* safetensors.c - the safetensors reader (see safetensors.h). The file is
 * mapped read-only and its JSON header is checked entry by entry before any
 * tensor is handed out, so later code may trust every shape, offset and size.
 * Tensor names and metadata strings point into the parsed JSON, which lives as
 * long as the safetensors_t. */
#include "safetensors.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is certainly not a ResNet (ResNet-152 needs ~60 KB). */
#define HEADER_MAX ((uint64_t)100 * 1000 * 1000)

struct safetensors {
    void *map;                      /* mmap'ed file, or NULL for safetensors_parse */
    size_t map_len;
    json_t *header;                 /* owns the names and metadata strings */
    json_t *metadata;               /* borrowed from header; may be NULL */
    int n_tensors;
    safetensors_tensor_t *tensors;  /* header order */
};

typedef struct {
    const char *name;
    int64_t begin, end;
} span_t;

/* Every dtype of the format, with its element size; the first three convert. */
static const struct {
    const char *name;
    safetensors_dtype_t dtype;
    int size;
} dtypes[] = {
    { "F32", SAFETENSORS_F32, 4 },       { "F16", SAFETENSORS_F16, 2 },
    { "BF16", SAFETENSORS_BF16, 2 },     { "F64", SAFETENSORS_OTHER, 8 },
    { "I64", SAFETENSORS_OTHER, 8 },     { "U64", SAFETENSORS_OTHER, 8 },
    { "I32", SAFETENSORS_OTHER, 4 },     { "U32", SAFETENSORS_OTHER, 4 },
    { "I16", SAFETENSORS_OTHER, 2 },     { "U16", SAFETENSORS_OTHER, 2 },
    { "I8", SAFETENSORS_OTHER, 1 },      { "U8", SAFETENSORS_OTHER, 1 },
    { "BOOL", SAFETENSORS_OTHER, 1 },    { "F8_E4M3", SAFETENSORS_OTHER, 1 },
    { "F8_E5M2", SAFETENSORS_OTHER, 1 },
};

rd_status_t safetensors_check_float(const safetensors_tensor_t *t, rd_error_t *err)
{
    if (t->dtype == SAFETENSORS_OTHER)
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "tensor %s: dtype %s not supported (F32, F16, BF16)", t->name,
                            t->dtype_name);
    return RD_OK;
}

static rd_status_t parse_dtype(const char *name, json_t *entry, safetensors_tensor_t *t,
                               int *elem_size, rd_error_t *err)
{
    json_t *v = json_object_get(entry, "dtype");
    if (!v)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: dtype missing", name);
    if (!json_is_string(v))
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: dtype is not a string", name);
    const char *s = json_string_value(v);
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            t->dtype_name = dtypes[i].name;
            *elem_size = dtypes[i].size;
            return RD_OK;
        }
    }
    return rd_error_set(err, RD_ERR_UNSUPPORTED,
                        "tensor %s: dtype %.32s not supported (F32, F16, BF16)", name, s);
}

static rd_status_t parse_shape(const char *name, json_t *entry, safetensors_tensor_t *t,
                               rd_error_t *err)
{
    json_t *v = json_object_get(entry, "shape");
    if (!v)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: shape missing", name);
    if (!json_is_array(v))
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: shape is not an array", name);
    size_t ndim = json_array_size(v);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return rd_error_set(err, RD_ERR_UNSUPPORTED, "tensor %s: %zu dimensions (at most %d)",
                            name, ndim, SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    bool has_zero = false;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(v, i);
        if (!json_is_integer(d))
            return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: shape[%zu] is not an integer",
                                name, i);
        if (json_integer_value(d) < 0)
            return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: shape[%zu] is negative", name,
                                i);
        t->shape[i] = json_integer_value(d);
        has_zero |= t->shape[i] == 0;
    }
    /* Bound the product so that n_elems * 4 cannot overflow either. */
    int64_t n = 1, limit = INT64_MAX / 8;
    for (int i = 0; i < t->ndim && !has_zero; i++) {
        if (n > limit / t->shape[i])
            return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: element count overflows", name);
        n *= t->shape[i];
    }
    t->n_elems = has_zero ? 0 : n;
    return RD_OK;
}

static rd_status_t parse_offsets(const char *name, json_t *entry, safetensors_tensor_t *t,
                                 int elem_size, uint64_t data_len, span_t *span,
                                 rd_error_t *err)
{
    json_t *v = json_object_get(entry, "data_offsets");
    if (!v)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: data_offsets missing", name);
    json_t *b = json_array_get(v, 0), *e = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "tensor %s: data_offsets is not 2 non-negative integers", name);
    int64_t begin = json_integer_value(b), end = json_integer_value(e);
    if (begin > end)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: data_offsets begin %lld > end %lld",
                            name, (long long)begin, (long long)end);
    if ((uint64_t)end > data_len)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "tensor %s: data_offsets end %lld is past the data area (%llu bytes)",
                            name, (long long)end, (unsigned long long)data_len);
    int64_t want = t->n_elems * elem_size;
    if (end - begin != want)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "tensor %s: %lld bytes in data_offsets, dtype x shape needs %lld",
                            name, (long long)(end - begin), (long long)want);
    t->n_bytes = (size_t)want;
    span->name = name;
    span->begin = begin;
    span->end = end;
    return RD_OK;
}

static rd_status_t parse_metadata(json_t *meta, rd_error_t *err)
{
    if (!json_is_object(meta))
        return rd_error_set(err, RD_ERR_FORMAT, "__metadata__ is not an object");
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return rd_error_set(err, RD_ERR_FORMAT, "__metadata__ key %s: value is not a string",
                                key);
    }
    return RD_OK;
}

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Empty tensors own no bytes, so they overlap nothing. */
static rd_status_t check_overlap(span_t *spans, int n, rd_error_t *err)
{
    qsort(spans, (size_t)n, sizeof *spans, span_cmp);
    const span_t *last = NULL;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin == spans[i].end)
            continue;
        if (last && spans[i].begin < last->end)
            return rd_error_set(err, RD_ERR_FORMAT, "tensor %s: bytes overlap tensor %s",
                                spans[i].name, last->name);
        if (!last || spans[i].end > last->end)
            last = &spans[i];
    }
    return RD_OK;
}

static rd_status_t parse_entries(safetensors_t *st, const uint8_t *data, uint64_t data_len,
                                 rd_error_t *err)
{
    size_t n_keys = json_object_size(st->header);
    rd_status_t s = RD_OK;
    span_t *spans = calloc(n_keys ? n_keys : 1, sizeof *spans);
    st->tensors = calloc(n_keys ? n_keys : 1, sizeof *st->tensors);
    if (!spans || !st->tensors) {
        s = rd_error_set(err, RD_ERR_NOMEM, "safetensors header: out of memory");
        goto done;
    }
    const char *name;
    json_t *entry;
    json_object_foreach(st->header, name, entry) {
        if (strcmp(name, "__metadata__") == 0) {
            st->metadata = entry;
            if ((s = parse_metadata(entry, err)) != RD_OK)
                goto done;
            continue;
        }
        safetensors_tensor_t *t = &st->tensors[st->n_tensors];
        if (!json_is_object(entry)) {
            s = rd_error_set(err, RD_ERR_FORMAT, "tensor %s: entry is not an object", name);
            goto done;
        }
        t->name = name;
        int elem_size = 0;
        if ((s = parse_dtype(name, entry, t, &elem_size, err)) != RD_OK ||
            (s = parse_shape(name, entry, t, err)) != RD_OK ||
            (s = parse_offsets(name, entry, t, elem_size, data_len, &spans[st->n_tensors],
                               err)) != RD_OK)
            goto done;
        t->data = data + spans[st->n_tensors].begin;
        st->n_tensors++;
    }
    s = check_overlap(spans, st->n_tensors, err);
done:
    free(spans);
    return s;
}

static rd_status_t parse_into(safetensors_t *st, const uint8_t *buf, size_t len, rd_error_t *err)
{
    if (len < 8)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "file is %zu bytes, shorter than the 8-byte header length", len);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | buf[i];
    if (header_len > HEADER_MAX)
        return rd_error_set(err, RD_ERR_FORMAT, "header length %llu is absurd (limit %llu)",
                            (unsigned long long)header_len, (unsigned long long)HEADER_MAX);
    if (header_len > len - 8)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "header length %llu runs past the end of the file (%zu bytes)",
                            (unsigned long long)header_len, len);
    json_error_t jerr;
    st->header = json_loadb((const char *)buf + 8, (size_t)header_len, JSON_REJECT_DUPLICATES,
                            &jerr);
    if (!st->header)
        return rd_error_set(err, RD_ERR_FORMAT, "header is not valid JSON: %s (byte %d)",
                            jerr.text, jerr.position);
    if (!json_is_object(st->header))
        return rd_error_set(err, RD_ERR_FORMAT, "header is not a JSON object");
    return parse_entries(st, buf + 8 + header_len, len - 8 - header_len, err);
}

rd_status_t safetensors_parse(const uint8_t *buf, size_t len, safetensors_t **out,
                              rd_error_t *err)
{
    if (!out || (!buf && len))
        return rd_error_set(err, RD_ERR_ARG, "safetensors_parse: NULL argument");
    *out = NULL;
    safetensors_t *st = calloc(1, sizeof *st);
    if (!st)
        return rd_error_set(err, RD_ERR_NOMEM, "safetensors: out of memory");
    rd_status_t s = parse_into(st, buf, len, err);
    if (s != RD_OK) {
        safetensors_close(st);
        return s;
    }
    *out = st;
    return RD_OK;
}

static rd_status_t map_file(const char *path, void **map, size_t *len, rd_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rd_error_set(err, RD_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    rd_status_t s = RD_OK;
    if (fstat(fd, &sb) != 0) {
        s = rd_error_set(err, RD_ERR_IO, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        s = rd_error_set(err, RD_ERR_IO, "not a regular file");
    } else if (sb.st_size < 8) {
        s = rd_error_set(err, RD_ERR_FORMAT,
                         "file is %lld bytes, shorter than the 8-byte header length",
                         (long long)sb.st_size);
    } else {
        *len = (size_t)sb.st_size;
        *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            *map = NULL;
            s = rd_error_set(err, RD_ERR_IO, "cannot mmap: %s", strerror(errno));
        }
    }
    close(fd);
    return s;
}

rd_status_t safetensors_open(const char *path, safetensors_t **out, rd_error_t *err)
{
    if (!path || !out)
        return rd_error_set(err, RD_ERR_ARG, "safetensors_open: NULL argument");
    *out = NULL;
    safetensors_t *st = calloc(1, sizeof *st);
    if (!st)
        return rd_error_set(err, RD_ERR_NOMEM, "%s: out of memory", path);
    rd_status_t s = map_file(path, &st->map, &st->map_len, err);
    if (s == RD_OK)
        s = parse_into(st, st->map, st->map_len, err);
    if (s != RD_OK) {
        safetensors_close(st);
        rd_error_prefix(err, "%s", path);
        return s;
    }
    *out = st;
    return RD_OK;
}

const safetensors_tensor_t *safetensors_find(const safetensors_t *st, const char *name)
{
    for (int i = 0; st && name && i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

int safetensors_count(const safetensors_t *st)
{
    return st ? st->n_tensors : 0;
}

const safetensors_tensor_t *safetensors_at(const safetensors_t *st, int i)
{
    return st && i >= 0 && i < st->n_tensors ? &st->tensors[i] : NULL;
}

const char *safetensors_metadata(const safetensors_t *st, const char *key)
{
    if (!st || !st->metadata || !key)
        return NULL;
    return json_string_value(json_object_get(st->metadata, key));
}

const char *safetensors_metadata_key(const safetensors_t *st, int i)
{
    void *it = st && st->metadata ? json_object_iter(st->metadata) : NULL;
    for (; it && i > 0; i--)
        it = json_object_iter_next(st->metadata, it);
    return it && i == 0 ? json_object_iter_key(it) : NULL;
}

void safetensors_close(safetensors_t *st)
{
    if (!st)
        return;
    free(st->tensors);
    json_decref(st->header);
    if (st->map)
        munmap(st->map, st->map_len);
    free(st);
}
