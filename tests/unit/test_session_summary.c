// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The summary's userspace aggregates without BPF (probe/session_summary.c): sites keyed by
 * name, file, line (and syscall, target for blocking sites), rows biggest total first, empty
 * rows left out, periodic summaries as deltas since the last one, the row cap, the table's
 * budget (least recently updated evicted, counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe/session_priv.h"

#define MS 1000000ull

static struct lw_u64map *new_map(void)
{
	struct lw_u64map *m = NULL;

	assert_int_equal(lw_u64map__new(sizeof(struct lw_agg), &m), 0);
	return m;
}

static void add(struct lw_u64map *m, const char *q, const char *file, int line, const char *sc,
		const char *target, uint64_t ns)
{
	struct lw_agg *a = lw_sess_agg_get(m, q, file, line, sc, target, NULL);

	assert_non_null(a);
	lw_hist_add(&a->h, ns);
}

static void test_keys_and_order(void **state)
{
	struct lw_u64map *m = new_map();
	struct json_object *a, *r;
	size_t omitted = 0;

	add(m, "small", "/a.py", 1, NULL, NULL, 60 * MS);
	add(m, "big", "/a.py", 10, NULL, NULL, 300 * MS);
	add(m, "big", "/a.py", 10, NULL, NULL, 200 * MS);
	add(m, "big", "/a.py", 11, NULL, NULL, 70 * MS);	/* another line: another site */
	a = lw_sess_agg_json(m, 1, 0, &omitted);
	assert_int_equal(json_object_array_length(a), 3);
	assert_int_equal(omitted, 0);
	r = json_object_array_get_idx(a, 0);
	assert_string_equal(lw_j_get_str(r, "qualname"), "big");
	assert_int_equal(lw_j_get_int(r, "line", 0), 10);
	assert_int_equal(lw_j_get_int(r, "count", 0), 2);
	assert_true(json_object_get_double(lw_j_get(r, "total_ms")) == 500.0);
	assert_true(json_object_get_double(lw_j_get(r, "max_ms")) == 300.0);
	assert_non_null(lw_j_get(r, "hist"));
	assert_null(lw_j_get(r, "syscall"));	/* not a blocking row */
	assert_int_equal(lw_j_get_int(json_object_array_get_idx(a, 1), "line", 0), 11);
	assert_string_equal(lw_j_get_str(json_object_array_get_idx(a, 2), "qualname"), "small");
	json_object_put(a);
	lw_u64map__free(m, NULL);
}

static void test_blocking_rows(void **state)
{
	struct lw_u64map *m = new_map();
	struct json_object *a, *r;
	size_t omitted = 0;

	add(m, "load", "/db.py", 5, "read", "/data/x", 20 * MS);
	add(m, "load", "/db.py", 5, "read", "/data/y", 30 * MS);	/* other target */
	add(m, NULL, NULL, 0, "futex", NULL, 5 * MS);		/* no Python frame */
	a = lw_sess_agg_json(m, 1, 1, &omitted);
	assert_int_equal(json_object_array_length(a), 3);
	r = json_object_array_get_idx(a, 0);
	assert_string_equal(lw_j_get_str(r, "syscall"), "read");
	assert_string_equal(lw_j_get_str(r, "target"), "/data/y");
	assert_null(lw_j_get(r, "hist"));
	r = json_object_array_get_idx(a, 2);
	assert_string_equal(lw_j_get_str(r, "syscall"), "futex");
	assert_null(lw_j_get(r, "qualname"));	/* "" renders as null */
	assert_null(lw_j_get(r, "line"));
	json_object_put(a);
	lw_u64map__free(m, NULL);
}

/* periodic: what happened since the last periodic summary; final: everything */
static void test_periodic_deltas(void **state)
{
	struct lw_u64map *m = new_map();
	struct json_object *a;
	size_t omitted = 0;

	add(m, "f", "/a.py", 1, NULL, NULL, 100 * MS);
	add(m, "g", "/a.py", 2, NULL, NULL, 100 * MS);
	a = lw_sess_agg_json(m, 0, 0, &omitted);
	assert_int_equal(json_object_array_length(a), 2);
	json_object_put(a);

	add(m, "f", "/a.py", 1, NULL, NULL, 150 * MS);
	a = lw_sess_agg_json(m, 0, 0, &omitted);
	assert_int_equal(json_object_array_length(a), 1);	/* g: nothing new */
	assert_int_equal(lw_j_get_int(json_object_array_get_idx(a, 0), "count", 0), 1);
	json_object_put(a);

	a = lw_sess_agg_json(m, 1, 0, &omitted);
	assert_int_equal(json_object_array_length(a), 2);
	assert_int_equal(lw_j_get_int(json_object_array_get_idx(a, 0), "count", 0), 2);
	json_object_put(a);
	lw_u64map__free(m, NULL);
}

static void test_row_cap(void **state)
{
	struct lw_u64map *m = new_map();
	struct json_object *a;
	size_t omitted = 0;
	int i;

	for (i = 1; i <= MAX_SUMMARY_SITES + 7; i++)
		add(m, "f", "/a.py", i, NULL, NULL, (uint64_t)i * MS);
	a = lw_sess_agg_json(m, 1, 0, &omitted);
	assert_int_equal(json_object_array_length(a), MAX_SUMMARY_SITES);
	assert_int_equal(omitted, 7);
	/* the biggest are kept */
	assert_int_equal(lw_j_get_int(json_object_array_get_idx(a, 0), "line", 0),
			 MAX_SUMMARY_SITES + 7);
	json_object_put(a);
	lw_u64map__free(m, NULL);
}

/* past LW_AGG_BUDGET sites the least recently updated one goes, and is counted */
static void test_budget_evicts_least_recent(void **state)
{
	struct lw_u64map *m = new_map();
	uint64_t evicted = 0;
	struct lw_agg *a;
	int i;

	for (i = 0; i < LW_AGG_BUDGET; i++)
		assert_non_null(lw_sess_agg_get(m, "f", "/a.py", i, NULL, NULL, &evicted));
	assert_int_equal(evicted, 0);
	/* line 0 used again: line 1 is now the least recent */
	assert_non_null(lw_sess_agg_get(m, "f", "/a.py", 0, NULL, NULL, &evicted));
	a = lw_sess_agg_get(m, "f", "/a.py", LW_AGG_BUDGET, NULL, NULL, &evicted);
	assert_non_null(a);
	assert_int_equal(evicted, 1);
	assert_int_equal(lw_u64map__count(m), LW_AGG_BUDGET);
	assert_int_equal(a->line, LW_AGG_BUDGET);
	/* an existing site never evicts */
	assert_non_null(lw_sess_agg_get(m, "f", "/a.py", 0, NULL, NULL, &evicted));
	assert_int_equal(evicted, 1);
	lw_u64map__free(m, NULL);
	/* which one went: line 1 (re-adding it evicts again), not line 0 */
	m = new_map();
	evicted = 0;
	for (i = 0; i < LW_AGG_BUDGET; i++)
		lw_sess_agg_get(m, "f", "/a.py", i, NULL, NULL, &evicted);
	lw_sess_agg_get(m, "f", "/a.py", 0, NULL, NULL, &evicted);
	lw_sess_agg_get(m, "f", "/a.py", LW_AGG_BUDGET, NULL, NULL, &evicted);
	lw_sess_agg_get(m, "f", "/a.py", 0, NULL, NULL, &evicted);
	assert_int_equal(evicted, 1);
	lw_sess_agg_get(m, "f", "/a.py", 1, NULL, NULL, &evicted);
	assert_int_equal(evicted, 2);
	lw_u64map__free(m, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_order),
		cmocka_unit_test(test_blocking_rows),
		cmocka_unit_test(test_periodic_deltas),
		cmocka_unit_test(test_row_cap),
		cmocka_unit_test(test_budget_evicts_least_recent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
