/* cli_convert.c - placeholder until written. */
#include "cli.h"
int cli_convert(int argc, char **argv) { (void)argc; (void)argv; return 1; }
