/* route_triton.c - what Triton's tools read besides the KServe protocol:
 * GET /v2/models/{name}[/versions/{v}]/config, Triton's model configuration
 * (enough for perf_analyzer and tritonclient: inputs and outputs with dims
 * and format, max_batch_size, dynamic_batching, instance_group), and
 * GET /v2/models/{name}[/versions/{v}]/stats, the statistics extension
 * (inference and execution counts, success, fail, queue and compute
 * durations from the version's model_stats.h counters). */
#include <stdio.h>
#include <string.h>

#include "http_error.h"
#include "resnetd/engine.h"
#include "routes.h"

/* The model the URL names, or NULL after answering 404/503. */
static served_model_t *model_of(http_request_t *req)
{
    served_model_t *m = http_request_model(req);
    if (!m) {
        char msg[600];
        int status = http_request_model_miss(req, msg, sizeof msg);
        http_respond_kserve_error(req, status, msg);
    }
    return m;
}

static http_step_t config_start(http_request_t *req)
{
    served_model_t *m = model_of(req);
    if (!m)
        return HTTP_DONE;
    const model_preproc_t *pp = served_model_preproc(m);
    const batcher_params_t *bp = served_model_batching(m);
    int c = served_model_info(m)->n_classes;
    char group[160];
    snprintf(group, sizeof group, "%s_0", served_model_name(m));
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:i, s:[{s:s, s:s, s:s, s:[i,i,i]}],"
        " s:[{s:s, s:s, s:[i]}, {s:s, s:s, s:[i]}],"
        " s:{s:I}, s:[{s:s, s:s, s:i}]}",
        "name", served_model_name(m), "platform", "resnetd", "backend", "resnetd",
        "max_batch_size", bp->max_batch_size, "input", "name", "input", "data_type", "TYPE_FP32",
        "format", "FORMAT_NCHW", "dims", 3, pp->input_h, pp->input_w, "output", "name", "logits",
        "data_type", "TYPE_FP32", "dims", c, "name", "probabilities", "data_type", "TYPE_FP32",
        "dims", c, "dynamic_batching", "max_queue_delay_microseconds",
        (json_int_t)bp->max_queue_delay_us, "instance_group", "name", group, "kind", "KIND_CPU",
        "count", 1);
    http_respond_json(req, 200, doc);
    return HTTP_DONE;
}

static json_t *duration(uint64_t count, uint64_t ns)
{
    return json_pack("{s:I, s:I}", "count", (json_int_t)count, "ns", (json_int_t)ns);
}

/* One version's row of Triton's model_stats. */
static json_t *stats_row(served_model_t *m)
{
    model_stats_t *s = served_model_stats(m);
    uint64_t ok = atomic_load(&s->success), fail = atomic_load(&s->fail);
    uint64_t batches = atomic_load(&s->batches), compute = atomic_load(&s->compute_ns);
    char version[16];
    snprintf(version, sizeof version, "%d", served_model_version(m));
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o, s:o}, s:[]}",
                     "name", served_model_name(m), "version", version, "last_inference",
                     (json_int_t)atomic_load(&s->last_ms), "inference_count", (json_int_t)ok,
                     "execution_count", (json_int_t)batches, "inference_stats", "success",
                     duration(ok, 0), "fail", duration(fail, 0), "queue",
                     duration(ok + fail, atomic_load(&s->queue_ns)), "compute_input",
                     duration(batches, 0), "compute_infer", duration(batches, compute),
                     "compute_output", duration(batches, 0), "batch_stats");
}

static http_step_t stats_start(http_request_t *req)
{
    served_model_t *m = model_of(req);
    if (!m)
        return HTTP_DONE;
    json_t *rows = json_array();
    if (http_request_version(req)[0]) {
        json_array_append_new(rows, stats_row(m));
    } else { /* every version of the model */
        registry_t *r = http_request_deps(req)->registry;
        int vs[16], n = registry_versions(r, served_model_name(m), vs, 16);
        for (int i = 0; i < n; i++) {
            served_model_t *v;
            if (registry_acquire(r, served_model_name(m), vs[i], &v) == REGISTRY_FOUND) {
                json_array_append_new(rows, stats_row(v));
                served_model_unref(v);
            }
        }
    }
    http_respond_json(req, 200, json_pack("{s:o}", "model_stats", rows));
    return HTTP_DONE;
}

const http_route_t route_v2_model_config = {
    .name = "v2_model_config", .needs_model = true, .start = config_start};
const http_route_t route_v2_model_stats = {
    .name = "v2_model_stats", .needs_model = true, .start = stats_start};
