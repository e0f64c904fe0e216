/* cli_serve.c - `resnetd serve [OPTIONS]`: loads the config, starts the
 * server, waits for SIGTERM or SIGINT, drains and returns 0 (1 when the drain
 * timed out or start-up failed, 2 for bad options). Signals are blocked in
 * every thread (the mask is set before any thread exists) and taken with
 * sigwait here, so no work happens in a signal handler. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

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
    if (server_create(&cfg, &srv, &err) != RD_OK) {
        fprintf(stderr, "resnetd serve: %s\n", err.msg);
        return 1;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    int rc = server_drain(srv, &err) == RD_OK ? 0 : 1;
    server_destroy(srv);
    return rc;
}
