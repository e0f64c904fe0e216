/* metrics.h - the server's Prometheus metrics registry (text format 0.0.4).
 * A fixed set of metrics, so the registry is a few arrays of atomics and
 * recording a value never allocates or locks:
 *   counters   resnetd_http_requests_total{endpoint,code}, resnetd_images_classified_total,
 *              resnetd_queue_dropped_total{reason}, resnetd_connections_refused_total,
 *              resnetd_int8_rechecked_total, resnetd_bf16_rechecked_total,
 *              resnetd_cpu_seconds_total{part}
 *   histograms resnetd_request_duration_seconds, resnetd_decode_duration_seconds,
 *              resnetd_queue_duration_seconds, resnetd_inference_duration_seconds,
 *              resnetd_batch_size, resnetd_request_wait_seconds, resnetd_request_cpu_seconds
 *   gauges     resnetd_queue_depth, resnetd_inflight_requests, resnetd_model_load_seconds,
 *              resnetd_model_warmup_seconds,
 *              resnetd_ready, resnetd_build_info{version},
 *              resnetd_model_info{model,arch,precision} (once the model is loaded),
 *              resnetd_cpu_info{isa} (once set)
 * There is no global registry: main creates a metrics_t and passes it to the
 * batcher and the HTTP routes. Every function accepts metrics == NULL and then
 * does nothing, so modules and tests can run without one.
 *
 * THREADS: every counter, bucket, sum and gauge is a C11 atomic updated with
 * relaxed ordering; any thread may record at any time without locks.
 * metrics_render reads them one by one, so a scrape taken during updates may
 * see a histogram whose _count is a few observations ahead of or behind its
 * _sum (Prometheus tolerates that); each value on its own is exact. */
#ifndef RESNETD_METRICS_H
#define RESNETD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

typedef struct metrics metrics_t;

/* The routes, as the endpoint="..." label. Path parameters are not labels
 * (a model name in the label would make the series count unbounded). */
typedef enum {
    METRICS_EP_CLASSIFY = 0,     /* "/classify" */
    METRICS_EP_V2_INFER,         /* "/v2/models/{name}/infer" */
    METRICS_EP_V2_MODEL,         /* "/v2/models/{name}" */
    METRICS_EP_V2_MODEL_READY,   /* "/v2/models/{name}/ready" */
    METRICS_EP_V2_SERVER,        /* "/v2" */
    METRICS_EP_V2_LIVE,          /* "/v2/health/live" */
    METRICS_EP_V2_READY,         /* "/v2/health/ready" */
    METRICS_EP_HEALTHZ,          /* "/healthz" */
    METRICS_EP_READYZ,           /* "/readyz" */
    METRICS_EP_METRICS,          /* "/metrics" */
    METRICS_EP_TS_PREDICT,       /* "/predictions/{name}" (TorchServe) */
    METRICS_EP_TS_PING,          /* "/ping" (TorchServe) */
    METRICS_EP_TF_PREDICT,       /* "/v1/models/{name}:predict" (TF Serving) */
    METRICS_EP_TF_STATUS,        /* "/v1/models/{name}" (TF Serving) */
    METRICS_EP_UI,               /* "/" and "/ui/{file}" (the page) */
    METRICS_EP_REPOSITORY,       /* "/v2/repository/..." (index, load, unload) */
    METRICS_EP_OTHER,            /* "other": anything unrouted (404s) */
    METRICS_N_ENDPOINTS
} metrics_endpoint_t;

typedef enum {
    METRICS_H_REQUEST = 0, /* resnetd_request_duration_seconds: accept (a connection's first
                              request; later ones: request line read) to response queued */
    METRICS_H_DECODE,      /* resnetd_decode_duration_seconds: per image, decode + preprocess */
    METRICS_H_QUEUE,       /* resnetd_queue_duration_seconds: per image, enqueue to batch start
                              (or to its drop, for expired/cancelled images) */
    METRICS_H_INFERENCE,   /* resnetd_inference_duration_seconds: per batch, engine_run */
    METRICS_H_BATCH_SIZE,  /* resnetd_batch_size: images per engine_run */
    METRICS_H_WAIT,        /* resnetd_request_wait_seconds: accept to an HTTP thread's first look */
    METRICS_H_REQUEST_CPU, /* resnetd_request_cpu_seconds: server CPU time spent for a request */
    METRICS_N_HISTOGRAMS
} metrics_histogram_t;

typedef enum {
    METRICS_G_QUEUE_DEPTH = 0, /* resnetd_queue_depth: images waiting in the queue */
    METRICS_G_INFLIGHT,        /* resnetd_inflight_requests: HTTP requests being handled */
    METRICS_G_MODEL_LOAD,      /* resnetd_model_load_seconds: how long engine_load took */
    METRICS_G_READY,           /* resnetd_ready: 1 when /readyz answers 200, else 0 */
    METRICS_G_MODEL_WARMUP,    /* resnetd_model_warmup_seconds: the warm-up runs before ready */
    METRICS_N_GAUGES
} metrics_gauge_t;

/* Why an image was dropped without running it (queued, or being decoded). */
typedef enum {
    METRICS_DROP_DEADLINE = 0, /* reason="deadline": request_timeout_ms passed (queued or decoding) */
    METRICS_DROP_CANCELLED,    /* reason="cancelled": the client went away */
    METRICS_DROP_SHUTDOWN,     /* reason="shutdown": still queued when the drain timed out */
    METRICS_N_DROP_REASONS
} metrics_drop_t;

/* Where a request's server CPU time went (resnetd_cpu_seconds_total{part}). */
typedef enum {
    METRICS_CPU_HTTP = 0,  /* part="http": its HTTP thread's callbacks (parse, route, answer) */
    METRICS_CPU_DECODE,    /* part="decode": its images' decode + preprocess (decode pool) */
    METRICS_CPU_INFERENCE, /* part="inference": its images' shares of their batches' CPU */
    METRICS_N_CPU_PARTS
} metrics_cpu_part_t;

/* Creates a registry with every value 0. version becomes the label of
 * resnetd_build_info (copied; NULL = RESNETD_VERSION if defined, else "unknown").
 * Returns RD_ERR_NOMEM on allocation failure. Free with metrics_destroy. */
rd_status_t metrics_create(const char *version, metrics_t **out, rd_error_t *err);

/* Sets resnetd_model_info's labels, which appears from then on. The first
 * call wins; later ones are ignored. Call from one thread. */
void metrics_set_model(metrics_t *m, const char *name, const char *arch, const char *precision);

/* Sets resnetd_cpu_info's isa label (engine_isa_name), likewise. */
void metrics_set_isa(metrics_t *m, const char *isa);

/* Frees the registry. NULL is a no-op. No other thread may still use it. */
void metrics_destroy(metrics_t *m);

/* Adds 1 to resnetd_http_requests_total{endpoint,code}. A code outside
 * 100..599 is counted as code="000" (a correct server never sends one); an
 * endpoint out of range counts as METRICS_EP_OTHER. Thread-safe, lock-free. */
void metrics_count_request(metrics_t *m, metrics_endpoint_t endpoint, int code);

/* Adds n to resnetd_images_classified_total (images that got logits).
 * The batcher calls this; the HTTP side must not count them again. */
void metrics_count_images(metrics_t *m, uint64_t n);

/* Adds n to resnetd_queue_dropped_total{reason}. The batcher calls this, and
 * infer_job for an image stopped before or while decoding. */
void metrics_count_dropped(metrics_t *m, metrics_drop_t reason, uint64_t n);

/* Adds n to resnetd_bf16_rechecked_total when the model set runs in bf16,
 * else to resnetd_int8_rechecked_total. The batcher calls this. */
void metrics_count_rechecked(metrics_t *m, uint64_t n);

/* Adds seconds to resnetd_cpu_seconds_total{part}. Thread-safe, lock-free. */
void metrics_add_cpu(metrics_t *m, metrics_cpu_part_t part, double seconds);

/* Adds 1 to resnetd_connections_refused_total: a connection accepted over
 * max_connections, to be answered 503 and closed. The HTTP daemon calls this. */
void metrics_count_connection_refused(metrics_t *m);

/* Records one observation: seconds for the duration histograms, images for
 * METRICS_H_BATCH_SIZE. NaN is ignored. Thread-safe, lock-free. */
void metrics_observe(metrics_t *m, metrics_histogram_t h, double value);

/* Sets or adds to a gauge. Thread-safe, lock-free. */
void metrics_gauge_set(metrics_t *m, metrics_gauge_t g, double value);
void metrics_gauge_add(metrics_t *m, metrics_gauge_t g, double delta);

/* Current values, for tests and for /readyz-style checks. 0 when m is NULL. */
double metrics_gauge_get(const metrics_t *m, metrics_gauge_t g);
uint64_t metrics_request_count(const metrics_t *m, metrics_endpoint_t endpoint, int code);
uint64_t metrics_histogram_count(const metrics_t *m, metrics_histogram_t h);
uint64_t metrics_connections_refused(const metrics_t *m);

/* Label values and metric names, for logs and tests. Never NULL. */
const char *metrics_endpoint_name(metrics_endpoint_t endpoint);

/* Renders every metric in Prometheus text format 0.0.4 (serve it with
 * Content-Type "text/plain; version=0.0.4; charset=utf-8"): HELP and TYPE
 * lines, histograms as cumulative _bucket{le=...} series ending in le="+Inf",
 * then _sum and _count. Request counters appear only for (endpoint, code)
 * pairs seen at least once. *out is a NUL-terminated string the caller frees
 * with free(); *len (if not NULL) is its strlen. Fails only with RD_ERR_NOMEM
 * (or RD_ERR_ARG when m or out is NULL). Thread-safe. */
rd_status_t metrics_render(const metrics_t *m, char **out, size_t *len, rd_error_t *err);

#endif
