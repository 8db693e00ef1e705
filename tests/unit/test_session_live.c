// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The live tick's rules that need no BPF object (probe/session_live.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe/session_priv.h"

#define MS 1000000ull

/* precise mode: a callback younger than the threshold is not alerted about, also one that
 * began after the tick read its clock (issue 20: a loop that never polls begins many callbacks
 * between the tick's clock and its read of the thread; such a callback read as old, and a live
 * alert named after nothing went out) */
static void test_cb_young(void **state)
{
	struct lw_session s;
	struct lw_thread th;
	uint64_t now = 5000 * MS;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(&th, 0, sizeof(th));
	s.o.precise = 1;
	s.o.threshold_ns = 100 * MS;
	th.cb_depth = 1;

	th.cb_start_ns = now - 30 * MS;
	assert_true(lw_sess_cb_young(&s, &th, now));
	th.cb_start_ns = now - 100 * MS;	/* as old as the threshold: slow */
	assert_false(lw_sess_cb_young(&s, &th, now));
	th.cb_start_ns = now - 400 * MS;
	assert_false(lw_sess_cb_young(&s, &th, now));
	th.cb_start_ns = now;
	assert_true(lw_sess_cb_young(&s, &th, now));
	th.cb_start_ns = now + 2 * MS;		/* began after the tick's clock */
	assert_true(lw_sess_cb_young(&s, &th, now));

	/* no callback running, or default mode: no such rule */
	th.cb_depth = 0;
	assert_false(lw_sess_cb_young(&s, &th, now));
	th.cb_depth = 1;
	s.o.precise = 0;
	assert_false(lw_sess_cb_young(&s, &th, now));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cb_young),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
