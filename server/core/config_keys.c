/* config_keys.c - every configuration key with its default, type, range,
 * flag metavariable and help text: the one table that reading (config.c),
 * --help and the README's table (config_print.c) come from. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config_keys.h"

#define F(field) offsetof(config_t, field)
#define FS(field) sizeof(((config_t *)0)->field)
/* key, default (text; NULL = zero/empty or the owning component's), range,
 * flag metavariable, help */
#define INT(k, d, lo, hi, mv, h) {#k, K_INT, F(k), 0, 0, lo, hi, mv, h, d}
#define I64(k, d, lo, hi, mv, h) {#k, K_I64, F(k), 0, 0, lo, hi, mv, h, d}
#define STR(k, d, mv, h) {#k, K_STR, F(k), 0, FS(k), 0, 0, mv, h, d}
#define ENGINE NULL  /* engine_default_params() */
#define BATCHER NULL /* batcher_default_params() */
#define IMAGE NULL   /* image_default_limits() */

const key_def_t config_keys[] = {
    INT(port, "8080", 0, 65535, "N", "TCP port to listen on; 0 = any free port (logged at start)"),
    STR(bind, "127.0.0.1", "ADDR", "address to listen on (IPv4 or IPv6); 0.0.0.0 = every interface"),
    INT(grpc_port, "0", -1, 65535, "N",
        "KServe v2 gRPC port (plain HTTP/2, on bind); 0 = off; -1 = any free port. The gRPC "
        "address is logged at start (\"grpc: listening on ADDR\")"),
    INT(grpc_max_streams, "32", 1, 1024, "N",
        "concurrent gRPC calls on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)"),
    INT(grpc_max_connections, "16", 1, 4096, "N",
        "concurrent gRPC connections (one thread each); one more is closed at once"),
    INT(http_threads, "2", 1, 1024, "N", "libmicrohttpd worker threads: they parse requests and build answers"),
    INT(decode_threads, "0", 0, 1024, "N",
        "threads that decode and preprocess images, apart from the HTTP threads; "
        "0 = the CPUs the process may use (affinity mask, cgroup CPU quota) + 1"),
    INT(max_decodes_per_request, "0", 0, 1024, "N",
        "most images of one request decoding at once, so that other requests' images find a free "
        "decoder; 0 = the CPU count (at most decode_threads)"),
    INT(inference_threads, ENGINE, 0, 1024, "N",
        "oneDNN/OpenMP threads of the one inference worker; 0 = one per CPU the affinity mask "
        "and the cgroup CPU quota allow"),
    STR(model, "models/resnet50.safetensors", "PATH", "safetensors model file"),
    STR(model_name, NULL, "NAME", "model name in responses and KServe URLs; empty = the model's own name"),
    STR(labels, NULL, "PATH", "labels file (JSON array or one label per line); empty = from the model"),
    STR(model_repository, NULL, "DIR",
        "model repository, DIR/NAME/VERSION/model.safetensors with an optional DIR/NAME/config.json; "
        "empty = serve the one file of `model`"),
    STR(default_model, NULL, "NAME",
        "the model of /classify and the other URLs that name none; empty = the only or first model"),
    STR(model_control_mode, "none", "none|poll|explicit",
        "none: load the repository at start; poll: rescan it every repository_poll_s; explicit: "
        "load and unload through POST /v2/repository/models/NAME/load|unload"),
    INT(repository_poll_s, "5", 1, 86400, "S", "poll mode: seconds between rescans of model_repository"),
    INT(max_models_memory_mb, NULL, 0, 16777216, "MB",
        "memory every loaded model version may use together (resnetd_model_version_memory_bytes); "
        "a load that would pass it is refused; 0 = no limit"),
    {"precision", K_PRECISION, F(precision), 0, 0, 0, 0, "fp32|int8|bf16|auto",
     "convolution arithmetic; int8 needs a calibrated model (resnetd calibrate); bf16 is fast "
     "with AMX only; auto: bf16 where AMX BF16 exists, else fp32", ENGINE},
    {"int8_recheck", K_FLOAT, F(int8_recheck), 0, 0, 0, 999, "X",
     "int8/bf16: rerun in fp32 the images whose top two logits are within X times the "
     "precision's logit error bound, so top-1 matches fp32; 0 = never", ENGINE},
    {"input_size", K_SIZE2, F(input_h), F(input_w), 0, 1, 8192, "N|HxW",
     "network input size, e.g. 224 or 128x128; 0 = from the model", ENGINE},
    INT(resize, NULL, 0, 16384, "N", "shorter side before the center crop, pixels; 0 = from the model"),
    {"channel_order", K_ORDER, F(channel_order), 0, FS(channel_order), 0, 0, "RGB|BGR",
     "input channel order; empty = from the model", NULL},
    {"scale", K_FLOAT, F(scale), 0, 0, 0, 1000000, "X", "pixel (0..255) multiplier; 0 = from the model", NULL},
    {"mean", K_FLOAT3, F(mean), F(has_mean), 0, 0, 0, "A,B,C",
     "per-channel mean subtracted after scaling, in channel order; empty = from the model", NULL},
    {"std", K_FLOAT3, F(std), F(has_std), 0, 0, 0, "A,B,C",
     "per-channel divisor (> 0), in channel order; empty = from the model", NULL},
    INT(max_batch_size, BATCHER, 1, 1024, "N", "most images per engine run"),
    I64(max_queue_delay_us, BATCHER, 0, 60000000, "US",
        "how long the oldest queued image waits for more to batch with, microseconds"),
    INT(max_queue_length, BATCHER, 1, 1000000, "N", "images waiting in the queue before requests get 503"),
    I64(request_timeout_ms, "10000", 1, 86400000, "MS",
        "deadline of a request, counting time queued; images still queued after it get 504"),
    I64(max_body_bytes, "16777216", 1, 17179869184LL, "BYTES", "largest request body (413 beyond)"),
    I64(max_buffered_body_bytes, "268435456", 1, 1099511627776LL, "BYTES",
        "request body bytes all connections together may buffer (503 + Retry-After beyond), "
        "reserved from Content-Length at the headers and counted as chunks arrive"),
    I64(max_pixels, IMAGE, 1, 1000000000000LL, "N",
        "largest width*height of one image, checked from the JPEG header before decoding (413 beyond)"),
    {"accept_png", K_BOOL, F(accept_png), 0, 0, 0, 0, "BOOL",
     "decode PNG images (recognised by their bytes, not the Content-Type); false = 400", "true"},
    {"accept_webp", K_BOOL, F(accept_webp), 0, 0, 0, 0, "BOOL",
     "decode WebP images (recognised by their bytes); false = 400", "true"},
    INT(max_images_per_request, "32", 1, 4096, "N", "most images in one request (413 beyond); at most max_queue_length"),
    INT(max_jpeg_scans, IMAGE, 1, 100000, "N",
        "most scans in one JPEG (413 beyond); real encoders write 1 to about 20"),
    INT(max_jpeg_scan_work, IMAGE, 1, 100000, "N",
        "most blocks all scans of one JPEG code together, in passes over the image (413 beyond); "
        "a progressive photo takes about 5, a baseline one 1"),
    I64(decode_budget_ms, IMAGE, 1, 86400000, "MS", "most wall time one image's decode may take (413 beyond)"),
    INT(max_connections, "256", 1, 1000000, "N",
        "concurrent connections; one more is answered 503 + Retry-After + Connection: close at its "
        "first request, then closed"),
    INT(connection_timeout_s, "30", 0, 86400, "S", "idle connection timeout, seconds; 0 = none"),
    INT(header_timeout_s, "10", 0, 86400, "S",
        "a connection's first request head must be complete this long after accept, "
        "however slowly it trickles; 0 = none"),
    INT(body_timeout_s, "60", 0, 86400, "S",
        "a request body must be complete this long after its head; 0 = none"),
    {"ignore_client_abort", K_BOOL, F(ignore_client_abort), 0, 0, 0, 0, "BOOL",
     "keep running a request whose client closed its sending side (shutdown(SHUT_WR) looks like a "
     "hang-up until a write fails) and answer it; false = drop its images, log 499", "false"},
    INT(drain_timeout_s, "30", 0, 86400, "S",
        "on SIGTERM/SIGINT, seconds to answer accepted requests before exiting"),
    INT(retry_after_s, "1", 0, 3600, "S", "Retry-After header value on 503 (queue full, draining), seconds"),
    INT(topk_default, "5", 1, 100000, "K",
        "classes per image when the request gives no topk; flag alias --topk"),
    {"log_level", K_LOGLEVEL, F(log_level), 0, 0, 0, 0, "LEVEL", "error, warn, info or debug",
     "info"},
    {"access_log", K_BOOL, F(access_log), 0, 0, 0, 0, "BOOL",
     "one JSON line per request on stderr", "true"},
    {"auth_token", K_SECRET, F(auth_token), 0, FS(auth_token), 0, 0, "TOKEN",
     "bearer token required on every endpoint except /healthz, /readyz, /ping and the page (/, /ui/) "
     "(401 without it); "
     "empty = no auth; env alias RESNETD_TOKEN", NULL},
    STR(tls_cert, NULL, "PATH",
        "PEM certificate file (leaf first, then any chain) to serve HTTPS with; empty = plain HTTP; "
        "needs tls_key"),
    STR(tls_key, NULL, "PATH", "PEM private key file of tls_cert (unencrypted); empty = plain HTTP"),
};
const size_t config_n_keys = sizeof config_keys / sizeof config_keys[0];
_Static_assert(sizeof(((config_t *)0)->auth_token) == AUTH_TOKEN_MAX, "auth_token size");

void config_env_name(const key_def_t *k, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "RESNETD_%s", k->key);
    for (size_t i = 0; i < n && i < size; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
}

void config_flag_name(const key_def_t *k, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "--%s", k->key);
    for (size_t i = 0; i < n && i < size; i++)
        out[i] = out[i] == '_' ? '-' : out[i];
}
