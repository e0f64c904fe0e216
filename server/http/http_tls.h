/* http_tls.h - loading the TLS certificate and key for the HTTP daemon
 * (see http_tls.c). Internal to server/. */
#ifndef RESNETD_HTTP_TLS_H
#define RESNETD_HTTP_TLS_H

#include <stddef.h>

#include "config.h"
#include "resnetd/error.h"

/* The PEM texts handed to libmicrohttpd, NUL-terminated (it takes strlen). */
typedef struct {
    char *cert, *key;
    size_t key_len;
} tls_pem_t;

/* Reads cfg->tls_cert and cfg->tls_key into *t and checks that they are a PEM
 * certificate (chain) and the unencrypted private key that goes with it.
 * Fails with RD_ERR_ARG (libmicrohttpd without TLS), RD_ERR_IO (unreadable,
 * empty or over 1 MiB), RD_ERR_FORMAT (not PEM, or a key of another
 * certificate), RD_ERR_NOMEM; messages name the key and the file. On failure
 * *t is empty. The caller frees with tls_pem_free. */
rd_status_t tls_load(const config_t *cfg, tls_pem_t *t, rd_error_t *err);

/* Wipes the key text, frees both and empties *t. An empty *t does nothing. */
void tls_pem_free(tls_pem_t *t);

#endif
