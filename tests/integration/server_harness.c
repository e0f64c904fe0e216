/* server_harness.c - see server_harness.h. */
#include "server_harness.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *harness_env(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* The port after the last ':' of the first log line that contains marker. */
static int find_port(const char *log_path, const char *marker)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return 0;
    char line[1024];
    int port = 0;
    while (!port && fgets(line, sizeof line, f)) {
        char *at = strstr(line, marker);
        char *colon = at ? strrchr(at, ':') : NULL;
        if (colon)
            port = atoi(colon + 1);
    }
    fclose(f);
    return port;
}

/* Appends the last lines of the log (at most its last 1.5 KB) to dst. */
static void log_tail(const char *log_path, char *dst, size_t size)
{
    size_t used = strlen(dst);
    FILE *f = fopen(log_path, "r");
    if (!f || used + 1 >= size) {
        if (f)
            fclose(f);
        return;
    }
    struct stat st;
    long from = fstat(fileno(f), &st) == 0 && st.st_size > 1536 ? (long)st.st_size - 1536 : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(dst + used, 1, size - used - 1, f);
    dst[used + got] = 0;
    fclose(f);
}

bool harness_died(const harness_server_t *s, char *why, size_t why_size)
{
    siginfo_t info = {0};
    if (s->pid <= 0 || waitid(P_PID, (id_t)s->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != s->pid)
        return false;
    snprintf(why, why_size, "resnetd (pid %d) died: %s %d; the end of its log %s:\n",
             (int)s->pid, info.si_code == CLD_EXITED ? "exit status" : "signal", info.si_status,
             s->log_path);
    log_tail(s->log_path, why, why_size);
    return true;
}

void harness_start(harness_server_t *s, const char *const *args)
{
    harness_spawn(s, args, "listening on ");
}

void harness_launch(harness_server_t *s, const char *const *args)
{
    const char *bin = harness_env("RESNETD_BIN", "resnetd");
    static int counter;
    snprintf(s->log_path, sizeof s->log_path, "%s/resnetd_test_%d_%d.log",
             harness_env("TMPDIR", "/tmp"), (int)getpid(), counter++);
    const char *argv[64] = {bin, "serve", "--port", "0", "--bind", "127.0.0.1"};
    int n = 6;
    for (int i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    s->port = 0;
}

void harness_spawn(harness_server_t *s, const char *const *args, const char *marker)
{
    const char *bin = harness_env("RESNETD_BIN", "resnetd");
    harness_launch(s, args);
    for (int i = 0; i < 1200 && !s->port; i++) {
        int status;
        char why[2048];
        if (harness_died(s, why, sizeof why)) {
            fprintf(stderr, "%s\n", why);
            waitpid(s->pid, &status, 0);
            ck_abort_msg("%s exited before logging '%s' (status %d); see %s", bin, marker,
                         status, s->log_path);
        }
        s->port = find_port(s->log_path, marker);
        if (!s->port)
            sleep_ms(100);
    }
    ck_assert_msg(s->port > 0, "server did not log '%s' within 120 s; see %s", marker,
                  s->log_path);
}

int harness_wait_exit(harness_server_t *s, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        sleep_ms(100);
    }
    return -2;
}

int harness_stop(harness_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 600; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        sleep_ms(100);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    harness_resp_t *r = ctx;
    size_t add = size * n;
    char *p = realloc(r->body, r->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + r->len, data, add);
    r->body = p;
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    harness_resp_t *r = ctx;
    size_t have = strlen(r->headers), add = size * n;
    if (have + add < sizeof r->headers) {
        memcpy(r->headers + have, data, add);
        r->headers[have + add] = 0;
    }
    return add;
}

harness_resp_t harness_http(const harness_server_t *s, const char *method, const char *path,
                            const char *ctype, const void *body, size_t len,
                            const char *const *files, struct curl_slist *extra)
{
    harness_resp_t r = {0};
    r.body = calloc(1, 1);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char url[512];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", s->ca_file ? "https" : "http", s->port, path);
    struct curl_slist *h = NULL;
    bool expect = false;
    for (struct curl_slist *e = extra; e; e = e->next) {
        h = curl_slist_append(h, e->data);
        expect |= !strncasecmp(e->data, "Expect", 6);
    }
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    if (!expect)
        h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (s->ca_file) /* replaces the system CAs: only this file is trusted */
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_mime *mime = NULL;
    if (files) {
        mime = curl_mime_init(c);
        for (int i = 0; files[i]; i++) {
            curl_mimepart *p = curl_mime_addpart(mime);
            curl_mime_name(p, "image");
            curl_mime_filedata(p, files[i]);
        }
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    }
    else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    r.curl = curl_easy_perform(c);
    if (r.curl == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    char why[2048];
    if (r.curl != CURLE_OK && harness_died(s, why, sizeof why)) {
        fprintf(stderr, "%s %s: %s\n", method, path, why);
        ck_abort_msg("%s %s: the server under test died (%s)", method, path, why);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    curl_mime_free(mime);
    return r;
}

void harness_resp_free(harness_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *harness_json(const harness_resp_t *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, 0, &err);
    ck_assert_msg(j != NULL, "response (status %ld) is not JSON: %s: %.300s", r->status, err.text,
                  r->body);
    return j;
}

bool harness_has_header(const harness_resp_t *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        if (!strncasecmp(line, name, n) && line[n] == ':')
            return true;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

double harness_metric_in(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (!strncmp(line, prefix, n) && line[n] == ' ')
            return atof(line + n + 1);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

double harness_metric(const harness_server_t *s, const char *prefix)
{
    harness_resp_t r = harness_http(s, "GET", "/metrics", NULL, NULL, 0, NULL, NULL);
    double v = harness_metric_in(r.body, prefix);
    harness_resp_free(&r);
    return v;
}

int harness_run(const char *const *argv, const char *const *env, char *out, size_t out_size)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < out_size && (got = read(fds[0], out + n, out_size - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
