// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/lw_util.h"

static void test_durations(void **state)
{
	static const struct {
		const char *in;
		uint64_t ns;
	} ok[] = {
		{ "250us", 250000ull },     { "10ms", 10000000ull },    { "1.5s", 1500000000ull },
		{ "2m", 120000000000ull },  { "100", 100000000ull },    { "0.5", 500000ull },
		{ "1h", 3600000000000ull }, { "7ns", 7ull },            { " 3 ms", 3000000ull },
		{ "12µs", 12000ull },        { "0", 0ull },
	};
	static const char *const bad[] = { "", "ms", "-5ms", "+5ms", "5 parsecs", "1e3ms", "0x10",
					   "inf", "nan", "5msx", "1.2.3s", NULL };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t ns = 1;

		assert_int_equal(lw_parse_duration(ok[i].in, &ns), 0);
		assert_int_equal(ns, ok[i].ns);
	}
	for (i = 0; bad[i]; i++) {
		uint64_t ns;

		assert_int_not_equal(lw_parse_duration(bad[i], &ns), 0);
	}
	assert_int_not_equal(lw_parse_duration(NULL, &(uint64_t){ 0 }), 0);
	assert_int_equal(lw_parse_duration("99999999999999h", &(uint64_t){ 0 }), -ERANGE);
}

static void test_sizes(void **state)
{
	uint64_t b;

	(void)state;
	assert_int_equal(lw_parse_size("64M", &b), 0);
	assert_int_equal(b, 64ull << 20);
	assert_int_equal(lw_parse_size("512k", &b), 0);
	assert_int_equal(b, 512ull << 10);
	assert_int_equal(lw_parse_size("1G", &b), 0);
	assert_int_equal(b, 1ull << 30);
	assert_int_equal(lw_parse_size("100", &b), 0);
	assert_int_equal(b, 100);
	assert_int_not_equal(lw_parse_size("12Q", &b), 0);
	assert_int_not_equal(lw_parse_size("-1M", &b), 0);
}

static void test_rfc3339(void **state)
{
	char buf[40];
	uint64_t back = 0;
	/* 2026-11-25T02:00:30.123456Z */
	uint64_t t = 1795572030ull * 1000000000ull + 123456789ull;

	(void)state;
	lw_fmt_rfc3339(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-25T02:00:30.123456Z");
	assert_int_equal(lw_parse_rfc3339(buf, &back), 0);
	assert_int_equal(back, t - 789);	/* microseconds kept */
	assert_int_equal(lw_parse_rfc3339("2026-11-25T02:00:30Z", &back), 0);
	assert_int_equal(back, 1795572030ull * 1000000000ull);
	assert_int_not_equal(lw_parse_rfc3339("2026-11-25 02:00:30", &back), 0);
	assert_int_not_equal(lw_parse_rfc3339("yesterday", &back), 0);
	assert_int_not_equal(lw_parse_rfc3339("2026-11-25T02:00:30.5Zjunk", &back), 0);
}

static void test_strlcpy(void **state)
{
	char b[4];

	(void)state;
	assert_int_equal(lw_strlcpy(b, "abcdef", sizeof(b)), 6);
	assert_string_equal(b, "abc");
	assert_int_equal(lw_strlcpy(b, "x", sizeof(b)), 1);
	assert_string_equal(b, "x");
	assert_string_equal(lw_basename("/usr/bin/python3.11"), "python3.11");
	assert_string_equal(lw_basename("python3"), "python3");
}

static void test_tail(void **state)
{
	char b[64];

	(void)state;
	assert_string_equal(lw_tail("/tmp/x", 30, b, sizeof(b)), "/tmp/x");
	/* exactly 30 bytes stays whole */
	assert_string_equal(lw_tail("/tmp/lw-demo-abcdef/config.fif", 30, b, sizeof(b)),
			    "/tmp/lw-demo-abcdef/config.fif");
	assert_string_equal(lw_tail("/tmp/lw-demo-n137t_qp/config.fifo", 30, b, sizeof(b)),
			    "...w-demo-n137t_qp/config.fifo");
	assert_int_equal(strlen(lw_tail("/tmp/lw-demo-n137t_qp/config.fifo", 30, b, sizeof(b))), 30);
	assert_int_equal(lw_col_width(1, 6), 6);
	assert_int_equal(lw_col_width(43, 6), 43);
	assert_int_equal(lw_col_width(74, 6), LW_COL_MAX);
	/* a buffer too small for the column: the string as it is, never an overflow */
	assert_string_equal(lw_tail("/tmp/lw-demo-n137t_qp/config.fifo", 30, b, 8),
			    "/tmp/lw-demo-n137t_qp/config.fifo");
}

/* /proc/PID/stat field 22, after a command name that may hold spaces and ')' */
static void test_starttime(void **state)
{
	unsigned long long t = 0;

	(void)state;
	assert_int_equal(lw_parse_proc_starttime("42 (a) b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 "
						 "0 20 0 1 0 987654 1000 100 x\n", &t), 0);
	assert_int_equal(t, 987654ull);
	assert_int_equal(lw_parse_proc_starttime("42 (a) S 1 2 3", &t), -EINVAL);
	assert_int_equal(lw_parse_proc_starttime("garbage", &t), -EINVAL);
	/* our own: set, and stable */
	t = lw_proc_starttime("/proc", getpid());
	assert_true(t > 0);
	assert_int_equal(lw_proc_starttime("/proc", getpid()), t);
	assert_int_equal(lw_proc_starttime("/proc", 0x3fffffff), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_tail),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_starttime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
