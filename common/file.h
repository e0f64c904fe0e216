/* file.h - reading a whole file into memory: the one helper behind the
 * offline commands' image files and the TLS certificate and key. */
#ifndef RESNETD_FILE_H
#define RESNETD_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

/* Reads the file at path into a new buffer (*data, freed by the caller; *len
 * bytes, followed by a NUL that *len does not count). max_bytes > 0 refuses a
 * larger file. Errors name the path: RD_ERR_IO "PATH: cannot open: <why>" or
 * "PATH: <why>" (a read error, e.g. a directory), RD_ERR_LIMIT "PATH: larger
 * than N bytes", RD_ERR_NOMEM. On failure *data is NULL and whatever was read
 * has been wiped (the file may be a private key). Thread-safe. */
rd_status_t file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                          rd_error_t *err);

#endif
