/* main.c - the resnetd binary: dispatches `resnetd COMMAND [ARGS]` to the
 * subcommands in cli_*.c. The only file that decides the process exit code. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"bench", cli_bench, "measure engine throughput on a model (JSON figures)"},
    {"calibrate", cli_calibrate, "make an INT8-ready copy of a model from sample JPEGs"},
    {"convert", cli_convert, "convert a TF.js Keras ResNet-50 to resnetd safetensors"},
    {"serve", cli_serve, "serve POST /classify, KServe v2, health and metrics over HTTP"},
    {"classify", cli_classify, "classify JPEG files offline; prints the /classify JSON"},
    {"healthcheck", cli_healthcheck, "exit 0 iff the local server's /readyz answers 200"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: resnetd COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`resnetd COMMAND --help` describes a command's options.\n"
                 "  --help     this text\n  --version  print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("resnetd %s\n", RESNETD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "resnetd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
