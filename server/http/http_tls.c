/* http_tls.c - the TLS files of `resnetd serve` (config tls_cert, tls_key):
 * read, checked with GnuTLS the way libmicrohttpd will load them (so a bad
 * file is reported by name and reason, not as a failed daemon start), and
 * wiped after use. http.c hands the texts to libmicrohttpd.
 * THREADS: no shared state; called once, at start-up. */
#include "http_tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

void tls_pem_free(tls_pem_t *t)
{
    if (t->key)
        explicit_bzero(t->key, t->key_len); /* no key material left in freed heap */
    free(t->key);
    free(t->cert);
    *t = (tls_pem_t){0};
}

/* Reads the whole file at path (what names the key in errors). A PEM chain is
 * a few KiB; the cap only keeps a wrong path (a disk image, /dev/zero) from
 * eating memory. On failure *out is NULL and the partial text is wiped. */
static rd_status_t read_pem(const char *what, const char *path, char **out, size_t *len,
                            rd_error_t *err)
{
    enum { PEM_MAX = 1 << 20 };
    uint8_t *buf;
    rd_status_t st = file_read_all(path, PEM_MAX, &buf, len, err);
    if (st == RD_ERR_LIMIT)
        return rd_error_set(err, RD_ERR_IO, "%s %s: larger than 1 MiB, not a PEM file", what, path);
    if (st == RD_OK && *len == 0) {
        free(buf);
        return rd_error_set(err, RD_ERR_IO, "%s %s: empty file", what, path);
    }
    if (st != RD_OK) { /* "tls_key PATH: cannot open: ..." */
        char msg[RD_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return rd_error_set(err, st, "%s %s", what, msg);
    }
    *out = (char *)buf;
    return RD_OK;
}

rd_status_t tls_load(const config_t *cfg, tls_pem_t *t, rd_error_t *err)
{
    *t = (tls_pem_t){0};
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return rd_error_set(err, RD_ERR_ARG, "tls_cert is set, but this libmicrohttpd was built "
                                             "without TLS (GnuTLS) support");
    size_t cert_len = 0;
    rd_status_t st = read_pem("tls_cert", cfg->tls_cert, &t->cert, &cert_len, err);
    if (st == RD_OK)
        st = read_pem("tls_key", cfg->tls_key, &t->key, &t->key_len, err);
    if (st != RD_OK) {
        tls_pem_free(t);
        return st;
    }
    gnutls_datum_t cert = {(unsigned char *)t->cert, (unsigned)cert_len};
    gnutls_datum_t key = {(unsigned char *)t->key, (unsigned)t->key_len};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n_crts = 0;
    gnutls_x509_privkey_t pk = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    int rc = gnutls_x509_crt_list_import2(&crts, &n_crts, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        st = rd_error_set(err, RD_ERR_FORMAT, "tls_cert %s: not a PEM certificate: %s",
                          cfg->tls_cert, gnutls_strerror(rc));
        goto out;
    }
    if ((rc = gnutls_x509_privkey_init(&pk)) < 0 ||
        (rc = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        st = rd_error_set(err, RD_ERR_FORMAT, "tls_key %s: not an unencrypted PEM private key: %s",
                          cfg->tls_key, gnutls_strerror(rc));
        goto out;
    }
    /* what libmicrohttpd calls: it also checks that the key is the certificate's */
    if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
        (rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL,
                                                   0)) < 0)
        st = rd_error_set(err, RD_ERR_FORMAT, "tls_key %s does not go with tls_cert %s: %s",
                          cfg->tls_key, cfg->tls_cert, gnutls_strerror(rc));
out:
    if (st != RD_OK)
        tls_pem_free(t);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    if (pk)
        gnutls_x509_privkey_deinit(pk);
    for (unsigned i = 0; i < n_crts; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    return st;
}
