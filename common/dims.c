/* dims.c - tensor shapes as text (dims.h). */
#include "dims.h"

#include <stdio.h>
#include <string.h>

const char *dims_format(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t n = 0;
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "[", (long long)dims[i]);
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, "%s]", ndim > 0 ? "" : "[");
    if (n >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return buf;
}
