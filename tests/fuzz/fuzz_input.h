/* fuzz_input.h - splitting a fuzz input into a header value and a body, for
 * the harnesses whose codec takes one header (Content-Type, or KServe's
 * Inference-Header-Content-Length) besides the body's bytes. */
#ifndef RESNETD_FUZZ_INPUT_H
#define RESNETD_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Splits data at the first '\n': the line before it (NUL-terminated copy in
 * line, at most cap - 1 bytes) and the rest as *body. Returns 0 when there is
 * no '\n' or the line is too long. */
static inline int fuzz_split_line(const uint8_t *data, size_t size, char *line, size_t cap,
                                  const uint8_t **body, size_t *body_len)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || (size_t)(nl - data) >= cap)
        return 0;
    size_t n = (size_t)(nl - data);
    memcpy(line, data, n);
    line[n] = 0;
    *body = nl + 1;
    *body_len = size - n - 1;
    return 1;
}

#endif
