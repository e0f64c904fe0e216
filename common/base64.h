/* base64.h - standard base64 (RFC 4648, '+' '/', '=' padding optional) for
 * KServe BYTES elements sent inside JSON. */
#ifndef RESNETD_BASE64_H
#define RESNETD_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "resnetd/error.h"

/* Decodes text[0..len) into a new buffer (*out, freed by the caller; *out_len
 * bytes). Whitespace is not allowed. Returns RD_ERR_FORMAT for a character
 * outside the alphabet or a bad length/padding, RD_ERR_NOMEM. Thread-safe. */
rd_status_t base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len,
                          rd_error_t *err);

#endif
