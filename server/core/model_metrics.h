/* model_metrics.h - the per-model Prometheus series: every published model
 * version's counters (model_stats.h) with labels model and version, appended
 * after the totals of metrics.c on /metrics:
 *   resnetd_model_images_total{model,version,outcome="success"|"fail"}
 *   resnetd_model_batches_total, resnetd_model_queue_seconds_total,
 *   resnetd_model_inference_seconds_total, resnetd_model_rechecked_total,
 *   resnetd_model_queue_depth, resnetd_model_version_load_seconds,
 *   resnetd_model_version_warmup_seconds, resnetd_model_version_memory_bytes
 *   (all {model,version})
 * A version that leaves the registry leaves these series with it. */
#ifndef RESNETD_MODEL_METRICS_H
#define RESNETD_MODEL_METRICS_H

#include <stddef.h>

#include "registry.h"
#include "resnetd/error.h"

/* Appends the series of every version in r to the malloc'd text *out of
 * *len bytes (reallocating it). RD_ERR_NOMEM leaves *out as it was.
 * Thread-safe (takes references through registry_snapshot). */
rd_status_t model_metrics_render(registry_t *r, char **out, size_t *len, rd_error_t *err);

#endif
