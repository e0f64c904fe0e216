/* auth.c - bearer token checks (see auth.h). The configured token is kept
 * zero-padded to a fixed size and the presented one is copied into a buffer of
 * the same size, so every check compares the same number of bytes: neither a
 * wrong byte's position nor a length difference changes the time taken. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void auth_init(auth_t *a, const char *token)
{
    memset(a, 0, sizeof *a);
    size_t n = token ? strnlen(token, AUTH_TOKEN_MAX - 1) : 0;
    a->enabled = n > 0;
    memcpy(a->token, token ? token : "", n);
}

bool auth_ct_equal(const void *a, const void *b, size_t n)
{
    /* volatile: keeps the compiler from turning the loop into an early-exit memcmp */
    const volatile unsigned char *pa = a, *pb = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(pa[i] ^ pb[i]);
    return diff == 0;
}

auth_result_t auth_check(const auth_t *a, const char *authorization)
{
    if (!a->enabled)
        return AUTH_OK;
    const char *h = authorization;
    if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t'))
        return AUTH_MISSING;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    /* The presented length is the client's own knowledge: refusing an empty or
     * over-long one at once tells it nothing about the configured token. */
    if (n == 0 || n >= AUTH_TOKEN_MAX)
        return AUTH_INVALID;
    unsigned char given[AUTH_TOKEN_MAX] = {0};
    memcpy(given, h, n);
    return auth_ct_equal(given, a->token, AUTH_TOKEN_MAX) ? AUTH_OK : AUTH_INVALID;
}

static bool b64token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

rd_status_t auth_token_valid(const char *key, const char *token, rd_error_t *err)
{
    size_t n = strlen(token), i = 0;
    if (n == 0)
        return RD_OK;
    while (i < n && b64token_char(token[i]))
        i++;
    size_t body = i;
    while (i < n && token[i] == '=')
        i++;
    if (n >= AUTH_TOKEN_MAX || body == 0 || i != n)
        return rd_error_set(err, RD_ERR_ARG,
                            "%s: must be 1..%d characters of A-Z a-z 0-9 - . _ ~ + / (then "
                            "optional '=' padding), the RFC 6750 token syntax; got %zu bytes "
                            "(the value is not shown)",
                            key, AUTH_TOKEN_MAX - 1, n);
    return RD_OK;
}

bool auth_env_conflict(char *msg, size_t size)
{
    const char *main_token = getenv("RESNETD_AUTH_TOKEN"), *alias = getenv("RESNETD_TOKEN");
    if (!main_token || !alias || !strcmp(main_token, alias))
        return false;
    snprintf(msg, size, "RESNETD_AUTH_TOKEN and RESNETD_TOKEN are both set and differ%s; "
             "RESNETD_AUTH_TOKEN wins, so auth is %s: unset one of them",
             !main_token[0] || !alias[0] ? " (one is empty)" : "",
             main_token[0] ? "on with RESNETD_AUTH_TOKEN's token" : "OFF");
    return true;
}
