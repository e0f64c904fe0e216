/* test_cpu_quota.c - the CPU quota reader (cpu_quota.c) on fake cgroup
 * trees written in a temporary directory: cgroup v2 cpu.max with the limit
 * on a parent (a pod's), no limit ("max"), cgroup v1 cfs quota/period, a
 * fractional quota rounded up, the affinity mask as the cap, garbage files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cpu_quota.h"
#include "tmpdir_fixture.h"

static char root[256];

static void mkdirs(const char *rel)
{
    char path[512], *p;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    mkdir(path, 0755);
}

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    mkdirs(path + strlen(root) + 1);
    *slash = '/';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    tmpdir_make(root, sizeof root, "test_cpu_quota");
}

static void teardown(void)
{
    tmpdir_remove(root);
}

START_TEST(v2_parent_limit)
{
    put("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n");
    put("sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n");
    cpu_quota_t q;
    cpu_quota_read(root, 64, &q);
    ck_assert_double_eq_tol(q.quota, 2.0, 1e-9);
    ck_assert_int_eq(q.cpus, 2);
    ck_assert_ptr_nonnull(strstr(q.source, "kubepods/pod1/cpu.max"));
    cpu_quota_read(root, 1, &q); /* the affinity mask is tighter */
    ck_assert_int_eq(q.cpus, 1);
}
END_TEST

START_TEST(v2_namespaced_and_none)
{
    put("proc/self/cgroup", "0::/\n");
    put("sys/fs/cgroup/cpu.max", "150000 100000\n"); /* 1.5 CPUs: 2 threads */
    cpu_quota_t q;
    cpu_quota_read(root, 16, &q);
    ck_assert_int_eq(q.cpus, 2);
    put("sys/fs/cgroup/cpu.max", "max 100000\n");
    cpu_quota_read(root, 16, &q);
    ck_assert_double_eq(q.quota, 0);
    ck_assert_int_eq(q.cpus, 16);
    ck_assert_str_eq(q.source, "");
}
END_TEST

START_TEST(v1_cfs)
{
    put("proc/self/cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n");
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    cpu_quota_t q;
    cpu_quota_read(root, 8, &q);
    ck_assert_double_eq_tol(q.quota, 3.0, 1e-9);
    ck_assert_int_eq(q.cpus, 3);
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    cpu_quota_read(root, 8, &q);
    ck_assert_int_eq(q.cpus, 8);
}
END_TEST

START_TEST(garbage_and_missing)
{
    cpu_quota_t q;
    cpu_quota_read(root, 4, &q); /* no /proc/self/cgroup at all */
    ck_assert_int_eq(q.cpus, 4);
    put("proc/self/cgroup", "nonsense\n0::relative\n");
    put("sys/fs/cgroup/cpu.max", "lots 100000\n");
    cpu_quota_read(root, 4, &q);
    ck_assert_int_eq(q.cpus, 4);
    put("proc/self/cgroup", "0::/\n");
    put("sys/fs/cgroup/cpu.max", "100 0\n");
    cpu_quota_read(root, 4, &q);
    ck_assert_int_eq(q.cpus, 4);
    put("sys/fs/cgroup/cpu.max", "1000 100000\n"); /* 0.01 CPU: still 1 thread */
    cpu_quota_read(root, 4, &q);
    ck_assert_int_eq(q.cpus, 1);
    ck_assert_int_ge(cpu_quota_affinity(), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cpu_quota");
    TCase *tc = tcase_create("cpu_quota");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, v2_parent_limit);
    tcase_add_test(tc, v2_namespaced_and_none);
    tcase_add_test(tc, v1_cfs);
    tcase_add_test(tc, garbage_and_missing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
