/* tmpdir_fixture.c - see tmpdir_fixture.h. */
#include "tmpdir_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

void tmpdir_make(char *root, size_t cap, const char *name)
{
    snprintf(root, cap, "/tmp/%s.XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(root));
}

void tmpdir_remove(const char *root)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}
