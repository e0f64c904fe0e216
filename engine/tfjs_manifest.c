/* tfjs_manifest.c - a TF.js weightsManifest: groups of shard files whose
 * concatenated bytes hold the group's tensors back to back, in manifest order,
 * as little-endian float32 (see tfjs.h). Everything about the files is checked
 * before conversion starts (existence, exact total size), so a truncated
 * download is reported by file and tensor rather than as a short read later. */
#include "tfjs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* No ResNet tensor comes near this; it keeps n_elems * 4 far from overflow. */
#define MAX_ELEMS ((int64_t)1 << 32)

static rd_status_t parse_weight(json_t *j, int group, int64_t *offset, tfjs_weight_t *w,
                                rd_error_t *err)
{
    json_t *shape = json_object_get(j, "shape");
    json_t *dtype = json_object_get(j, "dtype");
    w->name = json_string_value(json_object_get(j, "name"));
    if (!w->name)
        return rd_error_set(err, RD_ERR_FORMAT, "weightsManifest: a weight has no name");
    if (!json_is_string(dtype) || strcmp(json_string_value(dtype), "float32"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "tensor '%s': dtype %s, only float32 is supported", w->name,
                            json_is_string(dtype) ? json_string_value(dtype) : "missing");
    if (json_object_get(j, "quantization"))
        return rd_error_set(err, RD_ERR_UNSUPPORTED,
                            "tensor '%s': quantized weights are not supported", w->name);
    if (!json_is_array(shape) || json_array_size(shape) > 4)
        return rd_error_set(err, RD_ERR_FORMAT, "tensor '%s': shape missing or over 4 dims",
                            w->name);
    w->ndim = (int)json_array_size(shape);
    w->n_elems = 1;
    for (int d = 0; d < w->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        w->shape[d] = json_is_integer(v) ? json_integer_value(v) : -1;
        if (w->shape[d] < 1 || w->shape[d] > MAX_ELEMS / w->n_elems)
            return rd_error_set(err, RD_ERR_FORMAT, "tensor '%s': bad shape dimension %d",
                                w->name, d);
        w->n_elems *= w->shape[d];
    }
    w->group = group;
    w->offset = *offset;
    *offset += w->n_elems * 4;
    return RD_OK;
}

static rd_status_t parse_paths(json_t *paths, const char *dir, int g, tfjs_group_t *grp,
                               int64_t *total, rd_error_t *err)
{
    if (!json_is_array(paths) || json_array_size(paths) == 0)
        return rd_error_set(err, RD_ERR_FORMAT, "weightsManifest group %d: no paths", g);
    size_t n = json_array_size(paths);
    grp->paths = calloc(n, sizeof *grp->paths);
    grp->sizes = calloc(n, sizeof *grp->sizes);
    if (!grp->paths || !grp->sizes)
        return rd_error_set(err, RD_ERR_NOMEM, "no memory for %zu shard paths", n);
    grp->n_paths = (int)n;
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(paths, i));
        if (!p || !*p || p[0] == '/')
            return rd_error_set(err, RD_ERR_FORMAT,
                                "weightsManifest group %d: path %zu is not a relative file name",
                                g, i);
        size_t len = strlen(dir) + strlen(p) + 2;
        grp->paths[i] = malloc(len);
        if (!grp->paths[i])
            return rd_error_set(err, RD_ERR_NOMEM, "no memory for shard path %s", p);
        snprintf(grp->paths[i], len, "%s/%s", dir, p);
        struct stat sb;
        errno = 0;
        if (stat(grp->paths[i], &sb) != 0 || !S_ISREG(sb.st_mode))
            return rd_error_set(err, RD_ERR_IO, "shard file %s: %s", grp->paths[i],
                                errno ? strerror(errno) : "not a regular file");
        grp->sizes[i] = sb.st_size;
        *total += sb.st_size;
    }
    return RD_OK;
}

static rd_status_t parse_group(json_t *j, int g, const char *dir, tfjs_manifest_t *m,
                               rd_error_t *err)
{
    json_t *weights = json_object_get(j, "weights");
    int64_t have = 0, need = 0;
    rd_status_t s = parse_paths(json_object_get(j, "paths"), dir, g, &m->groups[g], &have, err);
    if (s != RD_OK)
        return s;
    if (!json_is_array(weights))
        return rd_error_set(err, RD_ERR_FORMAT, "weightsManifest group %d: no weights list", g);
    size_t n = json_array_size(weights);
    tfjs_weight_t *grown = realloc(m->weights, ((size_t)m->n_weights + n + 1) * sizeof *grown);
    if (!grown)
        return rd_error_set(err, RD_ERR_NOMEM, "no memory for %zu weights", n);
    m->weights = grown;
    for (size_t i = 0; i < n; i++) {
        tfjs_weight_t *w = &m->weights[m->n_weights];
        memset(w, 0, sizeof *w);
        s = parse_weight(json_array_get(weights, i), g, &need, w, err);
        if (s != RD_OK)
            return s;
        if (tfjs_manifest_find(m, w->name))
            return rd_error_set(err, RD_ERR_FORMAT, "tensor '%s' listed twice", w->name);
        m->n_weights++;
        if (need > have)
            return rd_error_set(err, RD_ERR_FORMAT,
                                "tensor '%s' needs bytes up to %lld of group %d, but its shards "
                                "(%s ...) hold only %lld: truncated download?",
                                w->name, (long long)need, g, m->groups[g].paths[0],
                                (long long)have);
    }
    if (need != have)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "weightsManifest group %d: shards (%s ...) hold %lld bytes, the "
                            "tensors need %lld",
                            g, m->groups[g].paths[0], (long long)have, (long long)need);
    return RD_OK;
}

rd_status_t tfjs_manifest_parse(json_t *manifest, const char *dir, tfjs_manifest_t *out,
                                rd_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(manifest) || json_array_size(manifest) == 0)
        return rd_error_set(err, RD_ERR_FORMAT, "weightsManifest missing or empty");
    size_t n = json_array_size(manifest);
    out->groups = calloc(n, sizeof *out->groups);
    if (!out->groups)
        return rd_error_set(err, RD_ERR_NOMEM, "no memory for %zu weight groups", n);
    out->n_groups = (int)n;
    for (size_t g = 0; g < n; g++) {
        rd_status_t s = parse_group(json_array_get(manifest, g), (int)g, dir, out, err);
        if (s != RD_OK) {
            tfjs_manifest_free(out);
            return s;
        }
    }
    return RD_OK;
}

tfjs_weight_t *tfjs_manifest_find(tfjs_manifest_t *m, const char *name)
{
    for (int i = 0; i < m->n_weights; i++)
        if (!strcmp(m->weights[i].name, name))
            return &m->weights[i];
    return NULL;
}

/* Copies len bytes starting at offset of the group's concatenated shards. */
static rd_status_t read_span(const tfjs_group_t *g, int64_t offset, int64_t len, uint8_t *dst,
                             rd_error_t *err)
{
    int64_t start = 0;
    for (int i = 0; i < g->n_paths && len > 0; start += g->sizes[i], i++) {
        if (offset >= start + g->sizes[i])
            continue;
        int64_t at = offset - start, n = g->sizes[i] - at < len ? g->sizes[i] - at : len;
        FILE *f = fopen(g->paths[i], "rb");
        bool ok = f && fseek(f, (long)at, SEEK_SET) == 0 &&
                  fread(dst, 1, (size_t)n, f) == (size_t)n;
        int e = errno;
        if (f)
            fclose(f);
        if (!ok)
            return rd_error_set(err, RD_ERR_IO, "shard file %s: read failed (%s)", g->paths[i],
                                f ? "file changed during conversion" : strerror(e));
        dst += n;
        offset += n;
        len -= n;
    }
    return RD_OK;
}

rd_status_t tfjs_manifest_read(const tfjs_manifest_t *m, const tfjs_weight_t *w, float *dst,
                               rd_error_t *err)
{
    /* float32 on disk is little-endian, as on every machine resnetd targets (x86-64, arm64). */
    rd_status_t s = read_span(&m->groups[w->group], w->offset, w->n_elems * 4, (uint8_t *)dst,
                              err);
    if (s != RD_OK)
        rd_error_prefix(err, "tensor '%s'", w->name);
    return s;
}

void tfjs_manifest_free(tfjs_manifest_t *m)
{
    if (!m)
        return;
    for (int g = 0; g < m->n_groups; g++) {
        for (int i = 0; i < m->groups[g].n_paths; i++)
            free(m->groups[g].paths[i]);
        free(m->groups[g].paths);
        free(m->groups[g].sizes);
    }
    free(m->groups);
    free(m->weights);
    memset(m, 0, sizeof *m);
}
