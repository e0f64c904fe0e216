/* grpc_service.c - GRPCInferenceService's methods: the path -> handler
 * table, the health and metadata RPCs, and the protobuf-c plumbing they
 * share. ModelInfer itself is grpc_infer.c. Connection thread only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_internal.h"
#include "grpc_service.pb-c.h"
#include "resnetd/engine.h"
#include "served_model.h"

#define SERVICE "/inference.GRPCInferenceService/"

void grpc_reply_error(grpc_reply_t *reply, grpc_status_t status, const char *fmt, ...)
{
    reply->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

/* Packs msg into reply (status OK). */
static void reply_pack(grpc_reply_t *reply, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    reply->body = malloc(len ? len : 1);
    if (!reply->body) {
        grpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    reply->len = protobuf_c_message_pack(msg, reply->body);
    reply->status = GRPC_STATUS_OK;
}

served_model_t *grpc_find_model(grpc_t *g, const char *name, const char *version,
                                grpc_reply_t *reply)
{
    registry_t *r = atomic_load(&g->registry);
    if (!r) {
        grpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "the model is still loading");
        return NULL;
    }
    char *end = NULL;
    long v = version && version[0] ? strtol(version, &end, 10) : 0;
    if (end && (*end || v < 1 || v > INT32_MAX)) {
        grpc_reply_error(reply, GRPC_STATUS_NOT_FOUND, "model '%.100s' has no version '%.20s'",
                         name, version);
        return NULL;
    }
    served_model_t *m = NULL;
    char names[300];
    switch (registry_acquire(r, name, (int)v, &m)) {
    case REGISTRY_FOUND:
        return m;
    case REGISTRY_NO_MODEL:
        registry_names(r, names, sizeof names);
        grpc_reply_error(reply, GRPC_STATUS_NOT_FOUND,
                         "model '%.100s' is not served here (served: %s)", name, names);
        break;
    case REGISTRY_NO_VERSION:
        grpc_reply_error(reply, GRPC_STATUS_NOT_FOUND, "model '%.100s' has no version %ld", name, v);
        break;
    case REGISTRY_UNAVAILABLE:
        grpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "model '%.100s' has no version ready",
                         name);
        break;
    }
    return NULL;
}

static bool server_ready(grpc_t *g)
{
    return atomic_load(&g->registry) && !atomic_load(&g->draining);
}

static void server_live(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    (void)g;
    (void)in;
    Inference__ServerLiveResponse out = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    out.live = 1;
    reply_pack(reply, &out.base);
}

static void server_ready_rpc(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    (void)in;
    Inference__ServerReadyResponse out = INFERENCE__SERVER_READY_RESPONSE__INIT;
    out.ready = server_ready(g);
    reply_pack(reply, &out.base);
}

static void server_metadata(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    (void)g;
    (void)in;
    Inference__ServerMetadataResponse out = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    out.name = "resnetd"; /* no extensions: the repository and statistics ones are REST's */
    out.version = RESNETD_VERSION;
    reply_pack(reply, &out.base);
}

/* Unpacks a {name, version} request (ModelReady and ModelMetadata share the
 * layout) and finds its model. */
static served_model_t *named_model(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    Inference__ModelReadyRequest *req =
        inference__model_ready_request__unpack(NULL, in->len, in->msg);
    if (!req) {
        grpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed request message");
        return NULL;
    }
    served_model_t *m = grpc_find_model(g, req->name, req->version, reply);
    inference__model_ready_request__free_unpacked(req, NULL);
    return m;
}

static void model_ready(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    served_model_t *m = named_model(g, in, reply);
    if (!m)
        return;
    served_model_unref(m);
    Inference__ModelReadyResponse out = INFERENCE__MODEL_READY_RESPONSE__INIT;
    out.ready = server_ready(g); /* found: a version is ready */
    reply_pack(reply, &out.base);
}

typedef Inference__ModelMetadataResponse__TensorMetadata tensor_meta_t;

static void model_metadata(grpc_t *g, const grpc_call_in_t *in, grpc_reply_t *reply)
{
    served_model_t *m = named_model(g, in, reply);
    if (!m)
        return;
    const model_preproc_t *pp = served_model_preproc(m);
    int64_t c = served_model_info(m)->n_classes;
    int64_t in_shape[] = {-1, 3, pp->input_h, pp->input_w}, img_shape[] = {-1};
    int64_t out_shape[] = {-1, c}, feat_shape[] = {-1, served_model_feature_shape(m).channels};
    tensor_meta_t t[5];
    const char *names[] = {"input", "image", "probabilities", "logits", "features"};
    const char *types[] = {"FP32", "BYTES", "FP32", "FP32", "FP32"};
    int64_t *shapes[] = {in_shape, img_shape, out_shape, out_shape, feat_shape};
    size_t ranks[] = {4, 1, 2, 2, 2};
    tensor_meta_t *ins[2], *outs[3];
    for (int i = 0; i < 5; i++) {
        inference__model_metadata_response__tensor_metadata__init(&t[i]);
        t[i].name = (char *)names[i];
        t[i].datatype = (char *)types[i];
        t[i].n_shape = ranks[i];
        t[i].shape = shapes[i];
        if (i < 2)
            ins[i] = &t[i];
        else
            outs[i - 2] = &t[i];
    }
    int vs[REGISTRY_MAX_VERSIONS];
    int nv = registry_versions(atomic_load(&g->registry), served_model_name(m), vs,
                               REGISTRY_MAX_VERSIONS);
    char vtext[REGISTRY_MAX_VERSIONS][16], *versions[REGISTRY_MAX_VERSIONS];
    for (int i = 0; i < nv; i++) {
        snprintf(vtext[i], sizeof vtext[i], "%d", vs[i]);
        versions[i] = vtext[i];
    }
    Inference__ModelMetadataResponse out = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    out.name = (char *)served_model_name(m);
    out.n_versions = (size_t)nv;
    out.versions = versions;
    out.platform = "resnetd";
    out.n_inputs = 2;
    out.inputs = ins;
    out.n_outputs = 3;
    out.outputs = outs;
    reply_pack(reply, &out.base);
    served_model_unref(m);
}

typedef void (*rpc_fn)(grpc_t *, const grpc_call_in_t *, grpc_reply_t *);

static const struct {
    const char *name;
    rpc_fn fn;
} rpcs[] = {
    {"ServerLive", server_live},         {"ServerReady", server_ready_rpc},
    {"ModelReady", model_ready},         {"ServerMetadata", server_metadata},
    {"ModelMetadata", model_metadata},
};

grpc_infer_t *grpc_service_dispatch(grpc_t *g, grpc_conn_t *conn, const grpc_call_in_t *in,
                                    grpc_reply_t *reply)
{
    if (strncmp(in->path, SERVICE, strlen(SERVICE)) == 0) {
        const char *method = in->path + strlen(SERVICE);
        if (strcmp(method, "ModelInfer") == 0)
            return grpc_infer_start(g, conn, in, reply);
        for (size_t i = 0; i < sizeof rpcs / sizeof rpcs[0]; i++)
            if (strcmp(method, rpcs[i].name) == 0) {
                rpcs[i].fn(g, in, reply);
                return NULL;
            }
    }
    grpc_reply_error(reply, GRPC_STATUS_UNIMPLEMENTED, "unknown method '%.200s'", in->path);
    return NULL;
}
