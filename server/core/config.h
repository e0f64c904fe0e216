/* config.h - resnetd serve's configuration: one table of keys drives the JSON
 * config file, the command-line flags, the RESNETD_* environment variables and
 * the --help listing, so their names never drift apart. Key "max_batch_size"
 * is "max_batch_size" in the file, --max-batch-size on the command line and
 * RESNETD_MAX_BATCH_SIZE in the environment.
 *
 * Precedence, lowest first: built-in defaults (config_default_params), the
 * file given by --config FILE or RESNETD_CONFIG (no file is read without one),
 * flags, environment.
 * config_load does the whole sequence and validates:
 *
 *     config_t cfg; rd_error_t err;
 *     if (config_load(argc, argv, &cfg, &err) != RD_OK) {
 *         fprintf(stderr, "resnetd serve: %s\n", err.msg); return 2;
 *     }
 *
 * A config_t is a plain value (fixed-size strings, no pointers to free), so it
 * can be copied and read from any thread once loaded. Nothing here is global. */
#ifndef RESNETD_CONFIG_H
#define RESNETD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "image.h"
#include "log.h"
#include "resnetd/engine.h"
#include "resnetd/error.h"
#include "resnetd/model.h"

#define CONFIG_STR_MAX 1024 /* longest string value + 1; longer values are an error */

typedef struct {
    /* Network */
    int port;                      /* TCP port, 0..65535; 0 = any free port (the server logs it); default 8080 */
    char bind[64];                 /* IPv4/IPv6 address to listen on; default "127.0.0.1" */
    int grpc_port;                 /* KServe v2 gRPC (h2c) port on bind; 0 = off (default), -1 = any free port */
    int grpc_max_streams;          /* concurrent gRPC calls per connection (SETTINGS); default 32 */
    int grpc_max_connections;      /* concurrent gRPC connections (a thread each); default 16 */
    int http_threads;              /* libmicrohttpd worker threads, >= 1; default 2 */
    int decode_threads;            /* decode pool threads; 0 = CPUs (sched_getaffinity) + 1 */
    int max_decodes_per_request;   /* one request's images decoding at once; 0 = the CPU count */
    int inference_threads;         /* oneDNN/OpenMP threads of the one inference worker; 0 = all cores
                                      (default: engine_default_params, as for the next three) */
    /* Model */
    char model[CONFIG_STR_MAX];    /* safetensors model path; default "models/resnet50.safetensors" */
    char model_name[128];          /* name in responses and KServe URLs; "" = the model's own name */
    char labels[CONFIG_STR_MAX];   /* labels file (JSON array or one per line); "" = from the model */
    char model_repository[CONFIG_STR_MAX]; /* DIR/NAME/VERSION/model.safetensors; "" = serve `model` */
    char default_model[128];       /* the model of URLs that name none; "" = the only (or first) one */
    char model_control_mode[16];   /* "none" (default), "poll" or "explicit" (see model_loader.h) */
    int repository_poll_s;         /* poll mode: seconds between rescans; default 5 */
    int max_models_memory_mb;      /* loaded versions' memory together; 0 = no limit (default) */
    rd_precision_t precision;      /* fp32 (default), int8 (needs a calibrated model), bf16 or auto */
    float int8_recheck;            /* int8/bf16: FP32 rerun margin, in logit error bounds; 0 = never;
                                      default ENGINE_RECHECK_DEFAULT (2) */
    /* Preprocessing overrides; 0 / empty = what the model's metadata says */
    int input_h, input_w;          /* key input_size: "224" or "HxW" (pixels); 0 = from the model */
    int resize;                    /* shorter side before the center crop, pixels; 0 = from the model */
    char channel_order[4];         /* "RGB" or "BGR"; "" = from the model */
    float scale;                   /* pixel multiplier; 0 = from the model */
    bool has_mean, has_std;        /* whether mean / std were given */
    float mean[3];                 /* per channel, in channel order */
    float std[3];                  /* per channel, each > 0 */
    /* Batching */
    int max_batch_size;            /* images per engine run, 1..1024; default 8 */
    int64_t max_queue_delay_us;    /* how long the first queued image waits for company, µs; 0 = none; default 2000 */
    int max_queue_length;          /* images waiting before 503, >= 1; default 64 */
    int64_t request_timeout_ms;    /* deadline from request start, counting time queued (504 after); default 10000 */
    /* Limits */
    int64_t max_buffered_body_bytes; /* body bytes buffered by all connections (503 beyond); default 268435456 (256 MiB) */
    int64_t max_body_bytes;        /* request body bytes (413 beyond); default 16777216 (16 MiB) */
    int64_t max_pixels;            /* width*height per image, checked from the JPEG header (413 beyond); default 40000000 */
    bool accept_png;               /* decode PNG bodies (recognised by their bytes); default true */
    bool accept_webp;              /* decode WebP bodies; default true */
    int max_images_per_request;    /* images in one request (413 beyond), <= max_queue_length; default 32 */
    int max_jpeg_scans;            /* SOS markers (scans) per JPEG (413 beyond); default 64 */
    int max_jpeg_scan_work;        /* blocks coded by all scans of a JPEG, in passes over the
                                      image (413 beyond); default 16 */
    int64_t decode_budget_ms;      /* wall time of one image's decode, ms (413 beyond); default 3000 */
    int max_connections;           /* concurrent connections (one more is answered 503 and closed); default 256 */
    int connection_timeout_s;      /* idle connection timeout, seconds; 0 = none; default 30 */
    int header_timeout_s;          /* a connection's first request head within it of accept; 0 = none; default 10 */
    int body_timeout_s;            /* a request body within it of its head; 0 = none; default 60 */
    bool ignore_client_abort;      /* run and answer a request whose client's socket reads as
                                      closed (a half-close looks like a hang-up); default false */
    int drain_timeout_s;           /* on SIGTERM/SIGINT, how long to finish accepted requests; default 30 */
    int retry_after_s;             /* Retry-After header value on 503/429, seconds; default 1 */
    /* Responses and logging */
    int topk_default;              /* top-k when the request gives no topk, >= 1 (capped at the class count); default 5 */
    log_level_t log_level;         /* "error" | "warn" | "info" | "debug"; default "info" */
    bool access_log;               /* one JSON line per request on stderr; default true */
    /* Security */
    char auth_token[256];          /* bearer token for every route but /healthz and /readyz;
                                      "" = no auth (default). Never printed: config_to_json
                                      masks it. Env RESNETD_TOKEN is an alias (see
                                      config_apply_env). Size is AUTH_TOKEN_MAX (auth.h). */
    char tls_cert[CONFIG_STR_MAX]; /* PEM certificate file (leaf first, then any chain) to serve
                                      HTTPS with; "" = plain HTTP (default). Set both or neither
                                      of tls_cert and tls_key (config_validate). */
    char tls_key[CONFIG_STR_MAX];  /* PEM private key of tls_cert, unencrypted; "" = plain HTTP.
                                      The path only: http_create reads the file. */
} config_t;

/* The built-in defaults listed above. */
config_t config_default_params(void);

/* Reads the JSON object in the file at path and sets every key it contains.
 * Values: numbers for numeric keys (a string of digits is accepted too),
 * strings for text keys, true/false for booleans, [a,b,c] for mean and std,
 * 224 or "128x128" for input_size. Unknown keys, wrong types and out-of-range
 * values fail with RD_ERR_FORMAT / RD_ERR_ARG naming the file and the key;
 * a missing file fails with RD_ERR_IO. cfg is partly updated on failure. */
rd_status_t config_load_file(const char *path, config_t *cfg, rd_error_t *err);

/* config_load_file on text[0..len) already in memory; origin names it in
 * error messages (a path, "RESNETD_CONFIG", ...). Same rules and failures. */
rd_status_t config_load_buffer(const char *text, size_t len, const char *origin, config_t *cfg,
                               rd_error_t *err);

/* Sets one key from a parsed JSON value, as the config file does (a model's
 * config.json reuses the same rules). RD_ERR_FORMAT for an unknown key or a
 * wrong type, RD_ERR_ARG out of range; the message names the key. */
struct json_t;
rd_status_t config_set_json(const char *key, struct json_t *v, config_t *cfg, rd_error_t *err);

/* Applies flags from argv[1..argc-1]: "--key-name VALUE" or "--key-name=VALUE"
 * for every key (underscores become dashes), plus the alias --topk for
 * --topk-default. "--config FILE" is skipped here (config_load reads it).
 * Booleans take true/false/1/0/yes/no/on/off. mean/std take "a,b,c" or
 * "[a,b,c]". Unknown options and positional arguments fail with RD_ERR_ARG
 * (callers handle --help before calling). */
rd_status_t config_apply_args(int argc, char **argv, config_t *cfg, rd_error_t *err);

/* Like config_apply_args, but arguments that do not start with "--" are
 * collected in order into rest[0..*n_rest-1] (rest must have room for argc
 * pointers; they point into argv) instead of failing: for
 * `resnetd classify [OPTIONS] IMAGE...`. A lone "--" ends the options: every
 * argument after it is positional. */
rd_status_t config_apply_args_rest(int argc, char **argv, config_t *cfg, char **rest,
                                   int *n_rest, rd_error_t *err);

/* Applies every RESNETD_<KEY> variable that is set (RESNETD_PORT,
 * RESNETD_MAX_BATCH_SIZE, ...), parsed as the flags are. RESNETD_TOKEN is an
 * alias of RESNETD_AUTH_TOKEN; when both are set, RESNETD_AUTH_TOKEN wins. An empty value
 * sets an empty string for text keys, means "from the model" for input_size,
 * channel_order, mean and std, and is an error for numbers and booleans.
 * (RESNETD_CONFIG, read by config_load, names the config file.) */
rd_status_t config_apply_env(config_t *cfg, rd_error_t *err);

/* Checks ranges and consistency; the message names the key, its value and
 * what is allowed ("max_batch_size: 0 is out of range, expected 1..1024"). */
rd_status_t config_validate(const config_t *cfg, rd_error_t *err);

/* The whole sequence: defaults, --config FILE if given, flags, environment,
 * validation. On failure err says which step and key. */
rd_status_t config_load(int argc, char **argv, config_t *cfg, rd_error_t *err);

/* Same, collecting positional arguments as config_apply_args_rest does. */
rd_status_t config_load_rest(int argc, char **argv, config_t *cfg, char **rest, int *n_rest,
                             rd_error_t *err);

/* Prints one line per key for --help: flag, environment variable, default
 * and meaning, from the same table. */
void config_print_keys(FILE *out);

/* The same listing as a Markdown table (key, default, flag, environment,
 * meaning): README.md's configuration table is this output, which
 * tests/unit/test_config.c checks, so the documentation comes from the table too. */
void config_print_keys_markdown(FILE *out);

/* Writes cfg as a JSON object with every key (the format config_load_file
 * reads): what the defaults, a file, flags and the environment add up to.
 * A set auth_token is written as "<redacted>", which config_validate
 * rejects, so a printed config never leaks the token nor silently loads
 * with a guessable one.
 * Returns a string the caller frees, or NULL when out of memory. */
char *config_to_json(const config_t *cfg);

/* engine_load parameters from the config: inference_threads, input_size,
 * labels, precision and int8_recheck. labels_path points into cfg (NULL when empty), so cfg must outlive
 * the engine_load call. */
engine_params_t config_engine_params(const config_t *cfg);

/* The decoder's limits from the config: max_pixels, max_jpeg_scans,
 * max_jpeg_scan_work, decode_budget_ms and the formats (accept_png,
 * accept_webp); no stop hook. What the server and `resnetd classify` both
 * decode with. */
image_limits_t config_image_limits(const config_t *cfg);

/* Applies the preprocessing overrides (resize, channel_order, scale, mean,
 * std; the input size is the engine's business) onto the model's values. */
void config_apply_preproc(const config_t *cfg, model_preproc_t *pp);

#endif
