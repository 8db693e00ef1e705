// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "target/procmaps.h"

static const char sample[] =
	"00400000-00421000 r--p 00000000 fe:00 1835092                            /usr/bin/python3.11\n"
	"00421000-00696000 r-xp 00021000 fe:00 1835092                            /usr/bin/python3.11\n"
	"0228b000-0249f000 rw-p 00000000 00:00 0                                  [heap]\n"
	"7f3e82400000-7f3e82489000 r--p 00000000 fe:00 12 /opt/python/3.8.18/lib/libpython3.8.so.1.0\n"
	"7f0000000000-7f0000001000 rw-s 00000000 00:05 4242                       /dev/zero (deleted)\n"
	"garbage line\n"
	"7ffd1000-7ffd3000 r-xp 00000000 00:00 0                                  [vdso]\n"
	"7fff0000-7fff1000 rw-p 00000000 00:00 0\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static void test_parse(void **state)
{
	struct lw_maps *m = NULL;
	const struct lw_map *e;

	(void)state;
	assert_int_equal(lw_maps__parse(sample, strlen(sample), &m), 0);
	assert_int_equal(lw_maps__count(m), 8);
	assert_int_equal(lw_maps__skipped(m), 1);
	e = lw_maps__get(m, 1);
	assert_int_equal(e->start, 0x421000);
	assert_int_equal(e->end, 0x696000);
	assert_int_equal(e->offset, 0x21000);
	assert_string_equal(e->perms, "r-xp");
	assert_int_equal(e->inode, 1835092);
	assert_int_equal(e->dev_major, 0xfe);
	assert_string_equal(e->path, "/usr/bin/python3.11");
	e = lw_maps__get(m, 4);
	assert_true(e->deleted);
	assert_string_equal(e->path, "/dev/zero");
	assert_string_equal(lw_maps__get(m, 6)->path, "");
	assert_string_equal(lw_maps__get(m, 7)->path, "[vsyscall]");
	e = lw_maps__find_addr(m, 0x695cd0);
	assert_non_null(e);
	assert_int_equal(e->start, 0x421000);
	assert_null(lw_maps__find_addr(m, 0x10));
	e = lw_maps__find_lib(m, "libpython3");
	assert_non_null(e);
	assert_int_equal(e->start, 0x7f3e82400000ull);
	e = lw_maps__first_of(m, "/usr/bin/python3.11");
	assert_int_equal(e->start, 0x400000);
	lw_maps__free(m);
}

static void test_junk(void **state)
{
	static const char *const junk[] = { "", "\n\n\n", "-", "1-", "2-1 r-xp 0 0:0 0 /x",
					    "0-1 r-xp zz 0:0 0", "0-1 r", "0-1 r-xp 0 0:0",
					    "00000000000000000-1 r-xp 0 0:0 0 /a" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		struct lw_maps *m = NULL;

		assert_int_equal(lw_maps__parse(junk[i], strlen(junk[i]), &m), 0);
		assert_int_equal(lw_maps__count(m), 0);
		lw_maps__free(m);
	}
}

static void test_self(void **state)
{
	struct lw_maps *m = NULL;
	const struct lw_map *e;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	(void)state;
	assert_true(n > 0);
	exe[n] = 0;
	assert_int_equal(lw_maps__load("/proc", getpid(), &m), 0);
	e = lw_maps__find_addr(m, (uint64_t)(uintptr_t)&test_self);
	assert_non_null(e);
	assert_string_equal(e->path, exe);
	assert_true(strchr(e->perms, 'x') != NULL);
	lw_maps__free(m);
	assert_int_not_equal(lw_maps__load("/proc", 0x7ffffff0, &m), 0);
}

/* The file of a mapping, as mapped: our own executable's mapping opens and is a regular file;
 * the same mapping with another inode in its maps line is refused (-ESTALE), never opened by
 * path; a FIFO at a mapping's path is never opened in a blocking way. */
static void test_open_mapped(void **state)
{
	struct lw_maps *m = NULL;
	struct lw_map fake;
	const struct lw_map *e = NULL;
	char exe[4096], via[4200], dir[] = "/tmp/lw-unit-XXXXXX", fifo[64];
	struct stat st;
	ssize_t n;
	size_t i;
	int fd;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	assert_int_equal(lw_maps__load("/proc", getpid(), &m), 0);
	for (i = 0; i < lw_maps__count(m) && !e; i++)
		if (strcmp(lw_maps__get(m, i)->path, exe) == 0)
			e = lw_maps__get(m, i);
	assert_non_null(e);
	fd = lw_maps__open_mapped("/proc", getpid(), e, via, sizeof(via));
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal((uint64_t)st.st_ino, e->inode);
	close(fd);

	fake = *e;
	fake.inode = e->inode + 1;	/* "another file now sits at the path" */
	fake.start = 0x1000;		/* and no such mapping: map_files fails too */
	fake.end = 0x2000;
	assert_int_equal(lw_maps__open_mapped("/proc", getpid(), &fake, via, sizeof(via)), -ESTALE);

	/* a FIFO at the path: refused without blocking (O_NONBLOCK, not a regular file) */
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(stat(fifo, &st), 0);
	fake.path = fifo;
	fake.inode = st.st_ino;
	fake.dev_major = major(st.st_dev);
	fake.dev_minor = minor(st.st_dev);
	assert_true(lw_maps__open_mapped("/proc", getpid(), &fake, via, sizeof(via)) < 0);
	unlink(fifo);
	rmdir(dir);
	lw_maps__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_junk),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_open_mapped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
