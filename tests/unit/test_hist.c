// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "record/hist.h"

/* every slot's [low, high) contains exactly the values that map to it, and slots tile */
static void test_slot_bounds(void **state)
{
	uint32_t s;

	(void)state;
	assert_int_equal(lw_hist_slot(0), 0);
	assert_int_equal(lw_hist_slot(999), 0);
	assert_int_equal(lw_hist_slot(1000), 1);
	for (s = 0; s + 1 < LW_HIST_SLOTS; s++) {
		uint64_t lo = lw_hist_slot_low(s), hi = lw_hist_slot_high(s);

		assert_true(lo < hi);
		assert_int_equal(hi, lw_hist_slot_low(s + 1));
		assert_int_equal(lw_hist_slot(lo), s);
		assert_int_equal(lw_hist_slot(hi - 1), s);
		assert_int_equal(lw_hist_slot(hi), s + 1);
	}
	/* values past the last slot clamp to it */
	assert_int_equal(lw_hist_slot(UINT64_MAX), LW_HIST_SLOTS - 1);
	/* 4 sub-buckets per power of two: 100 ms and 120 ms land in different slots */
	assert_int_not_equal(lw_hist_slot(100000000ull), lw_hist_slot(120000000ull));
}

static void test_quantiles(void **state)
{
	struct lw_hist *h = calloc(1, sizeof(*h));
	uint64_t v, p50, p99;
	int i;

	(void)state;
	/* 1..1000 ms, uniformly */
	for (i = 1; i <= 1000; i++)
		lw_hist_add(h, (uint64_t)i * 1000000ull);
	assert_int_equal(h->count, 1000);
	assert_int_equal(h->max_ns, 1000000000ull);
	assert_int_equal(h->total_ns, 500500ull * 1000000ull);
	p50 = lw_hist_quantile(h, 0.5);
	p99 = lw_hist_quantile(h, 0.99);
	/* within the resolution of a slot (25 %) of the exact 500 ms and 990 ms */
	assert_true(p50 >= 375000000ull && p50 <= 625000000ull);
	assert_true(p99 >= 742500000ull && p99 <= 1000000000ull);
	assert_true(lw_hist_quantile(h, 1.0) == h->max_ns);
	/* never above the maximum */
	memset(h, 0, sizeof(*h));
	lw_hist_add(h, 300000000ull);
	v = lw_hist_quantile(h, 0.99);
	assert_true(v <= 300000000ull && v >= lw_hist_slot_low(lw_hist_slot(300000000ull)));
	/* all samples in one slot: the quantiles stay between the exact min and max */
	memset(h, 0, sizeof(*h));
	lw_hist_add(h, 250000000ull);
	lw_hist_add(h, 250200000ull);
	lw_hist_add(h, 250400000ull);
	lw_hist_add(h, 250600000ull);
	assert_int_equal(h->min_ns, 250000000ull);
	v = lw_hist_quantile(h, 0.5);
	assert_true(v >= 250000000ull && v <= 250600000ull);
	memset(h, 0, sizeof(*h));
	assert_int_equal(lw_hist_quantile(h, 0.5), 0);
	free(h);
}

static void test_delta_merge(void **state)
{
	struct lw_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *d = calloc(1, sizeof(*d));

	(void)state;
	lw_hist_add(a, 5000000);
	*b = *a;
	lw_hist_add(a, 7000000);
	lw_hist_add(a, 70000000);
	lw_hist_delta(d, a, b);
	assert_int_equal(d->count, 2);
	assert_int_equal(d->total_ns, 77000000);
	assert_int_equal(d->slots[lw_hist_slot(5000000)], 0);
	assert_int_equal(d->slots[lw_hist_slot(70000000)], 1);
	lw_hist_merge(d, b);
	assert_int_equal(d->count, 3);
	free(a);
	free(b);
	free(d);
}

static void test_print(void **state)
{
	struct lw_hist *h = calloc(1, sizeof(*h));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	char d[32];

	(void)state;
	lw_hist_add(h, 1300000);	/* 1.3 and 1.4 ms: same slot [1.28, 1.536) */
	lw_hist_add(h, 1400000);
	lw_hist_add(h, 300000000);
	lw_hist_print(f, h, "  ");
	fclose(f);
	assert_non_null(strstr(buf, "|****************************************|"));
	assert_non_null(strstr(buf, ": 2 "));
	assert_non_null(strstr(buf, ": 1 "));
	free(buf);
	free(h);
	assert_string_equal(lw_fmt_dur(2004000000ull, d, sizeof(d)), "2.004 s");
	assert_string_equal(lw_fmt_dur(12345678ull, d, sizeof(d)), "12.346 ms");
	assert_string_equal(lw_fmt_dur(312000ull, d, sizeof(d)), "312 us");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_bounds),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_delta_merge),
		cmocka_unit_test(test_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
