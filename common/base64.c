/* base64.c - the decoder declared in base64.h. */
#include "base64.h"

#include <stdlib.h>

static int value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

rd_status_t base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len,
                          rd_error_t *err)
{
    *out = NULL;
    *out_len = 0;
    while (len > 0 && text[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return rd_error_set(err, RD_ERR_FORMAT, "base64: bad length");
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return rd_error_set(err, RD_ERR_NOMEM, "base64: out of memory");
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value(text[i]);
        if (v < 0) {
            free(buf);
            return rd_error_set(err, RD_ERR_FORMAT, "base64: invalid character at %zu", i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = n;
    return RD_OK;
}
