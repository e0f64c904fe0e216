/* http_cpu.c - a request's server CPU time: what the threads that work for
 * it add (http_request_add_cpu: its HTTP thread's callbacks, its decodes,
 * its images' shares of their batches), and the report when it completes
 * (the access log's cpu_ms, resnetd_cpu_seconds_total{part},
 * resnetd_request_cpu_seconds). THREADS: the counts are atomics; any thread
 * holding a reference on the request may add. */
#include "http_internal.h"

void http_request_add_cpu(http_request_t *req, metrics_cpu_part_t part, int64_t ns)
{
    /* a negative ns moves time between parts (a decode on the HTTP thread) */
    if (part >= 0 && part < METRICS_N_CPU_PARTS && ns != 0)
        atomic_fetch_add(&req->cpu_ns[part], ns);
}

double http_request_cpu_report(http_request_t *req, metrics_t *metrics)
{
    int64_t total = 0;
    for (int p = 0; p < METRICS_N_CPU_PARTS; p++) {
        int64_t ns = atomic_load(&req->cpu_ns[p]);
        metrics_add_cpu(metrics, (metrics_cpu_part_t)p, (double)ns / 1e9);
        total += ns;
    }
    metrics_observe(metrics, METRICS_H_REQUEST_CPU, (double)total / 1e9);
    return (double)total / 1e6;
}
