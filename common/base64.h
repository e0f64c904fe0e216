/* base64.h - a base64 decoder for KServe BYTES elements sent inside JSON. It
 * takes both RFC 4648 alphabets, standard ('+' '/') and URL-safe ('-' '_'),
 * even mixed, with or without '=' padding, since clients send either. */
#ifndef RESNETD_BASE64_H
#define RESNETD_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

/* Decodes text[0..len) into a new buffer (*out, freed by the caller; *out_len
 * bytes). Trailing '=' are dropped whatever their number; whitespace is not
 * allowed; bits left over in the last character are ignored. Returns
 * RD_ERR_FORMAT for a character outside both alphabets or a length of 4n+1
 * characters (without padding), RD_ERR_NOMEM. Thread-safe. */
rd_status_t base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len,
                          rd_error_t *err);

#endif
