/* model_metrics.c - the per-model series on /metrics (see model_metrics.h). */
#include "model_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} buf_t;

static void put(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (int tries = 0; tries < 2 && !b->failed; tries++) {
        va_start(ap, fmt);
        int n = vsnprintf(b->text + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *p = realloc(b->text, cap);
        if (!p)
            b->failed = true;
        else
            b->text = p, b->cap = cap;
    }
}

typedef enum {
    SUCCESS, FAIL, BATCHES, QUEUE_S, INFER_S, RECHECKED, DEPTH, LOAD_S, WARM_S, MEMORY
} kind_t;

static const struct {
    const char *name, *type, *help;
} series[] = {
    [SUCCESS] = {"resnetd_model_images_total", "counter",
                 "Images of this model version, by outcome."},
    [FAIL] = {NULL, NULL, NULL}, /* the same family, outcome="fail" */
    [BATCHES] = {"resnetd_model_batches_total", "counter", "Engine runs of this model version."},
    [QUEUE_S] = {"resnetd_model_queue_seconds_total", "counter",
                 "Seconds its images waited in its queue, summed."},
    [INFER_S] = {"resnetd_model_inference_seconds_total", "counter",
                 "Seconds of engine_run of its batches, summed."},
    [RECHECKED] = {"resnetd_model_rechecked_total", "counter",
                   "Images rerun in FP32 (int8/bf16 near-ties)."},
    [DEPTH] = {"resnetd_model_queue_depth", "gauge", "Images waiting in its queue."},
    [LOAD_S] = {"resnetd_model_version_load_seconds", "gauge", "How long its engine_load took."},
    [WARM_S] = {"resnetd_model_version_warmup_seconds", "gauge",
                "Its warm-up runs before it served."},
    [MEMORY] = {"resnetd_model_version_memory_bytes", "gauge",
                "Resident memory its load and warm-up added (an estimate)."},
};

static double value(model_stats_t *s, kind_t k)
{
    switch (k) {
    case SUCCESS: return (double)atomic_load(&s->success);
    case FAIL: return (double)atomic_load(&s->fail);
    case BATCHES: return (double)atomic_load(&s->batches);
    case QUEUE_S: return (double)atomic_load(&s->queue_ns) / 1e9;
    case INFER_S: return (double)atomic_load(&s->compute_ns) / 1e9;
    case RECHECKED: return (double)atomic_load(&s->rechecked);
    case DEPTH: return (double)atomic_load(&s->queue_depth);
    case LOAD_S: return (double)atomic_load(&s->load_ns) / 1e9;
    case WARM_S: return (double)atomic_load(&s->warmup_ns) / 1e9;
    default: return (double)atomic_load(&s->memory_bytes);
    }
}

rd_status_t model_metrics_render(registry_t *r, char **out, size_t *len, rd_error_t *err)
{
    served_model_t *models[REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS];
    int n = registry_snapshot(r, models, REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS);
    buf_t b = {.text = *out, .len = *len, .cap = *len + 1};
    for (kind_t k = SUCCESS; k <= MEMORY && n; k++) {
        const char *name = series[k == FAIL ? SUCCESS : k].name;
        if (k != FAIL)
            put(&b, "# HELP %s %s\n# TYPE %s %s\n", name, series[k].help, name, series[k].type);
        for (int i = 0; i < n; i++) {
            /* model names are folder names or checked model names: no quotes or newlines */
            put(&b, "%s{model=\"%s\",version=\"%d\"%s} %.9g\n", name, served_model_name(models[i]),
                served_model_version(models[i]),
                k == SUCCESS ? ",outcome=\"success\"" : k == FAIL ? ",outcome=\"fail\"" : "",
                value(served_model_stats(models[i]), k));
        }
    }
    for (int i = 0; i < n; i++)
        served_model_unref(models[i]);
    if (b.failed) {
        *out = b.text; /* realloc kept the old block valid */
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory rendering the model metrics");
    }
    *out = b.text;
    *len = b.len;
    return RD_OK;
}
