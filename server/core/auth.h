/* auth.h - the optional bearer token (config key auth_token): checking an
 * "Authorization: Bearer <token>" header value in constant time. Pure
 * functions, no HTTP here; http.c decides which routes are guarded and how
 * a refusal is answered.
 *
 *     auth_t a;
 *     auth_init(&a, cfg->auth_token);          // once, at start-up
 *     if (auth_check(&a, authorization_header) != AUTH_OK) -> 401
 */
#ifndef RESNETD_AUTH_H
#define RESNETD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "resnetd/error.h"

#define AUTH_TOKEN_MAX 256 /* token bytes + 1: tokens are 1..255 characters */

typedef struct {
    bool enabled;                        /* false: every request passes */
    unsigned char token[AUTH_TOKEN_MAX]; /* the token, zero-padded to the full size */
} auth_t;

typedef enum {
    AUTH_OK = 0,      /* auth disabled, or the right token */
    AUTH_MISSING = 1, /* no Authorization header, or not the Bearer scheme */
    AUTH_INVALID = 2, /* Bearer with a wrong (or empty, or too long) token */
} auth_result_t;

/* Sets up a from token ("" or NULL = no auth). token must have passed
 * auth_token_valid; a longer one is cut to AUTH_TOKEN_MAX - 1 bytes (and so
 * never matches a client's). a keeps a copy; token may be freed after. */
void auth_init(auth_t *a, const char *token);

/* Checks an Authorization header value (NULL when absent). The scheme
 * "Bearer" is case-insensitive and followed by one or more spaces; trailing
 * spaces and tabs are ignored; the token must match byte for byte. The
 * comparison always reads all AUTH_TOKEN_MAX bytes of both padded tokens, so
 * its time does not depend on where (or whether) they differ, nor on the
 * configured token's length. Thread-safe (a is only read). */
auth_result_t auth_check(const auth_t *a, const char *authorization);

/* True when a[0..n) equals b[0..n). Reads every byte whatever the contents
 * (accumulated XOR, no early exit). n = 0 gives true. Thread-safe. */
bool auth_ct_equal(const void *a, const void *b, size_t n);

/* RD_OK when token is "" (auth off) or 1..AUTH_TOKEN_MAX-1 characters of
 * RFC 6750's b64token: letters, digits, - . _ ~ + / then optional '='
 * padding. Otherwise RD_ERR_ARG; the message names key but never shows the
 * token. */
rd_status_t auth_token_valid(const char *key, const char *token, rd_error_t *err);

/* When auth is configured in two places that disagree: the environment has
 * both RESNETD_AUTH_TOKEN and its alias RESNETD_TOKEN with different values
 * (an empty one included, which turns auth off). Then writes a warning
 * without either token into msg[0..size) and returns true; RESNETD_AUTH_TOKEN
 * wins (config_apply_env). Reads the environment; not thread-safe against
 * setenv. */
bool auth_env_conflict(char *msg, size_t size);

#endif
