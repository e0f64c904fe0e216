/* model_repo.c - reading a model repository (see model_repo.h): the folder
 * listing, a model's config.json, its version folders and the version policy. */
#include "model_repo.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

/* The keys of the server's config that a model's config.json may set. */
static const char *const model_keys[] = {
    "precision", "int8_recheck", "max_batch_size", "max_queue_delay_us", "max_queue_length",
    "input_size", "resize", "channel_order", "scale", "mean", "std", "labels",
};

static bool is_model_key(const char *key)
{
    for (size_t i = 0; i < sizeof model_keys / sizeof model_keys[0]; i++)
        if (!strcmp(model_keys[i], key))
            return true;
    return false;
}

/* A positive integer that fits an int, with nothing after it. */
static int parse_version(const char *s)
{
    if (!*s || *s == '0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return 0;
    return atoi(s);
}

static rd_status_t parse_policy(json_t *v, repo_policy_t *p, rd_error_t *err)
{
    const char *kind;
    json_t *body;
    if (!json_is_object(v) || json_object_size(v) != 1)
        return rd_error_set(err, RD_ERR_FORMAT, "version_policy: expected one of "
                            "{\"latest\":{\"num_versions\":N}}, {\"all\":{}}, "
                            "{\"specific\":{\"versions\":[...]}}");
    json_object_foreach(v, kind, body) {
        json_t *x = json_is_object(body) ? body : NULL;
        if (!strcmp(kind, "all") && x && json_object_size(x) == 0) {
            p->kind = REPO_POLICY_ALL;
        } else if (!strcmp(kind, "latest") && x && json_object_size(x) == 1 &&
                   json_is_integer(json_object_get(x, "num_versions"))) {
            json_int_t n = json_integer_value(json_object_get(x, "num_versions"));
            if (n < 1 || n > REPO_MAX_VERSIONS)
                return rd_error_set(err, RD_ERR_ARG, "version_policy.latest.num_versions: %lld "
                                    "is out of range, expected 1..%d", (long long)n,
                                    REPO_MAX_VERSIONS);
            p->kind = REPO_POLICY_LATEST;
            p->latest = (int)n;
        } else if (!strcmp(kind, "specific") && x && json_object_size(x) == 1 &&
                   json_is_array(json_object_get(x, "versions"))) {
            json_t *a = json_object_get(x, "versions");
            size_t n = json_array_size(a);
            if (n < 1 || n > REPO_MAX_VERSIONS)
                return rd_error_set(err, RD_ERR_ARG, "version_policy.specific.versions: %zu "
                                    "versions, expected 1..%d", n, REPO_MAX_VERSIONS);
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(a, i);
                if (!json_is_integer(e) || json_integer_value(e) < 1 ||
                    json_integer_value(e) > 999999999)
                    return rd_error_set(err, RD_ERR_ARG, "version_policy.specific.versions[%zu]: "
                                        "expected a positive integer", i);
                p->specific[i] = (int)json_integer_value(e);
            }
            p->kind = REPO_POLICY_SPECIFIC;
            p->n_specific = (int)n;
        } else {
            return rd_error_set(err, RD_ERR_FORMAT, "version_policy.%s: expected "
                                "{\"latest\":{\"num_versions\":N}}, {\"all\":{}} or "
                                "{\"specific\":{\"versions\":[...]}}", kind);
        }
    }
    return RD_OK;
}

static rd_status_t apply_key(const char *key, json_t *v, repo_model_t *m, rd_error_t *err)
{
    if (!strcmp(key, "version_policy"))
        return parse_policy(v, &m->policy, err);
    if (!strcmp(key, "instances")) {
        /* several instances need several inference workers (not built yet) */
        if (!json_is_integer(v) || json_integer_value(v) != 1)
            return rd_error_set(err, RD_ERR_ARG, "instances: only 1 is supported");
        m->instances = 1;
        return RD_OK;
    }
    if (!is_model_key(key))
        return rd_error_set(err, RD_ERR_FORMAT, "unknown key '%s' (a model's config.json takes "
                            "version_policy, instances and the per-model serve keys)", key);
    return config_set_json(key, v, &m->cfg, err);
}

rd_status_t repo_parse_config(const char *text, size_t len, const char *origin,
                              repo_model_t *m, rd_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return rd_error_set(err, RD_ERR_FORMAT, "%s:%d: %s", origin, jerr.line, jerr.text);
    rd_status_t st = json_is_object(root)
                         ? RD_OK
                         : rd_error_set(err, RD_ERR_FORMAT, "expected a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (st == RD_OK)
            st = apply_key(key, v, m, err);
    }
    json_decref(root);
    if (st == RD_OK)
        st = config_validate(&m->cfg, err);
    return st == RD_OK ? RD_OK : rd_error_prefix(err, "%s", origin);
}

/* Reads DIR/NAME/config.json if there is one. */
static rd_status_t read_config(const char *folder, repo_model_t *m, rd_error_t *err)
{
    char path[sizeof m->versions[0].path];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", folder) >= sizeof path)
        return rd_error_set(err, RD_ERR_ARG, "%s: path too long", folder);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? RD_OK : rd_error_set(err, RD_ERR_IO, "%s: %s", path, strerror(errno));
    char *text = malloc(65537);
    size_t len = text ? fread(text, 1, 65536, f) : 0;
    bool big = len == 65536;
    fclose(f);
    rd_status_t st = !text ? rd_error_set(err, RD_ERR_NOMEM, "out of memory")
                     : big ? rd_error_set(err, RD_ERR_LIMIT, "%s: larger than 64 KiB", path)
                           : repo_parse_config(text, len, path, m, err);
    free(text);
    return st;
}

static bool stat_version(const char *path, int version, repo_version_t *v)
{
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
        return false;
    *v = (repo_version_t){.version = version, .dev = sb.st_dev, .ino = sb.st_ino,
                          .size = sb.st_size,
                          .mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec};
    snprintf(v->path, sizeof v->path, "%s", path);
    return true;
}

static int by_version(const void *a, const void *b)
{
    return ((const repo_version_t *)a)->version - ((const repo_version_t *)b)->version;
}

static bool policy_keeps(const repo_policy_t *p, int version)
{
    if (p->kind != REPO_POLICY_SPECIFIC)
        return true;
    for (int i = 0; i < p->n_specific; i++)
        if (p->specific[i] == version)
            return true;
    return false;
}

/* Every VERSION/model.safetensors of folder, ascending, then the policy. */
static rd_status_t read_versions(const char *folder, repo_model_t *m, rd_error_t *err)
{
    DIR *d = opendir(folder);
    if (!d)
        return rd_error_set(err, RD_ERR_IO, "%s: %s", folder, strerror(errno));
    repo_version_t all[64];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 64;) {
        int version = parse_version(e->d_name);
        char path[sizeof all[0].path];
        if ((size_t)snprintf(path, sizeof path, "%s/%s/model.safetensors", folder, e->d_name) >=
            sizeof path)
            continue;
        if (version && policy_keeps(&m->policy, version) && stat_version(path, version, &all[n]))
            n++;
    }
    closedir(d);
    qsort(all, (size_t)n, sizeof all[0], by_version);
    int first = 0;
    if (m->policy.kind == REPO_POLICY_LATEST && n > m->policy.latest)
        first = n - m->policy.latest;
    if (n - first > REPO_MAX_VERSIONS)
        first = n - REPO_MAX_VERSIONS;
    m->n_versions = n - first;
    memcpy(m->versions, all + first, (size_t)m->n_versions * sizeof all[0]);
    if (!m->n_versions)
        return rd_error_set(err, RD_ERR_ARG, "%s: no version folder with a model.safetensors%s",
                            folder, m->policy.kind == REPO_POLICY_SPECIFIC
                                        ? " among the version_policy's specific versions" : "");
    return RD_OK;
}

static void model_init(const config_t *base, const char *name, repo_model_t *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->cfg = *base;
    m->policy = (repo_policy_t){.kind = REPO_POLICY_LATEST, .latest = 1};
    m->instances = 1;
}

rd_status_t repo_read_model(const char *dir, const char *name, const config_t *base,
                            repo_model_t *out, rd_error_t *err)
{
    model_init(base, name, out);
    out->cfg.labels[0] = 0; /* the server's labels file is the one-model set-up's */
    char folder[sizeof out->versions[0].path];
    if ((size_t)snprintf(folder, sizeof folder, "%s/%s", dir, name) >= sizeof folder)
        return rd_error_set(err, RD_ERR_ARG, "%s/%s: path too long", dir, name);
    rd_status_t st = read_config(folder, out, err);
    if (st == RD_OK && out->cfg.labels[0] && out->cfg.labels[0] != '/') {
        char rel[sizeof out->cfg.labels];
        snprintf(rel, sizeof rel, "%s", out->cfg.labels);
        if ((size_t)snprintf(out->cfg.labels, sizeof out->cfg.labels, "%s/%s", folder, rel) >=
            sizeof out->cfg.labels)
            st = rd_error_set(err, RD_ERR_ARG, "%s/config.json: labels: path too long", folder);
    }
    return st == RD_OK ? read_versions(folder, out, err) : st;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

rd_status_t repo_list(const char *dir, char (*names)[REPO_NAME_MAX], int max, int *n,
                      rd_error_t *err)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return rd_error_set(err, RD_ERR_IO, "model_repository %s: %s", dir, strerror(errno));
    rd_status_t st = RD_OK;
    for (struct dirent *e; st == RD_OK && (e = readdir(d));) {
        char path[CONFIG_STR_MAX + REPO_NAME_MAX + 2];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        if (e->d_name[0] == '.' || stat(path, &sb) || !S_ISDIR(sb.st_mode))
            continue;
        if (strlen(e->d_name) >= REPO_NAME_MAX)
            st = rd_error_set(err, RD_ERR_ARG, "model_repository %s: folder name '%.40s...' is "
                              "too long", dir, e->d_name);
        else if (*n == max)
            st = rd_error_set(err, RD_ERR_LIMIT, "model_repository %s: more than %d models", dir,
                              max);
        else
            snprintf(names[(*n)++], REPO_NAME_MAX, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*n, REPO_NAME_MAX, by_name);
    return st;
}

rd_status_t repo_single(const config_t *base, repo_model_t *out, rd_error_t *err)
{
    model_init(base, base->model_name, out);
    (void)err; /* a missing file is engine_load's error to name */
    out->n_versions = 1;
    if (!stat_version(base->model, 1, &out->versions[0])) {
        out->versions[0] = (repo_version_t){.version = 1};
        snprintf(out->versions[0].path, sizeof out->versions[0].path, "%s", base->model);
    }
    return RD_OK;
}

int repo_same_file(const repo_version_t *a, const repo_version_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}
