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
	"\"runtime\":\"cpython\",\"runtime_version\":\"3.11.2\",\"mode\":\"default\"}";

/* a periodic summary: two slow callbacks of one site (120 ms, 300 ms), two blocking calls */
static const char SUMMARY1[] =
	"{\"type\":\"summary\",\"v\":1,\"pid\":4242,\"final\":false,\"target_name\":\"api\","
	"\"comm\":\"python3.11\",\"mode\":\"default\","
	"\"loops\":[{\"tid\":4242,\"utilization\":0.25}],"
	"\"sites\":[{\"qualname\":\"charge\",\"count\":2,\"total_ms\":420.0,"
	"\"hist\":[[114.688,1],[294.912,1]]}],"
	"\"blocking_sites\":[{\"syscall\":\"clock_nanosleep\",\"count\":1},"
	"{\"syscall\":\"read\",\"count\":1}],"
	"\"slow_callbacks\":2,\"slow_ticks\":2,\"blocking_calls\":2,\"lost_events\":0,"
	"\"read_errors\":0}";

/* the next interval: one more 0.5 ms callback (precise mode would see those), one sleep */
static const char SUMMARY2[] =
	"{\"type\":\"summary\",\"v\":1,\"pid\":4242,\"final\":false,\"target_name\":\"api\","
	"\"loops\":[{\"tid\":4242,\"utilization\":0.5}],"
	"\"sites\":[{\"qualname\":\"tick\",\"count\":1,\"total_ms\":0.5,\"hist\":[[0.5,1]]}],"
	"\"blocking_sites\":[{\"syscall\":\"clock_nanosleep\",\"count\":1}],"
	"\"slow_callbacks\":3,\"slow_ticks\":2,\"blocking_calls\":3,\"lost_events\":7,"
	"\"read_errors\":1}";

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
	lw_prom__set_write_errors(p, 3);
	t = render(p);
	assert_has(t, "loopwatch_process_info{target=\"api\",pid=\"4242\",comm=\"python3.11\","
		      "runtime=\"cpython\",runtime_version=\"3.11.2\",mode=\"default\"} 1\n");
	assert_has(t, "loopwatch_slow_callbacks_total{target=\"api\",pid=\"4242\"} 3\n");
	assert_has(t, "loopwatch_slow_ticks_total{target=\"api\",pid=\"4242\"} 2\n");
	assert_has(t, "loopwatch_blocking_calls_total{target=\"api\",pid=\"4242\","
		      "syscall=\"clock_nanosleep\"} 2\n");
	assert_has(t, "loopwatch_blocking_calls_total{target=\"api\",pid=\"4242\",syscall=\"read\"}"
		      " 1\n");
	assert_has(t, "# TYPE loopwatch_callback_duration_seconds histogram\n");
	/* cumulative buckets: 0.5 ms <= 1.024 ms; 114.688 ms <= 131.072 ms; 294.912 <= 524.288 */
	assert_has(t, "loopwatch_callback_duration_seconds_bucket{target=\"api\",pid=\"4242\","
		      "le=\"0.001024\"} 1\n");
	assert_has(t, "le=\"0.065536\"} 1\n");
	assert_has(t, "le=\"0.131072\"} 2\n");
	assert_has(t, "le=\"0.262144\"} 2\n");
	assert_has(t, "le=\"0.524288\"} 3\n");
	assert_has(t, "le=\"33.554432\"} 3\n");
	assert_has(t, "le=\"+Inf\"} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_count{target=\"api\",pid=\"4242\"} 3\n");
	assert_has(t, "loopwatch_callback_duration_seconds_sum{target=\"api\",pid=\"4242\"} "
		      "0.420500\n");
	assert_has(t, "loopwatch_loop_utilization{target=\"api\",pid=\"4242\",tid=\"4242\"} "
		      "0.5000\n");
	assert_has(t, "loopwatch_lost_events_total{target=\"api\",pid=\"4242\"} 7\n");
	assert_has(t, "loopwatch_read_errors_total{target=\"api\",pid=\"4242\"} 1\n");
	assert_has(t, "loopwatch_target_processes{target=\"api\"} 1\n");
	assert_has(t, "loopwatch_report_write_errors_total{target=\"api\"} 3\n");
	free(t);
	lw_prom__free(p);
}

static void test_final_and_end(void **state)
{
	struct lw_prom *p = NULL;
	char dir[] = "/tmp/lwtest-prom-XXXXXX", path[128], err[256], *t;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.prom", dir);
	assert_int_equal(lw_prom__new("api", &p), 0);
	feed(p, START);
	feed(p, SUMMARY1);
	/* the final summary covers the whole run: it replaces, never lowers */
	feed(p, "{\"type\":\"summary\",\"pid\":4242,\"final\":true,"
		"\"sites\":[{\"count\":3,\"total_ms\":500,\"hist\":[[114.688,2],[294.912,1]]}],"
		"\"blocking_sites\":[{\"syscall\":\"clock_nanosleep\",\"count\":5}],"
		"\"slow_callbacks\":3,\"blocking_calls\":6}");
	feed(p, "{\"type\":\"end\",\"pid\":4242,\"reason\":\"target_exited\",\"lost_events\":2}");
	t = render(p);
	assert_has(t, "loopwatch_callback_duration_seconds_count{target=\"api\",pid=\"4242\"} 3\n");
	assert_has(t, "syscall=\"clock_nanosleep\"} 5\n");
	assert_has(t, "syscall=\"read\"} 1\n");
	assert_has(t, "loopwatch_lost_events_total{target=\"api\",pid=\"4242\"} 2\n");
	/* ended: still reported until written once, but no longer counted as traced */
	assert_has(t, "loopwatch_target_processes{target=\"api\"} 0\n");
	free(t);
	assert_int_equal(lw_prom__nprocs(p), 1);
	assert_int_equal(lw_prom__write(p, path, err, sizeof(err)), 0);
	assert_int_equal(lw_prom__nprocs(p), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0137, 0);	/* at most 0640 */
	{
		char tmp[160];

		snprintf(tmp, sizeof(tmp), "%s/.api.prom.tmp", dir);
		assert_int_not_equal(access(tmp, F_OK), 0);	/* the temp file is gone */
	}
	lw_prom__free(p);
	unlink(path);
	rmdir(dir);
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
	assert_has(t, "loopwatch_callback_duration_seconds_count{target=\"a\\\"b\\\\c\",pid=\"5\"} "
		      "0\n");
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
		cmocka_unit_test(test_final_and_end),
		cmocka_unit_test(test_write_safety),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
