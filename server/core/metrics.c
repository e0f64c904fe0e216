/* metrics.c - a fixed Prometheus registry: arrays of atomics, rendered on
 * demand in text format 0.0.4.
 *
 * THREADS: every value is an atomic updated with relaxed ordering (counters
 * and buckets with fetch_add, double sums and gauges as IEEE bits with a
 * compare-exchange loop). No locks; render reads each value once. */
#include "metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RESNETD_VERSION
#define RESNETD_VERSION "unknown"
#endif

#define N_CODES 501      /* index 0 = "000" (out of range), 1..500 = codes 100..599 */
#define MAX_BOUNDS 16

typedef struct {
    const char *name, *help;
    const double *bounds; /* upper bounds (le), increasing; +Inf is implicit */
    int n_bounds;
} hist_def_t;

static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const hist_def_t hist_defs[METRICS_N_HISTOGRAMS] = {
    [METRICS_H_REQUEST] = {"resnetd_request_duration_seconds",
                           "Time from the start of an HTTP request (its connection's accept, "
                           "for the first) to its response.",
                           duration_bounds, N_OF(duration_bounds)},
    [METRICS_H_DECODE] = {"resnetd_decode_duration_seconds",
                          "Time to decode and preprocess one image.", duration_bounds,
                          N_OF(duration_bounds)},
    [METRICS_H_QUEUE] = {"resnetd_queue_duration_seconds",
                         "Time an image waited in the batching queue before its batch started.",
                         duration_bounds, N_OF(duration_bounds)},
    [METRICS_H_INFERENCE] = {"resnetd_inference_duration_seconds",
                             "Time the engine took to run one batch.", duration_bounds,
                             N_OF(duration_bounds)},
    [METRICS_H_BATCH_SIZE] = {"resnetd_batch_size", "Images per engine run.", batch_bounds,
                              N_OF(batch_bounds)},
    [METRICS_H_WAIT] = {"resnetd_request_wait_seconds",
                        "Time from a connection's accept until an HTTP thread read its first "
                        "request's head (0 for later requests on the connection).",
                        duration_bounds, N_OF(duration_bounds)},
    [METRICS_H_REQUEST_CPU] = {"resnetd_request_cpu_seconds",
                               "Server CPU time spent for one request: its HTTP thread, its "
                               "decodes and its images' shares of their batches.",
                               duration_bounds, N_OF(duration_bounds)},
};

static const char *const cpu_part_names[METRICS_N_CPU_PARTS] = {
    [METRICS_CPU_HTTP] = "http",
    [METRICS_CPU_DECODE] = "decode",
    [METRICS_CPU_INFERENCE] = "inference",
};

static const struct {
    const char *name, *help;
} gauge_defs[METRICS_N_GAUGES] = {
    [METRICS_G_QUEUE_DEPTH] = {"resnetd_queue_depth", "Images waiting in the batching queue."},
    [METRICS_G_INFLIGHT] = {"resnetd_inflight_requests", "HTTP requests being handled."},
    [METRICS_G_MODEL_LOAD] = {"resnetd_model_load_seconds", "Time taken to load the model."},
    [METRICS_G_MODEL_WARMUP] = {"resnetd_model_warmup_seconds",
                                "Time the warm-up runs (one per sub-batch size) took before ready."},
    [METRICS_G_READY] = {"resnetd_ready", "1 when the model is loaded and the server is not draining."},
};

static const char *const endpoint_names[METRICS_N_ENDPOINTS] = {
    [METRICS_EP_CLASSIFY] = "/classify",
    [METRICS_EP_V2_INFER] = "/v2/models/{name}/infer",
    [METRICS_EP_V2_MODEL] = "/v2/models/{name}",
    [METRICS_EP_V2_MODEL_READY] = "/v2/models/{name}/ready",
    [METRICS_EP_V2_SERVER] = "/v2",
    [METRICS_EP_V2_LIVE] = "/v2/health/live",
    [METRICS_EP_V2_READY] = "/v2/health/ready",
    [METRICS_EP_HEALTHZ] = "/healthz",
    [METRICS_EP_READYZ] = "/readyz",
    [METRICS_EP_METRICS] = "/metrics",
    [METRICS_EP_TS_PREDICT] = "/predictions/{name}",
    [METRICS_EP_TS_PING] = "/ping",
    [METRICS_EP_TF_PREDICT] = "/v1/models/{name}:predict",
    [METRICS_EP_TF_STATUS] = "/v1/models/{name}",
    [METRICS_EP_UI] = "/",
    [METRICS_EP_REPOSITORY] = "/v2/repository",
    [METRICS_EP_OTHER] = "other",
};

static const char *const drop_names[METRICS_N_DROP_REASONS] = {
    [METRICS_DROP_DEADLINE] = "deadline",
    [METRICS_DROP_CANCELLED] = "cancelled",
    [METRICS_DROP_SHUTDOWN] = "shutdown",
};

typedef struct {
    atomic_uint_least64_t buckets[MAX_BOUNDS + 1]; /* not cumulative; last = above every bound */
    atomic_uint_least64_t sum_bits;                /* a double */
} hist_t;

struct metrics {
    char version[64];
    /* resnetd_model_info's labels: written once, then published by model_set */
    char model[128], arch[16], precision[8];
    atomic_bool model_set;
    char isa[32]; /* resnetd_cpu_info's label: written once, then published by isa_set */
    atomic_bool isa_set;
    atomic_uint_least64_t requests[METRICS_N_ENDPOINTS][N_CODES];
    atomic_uint_least64_t images;
    atomic_uint_least64_t dropped[METRICS_N_DROP_REASONS];
    atomic_uint_least64_t connections_refused;
    atomic_uint_least64_t rechecked, rechecked_bf16; /* by the model's precision */
    atomic_uint_least64_t cpu[METRICS_N_CPU_PARTS]; /* doubles, seconds */
    hist_t hist[METRICS_N_HISTOGRAMS];
    atomic_uint_least64_t gauges[METRICS_N_GAUGES]; /* doubles */
};

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double double_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void add_double(atomic_uint_least64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, bits_of(double_of(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static double load_double(const atomic_uint_least64_t *a)
{
    return double_of(atomic_load_explicit((atomic_uint_least64_t *)a, memory_order_relaxed));
}

static uint64_t load_u64(const atomic_uint_least64_t *a)
{
    return atomic_load_explicit((atomic_uint_least64_t *)a, memory_order_relaxed);
}

rd_status_t metrics_create(const char *version, metrics_t **out, rd_error_t *err)
{
    if (!out)
        return rd_error_set(err, RD_ERR_ARG, "metrics_create: out is NULL");
    /* calloc zeroes the atomics, and all-zero bits are 0.0 for the doubles */
    metrics_t *m = calloc(1, sizeof *m);
    *out = m;
    if (!m)
        return rd_error_set(err, RD_ERR_NOMEM, "metrics: out of memory");
    snprintf(m->version, sizeof m->version, "%s", version ? version : RESNETD_VERSION);
    return RD_OK;
}

void metrics_destroy(metrics_t *m) { free(m); }

static int code_index(int code) { return code >= 100 && code <= 599 ? code - 99 : 0; }

void metrics_count_request(metrics_t *m, metrics_endpoint_t endpoint, int code)
{
    if (!m)
        return;
    if ((unsigned)endpoint >= METRICS_N_ENDPOINTS)
        endpoint = METRICS_EP_OTHER;
    atomic_fetch_add_explicit(&m->requests[endpoint][code_index(code)], 1, memory_order_relaxed);
}

void metrics_count_images(metrics_t *m, uint64_t n)
{
    if (m)
        atomic_fetch_add_explicit(&m->images, n, memory_order_relaxed);
}

void metrics_count_dropped(metrics_t *m, metrics_drop_t reason, uint64_t n)
{
    if (m && (unsigned)reason < METRICS_N_DROP_REASONS)
        atomic_fetch_add_explicit(&m->dropped[reason], n, memory_order_relaxed);
}

void metrics_add_cpu(metrics_t *m, metrics_cpu_part_t part, double seconds)
{
    if (m && part >= 0 && part < METRICS_N_CPU_PARTS && seconds > 0)
        add_double(&m->cpu[part], seconds);
}

void metrics_count_rechecked(metrics_t *m, uint64_t n)
{
    if (!m)
        return;
    int bf16 = atomic_load_explicit(&m->model_set, memory_order_acquire) &&
               strcmp(m->precision, "bf16") == 0;
    atomic_fetch_add_explicit(bf16 ? &m->rechecked_bf16 : &m->rechecked, n,
                              memory_order_relaxed);
}

void metrics_count_connection_refused(metrics_t *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->connections_refused, 1, memory_order_relaxed);
}

uint64_t metrics_connections_refused(const metrics_t *m)
{
    return m ? load_u64(&m->connections_refused) : 0;
}

void metrics_observe(metrics_t *m, metrics_histogram_t h, double value)
{
    if (!m || (unsigned)h >= METRICS_N_HISTOGRAMS || isnan(value))
        return;
    const hist_def_t *def = &hist_defs[h];
    int b = 0;
    while (b < def->n_bounds && value > def->bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->hist[h].buckets[b], 1, memory_order_relaxed);
    add_double(&m->hist[h].sum_bits, value);
}

void metrics_gauge_set(metrics_t *m, metrics_gauge_t g, double value)
{
    if (m && (unsigned)g < METRICS_N_GAUGES)
        atomic_store_explicit(&m->gauges[g], bits_of(value), memory_order_relaxed);
}

void metrics_gauge_add(metrics_t *m, metrics_gauge_t g, double delta)
{
    if (m && (unsigned)g < METRICS_N_GAUGES)
        add_double(&m->gauges[g], delta);
}

double metrics_gauge_get(const metrics_t *m, metrics_gauge_t g)
{
    return m && (unsigned)g < METRICS_N_GAUGES ? load_double(&m->gauges[g]) : 0;
}

uint64_t metrics_request_count(const metrics_t *m, metrics_endpoint_t endpoint, int code)
{
    if (!m || (unsigned)endpoint >= METRICS_N_ENDPOINTS)
        return 0;
    return load_u64(&m->requests[endpoint][code_index(code)]);
}

uint64_t metrics_histogram_count(const metrics_t *m, metrics_histogram_t h)
{
    if (!m || (unsigned)h >= METRICS_N_HISTOGRAMS)
        return 0;
    uint64_t n = 0;
    for (int b = 0; b <= hist_defs[h].n_bounds; b++)
        n += load_u64(&m->hist[h].buckets[b]);
    return n;
}

const char *metrics_endpoint_name(metrics_endpoint_t endpoint)
{
    return (unsigned)endpoint < METRICS_N_ENDPOINTS ? endpoint_names[endpoint] : "other";
}

/* Prometheus float syntax: NaN, +Inf, -Inf, else the shortest %g that round-trips well enough. */
static void put_value(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else
        fprintf(f, "%.10g", v);
}

static void put_header(FILE *f, const char *name, const char *help, const char *type)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline (format 0.0.4). */
static void put_label_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void render_requests(const metrics_t *m, FILE *f)
{
    put_header(f, "resnetd_http_requests_total", "HTTP requests answered, by endpoint and status code.",
               "counter");
    for (int e = 0; e < METRICS_N_ENDPOINTS; e++)
        for (int c = 0; c < N_CODES; c++) {
            uint64_t n = load_u64(&m->requests[e][c]);
            if (n)
                fprintf(f, "resnetd_http_requests_total{endpoint=\"%s\",code=\"%03d\"} %llu\n",
                        endpoint_names[e], c ? c + 99 : 0, (unsigned long long)n);
        }
}

static void render_counters(const metrics_t *m, FILE *f)
{
    put_header(f, "resnetd_images_classified_total", "Images that the engine classified.", "counter");
    fprintf(f, "resnetd_images_classified_total %llu\n", (unsigned long long)load_u64(&m->images));
    put_header(f, "resnetd_queue_dropped_total",
               "Queued images dropped without inference, by reason.", "counter");
    for (int r = 0; r < METRICS_N_DROP_REASONS; r++)
        fprintf(f, "resnetd_queue_dropped_total{reason=\"%s\"} %llu\n", drop_names[r],
                (unsigned long long)load_u64(&m->dropped[r]));
    put_header(f, "resnetd_connections_refused_total",
               "Connections over max_connections, answered 503 and closed.", "counter");
    fprintf(f, "resnetd_connections_refused_total %llu\n",
            (unsigned long long)load_u64(&m->connections_refused));
    put_header(f, "resnetd_int8_rechecked_total",
               "Images that INT8 inference recomputed in FP32 (int8_recheck).", "counter");
    fprintf(f, "resnetd_int8_rechecked_total %llu\n", (unsigned long long)load_u64(&m->rechecked));
    put_header(f, "resnetd_bf16_rechecked_total",
               "Images that BF16 inference recomputed in FP32 (int8_recheck).", "counter");
    fprintf(f, "resnetd_bf16_rechecked_total %llu\n",
            (unsigned long long)load_u64(&m->rechecked_bf16));
    put_header(f, "resnetd_cpu_seconds_total",
               "Server CPU time spent for requests, by part: HTTP threads, decoding, inference "
               "(each image's share of its batch).", "counter");
    for (int c = 0; c < METRICS_N_CPU_PARTS; c++) {
        fprintf(f, "resnetd_cpu_seconds_total{part=\"%s\"} ", cpu_part_names[c]);
        put_value(f, load_double(&m->cpu[c]));
        fputc('\n', f);
    }
}

static void render_histogram(const metrics_t *m, FILE *f, int h)
{
    const hist_def_t *def = &hist_defs[h];
    uint64_t cum = 0;
    put_header(f, def->name, def->help, "histogram");
    for (int b = 0; b <= def->n_bounds; b++) {
        cum += load_u64(&m->hist[h].buckets[b]);
        fprintf(f, "%s_bucket{le=\"", def->name);
        if (b < def->n_bounds)
            put_value(f, def->bounds[b]);
        else
            fputs("+Inf", f);
        fprintf(f, "\"} %llu\n", (unsigned long long)cum);
    }
    fprintf(f, "%s_sum ", def->name);
    put_value(f, load_double(&m->hist[h].sum_bits));
    fprintf(f, "\n%s_count %llu\n", def->name, (unsigned long long)cum);
}

static void render_gauges(const metrics_t *m, FILE *f)
{
    for (int g = 0; g < METRICS_N_GAUGES; g++) {
        put_header(f, gauge_defs[g].name, gauge_defs[g].help, "gauge");
        fprintf(f, "%s ", gauge_defs[g].name);
        put_value(f, load_double(&m->gauges[g]));
        fputc('\n', f);
    }
    put_header(f, "resnetd_build_info", "Always 1; the label gives the resnetd version.", "gauge");
    fputs("resnetd_build_info{version=\"", f);
    put_label_value(f, m->version);
    fputs("\"} 1\n", f);
    if (atomic_load_explicit(&m->isa_set, memory_order_acquire)) {
        put_header(f, "resnetd_cpu_info",
                   "Always 1; the label gives the instruction set oneDNN uses here.", "gauge");
        fputs("resnetd_cpu_info{isa=\"", f);
        put_label_value(f, m->isa);
        fputs("\"} 1\n", f);
    }
    if (!atomic_load_explicit(&m->model_set, memory_order_acquire))
        return;
    put_header(f, "resnetd_model_info",
               "Always 1; the labels give the model served, its architecture and the precision "
               "it runs in.", "gauge");
    fputs("resnetd_model_info{model=\"", f);
    put_label_value(f, m->model);
    fputs("\",arch=\"", f);
    put_label_value(f, m->arch);
    fputs("\",precision=\"", f);
    put_label_value(f, m->precision);
    fputs("\"} 1\n", f);
}

void metrics_set_model(metrics_t *m, const char *name, const char *arch, const char *precision)
{
    if (!m || atomic_load_explicit(&m->model_set, memory_order_relaxed))
        return;
    snprintf(m->model, sizeof m->model, "%s", name);
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    snprintf(m->precision, sizeof m->precision, "%s", precision);
    atomic_store_explicit(&m->model_set, true, memory_order_release);
}

void metrics_set_isa(metrics_t *m, const char *isa)
{
    if (!m || atomic_load_explicit(&m->isa_set, memory_order_relaxed))
        return;
    snprintf(m->isa, sizeof m->isa, "%s", isa);
    atomic_store_explicit(&m->isa_set, true, memory_order_release);
}

rd_status_t metrics_render(const metrics_t *m, char **out, size_t *len, rd_error_t *err)
{
    if (!m || !out)
        return rd_error_set(err, RD_ERR_ARG, "metrics_render: NULL argument");
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return rd_error_set(err, RD_ERR_NOMEM, "metrics: out of memory");
    render_requests(m, f);
    render_counters(m, f);
    for (int h = 0; h < METRICS_N_HISTOGRAMS; h++)
        render_histogram(m, f, h);
    render_gauges(m, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || !buf) {
        free(buf);
        *out = NULL;
        return rd_error_set(err, RD_ERR_NOMEM, "metrics: out of memory while rendering");
    }
    *out = buf;
    if (len)
        *len = n;
    return RD_OK;
}
