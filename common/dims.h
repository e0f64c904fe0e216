/* dims.h - formatting a tensor shape for error messages: the one formatter
 * behind the loader's, the TF.js converter's and the planner's shape errors. */
#ifndef RESNETD_DIMS_H
#define RESNETD_DIMS_H

#include <stddef.h>
#include <stdint.h>

/* Room for a 12-d shape of 9-digit sizes; longer shapes are cut short. */
#define DIMS_STR_MAX 128

/* Writes "[a,b,c]" (ndim sizes from dims) into buf (size bytes, at least 1)
 * and returns buf. A shape that does not fit is cut, ending in "...". Any
 * thread. */
const char *dims_format(const int64_t *dims, int ndim, char *buf, size_t size);

#endif
