// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "target/elfsym.h"
#include "target/procmaps.h"

/* strings the version scanner must find (kept alive by the volatile reads below) */
const char lw_test_version_a[] = "3.9.18";
const char lw_test_version_b[] = "/opt/python/versions/3.12.7";

__attribute__((noinline, used)) int elf_marker_fn(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3 + 1;
}

static void test_self(void **state)
{
	struct lw_elf *e = NULL;
	struct lw_maps *m = NULL;
	const struct lw_map *mp;
	Dl_info info;
	uint64_t vaddr = 0, size = 0, off = 0, back = 0, soff;
	uint64_t fn = (uint64_t)(uintptr_t)&elf_marker_fn;
	const char *name;
	char buf[64];

	(void)state;
	assert_int_equal(elf_marker_fn(1), 4);
	assert_int_equal(lw_elf__open("/proc/self/exe", &e), 0);
	assert_int_equal(lw_elf__type(e), ET_DYN);
	assert_true(lw_elf__has_symtab(e));
	assert_int_equal(lw_elf__find_symbol(e, "elf_marker_fn", &vaddr, &size), 0);
	/* ground truth 1: the dynamic loader's idea of the load base */
	assert_true(dladdr((void *)&elf_marker_fn, &info) != 0);
	assert_int_equal(vaddr, fn - (uint64_t)(uintptr_t)info.dli_fbase);
	assert_true(size > 0);
	/* ground truth 2: the kernel's mapping of the file gives the offset */
	assert_int_equal(lw_elf__vaddr_to_offset(e, vaddr, &off), 0);
	assert_int_equal(lw_maps__load("/proc", getpid(), &m), 0);
	mp = lw_maps__find_addr(m, fn);
	assert_non_null(mp);
	assert_int_equal(off, mp->offset + (fn - mp->start));
	assert_int_equal(lw_elf__offset_to_vaddr(e, mp->offset, &back), 0);
	assert_int_equal(back + (fn - mp->start), vaddr);
	/* symbolize inside the function */
	assert_int_equal(lw_elf__symbolize(e, vaddr + 3, &name, &soff), 0);
	assert_string_equal(name, "elf_marker_fn");
	assert_int_equal(soff, 3);
	assert_int_equal(lw_elf__find_symbol(e, "no_such_symbol_here", &vaddr, NULL), -ENOENT);
	/* version strings: standalone and as the tail of another string */
	(void)*(volatile const char *)lw_test_version_a;
	(void)*(volatile const char *)lw_test_version_b;
	assert_int_equal(lw_elf__find_version_string(e, "3.9.", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "3.9.18");
	assert_int_equal(lw_elf__find_version_string(e, "3.12.", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "3.12.7");
	assert_int_equal(lw_elf__find_version_string(e, "3.99.", buf, sizeof(buf)), -ENOENT);
	/* the build-id note exists in Debian's default gcc output */
	if (lw_elf__build_id(e, buf, sizeof(buf)) == 0)
		assert_int_equal(strlen(buf), 40);
	lw_maps__free(m);
	lw_elf__close(e);
}

static void test_debian_python(void **state)
{
	struct lw_elf *e = NULL;
	uint64_t v = 0, off = 0;
	char buf[64];

	(void)state;
	if (access("/usr/bin/python3.11", R_OK))
		skip();
	assert_int_equal(lw_elf__open("/usr/bin/python3.11", &e), 0);
	assert_int_equal(lw_elf__type(e), ET_EXEC);
	/* stripped: .dynsym only */
	assert_false(lw_elf__has_symtab(e));
	assert_int_equal(lw_elf__find_symbol(e, "_PyRuntime", &v, NULL), 0);
	assert_int_equal(lw_elf__find_symbol(e, "PyContext_Type", &v, NULL), 0);
	assert_int_equal(lw_elf__find_symbol(e, "context_run", &v, NULL), -ENOENT);
	assert_int_equal(lw_elf__find_symbol(e, "_PyEval_EvalFrameDefault", &v, NULL), 0);
	assert_int_equal(lw_elf__vaddr_to_offset(e, v, &off), 0);
	/* ET_EXEC at 0x400000: the text segment's offset is its address minus 0x400000 */
	assert_int_equal(off, v - 0x400000);
	assert_int_equal(lw_elf__debuglink(e, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, ".debug"));
	lw_elf__close(e);
}

static void test_not_elf(void **state)
{
	static const char junk[] = "\x7f" "ELF this is not really an ELF file at all";
	char path[] = "/tmp/lw-test-notelf-XXXXXX";
	struct lw_elf *e = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	assert_int_equal(lw_elf__open(path, &e), -ENOEXEC);
	unlink(path);
	assert_int_equal(lw_elf__open("/nonexistent/file", &e), -ENOENT);
	assert_int_not_equal(lw_elf__open_mem(junk, sizeof(junk), &e), 0);
	assert_int_not_equal(lw_elf__open_mem(junk, 0, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_debian_python),
		cmocka_unit_test(test_not_elf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
