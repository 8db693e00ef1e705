// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Line tables of CPython 3.8-3.13 against vectors CPython itself produced
 * (tests/unit/fixtures/gen_pyline_vectors.py), plus hostile tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/pyline.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (strcmp(s, "-") == 0)
		return 0;
	while (s[0] && s[1] && n < cap) {
		unsigned v;

		sscanf(s, "%2x", &v);
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static void test_vectors(void **state)
{
	FILE *f = fopen("tests/unit/fixtures/pyline_vectors.txt", "r");
	static char hex[1 << 16];
	static uint8_t table[1 << 15];
	int minor, first, expected, n = 0, per_minor[16] = { 0 };
	unsigned instr;

	(void)state;
	assert_non_null(f);
	while (fscanf(f, "%d %d %65535s %u %d", &minor, &first, hex, &instr, &expected) == 5) {
		size_t len = unhex(hex, table, sizeof(table));
		int got = lw_pyline_lookup(minor, table, len, first, instr);

		if (got != expected)
			fail_msg("3.%d first %d instr %u: got %d, CPython says %d (table %s)", minor,
				 first, instr, got, expected, hex);
		n++;
		if (minor >= 0 && minor < 16)
			per_minor[minor]++;
	}
	fclose(f);
	assert_true(n > 500);
	for (minor = 8; minor <= 13; minor++)
		assert_true(per_minor[minor] > 50);
}

static void test_hostile(void **state)
{
	static const uint8_t truncated_varint[] = { 0xe8, 0x7f };	/* code 13, then no end */
	static const uint8_t huge[] = { 0xe8, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f };
	static const uint8_t continuation_first[] = { 0x01, 0x02, 0x03 };
	static const uint8_t odd[] = { 0x02 };
	uint8_t rnd[257];
	int i, m;

	(void)state;
	assert_int_equal(lw_pyline_lookup(11, truncated_varint, sizeof(truncated_varint), 1, 0), -1);
	lw_pyline_lookup(12, huge, sizeof(huge), 1, 0);
	assert_int_equal(lw_pyline_lookup(13, continuation_first, 3, 1, 0), -1);
	assert_int_equal(lw_pyline_lookup(10, odd, 1, 5, 0), -1);
	assert_int_equal(lw_pyline_lookup(9, odd, 1, 5, 0), 5);
	assert_int_equal(lw_pyline_lookup(11, NULL, 0, 5, 0), -1);
	/* past the end of a valid table: unknown */
	assert_int_equal(lw_pyline_lookup(11, (const uint8_t[]){ 0x80 }, 1, 7, 100), -1);
	/* random bytes never crash or read out of bounds (ASan watches) */
	srand(42);
	for (i = 0; i < 2000; i++) {
		size_t len = (size_t)(rand() % 256);

		for (size_t k = 0; k < len; k++)
			rnd[k] = (uint8_t)rand();
		for (m = 8; m <= 13; m++)
			lw_pyline_lookup(m, rnd, len, rand() % 1000, (uint32_t)(rand() % 400));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
