/* cli_healthcheck.c - `resnetd healthcheck [--port P] [--bind A]`: GET /readyz
 * on the server's own address (loopback when it binds a wildcard) and exit 0
 * iff the answer is 200; 1 otherwise. For a Docker HEALTHCHECK in an image
 * without curl. Takes serve's config (file, flags, RESNETD_* environment), so
 * it finds the port the server was given. Waits at most 3 seconds. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static int probe(const char *host, int port)
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
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
        static const char get[] = "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n";
        char line[64] = {0};
        if (write(fd, get, sizeof get - 1) == (ssize_t)(sizeof get - 1) &&
            read(fd, line, sizeof line - 1) >= 12)
            rc = !strncmp(line, "HTTP/1.", 7) && !strncmp(line + 8, " 200", 4) ? 0 : 1;
    }
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
    int rc = probe(host, cfg.port);
    printf("%s\n", rc == 0 ? "ready" : "not ready");
    return rc;
}
