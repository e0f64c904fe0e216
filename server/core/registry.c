/* registry.c - models by name, each with its versions (see registry.h). A
 * small array: a server holds a handful of models, so a linear search by
 * name is the simplest index. */
#include "registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[128];
    served_model_t *versions[REGISTRY_MAX_VERSIONS]; /* ascending; one reference each */
    int n;
    registry_state_t state;
    char reason[256]; /* why the last load failed or the model is unavailable; "" = none */
} entry_t;

struct registry {
    pthread_mutex_t mu; /* guards everything below */
    entry_t models[REGISTRY_MAX_MODELS];
    int n;
    char default_name[128];
};

registry_t *registry_create(void)
{
    registry_t *r = calloc(1, sizeof *r);
    if (r)
        pthread_mutex_init(&r->mu, NULL);
    return r;
}

void registry_set_default(registry_t *r, const char *default_name)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->default_name, sizeof r->default_name, "%s", default_name ? default_name : "");
    pthread_mutex_unlock(&r->mu);
}

/* Under mu. */
static entry_t *find(registry_t *r, const char *name)
{
    if (!name || !name[0])
        name = r->default_name[0] ? r->default_name : r->n ? r->models[0].name : "";
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->models[i].name, name))
            return &r->models[i];
    return NULL;
}

/* Under mu: the entry called name, created (LOADING) when missing; NULL when full. */
static entry_t *find_or_add(registry_t *r, const char *name)
{
    entry_t *e = name[0] ? find(r, name) : NULL;
    if (e || r->n == REGISTRY_MAX_MODELS)
        return e;
    e = &r->models[r->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

rd_status_t registry_publish(registry_t *r, served_model_t *m, rd_error_t *err)
{
    served_model_t *old = NULL;
    rd_status_t st = RD_OK;
    int v = served_model_version(m);
    pthread_mutex_lock(&r->mu);
    entry_t *e = find_or_add(r, served_model_name(m));
    int i = 0;
    while (e && i < e->n && served_model_version(e->versions[i]) < v)
        i++;
    if (!e) {
        st = rd_error_set(err, RD_ERR_LIMIT, "more than %d models", REGISTRY_MAX_MODELS);
    } else if (i < e->n && served_model_version(e->versions[i]) == v) {
        old = e->versions[i]; /* replaced: new requests go to m from now on */
        e->versions[i] = m;
    } else if (e->n == REGISTRY_MAX_VERSIONS) {
        st = rd_error_set(err, RD_ERR_LIMIT, "model '%s': more than %d versions", e->name,
                          REGISTRY_MAX_VERSIONS);
    } else {
        memmove(&e->versions[i + 1], &e->versions[i], (size_t)(e->n - i) * sizeof e->versions[0]);
        e->versions[i] = m;
        e->n++;
    }
    if (st == RD_OK) {
        e->state = REGISTRY_READY;
        e->reason[0] = 0;
    }
    pthread_mutex_unlock(&r->mu);
    served_model_unref(st == RD_OK ? old : m);
    return st;
}

rd_status_t registry_add(registry_t *r, served_model_t *m, rd_error_t *err)
{
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, served_model_name(m));
    bool taken = e && !strcmp(e->name, served_model_name(m)) && e->n > 0;
    pthread_mutex_unlock(&r->mu);
    if (taken) {
        rd_status_t st = rd_error_set(err, RD_ERR_ARG, "model '%s' is already served",
                                      served_model_name(m));
        served_model_unref(m);
        return st;
    }
    return registry_publish(r, m, err);
}

void registry_retire(registry_t *r, const char *name, int version, bool remove,
                     const char *reason)
{
    served_model_t *gone[REGISTRY_MAX_VERSIONS];
    int n_gone = 0;
    pthread_mutex_lock(&r->mu);
    entry_t *e = name[0] ? find(r, name) : NULL;
    for (int i = 0; e && i < e->n;) {
        if (version && served_model_version(e->versions[i]) != version) {
            i++;
            continue;
        }
        gone[n_gone++] = e->versions[i];
        memmove(&e->versions[i], &e->versions[i + 1], (size_t)(e->n - i - 1) * sizeof gone[0]);
        e->n--;
    }
    if (e && remove) {
        *e = r->models[--r->n];
    } else if (e && !e->n) {
        e->state = REGISTRY_UNAVAILABLE_STATE;
        snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n_gone; i++) /* outside mu: the last reference frees */
        served_model_unref(gone[i]);
}

void registry_set_state(registry_t *r, const char *name, registry_state_t state,
                        const char *reason)
{
    pthread_mutex_lock(&r->mu);
    entry_t *e = find_or_add(r, name);
    if (e) {
        if (!e->n)
            e->state = state;
        snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    }
    pthread_mutex_unlock(&r->mu);
}

registry_lookup_t registry_acquire(registry_t *r, const char *name, int version,
                                   served_model_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    registry_lookup_t found = !e ? REGISTRY_NO_MODEL : !e->n ? REGISTRY_UNAVAILABLE
                                                             : REGISTRY_NO_VERSION;
    for (int i = e ? e->n - 1 : -1; i >= 0 && found == REGISTRY_NO_VERSION; i--)
        if (!version || served_model_version(e->versions[i]) == version) {
            *out = served_model_ref(e->versions[i]);
            found = REGISTRY_FOUND;
        }
    pthread_mutex_unlock(&r->mu);
    return found;
}

void registry_names(registry_t *r, char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s'%s'", i ? ", " : "", r->models[i].name);
    pthread_mutex_unlock(&r->mu);
}

int registry_versions(registry_t *r, const char *name, int *versions, int max)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    for (int i = 0; e && i < e->n && n < max; i++)
        versions[n++] = served_model_version(e->versions[i]);
    pthread_mutex_unlock(&r->mu);
    return n;
}

int registry_snapshot(registry_t *r, served_model_t **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->models[i].n && n < max; j++)
            out[n++] = served_model_ref(r->models[i].versions[j]);
    pthread_mutex_unlock(&r->mu);
    return n;
}

bool registry_all_ready(registry_t *r)
{
    pthread_mutex_lock(&r->mu);
    bool ready = r->n > 0;
    for (int i = 0; i < r->n; i++)
        ready = ready && r->models[i].n > 0;
    pthread_mutex_unlock(&r->mu);
    return ready;
}

static const char *state_name(registry_state_t s)
{
    return s == REGISTRY_READY ? "READY" : s == REGISTRY_LOADING ? "LOADING" : "UNAVAILABLE";
}

json_t *registry_index(registry_t *r)
{
    json_t *rows = json_array();
    pthread_mutex_lock(&r->mu);
    for (int i = 0; rows && i < r->n; i++) {
        const entry_t *e = &r->models[i];
        for (int j = 0; j < e->n; j++) {
            char v[16];
            snprintf(v, sizeof v, "%d", served_model_version(e->versions[j]));
            json_t *row = json_pack("{s:s, s:s, s:s}", "name", e->name, "version", v, "state",
                                    "READY");
            if (row && e->reason[0])
                json_object_set_new(row, "reason", json_string(e->reason));
            json_array_append_new(rows, row);
        }
        if (!e->n)
            json_array_append_new(rows, json_pack("{s:s, s:s, s:s}", "name", e->name, "state",
                                                  state_name(e->state), "reason", e->reason));
    }
    pthread_mutex_unlock(&r->mu);
    return rows;
}

int registry_count(registry_t *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void registry_destroy(registry_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->models[i].n; j++)
            served_model_unref(r->models[i].versions[j]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
