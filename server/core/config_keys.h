/* config_keys.h - internal to config*.c: the table of configuration keys that
 * reading (config.c) and printing (config_print.c) both walk, so that a key
 * is added in one place. */
#ifndef RESNETD_CONFIG_KEYS_H
#define RESNETD_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum {
    K_INT,      /* int */
    K_I64,      /* int64_t */
    K_BOOL,     /* bool */
    K_STR,      /* char[size] */
    K_FLOAT,    /* float, >= min, finite */
    K_FLOAT3,   /* float[3] at off, bool "given" at off2 */
    K_SIZE2,    /* input_size: int h at off, int w at off2 */
    K_ORDER,    /* channel_order: char[4], "", "RGB" or "BGR" */
    K_LOGLEVEL, /* log_level_t */
    K_PRECISION, /* rd_precision_t */
    K_SECRET,   /* char[size] like K_STR, but config_to_json masks it */
} kind_t;

typedef struct {
    const char *key;
    kind_t kind;
    size_t off, off2, size;
    int64_t min, max;
    const char *metavar; /* for --help: --port N */
    const char *help;
    const char *def;     /* the default, as a flag would give it; NULL = zero/empty, or the
                            default of the component that owns the setting (the engine's,
                            the batcher's, the image decoder's: see config_default_params) */
} key_def_t;

extern const key_def_t config_keys[];
extern const size_t config_n_keys;

/* Sets key k from its text form (a flag's or an environment variable's). */
rd_status_t config_set_text(const key_def_t *k, const char *text, config_t *cfg, rd_error_t *err);

/* A key's environment variable (RESNETD_PORT) and flag (--max-batch-size). */
void config_env_name(const key_def_t *k, char *out, size_t size);
void config_flag_name(const key_def_t *k, char *out, size_t size);

/* The config_t member at offset off. */
static inline const void *config_cfield(const config_t *cfg, size_t off)
{
    return (const char *)cfg + off;
}

#endif
