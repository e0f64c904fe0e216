/* cli_serve.c - `resnetd serve [OPTIONS]`: loads the config, starts the
 * server, waits for SIGTERM or SIGINT, drains and returns 0 (1 when the drain
 * timed out or start-up failed, 2 for bad options). Signals are blocked in
 * every thread (the mask is set before any thread exists) and taken with
 * sigwait here, so no work happens in a signal handler. The model loads on a
 * thread of its own while this one waits for a signal too: a model path on a
 * FIFO or a stuck disk must not make the process deaf to SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "server.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: resnetd serve [--config FILE] [OPTIONS]\n\n"
                 "Serves POST /classify, KServe v2, /healthz, /readyz and /metrics.\n"
                 "Options (flag, environment variable, default):\n");
    config_print_keys(out);
}

/* The loader thread's job; heap-allocated, and deliberately left behind (not
 * freed) when a signal ends the process while the load is still blocked. */
typedef struct {
    server_t *srv;
    rd_error_t err;
    rd_status_t st;
    atomic_bool done;
} load_job_t;

static void *load_main(void *arg)
{
    load_job_t *job = arg;
    job->st = server_load(job->srv, &job->err);
    atomic_store(&job->done, true);
    return NULL;
}

/* Waits for the load or a signal: 0 when the load ended (job->st says how),
 * else the signal. */
static int wait_load(load_job_t *job, const sigset_t *stop)
{
    struct timespec tick = {0, 20 * 1000000};
    while (!atomic_load(&job->done)) {
        int sig = sigtimedwait(stop, NULL, &tick);
        if (sig > 0)
            return sig;
    }
    return 0;
}

int cli_serve(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    config_t cfg;
    rd_error_t err = {0};
    if (config_load(argc, argv, &cfg, &err) != RD_OK) {
        fprintf(stderr, "resnetd serve: %s\n", err.msg);
        return 2;
    }
    server_t *srv;
    if (server_start(&cfg, &srv, &err) != RD_OK) {
        fprintf(stderr, "resnetd serve: %s\n", err.msg);
        return 1;
    }
    load_job_t *job = calloc(1, sizeof *job);
    if (job)
        job->srv = srv;
    pthread_t loader;
    if (!job || pthread_create(&loader, NULL, load_main, job) != 0) {
        fprintf(stderr, "resnetd serve: cannot start the model loader\n");
        free(job);
        server_destroy(srv);
        return 1;
    }
    int sig = wait_load(job, &stop);
    if (sig && !atomic_load(&job->done)) {
        /* the load goes on (or is blocked): nothing was accepted that needs
         * the model, and server_load never touches the daemon it stops */
        server_abandon(srv);
        fprintf(stderr, "resnetd serve: %s while the model was loading; exiting\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        pthread_detach(loader);
        return 1;
    }
    pthread_join(loader, NULL);
    rd_status_t st = job->st;
    if (st != RD_OK)
        fprintf(stderr, "resnetd serve: %s\n", job->err.msg);
    free(job);
    if (st != RD_OK) {
        server_destroy(srv);
        return 1;
    }
    server_ready(srv);
    if (!sig) /* else the signal came as the load ended: drain at once */
        sigwait(&stop, &sig);
    int rc = server_drain(srv, &err) == RD_OK ? 0 : 1;
    server_destroy(srv);
    return rc;
}
