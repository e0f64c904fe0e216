/* model_repo.h - reading a model repository in Triton's layout:
 *
 *     DIR/NAME/config.json                optional: the model's settings
 *     DIR/NAME/VERSION/model.safetensors  VERSION a positive integer
 *
 * A model's config.json holds the per-model keys of the server's config
 * (precision, int8_recheck, max_batch_size, max_queue_delay_us,
 * max_queue_length, input_size, resize, channel_order, scale, mean, std,
 * labels) plus "instances" (1 for now) and "version_policy", Triton's and
 * OVMS's: {"latest":{"num_versions":N}} (the default, N = 1), {"all":{}} or
 * {"specific":{"versions":[1,3]}}. Unknown keys and bad values are errors
 * that name the file and the key. The single `model: FILE` setting reads as a
 * repository of one model with one version (repo_single).
 *
 *     repo_model_t m;
 *     if (repo_read_model("models", "resnet18", &cfg, &m, &err) == RD_OK)
 *         for (int i = 0; i < m.n_versions; i++) load(m.versions[i].path);
 *
 * Pure functions on the file system; no state, thread-safe. */
#ifndef RESNETD_MODEL_REPO_H
#define RESNETD_MODEL_REPO_H

#include <stdint.h>

#include "config.h"
#include "resnetd/error.h"

#define REPO_MAX_VERSIONS 16
#define REPO_MAX_MODELS 16
#define REPO_NAME_MAX 128

typedef enum { REPO_POLICY_LATEST = 0, REPO_POLICY_ALL, REPO_POLICY_SPECIFIC } repo_policy_kind_t;

typedef struct {
    repo_policy_kind_t kind;
    int latest;                          /* LATEST: how many of the newest versions */
    int specific[REPO_MAX_VERSIONS];     /* SPECIFIC: these versions */
    int n_specific;
} repo_policy_t;

/* One version's file, and what identifies its content for poll mode: a file
 * replaced in place (new inode, size or mtime) is a new load. */
typedef struct {
    int version;
    char path[CONFIG_STR_MAX + 2 * REPO_NAME_MAX];
    uint64_t dev, ino;
    int64_t size, mtime_ns;
} repo_version_t;

typedef struct {
    char name[REPO_NAME_MAX];   /* "" in repo_single without model_name: the file's own */
    config_t cfg;               /* the server's config with config.json applied */
    repo_policy_t policy;
    int instances;
    repo_version_t versions[REPO_MAX_VERSIONS]; /* the policy's choice, ascending */
    int n_versions;
} repo_model_t;

/* Reads DIR/NAME: its config.json over base, and the versions its policy
 * keeps. RD_ERR_FORMAT / RD_ERR_ARG naming "DIR/NAME/config.json" and the
 * key; RD_ERR_IO when the folder cannot be read; RD_ERR_ARG when it has no
 * version folder with a model.safetensors (or none the policy keeps). */
rd_status_t repo_read_model(const char *dir, const char *name, const config_t *base,
                            repo_model_t *out, rd_error_t *err);

/* The model folders of DIR (names sorted; hidden entries and plain files
 * skipped) into names[0..*n). RD_ERR_IO naming DIR; RD_ERR_LIMIT past max. */
rd_status_t repo_list(const char *dir, char (*names)[REPO_NAME_MAX], int max, int *n,
                      rd_error_t *err);

/* The one-file set-up (model: FILE, model_name) as a repository model with
 * version 1. Does not fail: a missing file is engine_load's error. */
rd_status_t repo_single(const config_t *base, repo_model_t *out, rd_error_t *err);

/* True when a and b are the same file content (same inode, size, mtime). */
int repo_same_file(const repo_version_t *a, const repo_version_t *b);

/* Parses a config.json text (origin names it in errors) onto m's cfg, policy
 * and instances. For tests and repo_read_model. */
rd_status_t repo_parse_config(const char *text, size_t len, const char *origin,
                              repo_model_t *m, rd_error_t *err);

#endif
