/* registry.c - models by name (see registry.h). A small array: a server holds
 * a handful of models, so a linear search by name is the simplest index. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

struct registry {
    served_model_t *models[REGISTRY_MAX_MODELS];
    int n;
};

registry_t *registry_create(void)
{
    return calloc(1, sizeof(registry_t));
}

rd_status_t registry_add(registry_t *r, served_model_t *m, rd_error_t *err)
{
    if (registry_find(r, served_model_name(m))) {
        rd_status_t st = rd_error_set(err, RD_ERR_ARG, "model '%s' is already served",
                                      served_model_name(m));
        served_model_destroy(m);
        return st;
    }
    if (r->n == REGISTRY_MAX_MODELS) {
        served_model_destroy(m);
        return rd_error_set(err, RD_ERR_LIMIT, "more than %d models", REGISTRY_MAX_MODELS);
    }
    r->models[r->n++] = m;
    return RD_OK;
}

served_model_t *registry_find(const registry_t *r, const char *name)
{
    for (int i = 0; r && i < r->n; i++)
        if (!strcmp(served_model_name(r->models[i]), name))
            return r->models[i];
    return NULL;
}

served_model_t *registry_default(const registry_t *r)
{
    return r && r->n ? r->models[0] : NULL;
}

int registry_count(const registry_t *r)
{
    return r ? r->n : 0;
}

served_model_t *registry_at(const registry_t *r, int i)
{
    return r->models[i];
}

void registry_destroy(registry_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        served_model_destroy(r->models[i]);
    free(r);
}
