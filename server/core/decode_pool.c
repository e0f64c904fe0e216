/* decode_pool.c - the decoding threads and their fair pick between requests
 * (see decode_pool.h). A group stays on the pick list while it has tasks not
 * yet handed out; the thread that finishes its last task calls done() and
 * frees it. A free thread takes a task of the group that runs the fewest
 * (ties: the one served least recently, as a picked group moves to the back
 * of the list), never one already running max_per_group. THREADS: as in decode_pool.h; `lock` guards everything below it
 * in struct decode_pool and the counters of every group. */
#include "decode_pool.h"
#include "cpu_quota.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct group {
    struct group *prev, *next; /* the pick list, while next_task < n */
    decode_pool_task_fn fn;
    decode_pool_done_fn done;
    void *ctx;
    int n;
    int next_task; /* the next i to hand out */
    int running;   /* handed out, not yet returned */
    int finished;  /* returned */
} group_t;

struct decode_pool {
    int n_threads;
    int max_per_group;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a task may have become runnable, or stopping */
    group_t *head, *tail; /* groups with tasks to hand out, least recently served first */
    int pending;          /* tasks queued or running */
    bool stopping;
};

static void unlink_group(decode_pool_t *p, group_t *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        p->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        p->tail = g->prev;
    g->prev = g->next = NULL;
}

static void append_group(decode_pool_t *p, group_t *g)
{
    g->prev = p->tail;
    g->next = NULL;
    if (p->tail)
        p->tail->next = g;
    else
        p->head = g;
    p->tail = g;
}

/* The runnable group running the fewest tasks, the first in the list among
 * equals; NULL if none may run one more. */
static group_t *pick(decode_pool_t *p)
{
    group_t *best = NULL;
    for (group_t *g = p->head; g; g = g->next)
        if (g->running < p->max_per_group && (!best || g->running < best->running))
            best = g;
    return best;
}

static void *pool_thread(void *arg)
{
    decode_pool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        group_t *g = pick(p);
        if (!g) {
            if (p->stopping && !p->head)
                break;
            pthread_cond_wait(&p->work, &p->lock);
            continue;
        }
        int i = g->next_task++;
        g->running++;
        unlink_group(p, g);
        if (g->next_task < g->n)
            append_group(p, g); /* to the back: the others come first among equals */
        else if (p->stopping && !p->head)
            pthread_cond_broadcast(&p->work); /* the idle threads may exit now */
        pthread_mutex_unlock(&p->lock);
        g->fn(g->ctx, i);
        pthread_mutex_lock(&p->lock);
        g->running--;
        p->pending--;
        bool last = ++g->finished == g->n;
        if (p->head) /* a group may run one more now */
            pthread_cond_signal(&p->work);
        if (last) {
            pthread_mutex_unlock(&p->lock);
            g->done(g->ctx);
            free(g);
            pthread_mutex_lock(&p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

rd_status_t decode_pool_create(int threads, int max_per_group, decode_pool_t **out,
                               rd_error_t *err)
{
    *out = NULL;
    if (threads < 1 || max_per_group < 1)
        return rd_error_set(err, RD_ERR_ARG, "decode pool: %d threads, %d per request (>= 1)",
                            threads, max_per_group);
    decode_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)threads, sizeof *p->threads))) {
        free(p);
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for the decode pool");
    }
    p->max_per_group = max_per_group;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (; p->n_threads < threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_thread, p) != 0) {
            decode_pool_destroy(p);
            return rd_error_set(err, RD_ERR_IO, "decode pool: cannot start thread %d of %d",
                                p->n_threads + 1, threads);
        } else {
            pthread_setname_np(p->threads[p->n_threads], "resnetd-decode"); /* top, perf */
        }
    *out = p;
    return RD_OK;
}

rd_status_t decode_pool_submit(decode_pool_t *p, int n, decode_pool_task_fn fn,
                               decode_pool_done_fn done, void *ctx, rd_error_t *err)
{
    if (n < 1)
        return rd_error_set(err, RD_ERR_ARG, "decode pool: %d tasks", n);
    group_t *g = calloc(1, sizeof *g);
    if (!g)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory queueing %d decodes", n);
    *g = (group_t){.fn = fn, .done = done, .ctx = ctx, .n = n};
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        free(g);
        return rd_error_set(err, RD_ERR_LIMIT, "server shutting down");
    }
    append_group(p, g);
    p->pending += n;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return RD_OK;
}

int decode_pool_pending(decode_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int decode_pool_default_per_group(void)
{
    cpu_quota_t q; /* the affinity mask, capped by a cgroup CPU quota */
    cpu_quota_read("/", cpu_quota_affinity(), &q);
    return q.cpus;
}

int decode_pool_default_threads(void)
{
    return decode_pool_default_per_group() + 1;
}

void decode_pool_stop(decode_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

void decode_pool_destroy(decode_pool_t *p)
{
    if (!p)
        return;
    decode_pool_stop(p);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
