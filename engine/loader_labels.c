/* loader_labels.c - the model's class names: from an explicit file, from the
 * metadata "labels" array, from the metadata "labels_file" (inside the model's
 * folder),
 * or "class_N" when none is given. The count must equal the classifier's
 * output size, since a shifted label list would mislabel every answer. Labels
 * end up in JSON responses, so they must be valid UTF-8. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader_meta.h"

#define LABELS_FILE_MAX (64 * 1024 * 1024)

void loader_labels_free(char **labels, int n)
{
    if (!labels)
        return;
    for (int i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
}

static rd_status_t alloc_labels(int n, char ***labels, rd_error_t *err)
{
    *labels = calloc((size_t)(n > 0 ? n : 1), sizeof **labels);
    return *labels ? RD_OK : rd_error_set(err, RD_ERR_NOMEM, "labels: out of memory");
}

/* labels[i] = copy of len bytes at s, which must be valid UTF-8. */
static rd_status_t set_label(char **labels, int i, const char *s, size_t len, const char *src,
                             rd_error_t *err)
{
    json_t *check = json_stringn(s, len);
    json_decref(check);
    if (!check || memchr(s, 0, len))
        return rd_error_set(err, RD_ERR_FORMAT, "%s: label %d is not valid UTF-8 text", src, i);
    if (!(labels[i] = strndup(s, len)))
        return rd_error_set(err, RD_ERR_NOMEM, "labels: out of memory");
    return RD_OK;
}

static rd_status_t count_mismatch(const char *src, int have, int n_classes, rd_error_t *err)
{
    return rd_error_set(err, RD_ERR_SHAPE, "%s: %d labels for %d classes (fc.weight)", src, have,
                        n_classes);
}

/* A JSON array of strings, or an object {"0": "tench", "1": ...} with keys 0..N-1. */
static rd_status_t from_json(json_t *j, const char *src, int n_classes, char **labels,
                             rd_error_t *err)
{
    size_t n = json_is_array(j) ? json_array_size(j) : json_object_size(j);
    if (n != (size_t)n_classes)
        return count_mismatch(src, (int)n, n_classes, err);
    for (int i = 0; i < n_classes; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        json_t *v = json_is_array(j) ? json_array_get(j, (size_t)i) : json_object_get(j, key);
        if (!json_is_string(v))
            return rd_error_set(err, RD_ERR_FORMAT, "%s: label %d is %s", src, i,
                                v ? "not a string" : "missing");
        rd_status_t s = set_label(labels, i, json_string_value(v), json_string_length(v), src,
                                  err);
        if (s != RD_OK)
            return s;
    }
    return RD_OK;
}

/* One label per line; a trailing newline, CRs and trailing blank lines are ignored. */
static rd_status_t from_lines(char *text, size_t len, const char *src, int n_classes,
                              char **labels, rd_error_t *err)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    if (len > 0)
        n++;
    if (n != n_classes)
        return count_mismatch(src, n, n_classes, err);
    char *line = text, *end = text + len;
    for (int i = 0; i < n; i++) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        size_t line_len = (size_t)(stop - line);
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        rd_status_t s = set_label(labels, i, line, line_len, src, err);
        if (s != RD_OK)
            return s;
        line = stop + 1;
    }
    return RD_OK;
}

static rd_status_t read_text(const char *path, char **text, size_t *len, rd_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rd_error_set(err, RD_ERR_IO, "labels file %s: %s", path, strerror(errno));
    rd_status_t s = RD_OK;
    size_t cap = 0;
    *text = NULL;
    *len = 0;
    while (s == RD_OK) {
        if (*len == cap) {
            char *grown = cap < LABELS_FILE_MAX ? realloc(*text, cap ? 2 * cap : 65536) : NULL;
            if (!grown) {
                s = cap < LABELS_FILE_MAX
                        ? rd_error_set(err, RD_ERR_NOMEM, "labels: out of memory")
                        : rd_error_set(err, RD_ERR_LIMIT, "labels file %s: larger than %d bytes",
                                       path, LABELS_FILE_MAX);
                break;
            }
            *text = grown;
            cap = cap ? 2 * cap : 65536;
        }
        size_t got = fread(*text + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0 && ferror(f))
            s = rd_error_set(err, RD_ERR_IO, "labels file %s: read failed", path);
        else if (got == 0)
            break;
    }
    fclose(f);
    if (s != RD_OK) {
        free(*text);
        *text = NULL;
    }
    return s;
}

static rd_status_t from_file(const char *path, int n_classes, char **labels, rd_error_t *err)
{
    char *text = NULL;
    size_t len = 0;
    rd_status_t s = read_text(path, &text, &len, err);
    if (s != RD_OK)
        return s;
    size_t first = 0;
    while (first < len && memchr(" \t\r\n", text[first], 4))
        first++;
    char src[300];
    snprintf(src, sizeof src, "labels file %s", path);
    if (first < len && (text[first] == '[' || text[first] == '{')) {
        json_error_t jerr;
        json_t *j = json_loadb(text, len, 0, &jerr);
        if (!j)
            s = rd_error_set(err, RD_ERR_FORMAT, "%s: bad JSON: %s (line %d)", src, jerr.text,
                             jerr.line);
        else
            s = from_json(j, src, n_classes, labels, err);
        json_decref(j);
    } else {
        s = from_lines(text, len, src, n_classes, labels, err);
    }
    free(text);
    return s;
}

/* A labels_file comes from the model file, which may come from anyone: it
 * must name a file inside the model's folder (or below it), never an
 * absolute path, a ".." step or a symlink that leads out of the folder, or a
 * crafted model could serve the lines of /etc/passwd as its labels. */
static rd_status_t check_inside(const char *file, const char *dir, const char *full,
                                rd_error_t *err)
{
    bool climbs = file[0] == '/';
    for (const char *p = file; *p && !climbs; p = strchr(p, '/') ? strchr(p, '/') + 1 : "")
        climbs = p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == 0);
    if (climbs)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "metadata labels_file: \"%.200s\" must be a path inside the model's "
                            "folder (no absolute path, no \"..\")", file);
    char *real_dir = realpath(dir, NULL), *real_file = realpath(full, NULL);
    rd_status_t s = RD_OK;
    if (!real_dir || !real_file)
        s = rd_error_set(err, RD_ERR_IO, "labels file %s: %s", full, strerror(errno));
    else if (strncmp(real_file, real_dir, strlen(real_dir)) != 0 ||
             (real_file[strlen(real_dir)] != '/' && strcmp(real_dir, "/") != 0))
        s = rd_error_set(err, RD_ERR_FORMAT,
                         "metadata labels_file: \"%.200s\" resolves to %.200s, outside the "
                         "model's folder %.200s (a symlink?)", file, real_file, real_dir);
    free(real_dir);
    free(real_file);
    return s;
}

/* labels_file is relative to the model's folder, and must stay inside it. */
static rd_status_t from_metadata_file(const char *model_path, const char *file, int n_classes,
                                      char **labels, rd_error_t *err)
{
    const char *slash = model_path ? strrchr(model_path, '/') : NULL;
    int dir_len = slash ? (int)(slash - model_path) + 1 : 0;
    size_t size = (size_t)dir_len + strlen(file) + 2;
    char *full = malloc(size), *dir = malloc(size);
    rd_status_t s = full && dir ? RD_OK : rd_error_set(err, RD_ERR_NOMEM, "labels: out of memory");
    if (s == RD_OK) {
        snprintf(full, size, "%.*s%s", dir_len, model_path ? model_path : "", file);
        snprintf(dir, size, "%.*s", dir_len, dir_len ? model_path : ".");
        s = check_inside(file, dir, full, err);
    }
    if (s == RD_OK)
        s = from_file(full, n_classes, labels, err);
    free(full);
    free(dir);
    return s;
}

static rd_status_t from_metadata_array(const char *value, int n_classes, char **labels,
                                       rd_error_t *err)
{
    json_t *j = json_loads(value, 0, NULL);
    rd_status_t s = json_is_array(j)
                        ? from_json(j, "metadata labels", n_classes, labels, err)
                        : rd_error_set(err, RD_ERR_FORMAT,
                                       "metadata labels: not a JSON array of strings");
    json_decref(j);
    return s;
}

rd_status_t loader_labels_load(const safetensors_t *st, const char *model_path,
                               const char *labels_path, int n_classes, char ***labels,
                               rd_error_t *err)
{
    const char *inline_labels = safetensors_metadata(st, "labels");
    const char *file = safetensors_metadata(st, "labels_file");
    if (!labels_path && inline_labels && file)
        return rd_error_set(err, RD_ERR_FORMAT,
                            "metadata labels and labels_file: give one, not both");
    rd_status_t s = alloc_labels(n_classes, labels, err);
    if (s != RD_OK)
        return s;
    if (labels_path)
        s = from_file(labels_path, n_classes, *labels, err);
    else if (inline_labels)
        s = from_metadata_array(inline_labels, n_classes, *labels, err);
    else if (file)
        s = from_metadata_file(model_path, file, n_classes, *labels, err);
    for (int i = 0; s == RD_OK && i < n_classes; i++) {
        char name[32];
        snprintf(name, sizeof name, "class_%d", i);
        if (!(*labels)[i] && !((*labels)[i] = strdup(name)))
            s = rd_error_set(err, RD_ERR_NOMEM, "labels: out of memory");
    }
    if (s != RD_OK) {
        loader_labels_free(*labels, n_classes);
        *labels = NULL;
    }
    return s;
}
