// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The record kinds (record/rectype.h): every "type" of interface.md maps to a kind and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "record/rectype.h"

static void test_round_trip(void **state)
{
	/* the record types interface.md documents, written out here, not taken from the table */
	static const char *const types[] = { "start", "end", "summary", "slow_callback",
					     "slow_tick", "blocking_call", "suppressed",
					     "unawaited_coroutine", "exception_never_retrieved",
					     "task_destroyed_pending", "stuck_task" };
	size_t i, j;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		enum lw_rec_kind k = lw_rec_kind_of(types[i]);

		assert_int_not_equal(k, LW_RK_UNKNOWN);
		assert_string_equal(lw_rec_kind_name(k), types[i]);
		for (j = 0; j < i; j++)
			assert_int_not_equal(lw_rec_kind_of(types[j]), k);
	}
	assert_int_equal(LW_RK__COUNT, sizeof(types) / sizeof(types[0]) + 1);
}

static void test_unknown(void **state)
{
	assert_int_equal(lw_rec_kind_of(NULL), LW_RK_UNKNOWN);
	assert_int_equal(lw_rec_kind_of(""), LW_RK_UNKNOWN);
	assert_int_equal(lw_rec_kind_of("Start"), LW_RK_UNKNOWN);
	assert_int_equal(lw_rec_kind_of("slow_callbacks"), LW_RK_UNKNOWN);
	assert_null(lw_rec_kind_name(LW_RK_UNKNOWN));
	assert_null(lw_rec_kind_name(LW_RK__COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
