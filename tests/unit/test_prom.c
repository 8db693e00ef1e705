// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <cmocka.h>

#include "service/prom.h"

static void feed(struct lw_prom *p, const char *json)
{
	struct json_object *o = json_tokener_parse(json);

	assert_non_null(o);
	lw_prom__update(p, o);
	json_object_put(o);
}

static char *render(struct lw_prom *p)
{
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(lw_prom__render(p, &buf, &len), 0);
	assert_int_equal(strlen(buf), len);
	return buf;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fprintf(stderr, "missing: %s\nin:\n%s\n", line, text);
	assert_non_null(strstr(text, line));
}

static const char START[] =
	"{\"type\":\"start\",\"v\":1,\"pid\":4242,\"comm\":\"python3.11\",\"target_name\":\"api\","
	"\"runtime\":\"cpython\",\"runtime_version\":\"3.11.2\",\"mode\":\"default\","
	"\"threshold_ms\":100}";

/* a periodic summary: two slow callbacks of charge (120 ms, 300 ms), two blocking calls */
static const char SUMMARY1[] =
	"{\"type\":\"summary\",\"v\":1,\"pid\":4242,\"final\":false,\"target_name\":\"api\","
	"\"comm\":\"python3.11\",\"mode\":\"default\",\"sites_scope\":\"slow\","
	"\"loops\":[{\"tid\":4242,\"utilization\":0.25}],"
	"\"sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,\"count\":2,"
	"\"total_ms\":420.0,\"hist\":[[114.688,1],[294.912,1]]}],"
	"\"blocking_sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
	"\"syscall\":\"clock_nanosleep\",\"count\":1,\"total_ms\":110},"
	"{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,\"syscall\":\"read\","
	"\"count\":1,\"total_ms\":20}],"
	"\"slow_callbacks\":2,\"slow_ticks\":2,\"blocking_calls\":2,\"lost_events\":0,"
	"\"read_errors\":0}";

/* the next interval: one more of charge (0.5 s), one sleep */
static const char SUMMARY2[] =
	"{\"type\":\"summary\",\"v\":1,\"pid\":4242,\"final\":false,\"target_name\":\"api\","
	"\"loops\":[{\"tid\":4242,\"utilization\":0.5}],\"sites_scope\":\"slow\","
	"\"sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,\"count\":1,"
	"\"total_ms\":500,\"hist\":[[491.52,1]]}],"
	"\"blocking_sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
	"\"syscall\":\"clock_nanosleep\",\"count\":1,\"total_ms\":490}],"
	"\"slow_callbacks\":3,\"slow_ticks\":3,\"blocking_calls\":3,\"lost_events\":7,"
	"\"read_errors\":1}";

/* two stuck Tasks, one of them on an await cycle */
static const char STUCK1[] =
	"{\"type\":\"stuck_task\",\"v\":1,\"pid\":4242,\"task\":{\"name\":\"req-3\"},"
	"\"pending_ms\":61000,\"deadlock\":false}";
static const char STUCK2[] =
	"{\"type\":\"stuck_task\",\"v\":1,\"pid\":4242,\"task\":{\"name\":\"dl-a\"},"
	"\"pending_ms\":61000,\"deadlock\":true}";

#define SITE "target=\"api\",runtime=\"cpython\",site=\"charge\",file_line=\"/app/pay.py:17\""

static void test_metrics(void **state)
{
	struct lw_prom *p = NULL;
	char *t;

	(void)state;
	assert_int_equal(lw_prom__new("api", &p), 0);
	t = render(p);
	/* no process yet: the families, the target's own gauges */
	assert_has(t, "# TYPE loopwatch_slow_callbacks_total counter\n");
	assert_has(t, "loopwatch_target_processes{target=\"api\"} 0\n");
	assert_has(t, "loopwatch_report_write_errors_total{target=\"api\"} 0\n");
	assert_null(strstr(t, "pid="));
	free(t);
	feed(p, START);
	feed(p, SUMMARY1);
	feed(p, SUMMARY2);
	feed(p, STUCK1);
	feed(p, STUCK2);
	/* stuck Tasks the rate limit held back count too */
	feed(p, "{\"type\":\"suppressed\",\"pid\":4242,\"record_type\":\"stuck_task\","
		"\"count\":5}");
	feed(p, "{\"type\":\"suppressed\",\"pid\":4242,\"record_type\":\"slow_callback\","
		"\"count\":7}");
	lw_prom__set_write_errors(p, 3);
	t = render(p);
	assert_has(t, "# TYPE loopwatch_stuck_tasks_total counter\n");
	assert_has(t, "loopwatch_stuck_tasks_total{target=\"api\",runtime=\"cpython\"} 7\n");
	assert_has(t, "loopwatch_deadlocked_tasks_total{target=\"api\",runtime=\"cpython\"} 1\n");
	assert_has(t, "loopwatch_process_info{target=\"api\",pid=\"4242\",comm=\"python3.11\","
		      "runtime=\"cpython\",runtime_version=\"3.11.2\",mode=\"default\"} 1\n");
	/* the only series with a pid: the gauge of processes traced now */
	assert_null(strstr(strstr(t, "loopwatch_target_processes"), "pid="));
	assert_has(t, "loopwatch_slow_callbacks_total{" SITE "} 3\n");
	assert_has(t, "loopwatch_slow_callback_seconds_total{" SITE "} 0.920000\n");
	assert_has(t, "loopwatch_blocked_seconds_total{" SITE "} 0.620000\n");
	assert_has(t, "loopwatch_slow_ticks_total{target=\"api\",runtime=\"cpython\"} 3\n");
	assert_has(t, "loopwatch_blocking_calls_total{target=\"api\",runtime=\"cpython\","
		      "syscall=\"clock_nanosleep\"} 2\n");
	assert_has(t, "loopwatch_blocking_calls_total{target=\"api\",runtime=\"cpython\","
		      "syscall=\"read\"} 1\n");
	assert_has(t, "loopwatch_blocking_seconds_total{target=\"api\",runtime=\"cpython\","
		      "syscall=\"clock_nanosleep\"} 0.600000\n");
	assert_has(t, "# TYPE loopwatch_callback_duration_seconds histogram\n");
	/* cumulative buckets: 114.688 ms <= 131.072 ms; 294.912, 491.52 <= 524.288 */
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.065536\"} 0\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.131072\"} 1\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.262144\"} 1\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.524288\"} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"+Inf\"} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_count{" SITE "} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_sum{" SITE "} 0.920000\n");
	assert_has(t, "loopwatch_loop_utilization{target=\"api\",runtime=\"cpython\"} 0.5000\n");
	/* host-wide counters are not in a target's file */
	assert_null(strstr(t, "lost_events"));
	assert_has(t, "loopwatch_target_processes{target=\"api\"} 1\n");
	assert_has(t, "loopwatch_processes_started_total{target=\"api\",runtime=\"cpython\"} 1\n");
	assert_has(t, "loopwatch_report_write_errors_total{target=\"api\"} 3\n");
	free(t);
	lw_prom__free(p);
}

/* a process that ends and a new one of the same target: the counters go on */
static void test_restarts(void **state)
{
	struct lw_prom *p = NULL;
	char *t;

	(void)state;
	assert_int_equal(lw_prom__new("api", &p), 0);
	feed(p, START);
	feed(p, SUMMARY1);
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{" SITE "} 2\n");
	free(t);
	/* the final summary covers the whole run: only what the periodic ones did not have */
	feed(p, "{\"type\":\"summary\",\"pid\":4242,\"final\":true,\"sites_scope\":\"slow\","
		"\"sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
		"\"count\":3,\"total_ms\":920,\"hist\":[[114.688,1],[294.912,1],[491.52,1]]}],"
		"\"blocking_sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
		"\"syscall\":\"clock_nanosleep\",\"count\":5,\"total_ms\":600}],"
		"\"slow_callbacks\":3,\"slow_ticks\":4,\"blocking_calls\":6}");
	feed(p, "{\"type\":\"end\",\"pid\":4242,\"reason\":\"target_exited\",\"lost_events\":2}");
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{" SITE "} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_count{" SITE "} 3\n");
	assert_has(t, "syscall=\"clock_nanosleep\"} 5\n");
	assert_has(t, "syscall=\"read\"} 1\n");
	assert_has(t, "loopwatch_slow_ticks_total{target=\"api\",runtime=\"cpython\"} 4\n");
	assert_has(t, "loopwatch_target_processes{target=\"api\"} 0\n");
	assert_has(t, "loopwatch_processes_exited_total{target=\"api\",runtime=\"cpython\"} 1\n");
	assert_null(strstr(t, "pid=\"4242\""));
	free(t);
	assert_int_equal(lw_prom__nprocs(p), 0);
	/* the next process (another pid) starts from 0 in its own summaries */
	feed(p, "{\"type\":\"start\",\"pid\":4300,\"runtime\":\"cpython\",\"threshold_ms\":100}");
	feed(p, "{\"type\":\"summary\",\"pid\":4300,\"final\":false,\"sites_scope\":\"slow\","
		"\"sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
		"\"count\":2,\"total_ms\":300,\"hist\":[[114.688,2]]}],\"slow_ticks\":2}");
	feed(p, "{\"type\":\"summary\",\"pid\":4300,\"final\":true,\"sites_scope\":\"slow\","
		"\"sites\":[{\"qualname\":\"charge\",\"file\":\"/app/pay.py\",\"line\":17,"
		"\"count\":2,\"total_ms\":300,\"hist\":[[114.688,2]]}],\"slow_ticks\":2}");
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{" SITE "} 5\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.131072\"} 3\n");
	assert_has(t, "loopwatch_slow_ticks_total{target=\"api\",runtime=\"cpython\"} 6\n");
	assert_has(t, "loopwatch_processes_started_total{target=\"api\",runtime=\"cpython\"} 2\n");
	assert_has(t, "loopwatch_process_info{target=\"api\",pid=\"4300\"");
	free(t);
	lw_prom__free(p);
}

static char *site_summary(int pid, const char *q, int count, double ms)
{
	static char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"summary\",\"pid\":%d,\"final\":false,\"sites_scope\":\"slow\","
		 "\"sites\":[{\"qualname\":\"%s\",\"file\":\"/a.py\",\"line\":1,\"count\":%d,"
		 "\"total_ms\":%.1f,\"hist\":[[114.688,%d]]}]}", pid, q, count, ms, count);
	return buf;
}

/* top N sites by time get series; the rest are "other"; every series only grows */
static void test_top_sites(void **state)
{
	struct lw_prom *p = NULL;
	char *t;

	(void)state;
	assert_int_equal(lw_prom__new("api", &p), 0);
	lw_prom__set_top_sites(p, 2);
	feed(p, START);
	feed(p, site_summary(4242, "a", 1, 100));
	feed(p, site_summary(4242, "b", 2, 200));
	feed(p, site_summary(4242, "c", 3, 300));
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"c\",file_line=\"/a.py:1\"} 3\n");
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"b\",file_line=\"/a.py:1\"} 2\n");
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"other\",file_line=\"\"} 1\n");
	assert_null(strstr(t, "site=\"a\""));
	free(t);
	/* a overtakes b: a's gains from now on are its own, b's go to other */
	feed(p, site_summary(4242, "a", 10, 1000));
	feed(p, site_summary(4242, "b", 1, 50));
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"a\",file_line=\"/a.py:1\"} 10\n");
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"other\",file_line=\"\"} 2\n");
	assert_null(strstr(t, "site=\"b\""));
	free(t);
	lw_prom__free(p);
}

/* loopwatchd restarted: the previous file's counters go on */
static void test_load(void **state)
{
	struct lw_prom *p = NULL, *q = NULL;
	char dir[] = "/tmp/lwtest-prom-XXXXXX", path[128], err[256], *t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.prom", dir);
	assert_int_equal(lw_prom__new("api", &p), 0);
	assert_int_equal(lw_prom__load(p, path), 0);	/* no file yet */
	feed(p, START);
	feed(p, SUMMARY1);
	feed(p, SUMMARY2);
	feed(p, STUCK2);
	assert_int_equal(lw_prom__write(p, path, err, sizeof(err)), 0);
	assert_int_equal(lw_prom__new("api", &q), 0);
	assert_true(lw_prom__load(q, path) > 10);
	feed(q, START);
	feed(q, SUMMARY1);
	feed(q, STUCK1);
	t = render(q);
	/* stuck Tasks counted on over a restart */
	assert_has(t, "loopwatch_stuck_tasks_total{target=\"api\",runtime=\"cpython\"} 2\n");
	assert_has(t, "loopwatch_deadlocked_tasks_total{target=\"api\",runtime=\"cpython\"} 1\n");
	assert_has(t, "loopwatch_slow_callbacks_total{" SITE "} 5\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.131072\"} 2\n");
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{" SITE ",le=\"0.524288\"} 5\n");
	assert_has(t, "loopwatch_callback_duration_seconds_count{" SITE "} 5\n");
	assert_has(t, "syscall=\"clock_nanosleep\"} 3\n");
	assert_has(t, "loopwatch_slow_ticks_total{target=\"api\",runtime=\"cpython\"} 5\n");
	assert_has(t, "loopwatch_processes_started_total{target=\"api\",runtime=\"cpython\"} 2\n");
	free(t);
	/* another target's file is not taken */
	lw_prom__free(q);
	assert_int_equal(lw_prom__new("web", &q), 0);
	assert_int_equal(lw_prom__load(q, path), 0);
	lw_prom__free(q);
	lw_prom__free(p);
	unlink(path);
	rmdir(dir);
}

static void test_precise(void **state)
{
	struct lw_prom *p = NULL;
	char *t;

	(void)state;
	assert_int_equal(lw_prom__new("api", &p), 0);
	feed(p, "{\"type\":\"start\",\"pid\":7,\"runtime\":\"cpython\",\"mode\":\"precise\","
		"\"threshold_ms\":100}");
	/* every callback: 10 fast ones, 2 slow ones */
	feed(p, "{\"type\":\"summary\",\"pid\":7,\"final\":false,\"sites_scope\":\"all\","
		"\"sites\":[{\"qualname\":\"h\",\"file\":\"/h.py\",\"line\":3,\"count\":12,"
		"\"total_ms\":300,\"hist\":[[0.5,10],[114.688,2]]}]}");
	t = render(p);
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",runtime=\"cpython\","
		      "site=\"h\",file_line=\"/h.py:3\"} 2\n");
	assert_has(t, "loopwatch_callback_duration_seconds_count{target=\"api\",runtime=\"cpython\","
		      "site=\"h\",file_line=\"/h.py:3\"} 12\n");
	free(t);
	lw_prom__free(p);
}

static void test_write_safety(void **state)
{
	struct lw_prom *p = NULL;
	char dir[] = "/tmp/lwtest-prom-XXXXXX", path[128], tmp[160], err[256];
	char target[160];
	FILE *f;
	int c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s/.api.prom.tmp", dir);
	snprintf(target, sizeof(target), "%s/victim", dir);
	assert_int_equal(lw_prom__new("api", &p), 0);
	feed(p, START);
	/* a symlink planted where the temp file goes is removed, never written through */
	f = fopen(target, "w");
	assert_non_null(f);
	fputs("precious\n", f);
	fclose(f);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(lw_prom__write(p, path, err, sizeof(err)), 0);
	f = fopen(target, "r");
	c = fgetc(f);
	fclose(f);
	assert_int_equal(c, 'p');
	/* an unwritable place: an error with the path and the cause, and the data is kept */
	assert_int_equal(lw_prom__write(p, "/nonexistent-dir/api.prom", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/.api.prom.tmp"));
	assert_int_equal(lw_prom__nprocs(p), 1);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0137, 0);	/* at most 0640 */
		assert_int_not_equal(access(tmp, F_OK), 0);	/* the temp file is gone */
	}
	lw_prom__free(p);
	unlink(path);
	unlink(target);
	rmdir(dir);
}

static void test_bad_records(void **state)
{
	struct lw_prom *p = NULL;
	char *t;

	(void)state;
	assert_int_equal(lw_prom__new("a\"b\\c", &p), 0);
	/* nothing here may crash or count */
	feed(p, "{}");
	feed(p, "{\"type\":\"summary\"}");
	feed(p, "{\"type\":\"summary\",\"pid\":-1}");
	feed(p, "{\"type\":\"summary\",\"pid\":5,\"sites\":7,\"blocking_sites\":{},\"loops\":"
		"\"x\"}");
	feed(p, "{\"type\":\"summary\",\"pid\":5,\"sites\":[null,{\"hist\":[[1],[\"x\",2],[-1,3],"
		"[1e300,1],[2,-4]]}],\"blocking_sites\":[{\"syscall\":null,\"count\":3},{\"count\":"
		"1}]}");
	feed(p, "{\"type\":\"end\",\"pid\":12345}");
	feed(p, "{\"type\":\"start\",\"pid\":6,\"comm\":\"we\\\"ird\\nname\"}");
	t = render(p);
	/* label values escaped */
	assert_has(t, "target=\"a\\\"b\\\\c\"");
	assert_has(t, "comm=\"we\\\"ird\\nname\"");
	assert_null(strstr(t, "_count{"));
	free(t);
	lw_prom__free(p);
}

static void test_escape(void **state)
{
	char buf[8];

	(void)state;
	assert_string_equal(lw_prom_escape("plain", buf, sizeof(buf)), "plain");
	assert_string_equal(lw_prom_escape("a\"b", buf, sizeof(buf)), "a\\\"b");
	/* truncated, never split inside an escape */
	assert_string_equal(lw_prom_escape("\"\"\"\"", buf, sizeof(buf)), "\\\"\\\"\\\"");
	assert_string_equal(lw_prom_escape(NULL, buf, sizeof(buf)), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_restarts),
		cmocka_unit_test(test_top_sites),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_precise),
		cmocka_unit_test(test_write_safety),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
