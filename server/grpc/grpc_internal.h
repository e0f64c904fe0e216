/* grpc_internal.h - what the gRPC front end's files share: the listener
 * (grpc.c), one connection's HTTP/2 session (grpc_conn.c), the RPCs
 * (grpc_service.c) and ModelInfer (grpc_infer.c). Not for other folders.
 *
 * A call's life: grpc_conn.c gathers a stream's headers and its one
 * length-prefixed message, then grpc_service_dispatch answers it at once
 * (grpc_reply_t filled) or, for ModelInfer, queues its images and returns
 * pending; the batcher's done() puts the call on its connection's completion
 * list and wakes the connection thread, which calls grpc_infer_finish and
 * sends the reply. A stream reset meanwhile cancels the call's items; the
 * call is freed when the last of them is done. */
#ifndef RESNETD_GRPC_INTERNAL_H
#define RESNETD_GRPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "batcher.h"
#include "config.h"
#include "grpc.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "status_map.h"

#define GRPC_MSG_MAX 512 /* grpc-message text */

struct grpc {
    config_t cfg;
    image_limits_t image;
    auth_t auth;
    metrics_t *metrics;
    log_t *log;
    int listen_fd;
    int port;
    pthread_t accept_thread;
    bool accept_started;
    _Atomic(registry_t *) registry;
    atomic_bool draining;
    atomic_bool stopping;
    atomic_int inflight;
    atomic_llong buffered; /* request bytes held by every stream (max_buffered_body_bytes) */
    /* guards conns */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* conns reached 0 */
    int conns;
};

/* The answer to one call: a serialized response message (malloc'd, without
 * the 5-byte prefix) on status OK, else a status and message. */
typedef struct {
    grpc_status_t status;
    char message[GRPC_MSG_MAX];
    uint8_t *body;
    size_t len;
} grpc_reply_t;

/* What a call arrived with. */
typedef struct {
    const char *path;          /* ":path", e.g. "/inference.GRPCInferenceService/ModelInfer" */
    const uint8_t *msg;        /* the message, without its prefix */
    size_t len;
    int64_t deadline_ns;       /* from grpc-timeout and request_timeout_ms */
    int32_t stream;            /* its HTTP/2 stream id */
} grpc_call_in_t;

typedef struct grpc_conn grpc_conn_t;
typedef struct grpc_infer grpc_infer_t;

/* Answers the call at once (returns NULL, *reply filled), or queues a
 * ModelInfer and returns its pending state, which comes back through
 * grpc_conn_complete. Connection thread. */
grpc_infer_t *grpc_service_dispatch(grpc_t *g, grpc_conn_t *conn, const grpc_call_in_t *in,
                                    grpc_reply_t *reply);

/* Sets reply to an error status with a printf message. */
void grpc_reply_error(grpc_reply_t *reply, grpc_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The model name (and version: "" = the newest) names, with a reference the
 * caller drops (served_model_unref), or NULL with *reply set: NOT_FOUND
 * (unknown name or version), UNAVAILABLE (loading, or no version ready).
 * The one lookup of every RPC, as http_request_model is REST's. */
served_model_t *grpc_find_model(grpc_t *g, const char *name, const char *version,
                                grpc_reply_t *reply);

/* ModelInfer (grpc_infer.c): parses, decodes and queues; NULL with *reply
 * set when it answered at once. */
grpc_infer_t *grpc_infer_start(grpc_t *g, grpc_conn_t *conn, const grpc_call_in_t *in,
                               grpc_reply_t *reply);

/* Every item of inf is done: fills *reply from the outcomes. Connection thread. */
void grpc_infer_finish(grpc_infer_t *inf, grpc_reply_t *reply);

/* The client has gone: drop the queued images (done() still comes). Any thread. */
void grpc_infer_cancel(grpc_infer_t *inf);

/* The completion list's link and the stream the call answers. */
grpc_infer_t **grpc_infer_next(grpc_infer_t *inf);
int32_t grpc_infer_stream(const grpc_infer_t *inf);

/* Frees inf; all its items must be done. */
void grpc_infer_free(grpc_infer_t *inf);

/* Called by inf's last done() (on the batcher's worker): hands inf back to
 * its connection's thread. */
void grpc_conn_complete(grpc_conn_t *conn, grpc_infer_t *inf);

/* Runs one accepted connection until it closes; closes fd. Its own thread. */
void grpc_conn_run(grpc_t *g, int fd);

#endif
