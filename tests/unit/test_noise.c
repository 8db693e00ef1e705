// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* record/noise.c's memory across process churn (issue 19's soak: the rate limiter kept an entry
 * per (site, type, pid) of every process that ever came and went). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "record/jsonrec.h"
#include "record/noise.h"

static struct json_object *slow(int pid, double ms)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"slow_callback\",\"pid\":%d,\"tid\":%d,\"duration_ms\":%.1f,"
		 "\"callback\":{\"kind\":\"task\",\"qualname\":\"work\",\"file\":\"app.py\","
		 "\"line\":3},\"stack\":[{\"function\":\"work\",\"file\":\"app.py\",\"line\":5}]}",
		 pid, pid, ms);
	return json_tokener_parse(buf);
}

/* a slow iteration named by nothing (a Node loop without JS names): only its native stack */
static struct json_object *unnamed_tick(const char *leaf, const char *caller)
{
	char buf[768];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"slow_tick\",\"pid\":9,\"tid\":9,\"busy_ms\":150.0,"
		 "\"slowest\":null,\"stack\":[],\"native_stack\":["
		 "{\"symbol\":\"%s\",\"module\":\"libc.so.6\",\"offset\":4},"
		 "{\"symbol\":\"%s\",\"module\":\"node\",\"offset\":8},"
		 "{\"symbol\":\"uv_run\",\"module\":\"node\",\"offset\":9}]}",
		 leaf, caller);
	return json_tokener_parse(buf);
}

/* different causes of unnamed slow iterations are different sites: one is not suppressed as
 * if it were the other (they all shared "?:0" before); the same cause is rate-limited */
static void test_unnamed_sites_by_native_frame(void **state)
{
	struct lw_noise_opts o = { .rate = 1, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull };
	struct lw_noise *n;
	struct json_object *a = unnamed_tick("memcpy", "sha512_block_data_order_avx2");
	struct json_object *b = unnamed_tick("memcpy", "_ZN2v88internal10JsonParserIhE9ParseJsonEv");
	struct json_object *c = unnamed_tick("memmove", "sha512_block_data_order_avx2");
	char ka[800], kb[800];

	(void)state;
	lw_site_key(a, ka, sizeof(ka));
	lw_site_key(b, kb, sizeof(kb));
	assert_string_not_equal(ka, kb);
	assert_non_null(strstr(ka, "native:sha512_block_data_order_avx2 (node)"));
	assert_int_equal(lw_noise__new(&o, &n), 0);
	assert_int_equal(lw_noise__check(n, a, 1000), LW_NOISE_PASS);
	assert_int_equal(lw_noise__check(n, b, 1001), LW_NOISE_PASS);
	assert_int_not_equal(lw_noise__check(n, c, 1002), LW_NOISE_PASS);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	lw_noise__free(n);
}

/* a framework's dispatcher running two routes: the same callback and the same innermost frame
 * (both in json's decoder), two sites (issue 21: slow_callback.site, the route) */
static struct json_object *routed(const char *route)
{
	char buf[768];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"slow_callback\",\"pid\":9,\"tid\":9,\"duration_ms\":150.0,"
		 "\"callback\":{\"kind\":\"task\",\"qualname\":\"RequestHandler.start\","
		 "\"file\":\"/usr/lib/python3/dist-packages/aiohttp/web_protocol.py\",\"line\":467},"
		 "\"site\":{\"kind\":\"function\",\"qualname\":\"%s\",\"file\":\"/srv/app.py\","
		 "\"line\":7},\"stack\":[{\"function\":\"raw_decode\","
		 "\"file\":\"/usr/lib/python3.11/json/decoder.py\",\"line\":353}]}",
		 route);
	return json_tokener_parse(buf);
}

static void test_routes_are_sites(void **state)
{
	struct lw_site_rule rule = { .pattern = (char *)"RequestHandler.start", .ignore = 1 };
	struct lw_noise_opts o = { .rate = 1, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull };
	struct lw_noise *n;
	struct json_object *a = routed("parse_route"), *b = routed("upload_route"),
			   *c = routed("parse_route");

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	assert_int_equal(lw_noise__check(n, a, 1000), LW_NOISE_PASS);
	assert_int_equal(lw_noise__check(n, b, 1001), LW_NOISE_PASS);
	assert_int_not_equal(lw_noise__check(n, c, 1002), LW_NOISE_PASS);
	lw_noise__free(n);
	/* a rule naming the dispatcher still applies to the records it dispatched */
	o.rules = &rule;
	o.nrules = 1;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	assert_int_equal(lw_noise__check(n, a, 1000), LW_NOISE_DROP);
	lw_noise__free(n);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
}

static int emitted;

static void count_emit(void *ctx, struct json_object *rec)
{
	(void)ctx;
	emitted++;
	json_object_put(rec);
}

static void test_churn_forgotten(void **state)
{
	struct lw_noise_opts o = { .rate = 1, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull };
	struct lw_noise *n;
	int pid;

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	/* 1000 short-lived processes, a slow callback each, every one detached in turn */
	for (pid = 1000; pid < 2000; pid++) {
		struct json_object *r = slow(pid, 150);

		assert_int_equal(lw_noise__check(n, r, 1000), LW_NOISE_PASS);
		json_object_put(r);
		if (pid % 2 == 0)
			assert_int_equal(lw_noise__forget_pid(n, pid), 1);
	}
	assert_int_equal(lw_noise__sites(n), 500);
	for (pid = 1001; pid < 2000; pid += 2)
		lw_noise__forget_pid(n, pid);
	assert_int_equal(lw_noise__sites(n), 0);
	lw_noise__free(n);
}

static void test_pending_counts_kept_until_flushed(void **state)
{
	struct lw_noise_opts o = { .rate = 1, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull };
	struct lw_noise *n;
	struct json_object *r;
	int i;

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	for (i = 0; i < 3; i++) {
		r = slow(7, 150);
		lw_noise__check(n, r, 1000 + (uint64_t)i);
		json_object_put(r);
	}
	/* two suppressed, not yet reported: the entry stays */
	assert_int_equal(lw_noise__forget_pid(n, 7), 0);
	assert_int_equal(lw_noise__sites(n), 1);
	emitted = 0;
	lw_noise__flush(n, 2000, 1, count_emit, NULL);
	assert_int_equal(emitted, 1);
	assert_int_equal(lw_noise__forget_pid(n, 7), 1);
	assert_int_equal(lw_noise__sites(n), 0);
	assert_int_equal(lw_noise__suppressed_total(n), 2);	/* the total is kept */
	lw_noise__free(n);
}

static struct json_object *live(int pid, double ms)
{
	struct json_object *r = slow(pid, ms);

	json_object_object_add(r, "in_progress", json_object_new_boolean(1));
	return r;
}

static enum lw_noise_verdict check_put(struct lw_noise *n, struct json_object *r, uint64_t now)
{
	enum lw_noise_verdict v = lw_noise__check(n, r, now);

	json_object_put(r);
	return v;
}

/* a live alert among the site's first five calls must not keep it from learning its baseline:
 * the much slower call after the first ten is still let through as an escalation (the CI
 * failure of stop 12: the 80 ms call among 12 ms ones was suppressed) */
static void test_escalation_after_early_alert(void **state)
{
	struct lw_noise_opts o = { .rate = 10, .window_ns = 60000000000ull,
				   .threshold_ns = 10000000ull };
	uint64_t now = 1000000000ull;
	struct lw_noise *n;
	struct json_object *r;
	int i;

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	for (i = 0; i < 4; i++, now += 20000000ull)
		assert_int_equal(check_put(n, slow(7, 12), now), LW_NOISE_PASS);
	/* the fifth call raises a live alert at 10 ms, then ends at 12 ms */
	assert_int_equal(check_put(n, live(7, 10), now), LW_NOISE_PASS);
	now += 2000000ull;
	r = slow(7, 12);
	assert_int_equal(lw_noise__check(n, r, now), LW_NOISE_PASS);
	assert_true(json_object_get_boolean(json_object_object_get(r, "alerted")));
	json_object_put(r);
	for (i = 0; i < 20; i++) {
		now += 20000000ull;
		check_put(n, slow(7, 12), now);
	}
	now += 100000000ull;
	r = slow(7, 80);
	assert_int_equal(lw_noise__check(n, r, now), LW_NOISE_PASS);
	assert_true(json_object_get_boolean(json_object_object_get(r, "escalated")));
	json_object_put(r);
	/* and an ordinary one after it is suppressed again */
	assert_int_equal(check_put(n, slow(7, 12), now + 20000000ull), LW_NOISE_SUPPRESS);
	lw_noise__free(n);
}

static struct json_object *stuck(const char *name, const char *coro, const char *frame, int line,
				 int deadlock)
{
	char buf[768];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"stuck_task\",\"pid\":7,\"tid\":7,\"task\":{\"name\":\"%s\","
		 "\"coro\":\"%s\"},\"pending_ms\":61000.0,\"stack\":[{\"qualname\":\"%s\","
		 "\"file\":\"/usr/lib/python3.11/asyncio/locks.py\",\"line\":%d}],"
		 "\"deadlock\":%s}", name, coro, frame, line, deadlock ? "true" : "false");
	return json_tokener_parse(buf);
}

static struct json_object *last_emitted;

static void keep_emit(void *ctx, struct json_object *rec)
{
	(void)ctx;
	emitted++;
	json_object_put(last_emitted);
	last_emitted = rec;
}

/* issue 14: stuck Tasks are rate-limited per (coroutine, where they wait): many request Tasks
 * on one lock make `rate` records and a suppressed count; other sites and deadlocks pass */
static void test_stuck_tasks_rate_limited(void **state)
{
	struct lw_noise_opts o = { .rate = 2, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull };
	struct lw_noise *n;
	struct json_object *r;
	char nm[16];
	int i, pass = 0;

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	for (i = 0; i < 5; i++) {
		snprintf(nm, sizeof(nm), "req-%d", i);
		r = stuck(nm, "handle", "Lock.acquire", 114, 0);
		pass += lw_noise__check(n, r, 1000 + (uint64_t)i) == LW_NOISE_PASS;
		json_object_put(r);
	}
	assert_int_equal(pass, 2);
	/* another coroutine at that lock, the same one at another await: sites of their own */
	r = stuck("bg", "refresh", "Lock.acquire", 114, 0);
	assert_int_equal(lw_noise__check(n, r, 2000), LW_NOISE_PASS);
	json_object_put(r);
	r = stuck("req-9", "handle", "Queue.get", 158, 0);
	assert_int_equal(lw_noise__check(n, r, 2001), LW_NOISE_PASS);
	json_object_put(r);
	/* a deadlock is never held back */
	for (i = 0; i < 4; i++) {
		r = stuck("dl", "handle", "Lock.acquire", 114, 1);
		assert_int_equal(lw_noise__check(n, r, 3000 + (uint64_t)i), LW_NOISE_PASS);
		json_object_put(r);
	}
	emitted = 0;
	lw_noise__flush(n, 4000, 1, keep_emit, NULL);
	assert_int_equal(emitted, 1);
	assert_string_equal(lw_j_get_str(last_emitted, "record_type"), "stuck_task");
	assert_int_equal(lw_j_get_int(last_emitted, "count", 0), 3);
	assert_string_equal(lw_j_get_str(lw_j_get(last_emitted, "site"), "qualname"),
			    "Lock.acquire");
	assert_string_equal(lw_j_get_str(lw_j_get(last_emitted, "site"), "frame"), "handle");
	json_object_put(last_emitted);
	last_emitted = NULL;
	lw_noise__free(n);
}

static struct json_object *slow_at(int pid, int site, double ms)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"slow_callback\",\"pid\":%d,\"tid\":%d,\"duration_ms\":%.1f,"
		 "\"callback\":{\"kind\":\"task\",\"qualname\":\"gen_%d\",\"file\":\"gen.py\","
		 "\"line\":%d},\"stack\":[{\"function\":\"gen_%d\",\"file\":\"gen.py\",\"line\":1}]}",
		 pid, pid, ms, site, site, site);
	return json_tokener_parse(buf);
}

static uint64_t flushed_count;

static void count_suppressed(void *ctx, struct json_object *rec)
{
	struct json_object *c;

	(void)ctx;
	if (json_object_object_get_ex(rec, "count", &c))
		flushed_count += (uint64_t)json_object_get_int64(c);
	json_object_put(rec);
}

/* issue 19: a target with ever new sites (10,000 here, each slow twice: the second suppressed)
 * keeps the rate limiter's state to its budget; the least recently seen sites are evicted and
 * counted, and every suppressed record is still counted in a `suppressed` record */
static void test_sites_budget(void **state)
{
	struct lw_noise_opts o = { .rate = 1, .window_ns = 60000000000ull,
				   .threshold_ns = 100000000ull, .max_sites = 64 };
	struct lw_noise *n;
	uint64_t now = 1000000000ull;
	int i, k, max_seen = 0;

	(void)state;
	assert_int_equal(lw_noise__new(&o, &n), 0);
	for (i = 0; i < 10000; i++) {
		for (k = 0; k < 2; k++) {
			struct json_object *r = slow_at(42, i, 150);

			assert_int_equal(lw_noise__check(n, r, now += 1000),
					 k ? LW_NOISE_SUPPRESS : LW_NOISE_PASS);
			json_object_put(r);
		}
		if ((int)lw_noise__sites(n) > max_seen)
			max_seen = (int)lw_noise__sites(n);
	}
	/* the budget, plus the one entry holding the evicted sites' counts */
	assert_true(max_seen <= 64 + 1);
	assert_true(lw_noise__evicted(n) >= 10000 - 64);
	assert_int_equal(lw_noise__suppressed_total(n), 10000);
	flushed_count = 0;
	lw_noise__flush(n, now, 1, count_suppressed, NULL);
	assert_int_equal(flushed_count, 10000);
	assert_true(lw_noise__forget_pid(n, 42) > 0);
	assert_int_equal(lw_noise__sites(n), 0);
	lw_noise__free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn_forgotten),
		cmocka_unit_test(test_stuck_tasks_rate_limited),
		cmocka_unit_test(test_pending_counts_kept_until_flushed),
		cmocka_unit_test(test_escalation_after_early_alert),
		cmocka_unit_test(test_unnamed_sites_by_native_frame),
		cmocka_unit_test(test_sites_budget),
		cmocka_unit_test(test_routes_are_sites),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
