/* cpu_quota.c - the affinity mask and the cgroup CPU quota (see cpu_quota.h). */
#include "cpu_quota.h"

#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cpu_quota_affinity(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set))
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/* The first line of path into buf; false when it cannot be read. */
static bool read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    return ok;
}

/* cgroup v2 cpu.max: "200000 100000" = 2 CPUs, "max 100000" = none. */
static double v2_quota(const char *dir)
{
    char path[2100], line[128];
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    long long quota, period;
    if (!read_line(path, line, sizeof line) || sscanf(line, "%lld %lld", &quota, &period) != 2 ||
        quota <= 0 || period <= 0)
        return 0;
    return (double)quota / (double)period;
}

/* cgroup v1: cpu.cfs_quota_us (-1 = none) over cpu.cfs_period_us. */
static double v1_quota(const char *dir)
{
    char path[2100], line[128];
    long long quota, period;
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_line(path, line, sizeof line) || sscanf(line, "%lld", &quota) != 1 || quota <= 0)
        return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (!read_line(path, line, sizeof line) || sscanf(line, "%lld", &period) != 1 || period <= 0)
        return 0;
    return (double)quota / (double)period;
}

/* The tightest quota from mount/cgroup up to mount itself (a pod's limit may
 * sit on a parent of the container's cgroup). */
static void walk_up(const char *mount, const char *cgroup, bool v2, cpu_quota_t *out)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s", cgroup);
    for (;;) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s%s", mount, strcmp(rel, "/") ? rel : "");
        double q = v2 ? v2_quota(dir) : v1_quota(dir);
        if (q > 0 && (out->quota == 0 || q < out->quota)) {
            out->quota = q;
            snprintf(out->source, sizeof out->source, "%s/%s", dir,
                     v2 ? "cpu.max" : "cpu.cfs_quota_us");
        }
        char *slash = strrchr(rel, '/');
        if (!slash || !strcmp(rel, "/"))
            return;
        if (slash == rel)
            slash[1] = 0; /* "/a" -> "/" */
        else
            *slash = 0;
    }
}

/* A v1 controller list ("cpu,cpuacct") with "cpu" in it. */
static bool has_cpu(const char *controllers)
{
    for (const char *p = controllers; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 3 && !strncmp(p, "cpu", 3))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

void cpu_quota_read(const char *root, int affinity, cpu_quota_t *out)
{
    *out = (cpu_quota_t){.affinity = affinity > 0 ? affinity : 1};
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c1 = *c2 = 0;
        const char *controllers = c1 + 1, *cgroup = c2 + 1;
        char mount[1024];
        if (!strcmp(line, "0") && !controllers[0]) { /* v2: "0::/path" */
            snprintf(mount, sizeof mount, "%s/sys/fs/cgroup", root);
            walk_up(mount, cgroup, true, out);
        } else if (has_cpu(controllers)) { /* v1: "4:cpu,cpuacct:/path" */
            snprintf(mount, sizeof mount, "%s/sys/fs/cgroup/%s", root, controllers);
            walk_up(mount, cgroup, false, out);
            snprintf(mount, sizeof mount, "%s/sys/fs/cgroup/cpu", root);
            walk_up(mount, cgroup, false, out);
        }
    }
    if (f)
        fclose(f);
    int by_quota = out->quota > 0 ? (int)ceil(out->quota - 1e-9) : out->affinity;
    out->cpus = by_quota < out->affinity ? by_quota : out->affinity;
    if (out->cpus < 1)
        out->cpus = 1;
}
