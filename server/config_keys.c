/* config_keys.c - every configuration key with its type, range, flag
 * metavariable and help text, and the built-in defaults. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config_keys.h"

#define F(field) offsetof(config_t, field)
#define FS(field) sizeof(((config_t *)0)->field)
#define INT(k, lo, hi, mv, h) {#k, K_INT, F(k), 0, 0, lo, hi, mv, h}
#define I64(k, lo, hi, mv, h) {#k, K_I64, F(k), 0, 0, lo, hi, mv, h}
#define STR(k, mv, h) {#k, K_STR, F(k), 0, FS(k), 0, 0, mv, h}

const key_def_t config_keys[] = {
    INT(port, 0, 65535, "N", "TCP port to listen on; 0 = any free port (logged at start)"),
    STR(bind, "ADDR", "address to listen on (IPv4 or IPv6); 0.0.0.0 = every interface"),
    INT(http_threads, 1, 1024, "N", "libmicrohttpd worker threads; they also decode and preprocess JPEGs"),
    INT(inference_threads, 0, 1024, "N",
        "oneDNN/OpenMP threads of the one inference worker; 0 = one per core"),
    STR(model, "PATH", "safetensors model file"),
    STR(model_name, "NAME", "model name in responses and KServe URLs; empty = the model's own name"),
    STR(labels, "PATH", "labels file (JSON array or one label per line); empty = from the model"),
    {"precision", K_PRECISION, F(precision), 0, 0, 0, 0, "fp32|int8|bf16|auto",
     "convolution arithmetic; int8 needs a calibrated model (resnetd calibrate); bf16 is fast "
     "with AMX only; auto: bf16 where AMX BF16 exists, else fp32"},
    {"int8_recheck", K_FLOAT, F(int8_recheck), 0, 0, 0, 999, "X",
     "int8/bf16: rerun in fp32 the images whose top two logits are within X times the "
     "precision's logit error bound, so top-1 matches fp32; 0 = never"},
    {"input_size", K_SIZE2, F(input_h), F(input_w), 0, 1, 8192, "N|HxW",
     "network input size, e.g. 224 or 128x128; 0 = from the model"},
    INT(resize, 0, 16384, "N", "shorter side before the center crop, pixels; 0 = from the model"),
    {"channel_order", K_ORDER, F(channel_order), 0, FS(channel_order), 0, 0, "RGB|BGR",
     "input channel order; empty = from the model"},
    {"scale", K_FLOAT, F(scale), 0, 0, 0, 1000000, "X", "pixel (0..255) multiplier; 0 = from the model"},
    {"mean", K_FLOAT3, F(mean), F(has_mean), 0, 0, 0, "A,B,C",
     "per-channel mean subtracted after scaling, in channel order; empty = from the model"},
    {"std", K_FLOAT3, F(std), F(has_std), 0, 0, 0, "A,B,C",
     "per-channel divisor (> 0), in channel order; empty = from the model"},
    INT(max_batch_size, 1, 1024, "N", "most images per engine run"),
    I64(max_queue_delay_us, 0, 60000000, "US",
        "how long the oldest queued image waits for more to batch with, microseconds"),
    INT(max_queue_length, 1, 1000000, "N", "images waiting in the queue before requests get 503"),
    I64(request_timeout_ms, 1, 86400000, "MS",
        "deadline of a request, counting time queued; images still queued after it get 504"),
    I64(max_body_bytes, 1, 17179869184LL, "BYTES", "largest request body (413 beyond)"),
    I64(max_pixels, 1, 1000000000000LL, "N",
        "largest width*height of one image, checked from the JPEG header before decoding (413 beyond)"),
    INT(max_images_per_request, 1, 4096, "N", "most images in one request (413 beyond); at most max_queue_length"),
    INT(max_connections, 1, 1000000, "N", "concurrent connections; more are refused"),
    INT(connection_timeout_s, 0, 86400, "S", "idle connection timeout, seconds; 0 = none"),
    INT(drain_timeout_s, 0, 86400, "S",
        "on SIGTERM/SIGINT, seconds to answer accepted requests before exiting"),
    INT(retry_after_s, 0, 3600, "S", "Retry-After header value on 503 (queue full, draining), seconds"),
    INT(topk_default, 1, 100000, "K", "classes per image when the request gives no topk"),
    {"log_level", K_LOGLEVEL, F(log_level), 0, 0, 0, 0, "LEVEL", "error, warn, info or debug"},
    {"access_log", K_BOOL, F(access_log), 0, 0, 0, 0, "BOOL",
     "one JSON line per request on stderr"},
    {"auth_token", K_SECRET, F(auth_token), 0, FS(auth_token), 0, 0, "TOKEN",
     "bearer token required on every endpoint except /healthz and /readyz (401 without it); "
     "empty = no auth; env alias RESNETD_TOKEN"},
    STR(tls_cert, "PATH",
        "PEM certificate file (leaf first, then any chain) to serve HTTPS with; empty = plain HTTP; "
        "needs tls_key"),
    STR(tls_key, "PATH", "PEM private key file of tls_cert (unencrypted); empty = plain HTTP"),
};
const size_t config_n_keys = sizeof config_keys / sizeof config_keys[0];
_Static_assert(sizeof(((config_t *)0)->auth_token) == AUTH_TOKEN_MAX, "auth_token size");

config_t config_default_params(void)
{
    config_t c;
    memset(&c, 0, sizeof c);
    c.port = 8080;
    strcpy(c.bind, "127.0.0.1");
    c.http_threads = 2;
    strcpy(c.model, "models/resnet50.safetensors");
    c.max_batch_size = 8;
    c.max_queue_delay_us = 2000;
    c.max_queue_length = 64;
    c.request_timeout_ms = 10000;
    c.max_body_bytes = 16 << 20;
    c.max_pixels = 40000000;
    c.max_images_per_request = 32;
    c.max_connections = 256;
    c.connection_timeout_s = 30;
    c.drain_timeout_s = 30;
    c.retry_after_s = 1;
    c.topk_default = 5;
    c.int8_recheck = 2;
    c.log_level = LOG_INFO;
    c.access_log = true;
    return c;
}

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
