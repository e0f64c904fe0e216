/* http_cpu.c - a request's server CPU time: what the threads that work for
 * it add (http_request_add_cpu: its HTTP thread's callbacks, timed here
 * around each of libmicrohttpd's calls, its decodes,
 * its images' shares of their batches), and the report when it completes
 * (the access log's cpu_ms, resnetd_cpu_seconds_total{part},
 * resnetd_request_cpu_seconds). THREADS: the counts are atomics; any thread
 * holding a reference on the request may add. */
#include "cpu_time.h"
#include "http_internal.h"

/* libmicrohttpd's request callback: every call (http_request.c's
 * http_request_handle), its thread CPU time counted for the request it
 * served (libmicrohttpd's reference keeps the request alive until
 * on_completed). */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    int64_t cpu0 = cpu_thread_ns();
    enum MHD_Result ret = http_request_handle(cls, conn, url, method, version, upload_data,
                                              upload_data_size, con_cls);
    if (*con_cls)
        http_request_add_cpu(*con_cls, METRICS_CPU_HTTP, cpu_thread_ns() - cpu0);
    return ret;
}

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
