// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* base/safefile.c: what a planted link, FIFO, device, hard link or someone else's file at a
 * path loopwatch writes does (refused, never followed, never hangs), and the directory checks.
 * Does not rely on fs.protected_symlinks / protected_fifos (0 on the test machines). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/safefile.h"
#include "base/lw_util.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/lwsafe-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *P(const char *name)
{
	static char buf[4][128];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *get(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void test_regular_file(void **state)
{
	char err[512];
	struct stat st;
	int fd;

	(void)state;
	fd = lw_safe_append(P("a.jsonl"), 0640, LW_NO_UID, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
	fd = lw_safe_append(P("a.jsonl"), 0640, LW_NO_UID, err, sizeof(err));
	assert_int_equal(write(fd, "y\n", 2), 2);
	/* blocking again once checked */
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	assert_string_equal(get(P("a.jsonl")), "x\ny\n");
	assert_int_equal(stat(P("a.jsonl"), &st), 0);
	assert_int_equal(st.st_mode & 0777 & ~0640, 0);
	fd = lw_safe_replace(P("a.jsonl"), 0644, LW_NO_UID, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	assert_string_equal(get(P("a.jsonl")), "");
	fd = lw_safe_read(P("missing"), LW_NO_UID, err, sizeof(err));
	assert_int_equal(fd, -ENOENT);
}

static void test_symlink_never_followed(void **state)
{
	char err[512];

	(void)state;
	put(P("victim"), "precious\n");
	assert_int_equal(symlink(P("victim"), P("link.jsonl")), 0);
	assert_int_equal(lw_safe_append(P("link.jsonl"), 0640, LW_NO_UID, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(lw_safe_replace(P("link.jsonl"), 0644, LW_NO_UID, err, sizeof(err)), -ELOOP);
	assert_int_equal(lw_safe_read(P("link.jsonl"), LW_NO_UID, err, sizeof(err)), -ELOOP);
	assert_string_equal(get(P("victim")), "precious\n");
	/* a dangling link: nothing created at its target */
	assert_int_equal(symlink(P("created-by-us"), P("dangling")), 0);
	assert_true(lw_safe_append(P("dangling"), 0640, LW_NO_UID, err, sizeof(err)) < 0);
	assert_int_equal(access(P("created-by-us"), F_OK), -1);
	/* the report helpers the daemon and the CLI use go the same way */
	assert_true(lw_open_report(P("link.jsonl"), 0) < 0);
	assert_true(lw_write_file_atomic(P("link.jsonl"), "new\n", 4, err, sizeof(err)) == 0);
	assert_string_equal(get(P("victim")), "precious\n");	/* the link replaced, not followed */
}

static void test_fifo_and_device_refused(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(mkfifo(P("fifo.jsonl"), 0666), 0);
	/* no reader: a blocking open for writing would hang here */
	assert_true(lw_safe_append(P("fifo.jsonl"), 0640, LW_NO_UID, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "FIFO"));
	/* reading: the open would hang without a writer */
	assert_int_equal(lw_safe_read(P("fifo.jsonl"), LW_NO_UID, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "FIFO"));
	assert_int_equal(lw_safe_append("/dev/null", 0640, LW_NO_UID, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "character device"));
	assert_true(lw_safe_replace(dir, 0640, LW_NO_UID, err, sizeof(err)) < 0);
}

static void test_owner_and_links(void **state)
{
	char err[512];
	int fd;

	(void)state;
	put(P("theirs"), "theirs\n");
	if (geteuid() == 0) {
		assert_int_equal(chown(P("theirs"), 65534, 65534), 0);
		assert_int_equal(lw_safe_append(P("theirs"), 0640, LW_NO_UID, err, sizeof(err)),
				 -EPERM);
		assert_non_null(strstr(err, "uid 65534"));
		assert_int_equal(lw_safe_replace(P("theirs"), 0640, LW_NO_UID, err, sizeof(err)),
				 -EPERM);
		assert_string_equal(get(P("theirs")), "theirs\n");	/* not truncated */
		/* the service user's own files are fine */
		fd = lw_safe_read(P("theirs"), 65534, err, sizeof(err));
		assert_true(fd >= 0);
		close(fd);
	}
	/* a hard link to a file elsewhere */
	put(P("target"), "elsewhere\n");
	assert_int_equal(link(P("target"), P("hard.jsonl")), 0);
	assert_int_equal(lw_safe_replace(P("hard.jsonl"), 0640, LW_NO_UID, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "hard links"));
	assert_string_equal(get(P("target")), "elsewhere\n");
	/* O_EXCL creation: an existing file is not reused */
	assert_int_equal(lw_safe_create(P("target"), 0640, err, sizeof(err)), -EEXIST);
}

static void test_dirs(void **state)
{
	char err[512];

	(void)state;
	/* the mode rules on one stat result */
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0750, 0, LW_NO_UID, 1, err, sizeof(err)), 0);
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0770, 0, LW_NO_UID, 1, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "group"));
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 01777, 0, LW_NO_UID, 1, err, sizeof(err)),
			 -EPERM);
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 01777, 0, LW_NO_UID, 0, err, sizeof(err)), 0);
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0777, 0, LW_NO_UID, 0, err, sizeof(err)),
			 -EPERM);
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0775, 0, LW_NO_UID, 0, err, sizeof(err)), 0);
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0755, 1000, LW_NO_UID, 1, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "uid 1000"));
	assert_int_equal(lw_check_dir_stat("d", S_IFDIR | 0750, 1000, 1000, 1, err, sizeof(err)), 0);
	assert_int_equal(lw_check_dir_stat("d", S_IFREG | 0600, 0, LW_NO_UID, 1, err, sizeof(err)),
			 -ENOTDIR);
	/* on disk: /tmp (sticky) above a private dir is fine */
	assert_int_equal(chmod(dir, 0750), 0);
	if (geteuid() != 0)
		return;
	assert_int_equal(lw_check_private_dir(dir, LW_NO_UID, err, sizeof(err)), 0);
	assert_int_equal(mkdir(P("sub"), 0755), 0);
	assert_int_equal(lw_check_private_dir(P("sub"), LW_NO_UID, err, sizeof(err)), 0);
	/* a world-writable parent: anyone can rename sub away and put their own in its place */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(lw_check_private_dir(P("sub"), LW_NO_UID, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(dir, 0750), 0);
	assert_int_equal(chmod(P("sub"), 0775), 0);
	assert_int_equal(lw_check_private_dir(P("sub"), LW_NO_UID, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(P("sub"), 0755), 0);
	assert_int_equal(chown(P("sub"), 65534, 65534), 0);
	assert_int_equal(lw_check_private_dir(P("sub"), LW_NO_UID, err, sizeof(err)), -EPERM);
	assert_int_equal(lw_check_private_dir(P("sub"), 65534, err, sizeof(err)), 0);
	/* through a link: the place it leads to is what counts */
	assert_int_equal(symlink(P("sub"), P("sublink")), 0);
	assert_int_equal(lw_check_private_dir(P("sublink"), LW_NO_UID, err, sizeof(err)), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular_file),
		cmocka_unit_test(test_symlink_never_followed),
		cmocka_unit_test(test_fifo_and_device_refused),
		cmocka_unit_test(test_owner_and_links),
		cmocka_unit_test(test_dirs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
