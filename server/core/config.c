/* config.c - reading resnetd serve's configuration: the JSON file, --flags and
 * RESNETD_* variables, each value parsed and range-checked against its entry
 * in the key table (config_keys.c), then validated as a whole. Writing it
 * back out (JSON, --help, the README table) is config_print.c. */
#include "config.h"

#include "auth.h"
#include "batcher.h"
#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_keys.h"

static void *field(config_t *cfg, size_t off) { return (char *)cfg + off; }

static const key_def_t *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < config_n_keys; i++)
        if (strlen(config_keys[i].key) == len && !strncmp(config_keys[i].key, name, len))
            return &config_keys[i];
    return NULL;
}

/* ---- parsing text values (flags, environment, strings in the file) ---- */

static rd_status_t parse_i64(const key_def_t *k, const char *s, int64_t *out, rd_error_t *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || isspace((unsigned char)*s))
        return rd_error_set(err, RD_ERR_ARG, "%s: '%s' is not an integer", k->key, s);
    *out = v;
    return RD_OK;
}

static rd_status_t parse_float(const key_def_t *k, const char *s, float *out, rd_error_t *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (!*s || *end || errno || !isfinite(v) || fabs(v) > 1e30)
        return rd_error_set(err, RD_ERR_ARG, "%s: '%s' is not a finite number", k->key, s);
    *out = (float)v;
    return RD_OK;
}

static rd_status_t check_range(const key_def_t *k, int64_t v, rd_error_t *err)
{
    if (v < k->min || v > k->max)
        return rd_error_set(err, RD_ERR_ARG, "%s: %lld is out of range, expected %lld..%lld", k->key,
                            (long long)v, (long long)k->min, (long long)k->max);
    return RD_OK;
}

static rd_status_t set_int(const key_def_t *k, int64_t v, config_t *cfg, rd_error_t *err)
{
    rd_status_t s = check_range(k, v, err);
    if (s != RD_OK)
        return s;
    if (k->kind == K_INT)
        *(int *)field(cfg, k->off) = (int)v;
    else
        *(int64_t *)field(cfg, k->off) = v;
    return RD_OK;
}

static rd_status_t set_float(const key_def_t *k, float v, config_t *cfg, rd_error_t *err)
{
    if (!(v >= 0))
        return rd_error_set(err, RD_ERR_ARG, "%s: %g must be >= 0", k->key, v);
    if (!(v <= k->max))
        return rd_error_set(err, RD_ERR_ARG, "%s: %g must be <= %lld", k->key, v, (long long)k->max);
    *(float *)field(cfg, k->off) = v;
    return RD_OK;
}

static rd_status_t parse_bool(const key_def_t *k, const char *s, bool *out, rd_error_t *err)
{
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return *out = true, RD_OK;
        if (!strcasecmp(s, no[i]))
            return *out = false, RD_OK;
    }
    return rd_error_set(err, RD_ERR_ARG, "%s: '%s' is not a boolean (true/false/1/0/yes/no/on/off)",
                        k->key, s);
}

static rd_status_t set_str(const key_def_t *k, const char *s, config_t *cfg, rd_error_t *err)
{
    if (strlen(s) >= k->size)
        return rd_error_set(err, RD_ERR_ARG, "%s: value is %zu bytes, the limit is %zu", k->key,
                            strlen(s), k->size - 1);
    memcpy(field(cfg, k->off), s, strlen(s) + 1);
    return RD_OK;
}

static rd_status_t set_order(const key_def_t *k, const char *s, config_t *cfg, rd_error_t *err)
{
    if (*s && strcasecmp(s, "RGB") && strcasecmp(s, "BGR"))
        return rd_error_set(err, RD_ERR_ARG, "%s: '%s' must be RGB or BGR (or empty: from the model)",
                            k->key, s);
    char *dst = field(cfg, k->off);
    for (size_t i = 0; i < 4; i++) /* s is "" or 3 letters */
        dst[i] = *s ? (char)toupper((unsigned char)s[i]) : 0;
    return RD_OK;
}

static rd_status_t set_size2(const key_def_t *k, int64_t h, int64_t w, config_t *cfg,
                             rd_error_t *err)
{
    bool zero = h == 0 && w == 0;
    if (!zero && (check_range(k, h, err) != RD_OK || check_range(k, w, err) != RD_OK))
        return RD_ERR_ARG;
    *(int *)field(cfg, k->off) = (int)h;
    *(int *)field(cfg, k->off2) = (int)w;
    return RD_OK;
}

/* "224", "128x128" or "" (from the model) */
static rd_status_t parse_size2(const key_def_t *k, const char *s, config_t *cfg, rd_error_t *err)
{
    if (!*s)
        return set_size2(k, 0, 0, cfg, err);
    char *end;
    errno = 0;
    long long h = strtoll(s, &end, 10), w = h;
    if (end != s && (*end == 'x' || *end == 'X')) {
        const char *ws = end + 1;
        w = strtoll(ws, &end, 10);
        if (end == ws)
            end = (char *)s;
    }
    if (end == s || *end || errno || !isdigit((unsigned char)*s))
        return rd_error_set(err, RD_ERR_ARG, "%s: '%s' is not a size like 224 or 128x128", k->key, s);
    return set_size2(k, h, w, cfg, err);
}

/* "a,b,c", "[a,b,c]" or "" (from the model) */
static rd_status_t parse_float3(const key_def_t *k, const char *s, config_t *cfg, rd_error_t *err)
{
    bool *given = field(cfg, k->off2);
    float v[3];
    if (!*s) {
        *given = false;
        return RD_OK;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *p = buf + (buf[0] == '[');
    size_t n = strlen(p);
    if (n && p[n - 1] == ']' && buf[0] == '[')
        p[n - 1] = 0;
    char *save = NULL, *tok = strtok_r(p, ",", &save);
    int i = 0;
    for (; tok && i < 3; i++, tok = strtok_r(NULL, ",", &save))
        if (parse_float(k, tok, &v[i], err) != RD_OK)
            return RD_ERR_ARG;
    if (i != 3 || tok)
        return rd_error_set(err, RD_ERR_ARG, "%s: '%s' must be three numbers like 0.485,0.456,0.406",
                            k->key, s);
    memcpy(field(cfg, k->off), v, sizeof v);
    *given = true;
    return RD_OK;
}

rd_status_t config_set_text(const key_def_t *k, const char *s, config_t *cfg, rd_error_t *err)
{
    int64_t i = 0;
    float f = 0;
    switch (k->kind) {
    case K_INT:
    case K_I64:
        if (parse_i64(k, s, &i, err) != RD_OK)
            return RD_ERR_ARG;
        return set_int(k, i, cfg, err);
    case K_BOOL:
        return parse_bool(k, s, field(cfg, k->off), err);
    case K_STR:
    case K_SECRET:
        return set_str(k, s, cfg, err);
    case K_FLOAT:
        if (parse_float(k, s, &f, err) != RD_OK)
            return RD_ERR_ARG;
        return set_float(k, f, cfg, err);
    case K_FLOAT3:
        return parse_float3(k, s, cfg, err);
    case K_SIZE2:
        return parse_size2(k, s, cfg, err);
    case K_ORDER:
        return set_order(k, s, cfg, err);
    case K_LOGLEVEL:
        if (log_level_parse(s, field(cfg, k->off), err) != RD_OK)
            return rd_error_prefix(err, "%s", k->key);
        return RD_OK;
    case K_PRECISION: {
        int v = engine_precision_parse(s);
        if (v < 0)
            return rd_error_set(err, RD_ERR_ARG, "%s: '%s' is not fp32 or int8 or bf16 or auto", k->key, s);
        *(rd_precision_t *)field(cfg, k->off) = (rd_precision_t)v;
        return RD_OK;
    }
    }
    return rd_error_set(err, RD_ERR_INTERNAL, "%s: unknown key kind", k->key);
}

/* ---- the JSON file ---- */

static rd_status_t set_float3_json(const key_def_t *k, json_t *v, config_t *cfg, rd_error_t *err)
{
    float f[3];
    if (json_array_size(v) != 3)
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected an array of 3 numbers", k->key);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_number(e) || !isfinite(json_number_value(e)))
            return rd_error_set(err, RD_ERR_FORMAT, "%s[%zu]: expected a number", k->key, i);
        f[i] = (float)json_number_value(e);
    }
    memcpy(field(cfg, k->off), f, sizeof f);
    *(bool *)field(cfg, k->off2) = true;
    return RD_OK;
}

static rd_status_t set_from_json(const key_def_t *k, json_t *v, config_t *cfg, rd_error_t *err)
{
    if (json_is_string(v))
        return k->kind == K_BOOL
                   ? rd_error_set(err, RD_ERR_FORMAT, "%s: expected true or false", k->key)
                   : config_set_text(k, json_string_value(v), cfg, err);
    switch (k->kind) {
    case K_INT:
    case K_I64:
        if (json_is_integer(v))
            return set_int(k, json_integer_value(v), cfg, err);
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected an integer", k->key);
    case K_SIZE2:
        if (json_is_integer(v))
            return set_size2(k, json_integer_value(v), json_integer_value(v), cfg, err);
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected 224 or \"128x128\"", k->key);
    case K_BOOL:
        if (json_is_boolean(v))
            return *(bool *)field(cfg, k->off) = json_is_true(v), RD_OK;
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected true or false", k->key);
    case K_FLOAT:
        if (json_is_number(v) && isfinite(json_number_value(v)))
            return set_float(k, (float)json_number_value(v), cfg, err);
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected a number", k->key);
    case K_FLOAT3:
        return set_float3_json(k, v, cfg, err);
    default:
        return rd_error_set(err, RD_ERR_FORMAT, "%s: expected a string", k->key);
    }
}

rd_status_t config_set_json(const char *key, struct json_t *v, config_t *cfg, rd_error_t *err)
{
    const key_def_t *k = find_key(key, strlen(key));
    if (!k)
        return rd_error_set(err, RD_ERR_FORMAT, "unknown key '%s'", key);
    return set_from_json(k, v, cfg, err);
}

/* Sets every key of the parsed config object; origin names it in errors. */
static rd_status_t apply_object(json_t *root, const char *origin, config_t *cfg,
                                rd_error_t *err)
{
    if (!json_is_object(root))
        return rd_error_set(err, RD_ERR_FORMAT, "config %s: expected a JSON object", origin);
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        const key_def_t *k = find_key(name, strlen(name));
        rd_status_t s = k ? set_from_json(k, v, cfg, err)
                          : rd_error_set(err, RD_ERR_FORMAT,
                                         "unknown key '%s' (see resnetd serve --help)", name);
        if (s != RD_OK) {
            rd_error_prefix(err, "config %s", origin);
            return s;
        }
    }
    return RD_OK;
}

/* root is NULL when jansson failed: turn jerr into our error. */
static rd_status_t apply_parsed(json_t *root, const json_error_t *jerr, const char *origin,
                                config_t *cfg, rd_error_t *err)
{
    if (!root) {
        rd_status_t code = jerr->line < 0 || json_error_code(jerr) == json_error_cannot_open_file
                               ? RD_ERR_IO
                               : RD_ERR_FORMAT;
        if (jerr->line > 0)
            return rd_error_set(err, code, "config %s:%d: %s", origin, jerr->line, jerr->text);
        return rd_error_set(err, code, "config %s: %s", origin, jerr->text);
    }
    rd_status_t s = apply_object(root, origin, cfg, err);
    json_decref(root);
    return s;
}

/* The defaults: each key's own from its row of the key table, and the engine,
 * queue and image settings from the components that own them, so no value is
 * typed twice. */
config_t config_default_params(void)
{
    config_t c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < config_n_keys; i++) {
        rd_error_t err;
        if (config_keys[i].def)
            (void)config_set_text(&config_keys[i], config_keys[i].def, &c, &err);
    }
    engine_params_t ep = engine_default_params();
    c.inference_threads = ep.n_threads;
    c.input_h = ep.input_h;
    c.input_w = ep.input_w;
    c.precision = ep.precision;
    c.int8_recheck = ep.int8_recheck;
    batcher_params_t bp = batcher_default_params();
    c.max_batch_size = bp.max_batch_size;
    c.max_queue_delay_us = bp.max_queue_delay_us;
    c.max_queue_length = bp.max_queue_length;
    image_limits_t il = image_default_limits();
    c.max_pixels = (int64_t)il.max_pixels;
    c.max_jpeg_scans = il.max_scans;
    c.max_jpeg_scan_work = il.max_scan_work;
    c.decode_budget_ms = il.budget_ms;
    return c;
}

rd_status_t config_load_file(const char *path, config_t *cfg, rd_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    return apply_parsed(root, &jerr, path, cfg, err);
}

rd_status_t config_load_buffer(const char *text, size_t len, const char *origin, config_t *cfg,
                               rd_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    return apply_parsed(root, &jerr, origin, cfg, err);
}

/* ---- flags and environment ---- */

/* Finds the key for a flag name like "max-batch-size" (len bytes). */
static const key_def_t *find_flag(const char *name, size_t len)
{
    char key[64];
    if (len == 4 && !strncmp(name, "topk", 4))
        return find_key("topk_default", strlen("topk_default"));
    if (len >= sizeof key)
        return NULL;
    for (size_t i = 0; i < len; i++) /* --max_batch_size works too */
        key[i] = name[i] == '-' ? '_' : name[i];
    return find_key(key, len);
}

rd_status_t config_apply_args_rest(int argc, char **argv, config_t *cfg, char **rest,
                                   int *n_rest, rd_error_t *err)
{
    if (n_rest)
        *n_rest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--") || strncmp(a, "--", 2)) {
            if (!rest)
                return rd_error_set(err, RD_ERR_ARG, "unexpected argument '%s'", a);
            if (strcmp(a, "--"))
                rest[(*n_rest)++] = argv[i];
            else
                while (++i < argc)
                    rest[(*n_rest)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        bool is_config = len == 6 && !strncmp(name, "config", 6);
        const key_def_t *k = is_config ? NULL : find_flag(name, len);
        if (!k && !is_config)
            return rd_error_set(err, RD_ERR_ARG, "unknown option '%.*s' (see --help)", (int)len + 2, a);
        if (!value)
            return rd_error_set(err, RD_ERR_ARG, "option '%s' needs a value", a);
        if (!eq)
            i++;
        if (k && config_set_text(k, value, cfg, err) != RD_OK)
            return rd_error_prefix(err, "option --%.*s", (int)len, name);
    }
    return RD_OK;
}

rd_status_t config_apply_args(int argc, char **argv, config_t *cfg, rd_error_t *err)
{
    return config_apply_args_rest(argc, argv, cfg, NULL, NULL, err);
}


rd_status_t config_apply_env(config_t *cfg, rd_error_t *err)
{
    /* the name for the token; applied first so RESNETD_AUTH_TOKEN wins */
    const char *alias = getenv("RESNETD_TOKEN");
    if (alias && config_set_text(find_key("auth_token", 10), alias, cfg, err) != RD_OK)
        return rd_error_prefix(err, "environment RESNETD_TOKEN");
    for (size_t i = 0; i < config_n_keys; i++) {
        char name[80];
        config_env_name(&config_keys[i], name, sizeof name);
        const char *v = getenv(name);
        if (v && config_set_text(&config_keys[i], v, cfg, err) != RD_OK)
            return rd_error_prefix(err, "environment %s", name);
    }
    return RD_OK;
}

/* ---- validation and the whole sequence ---- */

static rd_status_t check_float3(const char *key, const float *v, bool positive, rd_error_t *err)
{
    for (int i = 0; i < 3; i++)
        if (!isfinite(v[i]) || (positive && !(v[i] > 0)))
            return rd_error_set(err, RD_ERR_ARG, "%s[%d]: %g must be %s", key, i, v[i],
                                positive ? "a finite number > 0" : "finite");
    return RD_OK;
}

rd_status_t config_validate(const config_t *cfg, rd_error_t *err)
{
    for (size_t i = 0; i < config_n_keys; i++) {
        const key_def_t *k = &config_keys[i];
        int64_t v = k->kind == K_INT ? *(const int *)config_cfield(cfg, k->off)
                  : k->kind == K_I64 ? *(const int64_t *)config_cfield(cfg, k->off) : k->min;
        if (check_range(k, v, err) != RD_OK)
            return RD_ERR_ARG;
    }
    if ((cfg->input_h == 0) != (cfg->input_w == 0) || cfg->input_h < 0 || cfg->input_w < 0 ||
        cfg->input_h > 8192 || cfg->input_w > 8192)
        return rd_error_set(err, RD_ERR_ARG, "input_size: %dx%d is not a valid size", cfg->input_h,
                            cfg->input_w);
    if (!(cfg->scale >= 0) || !isfinite(cfg->scale))
        return rd_error_set(err, RD_ERR_ARG, "scale: %g must be >= 0", cfg->scale);
    if ((cfg->has_mean && check_float3("mean", cfg->mean, false, err)) ||
        (cfg->has_std && check_float3("std", cfg->std, true, err)))
        return RD_ERR_ARG;
    if (cfg->channel_order[0] && strcmp(cfg->channel_order, "RGB") && strcmp(cfg->channel_order, "BGR"))
        return rd_error_set(err, RD_ERR_ARG, "channel_order: '%s' must be RGB or BGR", cfg->channel_order);
    if (!cfg->bind[0] || !cfg->model[0])
        return rd_error_set(err, RD_ERR_ARG, "%s: must not be empty", cfg->bind[0] ? "model" : "bind");
    if (auth_token_valid("auth_token", cfg->auth_token, err) != RD_OK)
        return RD_ERR_ARG;
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) /* half a TLS set-up must not fall back to HTTP */
        return rd_error_set(err, RD_ERR_ARG,
                            "%s is set but %s is empty: set both tls_cert and tls_key for HTTPS, "
                            "or neither for plain HTTP",
                            cfg->tls_cert[0] ? "tls_cert" : "tls_key",
                            cfg->tls_cert[0] ? "tls_key" : "tls_cert");
    if (strcmp(cfg->model_control_mode, "none") && strcmp(cfg->model_control_mode, "poll") &&
        strcmp(cfg->model_control_mode, "explicit"))
        return rd_error_set(err, RD_ERR_ARG, "model_control_mode: '%s' must be none, poll or explicit",
                            cfg->model_control_mode);
    if (strcmp(cfg->model_control_mode, "none") && !cfg->model_repository[0])
        return rd_error_set(err, RD_ERR_ARG, "model_control_mode %s needs model_repository",
                            cfg->model_control_mode);
    if ((unsigned)cfg->log_level > LOG_LEVEL_DEBUG)
        return rd_error_set(err, RD_ERR_ARG, "log_level: %d is not a level", (int)cfg->log_level);
    if (cfg->max_images_per_request > cfg->max_queue_length)
        return rd_error_set(err, RD_ERR_ARG,
                            "max_images_per_request (%d) exceeds max_queue_length (%d): such a "
                            "request could never be queued; lower max_images_per_request or raise "
                            "max_queue_length",
                            cfg->max_images_per_request, cfg->max_queue_length);
    return RD_OK;
}

/* The config file named by RESNETD_CONFIG, else by --config (env beats flags). */
static const char *config_path(int argc, char **argv)
{
    const char *env = getenv("RESNETD_CONFIG");
    if (env && *env)
        return env;
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9))
            return argv[i] + 9;
    }
    return NULL;
}

rd_status_t config_load_rest(int argc, char **argv, config_t *cfg, char **rest, int *n_rest,
                             rd_error_t *err)
{
    *cfg = config_default_params();
    const char *path = config_path(argc, argv);
    rd_status_t s;
    if (path && (s = config_load_file(path, cfg, err)) != RD_OK)
        return s;
    if ((s = config_apply_args_rest(argc, argv, cfg, rest, n_rest, err)) != RD_OK ||
        (s = config_apply_env(cfg, err)) != RD_OK)
        return s;
    return config_validate(cfg, err);
}

rd_status_t config_load(int argc, char **argv, config_t *cfg, rd_error_t *err)
{
    return config_load_rest(argc, argv, cfg, NULL, NULL, err);
}

engine_params_t config_engine_params(const config_t *cfg)
{
    engine_params_t p = engine_default_params();
    p.n_threads = cfg->inference_threads;
    p.input_h = cfg->input_h;
    p.input_w = cfg->input_w;
    p.labels_path = cfg->labels[0] ? cfg->labels : NULL;
    p.precision = cfg->precision;
    p.int8_recheck = cfg->int8_recheck; /* 0 = never, as in the engine */
    return p;
}

image_limits_t config_image_limits(const config_t *cfg)
{
    image_limits_t lim = image_default_limits();
    lim.max_pixels = cfg->max_pixels > 0 ? (uint64_t)cfg->max_pixels : 0;
    lim.max_scans = cfg->max_jpeg_scans;
    lim.max_scan_work = cfg->max_jpeg_scan_work;
    lim.budget_ms = cfg->decode_budget_ms;
    lim.formats = IMAGE_FORMAT_BIT(IMAGE_FORMAT_JPEG) |
                  (cfg->accept_png ? IMAGE_FORMAT_BIT(IMAGE_FORMAT_PNG) : 0) |
                  (cfg->accept_webp ? IMAGE_FORMAT_BIT(IMAGE_FORMAT_WEBP) : 0);
    return lim;
}

void config_apply_preproc(const config_t *cfg, model_preproc_t *pp)
{
    if (cfg->resize)
        pp->resize = cfg->resize;
    if (cfg->channel_order[0])
        pp->channel_order = !strcmp(cfg->channel_order, "BGR") ? MODEL_BGR : MODEL_RGB;
    if (cfg->scale > 0)
        pp->scale = cfg->scale;
    if (cfg->has_mean)
        memcpy(pp->mean, cfg->mean, sizeof pp->mean);
    if (cfg->has_std)
        memcpy(pp->std, cfg->std, sizeof pp->std);
}
