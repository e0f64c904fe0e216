/* registry.h - the models this server serves, by name. Routes look a model
 * up here (KServe by the URL's {name}, /classify takes the default one); the
 * server fills it at start-up. It holds one model for now; the multi-model
 * issue fills it from a repository.
 *
 *     registry_t *r = registry_create();
 *     registry_add(r, model, &err);              owner, before publishing r
 *     served_model_t *m = registry_find(r, "resnet50");    any thread
 *     registry_destroy(r);                       destroys the models
 *
 * THREADS: filled by its owner before it is published to the HTTP threads
 * (http_set_registry), read-only afterwards, so lookups need no lock. */
#ifndef RESNETD_REGISTRY_H
#define RESNETD_REGISTRY_H

#include "resnetd/error.h"
#include "served_model.h"

typedef struct registry registry_t;

/* An empty registry, or NULL when out of memory. */
registry_t *registry_create(void);

/* Adds m; the registry owns it from now on (also on failure, when it is
 * destroyed). RD_ERR_ARG when a model of that name is there already,
 * RD_ERR_LIMIT past REGISTRY_MAX_MODELS. The first model added is the
 * default. Not thread-safe: call before publishing the registry. */
#define REGISTRY_MAX_MODELS 16
rd_status_t registry_add(registry_t *r, served_model_t *m, rd_error_t *err);

/* The model called name, or NULL. Thread-safe. */
served_model_t *registry_find(const registry_t *r, const char *name);

/* The default model (for routes whose URL names none), or NULL when empty. */
served_model_t *registry_default(const registry_t *r);

/* Models, and the i-th (0 <= i < count), in the order added. */
int registry_count(const registry_t *r);
served_model_t *registry_at(const registry_t *r, int i);

/* Destroys every model, then the registry. NULL is a no-op. */
void registry_destroy(registry_t *r);

#endif
