/* config_print.c - writing a configuration out: as JSON (config_to_json,
 * secrets masked), as --help text and as the README's markdown table, all
 * from the key table (config_keys.c). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"

static json_t *value_json(const key_def_t *k, const config_t *cfg)
{
    const void *p = config_cfield(cfg, k->off);
    char buf[32];
    switch (k->kind) {
    case K_INT: return json_integer(*(const int *)p);
    case K_I64: return json_integer(*(const int64_t *)p);
    case K_BOOL: return json_boolean(*(const bool *)p);
    case K_STR:
    case K_ORDER: return json_string(p);
    case K_FLOAT: return json_real(*(const float *)p);
    case K_LOGLEVEL: return json_string(log_level_name(*(const log_level_t *)p));
    case K_PRECISION: return json_string(engine_precision_name(*(const rd_precision_t *)p));
    case K_SECRET: return json_string(*(const char *)p ? "<redacted>" : "");
    case K_SIZE2:
        if (cfg->input_h == cfg->input_w)
            return json_integer(cfg->input_h);
        snprintf(buf, sizeof buf, "%dx%d", cfg->input_h, cfg->input_w);
        return json_string(buf);
    case K_FLOAT3:
        if (!*(const bool *)config_cfield(cfg, k->off2))
            return json_string("");
        const float *f = p;
        return json_pack("[fff]", (double)f[0], (double)f[1], (double)f[2]);
    }
    return json_null();
}

char *config_to_json(const config_t *cfg)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < config_n_keys; i++)
        if (json_object_set_new(o, config_keys[i].key, value_json(&config_keys[i], cfg))) {
            json_decref(o);
            return NULL;
        }
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(o);
    return s;
}

/* The default of key k as text: 8080, "127.0.0.1", (from the model). */
static void default_text(const key_def_t *k, char *out, size_t size)
{
    config_t d = config_default_params();
    json_t *v = value_json(k, &d);
    bool zero = json_is_string(v) ? !*json_string_value(v) : json_number_value(v) == 0;
    bool model_kind = k->kind == K_SIZE2 || k->kind == K_FLOAT || k->kind == K_FLOAT3 ||
                      k->kind == K_ORDER || !strcmp(k->key, "resize");
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(7));
    if (zero && model_kind)
        snprintf(out, size, "(from the model)");
    else if (json_is_real(v)) /* 3, not jansson's 3.0 */
        snprintf(out, size, "%g", json_real_value(v));
    else
        snprintf(out, size, "%s", s ? s : "?");
    free(s);
    json_decref(v);
}

void config_print_keys(FILE *out)
{
    fprintf(out, "  %-30s %s\n  %-30s %s\n", "--config FILE", "env RESNETD_CONFIG",
                 "", "JSON config file; flags override it and RESNETD_* variables override flags");
    for (size_t i = 0; i < config_n_keys; i++) {
        char flag[64], env[80], def[64], left[96];
        config_flag_name(&config_keys[i], flag, sizeof flag);
        config_env_name(&config_keys[i], env, sizeof env);
        default_text(&config_keys[i], def, sizeof def);
        snprintf(left, sizeof left, "%s %s", flag, config_keys[i].metavar);
        fprintf(out, "  %-30s env %s, default %s\n  %-30s %s\n", left, env, def, "", config_keys[i].help);
    }
    fprintf(out, "  %-30s %s\n", "--topk K", "same as --topk-default");
}

void config_print_keys_markdown(FILE *out)
{
    fprintf(out, "| key | default | flag | environment | meaning |\n|---|---|---|---|---|\n"
                 "| | | `--config FILE` | `RESNETD_CONFIG` | the JSON config file to read first |\n");
    for (size_t i = 0; i < config_n_keys; i++) {
        char flag[64], env[80], def[64], metavar[32];
        config_flag_name(&config_keys[i], flag, sizeof flag);
        config_env_name(&config_keys[i], env, sizeof env);
        default_text(&config_keys[i], def, sizeof def);
        size_t n = 0; /* a '|' would end the table cell: GFM wants it escaped */
        for (const char *p = config_keys[i].metavar; *p && n + 2 < sizeof metavar; p++) {
            if (*p == '|')
                metavar[n++] = '\\';
            metavar[n++] = *p;
        }
        metavar[n] = 0;
        bool quote = def[0] != '('; /* "(from the model)" is words, not a value */
        fprintf(out, "| `%s` | %s%s%s | `%s %s` | `%s` | %s |\n", config_keys[i].key,
                quote ? "`" : "", def, quote ? "`" : "", flag, metavar, env, config_keys[i].help);
    }
}
