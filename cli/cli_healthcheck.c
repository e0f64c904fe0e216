/* cli_healthcheck.c - `resnetd healthcheck [--port P] [--bind A]`: GET /readyz
 * on the server's own address (loopback when it binds a wildcard) and exit 0
 * iff the answer is 200; 1 otherwise. For a Docker HEALTHCHECK in an image
 * without curl. Takes serve's config (file, flags, RESNETD_* environment), so
 * it finds the port the server was given, and speaks HTTPS when tls_cert is
 * set (a TLS server answers nothing to plain HTTP). Waits at most about 3
 * seconds per step (connect, handshake, read). */
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static const char get_readyz[] = "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n";

/* 0 iff the first line of the answer in line[0..n) is an HTTP 200. */
static int status_200(const char *line, size_t n)
{
    return n >= 12 && !strncmp(line, "HTTP/1.", 7) && !strncmp(line + 8, " 200", 4) ? 0 : 1;
}

static int exchange_plain(int fd)
{
    char line[64] = {0};
    size_t n = 0;
    if (write(fd, get_readyz, sizeof get_readyz - 1) != (ssize_t)(sizeof get_readyz - 1))
        return 1;
    while (n < 12) { /* the status line may come in pieces; the socket timeout bounds each read */
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    return status_200(line, n);
}

/* The same over TLS. The trust anchors are the server's own tls_cert file
 * (self-signed, or the leaf and its chain): the probe dials loopback, so it
 * checks that the peer holds the configured certificate's key rather than
 * trusting the system CAs. The host name is not checked, since the certificate
 * names the public host and the probe dials 127.0.0.1 or ::1; an expired or
 * not-yet-valid certificate still fails, as it would for every client. */
static int exchange_tls(int fd, const char *ca_file)
{
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_session_t session = NULL;
    const char *step = "credentials";
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc >= 0) {
        step = "reading tls_cert as the CA";
        rc = gnutls_certificate_set_x509_trust_file(cred, ca_file, GNUTLS_X509_FMT_PEM);
        if (rc == 0)
            rc = GNUTLS_E_NO_CERTIFICATE_FOUND;
    }
    if (rc >= 0) {
        step = "session";
        rc = gnutls_init(&session, GNUTLS_CLIENT);
    }
    if (rc >= 0 && (rc = gnutls_set_default_priority(session)) >= 0 &&
        (rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred)) >= 0) {
        gnutls_session_set_verify_cert(session, NULL, 0); /* chain only: see above */
        gnutls_transport_set_int(session, fd);
        gnutls_handshake_set_timeout(session, 3000);
        step = "handshake";
        do /* EAGAIN means the socket timeout ran out: a failure, not a retry */
            rc = gnutls_handshake(session);
        while (rc == GNUTLS_E_INTERRUPTED);
    }
    if (rc >= 0) {
        step = "request";
        do
            rc = (int)gnutls_record_send(session, get_readyz, sizeof get_readyz - 1);
        while (rc == GNUTLS_E_INTERRUPTED);
    }
    char line[64] = {0};
    size_t n = 0;
    while (rc >= 0 && n < 12) {
        step = "answer";
        ssize_t r = gnutls_record_recv(session, line + n, sizeof line - 1 - n);
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0) {
            rc = r == 0 ? 0 : (int)r;
            break;
        }
        n += (size_t)r;
    }
    if (rc < 0)
        fprintf(stderr, "resnetd healthcheck: TLS %s: %s\n", step, gnutls_strerror(rc));
    else
        gnutls_bye(session, GNUTLS_SHUT_WR); /* a clean close, so the server logs no error */
    if (session)
        gnutls_deinit(session);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    return rc < 0 ? 1 : status_200(line, n);
}

static int probe(const char *host, int port, const char *ca_file)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return 1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    int rc = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0)
        rc = ca_file ? exchange_tls(fd, ca_file) : exchange_plain(fd);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

int cli_healthcheck(int argc, char **argv)
{
    config_t cfg;
    rd_error_t err = {0};
    if (config_load(argc, argv, &cfg, &err) != RD_OK) {
        fprintf(stderr, "resnetd healthcheck: %s\n", err.msg);
        return 2;
    }
    const char *host = cfg.bind;
    if (!strcmp(host, "0.0.0.0") || !*host)
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    int rc = probe(host, cfg.port, cfg.tls_cert[0] ? cfg.tls_cert : NULL);
    printf("%s\n", rc == 0 ? "ready" : "not ready");
    return rc;
}
