/* decode_pool.h - the threads that decode requests' images, apart from the
 * HTTP threads, so that an expensive image holds a decoder, not the HTTP
 * thread that answers probes and reads other requests. Work comes in groups:
 * one group is one request's images, n tasks run as fn(ctx, i) in any order,
 * and done(ctx) runs once after the last of them. Fair between groups: a free
 * thread takes the next task of the next group in round-robin order, skipping
 * groups that already run max_per_group tasks, so one request's many or
 * expensive images never hold every decoder while another request's wait.
 *
 *     decode_pool_t *p; decode_pool_create(threads, max_per_group, &p, &err);
 *     decode_pool_submit(p, n_images, decode_one, decoded_all, job, &err);
 *     ... decode_one(job, i) on a pool thread, for each i; then decoded_all(job)
 *     decode_pool_stop(p);     refuses new groups, runs what is queued, joins
 *     decode_pool_destroy(p);  when nobody may submit any more
 *
 * THREADS: a mutex guards the list of groups and each group's counters; a
 * condition variable wakes idle threads. fn and done run on pool threads,
 * outside the lock, possibly several of one group's fn at once (never the
 * same i twice); done runs after every fn of its group has returned.
 * decode_pool_submit is thread-safe; create, stop and destroy are the
 * owner's. stop does not cancel: the tasks still queued run (a caller that wants
 * them short makes fn check its own stop condition, as the decoder's stop
 * hook does), so every done() is called exactly once. */
#ifndef RESNETD_DECODE_POOL_H
#define RESNETD_DECODE_POOL_H

#include "resnetd/error.h"

typedef struct decode_pool decode_pool_t;

typedef void (*decode_pool_task_fn)(void *ctx, int i);
typedef void (*decode_pool_done_fn)(void *ctx);

/* Starts `threads` pool threads (>= 1); max_per_group (>= 1) bounds the tasks
 * of one group that run at once. RD_ERR_ARG, RD_ERR_NOMEM or RD_ERR_IO (a
 * thread could not start); *out is NULL on failure. */
rd_status_t decode_pool_create(int threads, int max_per_group, decode_pool_t **out,
                               rd_error_t *err);

/* Queues n (>= 1) tasks fn(ctx, 0..n-1) and then done(ctx). RD_ERR_NOMEM, or
 * RD_ERR_LIMIT once destroy has begun; nothing runs when it fails.
 * Thread-safe. */
rd_status_t decode_pool_submit(decode_pool_t *p, int n, decode_pool_task_fn fn,
                               decode_pool_done_fn done, void *ctx, rd_error_t *err);

/* Tasks queued or running, of every group. Thread-safe. */
int decode_pool_pending(decode_pool_t *p);

/* The default thread count: the CPUs this process may run on
 * (sched_getaffinity) plus one, so that one request using every core still
 * leaves a decoder for the others; and the default per-request bound: the
 * CPU count. */
int decode_pool_default_threads(void);
int decode_pool_default_per_group(void);

/* Refuses new groups from now on (submit: RD_ERR_LIMIT), lets the queued
 * tasks run and their done() be called, and joins the threads. Idempotent;
 * NULL is a no-op. Not from a pool thread. */
void decode_pool_stop(decode_pool_t *p);

/* decode_pool_stop, then frees. NULL is a no-op. No thread may use p after. */
void decode_pool_destroy(decode_pool_t *p);

#endif
