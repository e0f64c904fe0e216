/* registry.h - the models this server serves, by name, each with its loaded
 * versions. Routes look a model up here and hold what they found for the
 * request's life (registry_acquire / served_model_unref); the loader
 * (model_loader.c) publishes new versions and retires old ones while requests
 * run.
 *
 *     registry_t *r = registry_create();
 *     registry_publish(r, model, &err);            loader: the registry holds a reference
 *     served_model_t *m;
 *     if (registry_acquire(r, "resnet50", 0, &m) == REGISTRY_FOUND) {   any thread
 *         ... served_model_submit(m, ...) ...;  served_model_unref(m);  when the request ends
 *     }
 *     registry_destroy(r);                         drops the registry's references
 *
 * Lifetime: a served model is reference-counted (served_model.h). The
 * registry holds one reference per published version and every request that
 * acquired it one more; a version that is replaced or unloaded leaves the
 * registry at once (new requests go to the new one), finishes the requests
 * that hold it, and is freed by the last served_model_unref.
 *
 * THREADS: every function takes the registry's mutex `mu`, held only for
 * lookups and pointer swaps (never across a load or a free), so any thread
 * may call any function; acquire is a few string compares. */
#ifndef RESNETD_REGISTRY_H
#define RESNETD_REGISTRY_H

#include <jansson.h>

#include "resnetd/error.h"
#include "served_model.h"

#define REGISTRY_MAX_MODELS 16
#define REGISTRY_MAX_VERSIONS 16

typedef struct registry registry_t;

/* What a lookup found. */
typedef enum {
    REGISTRY_FOUND = 0,
    REGISTRY_NO_MODEL,    /* no model of that name (404) */
    REGISTRY_NO_VERSION,  /* the model is there, not that version (404) */
    REGISTRY_UNAVAILABLE, /* known, but no version ready: loading or failed (503) */
} registry_lookup_t;

/* A model's state in the repository index (Triton's names). */
typedef enum { REGISTRY_LOADING = 0, REGISTRY_READY, REGISTRY_UNAVAILABLE_STATE } registry_state_t;

/* An empty registry, or NULL when out of memory. default_name names the model
 * of URLs that name none ("" or NULL: the first model published). */
registry_t *registry_create(void);
void registry_set_default(registry_t *r, const char *default_name);

/* Publishes m as version served_model_version(m) of served_model_name(m),
 * taking over the caller's reference (also on failure, when it is dropped).
 * A version already there is replaced (its reference dropped: it finishes
 * its requests, then is freed). The model turns READY. RD_ERR_LIMIT past
 * REGISTRY_MAX_MODELS or REGISTRY_MAX_VERSIONS. */
rd_status_t registry_publish(registry_t *r, served_model_t *m, rd_error_t *err);

/* registry_publish, refusing a name already served (RD_ERR_ARG): the
 * start-up path of one model. */
rd_status_t registry_add(registry_t *r, served_model_t *m, rd_error_t *err);

/* Drops version of name from the registry (0: every version). The model
 * stays listed (as UNAVAILABLE, reason given) unless remove is true. */
void registry_retire(registry_t *r, const char *name, int version, bool remove,
                     const char *reason);

/* Records a model's state without a version: LOADING before its first
 * version is ready, UNAVAILABLE with the reason when a load failed (a model
 * still serving keeps READY; the reason is shown all the same). */
void registry_set_state(registry_t *r, const char *name, registry_state_t state,
                        const char *reason);

/* Finds name ("" or NULL: the default model) at version (0: the newest) and
 * takes a reference on it for the caller (*out; served_model_unref it). */
registry_lookup_t registry_acquire(registry_t *r, const char *name, int version,
                                   served_model_t **out);

/* The names served, ", "-separated, into out (for 404 messages). */
void registry_names(registry_t *r, char *out, size_t size);

/* The versions published for name, ascending, into versions[0..max); the count. */
int registry_versions(registry_t *r, const char *name, int *versions, int max);

/* Every published version, each with a reference the caller drops
 * (served_model_unref), into out[0..max); the count. */
int registry_snapshot(registry_t *r, served_model_t **out, int max);

/* True when every listed model has a ready version (/readyz). */
bool registry_all_ready(registry_t *r);

/* Triton's repository index: [{"name","version","state","reason"}...], one
 * row per version, and one per model without a version. New reference. */
json_t *registry_index(registry_t *r);

/* Models listed (ready or not). */
int registry_count(registry_t *r);

/* Drops the registry's references (models still held are freed by their last
 * holder), then frees the registry. NULL is a no-op. */
void registry_destroy(registry_t *r);

#endif
