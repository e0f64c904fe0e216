/* fuzz_mhd_stub.h - the request-header lookups the KServe and multipart
 * parsers make, answered from the fuzz input instead of a live libmicrohttpd
 * connection. Defining them in the harness interposes libmicrohttpd's own
 * (the executable's definitions win), for the harness's calls and for the
 * ones MHD_create_post_processor makes inside the library. Every lookup of a
 * header kind returns fuzz_header_value for the header named
 * fuzz_header_name, and NULL otherwise. */
#ifndef RESNETD_FUZZ_MHD_STUB_H
#define RESNETD_FUZZ_MHD_STUB_H

#include <microhttpd.h>
#include <string.h>
#include <strings.h>

static const char *fuzz_header_name;  /* e.g. "Content-Type" */
static const char *fuzz_header_value; /* NULL = the header is absent */

const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
                                        enum MHD_ValueKind kind, const char *key)
{
    (void)connection;
    if (kind != MHD_HEADER_KIND || !key || !fuzz_header_name ||
        strcasecmp(key, fuzz_header_name) != 0)
        return NULL;
    return fuzz_header_value;
}

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *connection,
                                              enum MHD_ValueKind kind, const char *key,
                                              size_t key_size, const char **value_ptr,
                                              size_t *value_size_ptr)
{
    (void)key_size;
    const char *v = MHD_lookup_connection_value(connection, kind, key);
    if (!v)
        return MHD_NO;
    if (value_ptr)
        *value_ptr = v;
    if (value_size_ptr)
        *value_size_ptr = strlen(v);
    return MHD_YES;
}

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
