// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * V8's perf map (/tmp/perf-PID.map, --perf-basic-prof): lines are appended as code is made, and
 * V8 reuses the memory of code it dropped, so one start can have several lines: the last one
 * written names the code there now.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "target/nativesym.h"

static void test_lookup(void **state)
{
	struct lw_nativesym *s = NULL;
	struct lw_native_frame f;
	char text[] =
		"1000 100 JS:~old /app/a.js:1:1\n"
		"not a line\n"
		"3000 10 Builtin:Foo\n"
		"2000 80 JS:~first node:internal/perf/nodetiming:1:1\n"
		"1000 40 JS:~fifoHandler /app/a.js:40:21\n"	/* reuses 0x1000 */
		"2000 80 JS:~hashHandler /app/a.js:30:21\n"	/* reuses 0x2000 */
		"1050 20 JS:~inner /app/a.js:9:1\n";		/* over the old 0x1000's tail */

	(void)state;
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	assert_int_equal(lw_nativesym__load_perf_map(s, text), 4);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1005, &f), 0);
	assert_string_equal(f.symbol, "JS:~fifoHandler /app/a.js:40:21");
	assert_int_equal(f.offset, 5);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x2010, &f), 0);
	assert_string_equal(f.symbol, "JS:~hashHandler /app/a.js:30:21");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1055, &f), 0);
	assert_string_equal(f.symbol, "JS:~inner /app/a.js:9:1");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1030, &f), 0);
	assert_string_equal(f.symbol, "JS:~fifoHandler /app/a.js:40:21");
	/* only the dropped code at 0x1000 (0x100 long) covered 0x1045 and 0x1080: nothing is known
	 * there now */
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1045, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1080, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x3009, &f), 0);
	assert_string_equal(f.symbol, "Builtin:Foo");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x3010, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0xfff, &f), -ENOENT);
	lw_nativesym__free(s);
}

/*
 * Issue 21's CI miss: a function compiled (on-stack replacement of a hot loop) over memory that
 * had held many small code objects (V8's per-function copies of the interpreter trampoline) and
 * then an older function, all dropped since. The address sampled in the new code has more than
 * 32 older lines starting between the new code's start and it, the older function's among the
 * nearest: the newest line that covers it names it (a line written earlier that overlaps a
 * later one is dropped). Before, the lookup looked back 32 lines and named the older function.
 */
/* the lines of test_new_code_over_many_dropped (the parser writes into them: one copy a load) */
static char *dropped_map(int with_osr)
{
	size_t cap = 64 * 64, len = 0;
	char *text = malloc(cap);
	int i;

	assert_non_null(text);
	for (i = 0; i < 40; i++)	/* trampolines, 0x40 apart, dropped since */
		len += (size_t)snprintf(text + len, cap - len,
					"%x 30 Builtins_InterpreterEntryTrampoline\n",
					0x10000 + i * 0x40);
	len += (size_t)snprintf(text + len, cap - len,	/* over the last eight of them */
				"10810 800 JS:*restore /app/node_modules/express/index.js:631:17\n");
	if (with_osr)	/* the OSR code, over all of it */
		len += (size_t)snprintf(text + len, cap - len,
					"ff00 1200 JS:*busyRoute /app/app.js:34:19\n");
	assert_true(len < cap);
	return text;
}

static void test_new_code_over_many_dropped(void **state)
{
	struct lw_nativesym *s = NULL;
	struct lw_native_frame f;
	struct lw_perfmap_stats st;
	char *text = dropped_map(0);

	(void)state;
	/* the file as it was before the OSR code: the older function is the code there */
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	assert_int_equal(lw_nativesym__load_perf_map(s, text), 33);
	lw_nativesym__perf_map_stats(s, &st);
	assert_int_equal(st.replaced, 8);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x10d00, &f), 0);
	assert_string_equal(f.symbol, "JS:*restore /app/node_modules/express/index.js:631:17");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x10010, &f), 0);
	assert_string_equal(f.symbol, "Builtins_InterpreterEntryTrampoline");
	lw_nativesym__free(s);
	free(text);

	/* all of it: the OSR code alone is there */
	text = dropped_map(1);
	s = NULL;
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	assert_int_equal(lw_nativesym__load_perf_map(s, text), 1);
	lw_nativesym__perf_map_stats(s, &st);
	assert_int_equal(st.replaced, 41);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x10d00, &f), 0);
	assert_string_equal(f.symbol, "JS:*busyRoute /app/app.js:34:19");
	assert_int_equal(f.offset, 0x10d00 - 0xff00);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x10010, &f), 0);
	assert_string_equal(f.symbol, "JS:*busyRoute /app/app.js:34:19");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x11100, &f), -ENOENT);
	lw_nativesym__free(s);
	free(text);
}

/* AddressSanitizer: no quarantine of freed blocks (it would hold up to 256 MB of what the
 * budget evicted), and room for its shadow memory and redzones */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=0";
}
#define RSS_LIMIT_KIB (192 * 1024)
#else
#define RSS_LIMIT_KIB (96 * 1024)
#endif

/* under valgrind (make valgrind): its own memory is counted in the RSS, and it is slow */
static int under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* issue 19: a hostile map of 10^6 lines (each a distinct function) is kept to the budget (the
 * newest stay), evictions counted; before, every line was kept */
static void test_million_lines_bounded(void **state)
{
	struct lw_nativesym *s = NULL;
	struct lw_native_frame f;
	struct lw_perfmap_stats st;
	char last[64];
	size_t n = under_valgrind() ? 300000 : 1000000, i, len = 0;
	char *text = malloc(n * 48 + 1);
	int kept;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%zx 10 JS:~f%zu /app/gen.js:%zu:1\n",
				       0x100000 + i * 0x10, i, i);
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	kept = lw_nativesym__load_perf_map(s, text);
	assert_true(kept > 0 && kept <= 131072);
	lw_nativesym__perf_map_stats(s, &st);
	assert_int_equal(st.entries, (uint64_t)kept);
	assert_int_equal(st.evicted + st.entries, n);
	/* the newest lines are kept */
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x100000 + (n - 1) * 0x10 + 3, &f), 0);
	snprintf(last, sizeof(last), "JS:~f%zu /app/gen.js:%zu:1", n - 1, n - 1);
	assert_string_equal(f.symbol, last);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x100000, &f), -ENOENT);
	lw_nativesym__free(s);
	free(text);
}

/* issue 19: a map of long names (1,000 bytes each, under the 1 KiB line limit): fewer lines
 * than the entry budget, but their names are held to 16 MiB (before: 48,000 names kept, 48 MB;
 * 131,072 of them would have been 128 MiB); the newest stay, the evicted are counted */
static void test_long_names_bounded_by_bytes(void **state)
{
	struct lw_nativesym *s = NULL;
	struct lw_native_frame f;
	struct lw_perfmap_stats st;
	size_t n = 48000, i, len = 0;
	char *text = malloc(n * 1040 + 1), name[1001];
	int kept;

	(void)state;
	assert_non_null(text);
	memset(name, 'n', 1000);
	name[1000] = 0;
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%zx 10 %zu%s\n", 0x100000 + i * 0x10, i,
				       name + 10);
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	kept = lw_nativesym__load_perf_map(s, text);
	lw_nativesym__perf_map_stats(s, &st);
	assert_int_equal(st.entries, (uint64_t)kept);
	assert_int_equal(st.evicted + st.entries, n);
	/* 16 MiB of ~1,000-byte names: at most ~16,800 kept */
	assert_true(kept > 0 && (size_t)kept * 996 <= (16u << 20));
	assert_true(st.evicted > 0);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x100000 + (n - 1) * 0x10 + 3, &f), 0);
	assert_int_equal(strtoul(f.symbol, NULL, 10), n - 1);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x100000, &f), -ENOENT);
	/* a lower name budget: the same lines, fewer kept (a quarter below it after eviction) */
	lw_nativesym__set_perf_map_name_budget(s, 1 << 20);
	for (i = 0, len = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%zx 10 %zu%s\n", 0x100000 + i * 0x10, i,
				       name + 10);
	kept = lw_nativesym__load_perf_map(s, text);
	assert_true(kept > 0 && (size_t)kept * 996 <= (1u << 20));
	lw_nativesym__free(s);
	free(text);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* the map read from the target's /tmp (a fake /proc root here) as it grows: only what was
 * appended is read again, a 100 MB map costs no more memory than the budget, an over-long line
 * is skipped, and a replaced file is read from its start */
static void test_growing_file_read_incrementally(void **state)
{
	char root[] = "/tmp/lw-perfmap-XXXXXX", path[256], line[160];
	struct lw_nativesym *s = NULL;
	struct lw_native_frame f;
	struct lw_perfmap_stats st, st2;
	uint64_t after_big;
	long rss0;
	char *big;
	size_t i, len = 0, nbig = under_valgrind() ? 300000 : 2000000;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/77", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/77/root", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/77/root/tmp", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/77/root/tmp/perf-77.map", root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	/* ~100 MB: 2 * 10^6 lines of ~50 bytes, written 10,000 at a time (this process's peak
	 * RSS is measured below: nothing big allocated before) */
	big = malloc(10000 * 56 + 1);
	assert_non_null(big);
	for (i = 0; i < nbig; i += 10000) {
		size_t j, l = 0;

		for (j = i; j < i + 10000; j++)
			l += (size_t)sprintf(big + l, "%zx 10 JS:~g%zu /app/hostile.js:%zu:1\n",
					     0x10000000 + j * 0x10, j, j);
		write_all(fd, big, l);
		len += l;
	}
	free(big);
	assert_int_equal(lw_nativesym__new(root, 77, &s), 0);
	rss0 = maxrss_kb();
	/* the whole file is read in bounded steps, one per refresh */
	for (i = 0; i < 40; i++) {
		lw_nativesym__sync(s);
		usleep(6000);
	}
	lw_nativesym__perf_map_stats(s, &st);
	/* read once (the partial line at the end of each 8 MiB step is read again) */
	assert_true(st.bytes_read >= len && st.bytes_read < len + 16 * 1024);
	assert_true(st.entries <= 131072);
	assert_int_equal(st.entries + st.evicted, nbig);
	/* before: the 100 MB file read whole, and its 2 * 10^6 lines kept (over 250 MB) */
	printf("perf map of %zu MB: peak RSS +%ld KiB\n", len >> 20, maxrss_kb() - rss0);
	assert_true(maxrss_kb() - rss0 < RSS_LIMIT_KIB || under_valgrind());
	after_big = st.bytes_read;
	/* one line appended: only it is read */
	snprintf(line, sizeof(line), "ff000000 100 JS:~late /app/late.js:1:1\n");
	write_all(fd, line, strlen(line));
	usleep(6000);
	lw_nativesym__sync(s);
	lw_nativesym__perf_map_stats(s, &st2);
	assert_int_equal(st2.bytes_read - after_big, strlen(line));
	assert_int_equal(lw_nativesym__jit_lookup(s, 0xff000010, &f), 0);
	assert_string_equal(f.symbol, "JS:~late /app/late.js:1:1");
	/* a line of 4 KiB: skipped, the next one read */
	big = malloc(4200);
	memset(big, 'x', 4096);
	big[4096] = '\n';
	write_all(fd, "fe000000 100 JS:~", 17);
	write_all(fd, big, 4097);
	free(big);
	write_all(fd, "fd000000 100 JS:~after\n", 23);
	usleep(6000);
	lw_nativesym__sync(s);
	lw_nativesym__perf_map_stats(s, &st2);
	assert_int_equal(st2.skipped, 1);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0xfe000010, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0xfd000010, &f), 0);
	assert_string_equal(f.symbol, "JS:~after");
	close(fd);
	/* replaced by a small file: read again from its start */
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_all(fd, "1000 100 JS:~fresh\n", 19);
	close(fd);
	usleep(6000);
	lw_nativesym__sync(s);
	lw_nativesym__perf_map_stats(s, &st2);
	assert_int_equal(st2.entries, 1);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1010, &f), 0);
	assert_string_equal(f.symbol, "JS:~fresh");
	lw_nativesym__free(s);
	unlink(path);
	snprintf(path, sizeof(path), "%s/77/root/tmp", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/77/root", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/77", root);
	rmdir(path);
	rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_new_code_over_many_dropped),
		/* first: it measures this process's peak RSS */
		cmocka_unit_test(test_growing_file_read_incrementally),
		cmocka_unit_test(test_million_lines_bounded),
		cmocka_unit_test(test_long_names_bounded_by_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
