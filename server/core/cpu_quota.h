/* cpu_quota.h - how many CPUs this process may really use: the affinity
 * mask (taskset, cpusets) and the cgroup CPU quota (cgroup v2 `cpu.max`,
 * v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), so that a Kubernetes pod
 * with limits.cpu 2 on a 64-core node sizes its threads for 2, not 64.
 *
 *     cpu_quota_t q;
 *     cpu_quota_read("/", cpu_quota_affinity(), &q);
 *     int threads = q.cpus;             >= 1
 *
 * The root parameter is where /proc and /sys are ("/" in production; a fake
 * tree in tests). Pure reads of files; thread-safe. */
#ifndef RESNETD_CPU_QUOTA_H
#define RESNETD_CPU_QUOTA_H

typedef struct {
    int affinity;       /* CPUs in the affinity mask (the caller's count) */
    double quota;       /* the tightest cgroup quota on the way to the root, in CPUs; 0 = none */
    int cpus;           /* min(affinity, ceil(quota)), at least 1 */
    char source[2100];   /* the file the quota came from, or "" */
} cpu_quota_t;

/* CPUs in this thread's affinity mask (sched_getaffinity), at least 1. */
int cpu_quota_affinity(void);

/* Reads root/proc/self/cgroup, then the quota files of that cgroup and its
 * ancestors under root/sys/fs/cgroup (v2: cpu.max "QUOTA PERIOD" or "max
 * PERIOD"; v1: the cpu controller's cpu.cfs_quota_us, -1 = none, over
 * cpu.cfs_period_us). Missing or malformed files mean no quota: never fails. */
void cpu_quota_read(const char *root, int affinity, cpu_quota_t *out);

#endif
