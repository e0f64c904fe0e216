/* tmpdir_fixture.h - a scratch folder under /tmp for the unit tests that read
 * files from a tree (a model repository, a fake cgroup tree): made in a
 * check fixture's setup, removed with everything in it in its teardown. */
#ifndef RESNETD_TMPDIR_FIXTURE_H
#define RESNETD_TMPDIR_FIXTURE_H

#include <stddef.h>

/* Makes /tmp/NAME.XXXXXX and writes its path into root (cap bytes). */
void tmpdir_make(char *root, size_t cap, const char *name);

/* Removes root and everything below it. */
void tmpdir_remove(const char *root);

#endif
