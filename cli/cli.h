/* cli.h - the resnetd subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status; main.c
 * dispatches to them and is the only place that exits. */
#ifndef RESNETD_CLI_H
#define RESNETD_CLI_H

int cli_bench(int argc, char **argv);
int cli_calibrate(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_classify(int argc, char **argv);
int cli_healthcheck(int argc, char **argv);

/* An integer in [min, 1000000] that is all of s: 0 with *out set, else -1. */
int cli_parse_int(const char *s, int min, int *out);

#endif
