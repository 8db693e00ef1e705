// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * V8's perf map (/tmp/perf-PID.map, --perf-basic-prof): lines are appended as code is made, and
 * V8 reuses the memory of code it dropped, so one start can have several lines: the last one
 * written names the code there now.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		"1010 20 JS:~inner /app/a.js:9:1\n";		/* over the old 0x1000's tail */

	(void)state;
	assert_int_equal(lw_nativesym__new("/proc", 1, &s), 0);
	assert_int_equal(lw_nativesym__load_perf_map(s, text), 4);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1005, &f), 0);
	assert_string_equal(f.symbol, "JS:~fifoHandler /app/a.js:40:21");
	assert_int_equal(f.offset, 5);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x2010, &f), 0);
	assert_string_equal(f.symbol, "JS:~hashHandler /app/a.js:30:21");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1015, &f), 0);
	assert_string_equal(f.symbol, "JS:~inner /app/a.js:9:1");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1030, &f), 0);
	assert_string_equal(f.symbol, "JS:~fifoHandler /app/a.js:40:21");
	/* only the dropped code at 0x1000 (0x100 long) covered 0x1050: nothing is known there now */
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x1050, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x3009, &f), 0);
	assert_string_equal(f.symbol, "Builtin:Foo");
	assert_int_equal(lw_nativesym__jit_lookup(s, 0x3010, &f), -ENOENT);
	assert_int_equal(lw_nativesym__jit_lookup(s, 0xfff, &f), -ENOENT);
	lw_nativesym__free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
