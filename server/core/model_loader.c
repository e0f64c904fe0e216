/* model_loader.c - the repository's models into the registry, and the
 * loader thread of the poll and explicit modes (see model_loader.h). */
#include "model_loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "model_repo.h"
#include "warmup.h"

#define QUEUE_MAX 16

/* The files a model's published versions came from (poll mode compares). */
typedef struct {
    char name[REPO_NAME_MAX]; /* the repository folder (the served name) */
    repo_version_t v[REPO_MAX_VERSIONS];
    int n;
    repo_version_t failed; /* the last file that failed to load: not retried until it changes */
} loaded_t;

typedef struct {
    model_op_t op;
    char name[REPO_NAME_MAX];
    model_done_fn done;
    void *ctx;
} command_t;

struct model_loader {
    model_loader_params_t p; /* read-only */
    bool poll, explicit_mode;
    /* the loader thread's (load_all's before the thread starts) */
    loaded_t loaded[REPO_MAX_MODELS];
    int n_loaded;
    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a command was queued, or stop */
    command_t queue[QUEUE_MAX];
    int n_queue;
    bool stop;
    /* owner-only */
    pthread_t thread;
    bool started;
};

rd_status_t model_loader_create(const model_loader_params_t *params, model_loader_t **out,
                                rd_error_t *err)
{
    model_loader_t *l = calloc(1, sizeof *l);
    if (!(*out = l))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    l->p = *params;
    l->poll = !strcmp(params->cfg->model_control_mode, "poll");
    l->explicit_mode = !strcmp(params->cfg->model_control_mode, "explicit");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    if (params->cfg->default_model[0])
        registry_set_default(params->registry, params->cfg->default_model);
    return RD_OK;
}

bool model_loader_explicit(const model_loader_t *l)
{
    return l->explicit_mode;
}

static loaded_t *find_loaded(model_loader_t *l, const char *name)
{
    for (int i = 0; i < l->n_loaded; i++)
        if (!strcmp(l->loaded[i].name, name))
            return &l->loaded[i];
    if (l->n_loaded == REPO_MAX_MODELS)
        return NULL;
    loaded_t *ld = &l->loaded[l->n_loaded++];
    memset(ld, 0, sizeof *ld);
    snprintf(ld->name, sizeof ld->name, "%s", name);
    return ld;
}

static void forget(model_loader_t *l, loaded_t *ld)
{
    *ld = l->loaded[--l->n_loaded];
}

/* Resident set size of the process, bytes (0 when /proc is not there). */
static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The memory of every published version (their estimates), bytes. */
static uint64_t models_memory(model_loader_t *l)
{
    served_model_t *models[REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS];
    int n = registry_snapshot(l->p.registry, models, REGISTRY_MAX_MODELS * REGISTRY_MAX_VERSIONS);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        sum += atomic_load(&served_model_stats(models[i])->memory_bytes);
        served_model_unref(models[i]);
    }
    return sum;
}

/* max_models_memory_mb: refuses a load that would pass it, before loading
 * (the weights take at least the file's size) and after the warm-up (what
 * it took). */
static rd_status_t check_memory(model_loader_t *l, const repo_version_t *v, uint64_t more,
                                rd_error_t *err)
{
    uint64_t limit = (uint64_t)l->p.cfg->max_models_memory_mb << 20, used = models_memory(l);
    if (!limit || used + more <= limit)
        return RD_OK;
    return rd_error_set(err, RD_ERR_LIMIT, "%s: refused: with it, models would use %llu MB, over "
                        "max_models_memory_mb %d (loaded versions use %llu MB)", v->path,
                        (unsigned long long)((used + more) >> 20),
                        l->p.cfg->max_models_memory_mb, (unsigned long long)(used >> 20));
}

static void log_loaded(model_loader_t *l, const char *name, int version, engine_t *engine,
                       const model_preproc_t *pp, double seconds)
{
    const model_info_t *mi = engine_info(engine);
    log_msg(l->p.log, LOG_LEVEL_INFO, "model %s version %d (%s, %d classes, input %dx%d) loaded "
            "in %.2f s", name, version, mi->arch, mi->n_classes, pp->input_h, pp->input_w, seconds);
    log_msg(l->p.log, LOG_LEVEL_INFO, "model %s (%s) runs in %s on %s", name, mi->arch,
            engine_precision_name(mi->precision), engine_isa_name());
    const char *note = engine_precision_note(engine);
    if (note[0])
        log_msg(l->p.log, strncmp(note, "warning", 7) ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "%s", note);
}

/* Loads, warms up and publishes one version; the served name is rm's (the
 * file's own when rm has none). Off the request path: requests keep going
 * to what is published until registry_publish swaps it in. */
static rd_status_t load_version(model_loader_t *l, const repo_model_t *rm,
                                const repo_version_t *v, rd_error_t *err)
{
    engine_params_t ep = config_engine_params(&rm->cfg);
    engine_t *engine;
    if (check_memory(l, v, v->size > 0 ? (uint64_t)v->size : 0, err) != RD_OK)
        return RD_ERR_LIMIT;
    uint64_t rss0 = rss_bytes();
    int64_t t0 = clock_now_ns();
    if (engine_load(v->path, &ep, &engine, err) != RD_OK)
        return rd_error_prefix(err, "loading the model");
    double seconds = (double)(clock_now_ns() - t0) / 1e9;
    metrics_gauge_set(l->p.metrics, METRICS_G_MODEL_LOAD, seconds);
    const model_info_t *mi = engine_info(engine);
    const char *name = rm->name[0] ? rm->name : mi->name;
    model_preproc_t pp = mi->preproc;
    config_apply_preproc(&rm->cfg, &pp);
    log_loaded(l, name, v->version, engine, &pp, seconds);
    warmup_result_t w;
    if (warmup_run(engine, rm->cfg.max_batch_size, &w, err) != RD_OK) {
        engine_free(engine);
        return rd_error_prefix(err, "model %s: warm-up", name);
    }
    metrics_gauge_set(l->p.metrics, METRICS_G_MODEL_WARMUP, w.seconds);
    uint64_t rss1 = rss_bytes(), memory = rss1 > rss0 ? rss1 - rss0 : 0;
    if (check_memory(l, v, memory, err) != RD_OK) {
        engine_free(engine);
        return RD_ERR_LIMIT;
    }
    log_msg(l->p.log, LOG_LEVEL_INFO, "model %s version %d warmed up in %.2f s (%d runs, batch "
            "1..%d)", name, v->version, w.seconds, w.runs, w.largest);
    batcher_params_t bp = batcher_default_params();
    bp.max_batch_size = rm->cfg.max_batch_size;
    bp.max_queue_delay_us = rm->cfg.max_queue_delay_us;
    bp.max_queue_length = rm->cfg.max_queue_length;
    served_model_t *m;
    rd_status_t st = served_model_create(engine, name, &pp, &bp, l->p.metrics, &m, err);
    if (st != RD_OK)
        return st;
    served_model_set_version(m, v->version);
    model_stats_t *stats = served_model_stats(m);
    atomic_store(&stats->load_ns, (uint64_t)(seconds * 1e9));
    atomic_store(&stats->warmup_ns, (uint64_t)(w.seconds * 1e9));
    atomic_store(&stats->memory_bytes, memory);
    if ((st = registry_publish(l->p.registry, m, err)) != RD_OK)
        return st;
    log_msg(l->p.log, LOG_LEVEL_INFO, "model %s version %d is serving", name, v->version);
    loaded_t *ld = find_loaded(l, name);
    for (int i = 0; ld && i <= ld->n && i < REPO_MAX_VERSIONS; i++)
        if (i == ld->n || ld->v[i].version == v->version) {
            ld->v[i] = *v;
            ld->n += i == ld->n;
            break;
        }
    return RD_OK;
}

/* Takes every version of ld out of service: 503 while the requests holding
 * them finish (bounded by drain_timeout_s), then gone (404), then freed by
 * the last reference. */
static void unload(model_loader_t *l, loaded_t *ld, const char *why)
{
    served_model_t *held[REPO_MAX_VERSIONS];
    int n = 0;
    for (int i = 0; i < ld->n; i++)
        if (registry_acquire(l->p.registry, ld->name, ld->v[i].version, &held[n]) ==
            REGISTRY_FOUND)
            n++;
    registry_retire(l->p.registry, ld->name, 0, false, why);
    int64_t deadline = clock_now_ns() + (int64_t)l->p.cfg->drain_timeout_s * 1000000000;
    struct timespec tick = {0, 5 * 1000000};
    for (int i = 0; i < n; i++)
        while (served_model_refs(held[i]) > 1 && clock_now_ns() < deadline)
            nanosleep(&tick, NULL);
    for (int i = 0; i < n; i++)
        served_model_unref(held[i]);
    registry_retire(l->p.registry, ld->name, 0, true, NULL);
    log_msg(l->p.log, LOG_LEVEL_INFO, "model %s unloaded (%s)", ld->name, why);
    forget(l, ld);
}

static bool wanted(const repo_model_t *rm, const repo_version_t *v)
{
    for (int i = 0; i < rm->n_versions; i++)
        if (rm->versions[i].version == v->version)
            return true;
    return false;
}

/* Brings model name in line with its folder: loads new versions and
 * replaced files, retires versions the policy no longer keeps. */
static rd_status_t sync_model(model_loader_t *l, const char *name, rd_error_t *err)
{
    repo_model_t *rm = malloc(sizeof *rm);
    if (!rm)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    rd_status_t st = repo_read_model(l->p.cfg->model_repository, name, l->p.cfg, rm, err);
    loaded_t *ld = find_loaded(l, name);
    if (st == RD_OK && !ld)
        st = rd_error_set(err, RD_ERR_LIMIT, "more than %d models", REPO_MAX_MODELS);
    for (int i = 0; st == RD_OK && i < rm->n_versions; i++) {
        const repo_version_t *v = &rm->versions[i];
        /* poll: a file that failed is retried once it changes; explicit: on every request */
        bool same = l->poll && ld->failed.version == v->version && repo_same_file(&ld->failed, v);
        for (int j = 0; j < ld->n; j++)
            same = same || (ld->v[j].version == v->version && repo_same_file(&ld->v[j], v));
        if (same)
            continue;
        if (!ld->n)
            registry_set_state(l->p.registry, name, REGISTRY_LOADING, NULL);
        if ((st = load_version(l, rm, v, err)) != RD_OK)
            ld->failed = *v;
    }
    for (int j = 0; st == RD_OK && j < ld->n;) {
        if (wanted(rm, &ld->v[j])) {
            j++;
            continue;
        }
        log_msg(l->p.log, LOG_LEVEL_INFO, "model %s version %d retired (version policy)", name,
                ld->v[j].version);
        registry_retire(l->p.registry, name, ld->v[j].version, false, NULL);
        ld->v[j] = ld->v[--ld->n];
    }
    free(rm);
    if (st != RD_OK) {
        log_msg(l->p.log, LOG_LEVEL_ERROR, "model %s: load failed: %s", name, err->msg);
        /* kept without versions, so that poll remembers the failed file */
        registry_set_state(l->p.registry, name, REGISTRY_UNAVAILABLE_STATE, err->msg);
    }
    return st;
}

rd_status_t model_loader_load_all(model_loader_t *l, rd_error_t *err)
{
    const config_t *cfg = l->p.cfg;
    if (!cfg->model_repository[0]) {
        if (cfg->model_name[0] && engine_check_model_name(cfg->model_name, err) != RD_OK)
            return rd_error_prefix(err, "model_name");
        repo_model_t *rm = malloc(sizeof *rm);
        rd_status_t st = rm ? repo_single(cfg, rm, err)
                            : rd_error_set(err, RD_ERR_NOMEM, "out of memory");
        if (st == RD_OK)
            st = load_version(l, rm, &rm->versions[0], err);
        free(rm);
        return st;
    }
    char (*names)[REPO_NAME_MAX] = malloc(REPO_MAX_MODELS * sizeof *names);
    int n = 0;
    rd_status_t st = names ? repo_list(cfg->model_repository, names, REPO_MAX_MODELS, &n, err)
                           : rd_error_set(err, RD_ERR_NOMEM, "out of memory");
    for (int i = 0; st == RD_OK && i < n; i++)
        registry_set_state(l->p.registry, names[i], REGISTRY_LOADING, NULL);
    for (int i = 0; st == RD_OK && i < n; i++)
        st = sync_model(l, names[i], err);
    if (st == RD_OK && n == 0)
        st = rd_error_set(err, RD_ERR_ARG, "model_repository %s: no model folder",
                          cfg->model_repository);
    free(names);
    return st;
}

/* poll mode: one rescan. */
static void poll_once(model_loader_t *l)
{
    char (*names)[REPO_NAME_MAX] = malloc(REPO_MAX_MODELS * sizeof *names);
    int n = 0;
    rd_error_t err = {0};
    if (!names || repo_list(l->p.cfg->model_repository, names, REPO_MAX_MODELS, &n, &err)) {
        log_msg(l->p.log, LOG_LEVEL_ERROR, "poll: %s", names ? err.msg : "out of memory");
        free(names);
        return;
    }
    for (int i = 0; i < n; i++)
        (void)sync_model(l, names[i], &err); /* logged and shown in the index */
    for (int i = 0; i < l->n_loaded;) {
        bool listed = false;
        for (int j = 0; j < n; j++)
            listed = listed || !strcmp(names[j], l->loaded[i].name);
        if (listed)
            i++;
        else
            unload(l, &l->loaded[i], "its folder was removed");
    }
    free(names);
}

static void run_command(model_loader_t *l, const command_t *c)
{
    rd_error_t err = {0};
    rd_status_t st = RD_OK;
    if (c->op == MODEL_LOAD) {
        st = sync_model(l, c->name, &err);
    } else {
        loaded_t *ld = NULL;
        for (int i = 0; i < l->n_loaded; i++)
            if (!strcmp(l->loaded[i].name, c->name))
                ld = &l->loaded[i];
        if (ld)
            unload(l, ld, "unloaded");
        else
            st = rd_error_set(&err, RD_ERR_ARG, "model '%s' is not loaded",
                              c->name);
    }
    c->done(c->ctx, st, &err);
}

static void *loader_main(void *arg)
{
    model_loader_t *l = arg;
    int64_t next_poll = clock_now_ns() + (int64_t)l->p.cfg->repository_poll_s * 1000000000;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->n_queue) {
            command_t c = l->queue[0];
            memmove(&l->queue[0], &l->queue[1], (size_t)--l->n_queue * sizeof c);
            pthread_mutex_unlock(&l->mu);
            run_command(l, &c);
            pthread_mutex_lock(&l->mu);
        } else if (l->poll && clock_now_ns() >= next_poll) {
            pthread_mutex_unlock(&l->mu);
            poll_once(l);
            next_poll = clock_now_ns() + (int64_t)l->p.cfg->repository_poll_s * 1000000000;
            pthread_mutex_lock(&l->mu);
        } else if (l->poll) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (next_poll - clock_now_ns());
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&l->wake, &l->mu, &until);
        } else {
            pthread_cond_wait(&l->wake, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

rd_status_t model_loader_start(model_loader_t *l, rd_error_t *err)
{
    if (!l->poll && !l->explicit_mode)
        return RD_OK;
    if (pthread_create(&l->thread, NULL, loader_main, l))
        return rd_error_set(err, RD_ERR_NOMEM, "cannot start the model loader thread");
    l->started = true;
    log_msg(l->p.log, LOG_LEVEL_INFO, "model control mode %s%s", l->p.cfg->model_control_mode,
            l->poll ? " (rescanning the repository)" : "");
    return RD_OK;
}

rd_status_t model_loader_request(model_loader_t *l, model_op_t op, const char *name,
                                 model_done_fn done, void *ctx, rd_error_t *err)
{
    if (!l->explicit_mode || !l->started)
        return rd_error_set(err, RD_ERR_ARG, "the repository API needs model_control_mode "
                            "explicit");
    if (!name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) >= REPO_NAME_MAX)
        return rd_error_set(err, RD_ERR_ARG, "'%.100s' is not a model folder name", name);
    rd_status_t st = RD_OK;
    pthread_mutex_lock(&l->mu);
    if (l->n_queue == QUEUE_MAX || l->stop) {
        st = rd_error_set(err, RD_ERR_LIMIT, "%d load/unload requests are waiting already",
                          QUEUE_MAX);
    } else {
        command_t *c = &l->queue[l->n_queue++];
        *c = (command_t){.op = op, .done = done, .ctx = ctx};
        snprintf(c->name, sizeof c->name, "%s", name);
        pthread_cond_signal(&l->wake);
    }
    pthread_mutex_unlock(&l->mu);
    return st;
}

void model_loader_stop(model_loader_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->thread, NULL);
    l->started = false;
    for (int i = 0; i < l->n_queue; i++) {
        rd_error_t err = {0};
        rd_error_set(&err, RD_ERR_TIMEOUT, "the server is stopping");
        l->queue[i].done(l->queue[i].ctx, RD_ERR_TIMEOUT, &err);
    }
    l->n_queue = 0;
}

void model_loader_destroy(model_loader_t *l)
{
    if (!l)
        return;
    model_loader_stop(l);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
