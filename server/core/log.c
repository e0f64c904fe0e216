/* log.c - JSON-lines logging for resnetd: leveled messages and the access log.
 *
 * THREADS: a log_t never changes after log_create. Each line is built in a
 * stack buffer and written with a single fwrite, and stdio locks the FILE for
 * the duration of the call, so concurrent lines never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LINE_MAX_BYTES 8192 /* a message is cut at 4 KiB; escaping can at most double it */
#define MSG_MAX_BYTES 4096
#define PATH_MAX_OUT 2048 /* escaped path bytes in an access line; the fixed fields fit after it */

struct log {
    log_params_t params;
};

/* A bounded string builder: writes never overflow, and a line that would
 * overflow is cut (still valid JSON, because we only cut inside escaped text). */
typedef struct {
    char *buf;
    size_t cap, len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (n > l->cap - 1 - l->len)
        n = l->cap - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = 0;
}

static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

static void putf(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(line_t *l, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 when s starts with a byte
 * that is not one. *s is not NUL. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* Appends s as a JSON string (with quotes), stopping at stop (e.g. '?') or NUL,
 * and cut where its escaped form would pass max_out bytes or the room left
 * for the closing quote and brace, so that a cut line is still valid JSON.
 * A byte that is not part of well-formed UTF-8 (a path may carry any bytes,
 * e.g. /r%E9adyz%FF decoded) is written as %XX, as a URL would spell it, so
 * the line stays valid JSON and says which bytes came. */
static void put_json_str(line_t *l, const char *s, char stop, size_t max_out)
{
    size_t limit = l->len + max_out < l->cap ? l->len + max_out : l->cap;
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (size_t step = 1; *s && *s != stop; s += step) {
        unsigned char c = (unsigned char)*s;
        char esc[7] = {'\\', 0};
        size_t n = 2;
        step = 1;
        if (c >= 0x80 && (step = utf8_len((const unsigned char *)s)) == 0) {
            step = 1;
            esc[0] = '%';
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 15];
            n = 3;
        } else if (c >= 0x80) {
            memcpy(esc, s, step);
            n = step;
        } else if (c == '"' || c == '\\')
            esc[1] = (char)c;
        else if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20 || c == 0x7f) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (l->len + n + 3 > limit) /* room for this, '"', '}' */
            break;
        put(l, esc, n);
    }
    put(l, "\"", 1);
}

static void put_timestamp(line_t *l)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    putf(l, "{\"ts\":\"%s.%03ldZ\"", when, ts.tv_nsec / 1000000);
}

static void emit(const log_t *log, line_t *l)
{
    if (l->len + 2 > l->cap) /* put() always leaves one byte; make room for "}\n" */
        l->len = l->cap - 2;
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    FILE *out = log && log->params.out ? log->params.out : stderr;
    fwrite(l->buf, 1, l->len, out);
    fflush(out);
}

log_params_t log_default_params(void)
{
    return (log_params_t){.out = NULL, .level = LOG_LEVEL_INFO, .access_log = true};
}

log_t *log_create(const log_params_t *params)
{
    log_t *log = malloc(sizeof *log);
    if (!log)
        return NULL;
    log->params = params ? *params : log_default_params();
    return log;
}

void log_destroy(log_t *log) { free(log); }

bool log_enabled(const log_t *log, log_level_t level)
{
    return level <= (log ? log->params.level : LOG_LEVEL_INFO);
}

static void vlog(const log_t *log, log_level_t level, const char *fmt, va_list ap)
{
    char msg[MSG_MAX_BYTES], buf[LINE_MAX_BYTES];
    vsnprintf(msg, sizeof msg, fmt, ap);
    line_t l = {buf, sizeof buf - 2, 0};
    put_timestamp(&l);
    putf(&l, ",\"level\":\"%s\",\"msg\":", log_level_name(level));
    put_json_str(&l, msg, 0, sizeof buf);
    l.cap = sizeof buf;
    emit(log, &l);
}

void log_msg(const log_t *log, log_level_t level, const char *fmt, ...)
{
    if (!log_enabled(log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(log, level, fmt, ap);
    va_end(ap);
}

void log_msg_always(const log_t *log, log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(log, level, fmt, ap);
    va_end(ap);
}

static void put_ms(line_t *l, const char *key, double ms)
{
    if (ms >= 0)
        putf(l, ",\"%s\":%.3f", key, ms);
}

void log_access(const log_t *log, const log_access_t *rec)
{
    if ((log && !log->params.access_log) || !rec)
        return;
    char buf[LINE_MAX_BYTES];
    line_t l = {buf, sizeof buf - 2, 0};
    put_timestamp(&l);
    puts_(&l, ",\"type\":\"access\",\"method\":");
    put_json_str(&l, rec->method ? rec->method : "-", 0, 64);
    puts_(&l, ",\"path\":");
    put_json_str(&l, rec->path ? rec->path : "-", '?', PATH_MAX_OUT);
    putf(&l, ",\"status\":%d", rec->status);
    if (rec->model) {
        puts_(&l, ",\"model\":");
        put_json_str(&l, rec->model, 0, 256);
    }
    if (rec->version) {
        puts_(&l, ",\"version\":");
        put_json_str(&l, rec->version, 0, 64);
    }
    if (rec->bytes_in >= 0)
        putf(&l, ",\"bytes_in\":%lld", (long long)rec->bytes_in);
    if (rec->bytes_out >= 0)
        putf(&l, ",\"bytes_out\":%lld", (long long)rec->bytes_out);
    if (rec->images >= 0)
        putf(&l, ",\"images\":%d", rec->images);
    put_ms(&l, "decode_ms", rec->decode_ms);
    put_ms(&l, "queue_ms", rec->queue_ms);
    put_ms(&l, "inference_ms", rec->inference_ms);
    put_ms(&l, "total_ms", rec->total_ms);
    if (rec->cpu_ms > 0)
        put_ms(&l, "cpu_ms", rec->cpu_ms);
    l.cap = sizeof buf;
    emit(log, &l);
}

const char *log_level_name(log_level_t level)
{
    switch (level) {
    case LOG_LEVEL_ERROR: return "error";
    case LOG_LEVEL_WARN: return "warn";
    case LOG_LEVEL_INFO: return "info";
    case LOG_LEVEL_DEBUG: return "debug";
    }
    return "unknown";
}

rd_status_t log_level_parse(const char *name, log_level_t *out, rd_error_t *err)
{
    static const struct {
        const char *name;
        log_level_t level;
    } names[] = {{"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN},
                 {"info", LOG_LEVEL_INFO},   {"debug", LOG_LEVEL_DEBUG}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].name)) {
            *out = names[i].level;
            return RD_OK;
        }
    return rd_error_set(err, RD_ERR_ARG, "log level '%s' unknown, expected error, warn, info or debug",
                        name ? name : "(null)");
}
