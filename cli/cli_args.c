/* cli_args.c - option-value parsing shared by the subcommands (cli.h). */
#include <stdlib.h>

#include "cli.h"

int cli_parse_int(const char *s, int min, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < min || v > 1000000)
        return -1;
    *out = (int)v;
    return 0;
}
