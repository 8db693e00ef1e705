// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `loopwatch report` exports: the Chrome trace parses and nests blocking calls inside their
 * callbacks, folded lines parse and weigh what they should, the HTML page has its parts and
 * nothing from elsewhere. Names that would break a format (quotes, ';', '<') are escaped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "base/lw_util.h"
#include "record/jsonrec.h"
#include "report/report_data.h"

/* included, not linked: the tests reach static helpers */
#include "../../daemon/report/export_folded.c"
#include "../../daemon/report/export_trace.c"
#include "../../daemon/report/export_html.c"

static void ts_of(char *buf, size_t size, double sec)
{
	int min = (int)(sec / 60);

	snprintf(buf, size, "2026-01-01T00:%02d:%09.6fZ", min, sec - 60.0 * min);
}

/* a slow callback of dur ms ending at sec, blocked in read for dur - 1 ms */
static void line_slow(char *buf, size_t size, double sec, int pid, int tid, double dur,
		      const char *q, const char *task)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"slow_callback\",\"v\":1,\"ts\":\"%s\",\"pid\":%d,"
		 "\"tid\":%d,"
		 "\"comm\":\"app\",\"duration_ms\":%.3f,\"in_progress\":false,"
		 "\"callback\":{\"kind\":\"task\",\"task_name\":\"%s\",\"qualname\":\"%s\","
		 "\"file\":\"/srv/app/a.py\",\"line\":10},\"cpu_ms\":1.0,\"offcpu_ms\":%.3f,"
		 "\"runq_ms\":0.0,\"gil_ms\":0.0,\"blocked\":[{\"syscall\":\"read\",\"ms\":%.3f,"
		 "\"count\":1}],\"stack\":[{\"function\":\"inner\",\"file\":\"/srv/app/b.py\","
		 "\"line\":7},{\"function\":\"outer\",\"file\":\"/srv/app/a.py\",\"line\":11}],"
		 "\"stack_kind\":\"blocked\"}", ts, pid, tid, dur, task, q, dur - 1, dur - 1);
}

static void line_block(char *buf, size_t size, double sec, int pid, int tid, double dur)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"blocking_call\",\"v\":1,\"ts\":\"%s\",\"pid\":%d,"
		 "\"tid\":%d,"
		 "\"syscall\":\"read\",\"duration_ms\":%.3f,\"fd\":3,\"target\":\"pipe\","
		 "\"stack\":[{\"function\":\"inner\",\"file\":\"/srv/app/b.py\",\"line\":7},"
		 "{\"function\":\"outer\",\"file\":\"/srv/app/a.py\",\"line\":11}],"
		 "\"native_stack\":[{\"symbol\":\"read\",\"module\":\"libc.so.6\",\"offset\":20}],"
		 "\"callback\":{\"kind\":\"task\",\"task_name\":\"t\",\"qualname\":\"q\","
		 "\"file\":\"/srv/app/a.py\",\"line\":10}}", ts, pid, tid, dur);
}

/*
 * pid 1: a callback of 300 ms ending at 10 s with a 290 ms read in it, another of 200 ms with
 * no call recorded; pid 2 (thread 3): a 150 ms callback, and a call on its own (no callback).
 */
static struct lw_report_data *sample(void)
{
	struct lw_report_data *d = NULL;
	char l[4096];

	assert_int_equal(lw_rd__new(&d), 0);
	line_slow(l, sizeof(l), 10, 1, 1, 300, "charge", "pay-1");
	assert_int_equal(lw_rd__load_line(d, l), 0);
	line_block(l, sizeof(l), 9.995, 1, 1, 290);
	assert_int_equal(lw_rd__load_line(d, l), 0);
	line_slow(l, sizeof(l), 12, 1, 1, 200, "charge", "pay-2");
	assert_int_equal(lw_rd__load_line(d, l), 0);
	line_slow(l, sizeof(l), 11, 2, 3, 150, "Report.build", "");
	assert_int_equal(lw_rd__load_line(d, l), 0);
	line_block(l, sizeof(l), 13, 2, 3, 50);
	assert_int_equal(lw_rd__load_line(d, l), 0);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	return d;
}

static char *run_export(const struct lw_report_data *d, int what, enum lw_weight w)
{
	struct lw_export_opts eo = { .weight = w, .title = "t<1>.jsonl" };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (what == 0)
		assert_int_equal(lw_export_trace(f, d), 0);
	else if (what == 1)
		assert_int_equal(lw_export_folded(f, d, w), 0);
	else
		assert_int_equal(lw_export_html(f, d, &eo), 0);
	fclose(f);
	return buf;
}

static double num(struct json_object *o, const char *k)
{
	struct json_object *v = lw_j_get(o, k);

	assert_non_null(v);
	return json_object_get_double(v);
}

static void test_trace(void **state)
{
	struct lw_report_data *d = sample();
	char *out = run_export(d, 0, LW_WEIGHT_WALL);
	struct json_object *root = json_tokener_parse(out), *evs, *parent = NULL, *child = NULL;
	size_t i, n, nx = 0, nmeta = 0;

	(void)state;
	assert_non_null(root);
	evs = lw_j_get(root, "traceEvents");
	assert_true(evs && json_object_is_type(evs, json_type_array));
	n = json_object_array_length(evs);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(evs, i);
		const char *ph = lw_j_get_str(e, "ph"), *name = lw_j_get_str(e, "name");

		assert_non_null(ph);
		assert_non_null(name);
		if (strcmp(ph, "M") == 0) {
			nmeta++;
			assert_non_null(lw_j_get_str(lw_j_get(e, "args"), "name"));
			if (strcmp(name, "process_name") == 0 && lw_j_get_int(e, "pid", 0) == 1)
				assert_string_equal(lw_j_get_str(lw_j_get(e, "args"), "name"),
						    "app (pid 1)");
			continue;
		}
		assert_string_equal(ph, "X");
		nx++;
		assert_true(num(e, "dur") >= 0);
		assert_non_null(lw_j_get(lw_j_get(e, "args"), "stack"));
		if (strcmp(name, "charge [pay-1]") == 0)
			parent = e;
		if (strcmp(name, "read pipe") == 0 && lw_j_get_int(e, "pid", 0) == 1)
			child = e;
	}
	assert_int_equal(nx, 5);
	assert_int_equal(nmeta, 2 + 2);	/* two processes, two threads */
	assert_non_null(parent);
	assert_non_null(child);
	assert_string_equal(lw_j_get_str(parent, "cat"), "slow_callback");
	assert_string_equal(lw_j_get_str(child, "cat"), "blocking_call");
	assert_int_equal(lw_j_get_int(parent, "tid", 0), lw_j_get_int(child, "tid", -1));
	/* start = end - duration, in microseconds */
	assert_float_equal(num(parent, "ts"), 1767225610e6 - 300000, 0.5);
	assert_float_equal(num(parent, "dur"), 300000, 0.001);
	/* the call inside its callback */
	assert_true(num(child, "ts") >= num(parent, "ts"));
	assert_true(num(child, "ts") + num(child, "dur") <= num(parent, "ts") + num(parent, "dur"));
	assert_string_equal(lw_j_get_str(lw_j_get(child, "args"), "at"), "/srv/app/b.py:7");
	assert_string_equal(lw_j_get_str(lw_j_get(parent, "args"), "task"), "pay-1");
	json_object_put(root);
	free(out);
	lw_rd__free(d);
}

/* a call that starts before its callback and ends just after it: clipped into it */
static void test_trace_clips_children(void **state)
{
	struct lw_report_data *d = NULL;
	struct json_object *root, *evs;
	double pts = 0, pend = 0, cts = 0, cend = 0;
	char l[4096], *out;
	size_t i;

	(void)state;
	assert_int_equal(lw_rd__new(&d), 0);
	line_slow(l, sizeof(l), 10, 1, 1, 100, "f", "t");
	assert_int_equal(lw_rd__load_line(d, l), 0);
	line_block(l, sizeof(l), 10.0002, 1, 1, 100.5);
	assert_int_equal(lw_rd__load_line(d, l), 0);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	out = run_export(d, 0, LW_WEIGHT_WALL);
	root = json_tokener_parse(out);
	assert_non_null(root);
	evs = lw_j_get(root, "traceEvents");
	for (i = 0; i < json_object_array_length(evs); i++) {
		struct json_object *e = json_object_array_get_idx(evs, i);
		const char *cat = lw_j_get_str(e, "cat");

		if (!cat)
			continue;
		if (strcmp(cat, "slow_callback") == 0) {
			pts = num(e, "ts");
			pend = pts + num(e, "dur");
		} else {
			cts = num(e, "ts");
			cend = cts + num(e, "dur");
		}
	}
	assert_true(pts > 0 && cts > 0);
	assert_true(cts >= pts && cend <= pend);
	json_object_put(root);
	free(out);
	lw_rd__free(d);
}

/* "a;b;c 123": frames and an integer value */
static int parse_folded(char *line, char **frames, size_t max, size_t *nframes,
			unsigned long long *value)
{
	char *sp = strrchr(line, ' '), *end, *tok, *save = NULL;

	if (!sp || sp == line)
		return -1;
	*sp = 0;
	*value = strtoull(sp + 1, &end, 10);
	if (*end || end == sp + 1)
		return -1;
	*nframes = 0;
	for (tok = strtok_r(line, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		if (!*tok || *nframes == max)
			return -1;
		frames[(*nframes)++] = tok;
	}
	return *nframes ? 0 : -1;
}

static unsigned long long folded_value(const char *out, const char *stack)
{
	char *copy = strdup(out), *line, *save = NULL, *frames[64];
	unsigned long long v, found = 0;
	size_t n;

	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char whole[2048];

		snprintf(whole, sizeof(whole), "%s", line);
		assert_int_equal(parse_folded(line, frames, 64, &n, &v), 0);
		*strrchr(whole, ' ') = 0;
		if (strcmp(whole, stack) == 0)
			found = v;
	}
	free(copy);
	return found;
}

static void test_folded(void **state)
{
	struct lw_report_data *d = sample();
	char *out;

	(void)state;
	/* wall: the 300 ms callback loses its 290 ms call to the call's own stack */
	out = run_export(d, 1, LW_WEIGHT_WALL);
	assert_int_equal(folded_value(out, "outer (a.py:11);inner (b.py:7)"), 10000 + 200000 +
			 150000);
	assert_int_equal(folded_value(out, "outer (a.py:11);inner (b.py:7);[read pipe]"),
			 290000 + 50000);
	free(out);
	/* blocked: read time less the nested call's, and the calls themselves */
	out = run_export(d, 1, LW_WEIGHT_BLOCKED);
	assert_int_equal(folded_value(out, "outer (a.py:11);inner (b.py:7);[read]"),
			 9000 + 199000 + 149000);
	assert_int_equal(folded_value(out, "outer (a.py:11);inner (b.py:7);[read pipe]"),
			 290000 + 50000);
	free(out);
	/* cpu: 1 ms per callback, no calls */
	out = run_export(d, 1, LW_WEIGHT_CPU);
	assert_int_equal(folded_value(out, "outer (a.py:11);inner (b.py:7)"), 3000);
	assert_null(strstr(out, "[read"));
	free(out);
	lw_rd__free(d);
}

static void test_weight_parse(void **state)
{
	enum lw_weight w;

	(void)state;
	assert_int_equal(lw_weight_parse("cpu", &w), 0);
	assert_int_equal(w, LW_WEIGHT_CPU);
	assert_int_equal(lw_weight_parse("blocked", &w), 0);
	assert_int_equal(w, LW_WEIGHT_BLOCKED);
	assert_int_equal(lw_weight_parse("wall", &w), 0);
	assert_int_equal(w, LW_WEIGHT_WALL);
	assert_int_equal(lw_weight_parse("heavy", &w), -EINVAL);
	assert_int_equal(lw_weight_parse(NULL, &w), -EINVAL);
	assert_string_equal(lw_weight_name(LW_WEIGHT_BLOCKED), "blocked");
}

/* issue 17: an export never prints "?" for a native frame: a name without its module is the
 * name alone, a module without a name is module+offset, a frame with neither is dropped */
static void test_native_names(void **state)
{
	struct lw_rd_native both = { "uv_run", "libuv.so.1", 0x2a }, sym = { "uv_run", NULL, 0x2a },
			    mod = { NULL, "libuv.so.1", 0x1234 }, none = { NULL, NULL, 0x10 };
	char buf[128];

	(void)state;
	assert_int_equal(lw_ex_native_name(&both, 0, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "uv_run (libuv.so.1)");
	assert_int_equal(lw_ex_native_name(&both, 1, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "uv_run+0x2a (libuv.so.1)");
	assert_int_equal(lw_ex_native_name(&sym, 0, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "uv_run");
	assert_int_equal(lw_ex_native_name(&sym, 1, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "uv_run+0x2a");
	assert_int_equal(lw_ex_native_name(&mod, 0, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "libuv.so.1+0x1234");
	assert_int_equal(lw_ex_native_name(&none, 1, buf, sizeof(buf)), 0);
}

static void test_html(void **state)
{
	struct lw_report_data *d = sample();
	char *out = run_export(d, 2, LW_WEIGHT_WALL);
	static const char *const want[] = {
		"<!DOCTYPE html>", "<section id=\"summary\">", "<section id=\"sites\">",
		"<table class=\"sites\">", "<section id=\"blocking\">", "class=\"blocking-sites\"",
		"<section id=\"flamegraph\">", "<svg class=\"flamegraph\"",
		"<section id=\"timeline\">",
		"<svg class=\"timeline\"", "<svg class=\"hist\"", "<section id=\"slowest\">",
		"charge", "Report.build", "[read pipe]", "t&lt;1&gt;.jsonl", "</html>",
	};
	size_t i;

	(void)state;
	for (i = 0; i < LW_ARRAY_SIZE(want); i++)
		if (!strstr(out, want[i]))
			fail_msg("missing %s", want[i]);
	/* self-contained: nothing fetched from elsewhere */
	assert_null(strstr(out, "<script"));
	assert_null(strstr(out, "<link"));
	assert_null(strstr(out, "src="));
	assert_null(strstr(out, "@import"));
	assert_null(strstr(out, "url("));
	assert_null(strstr(out, "https:"));
	free(out);
	lw_rd__free(d);
}

/* quotes, backslashes, control characters, ';', '<' in names from the records */
static void test_hostile_names(void **state)
{
	const char *rec =
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":1,\"tid\":1,"
		"\"duration_ms\":150,\"callback\":{\"kind\":\"function\",\"qualname\":"
		"\"a\\\"b\\\\c;d<e>\\n\\u0001\",\"file\":\"/x;y.py\",\"line\":3},\"stack\":[{"
		"\"function\":\"f;g\\u0007\",\"file\":\"<h>.py\",\"line\":1}],\"cpu_ms\":150}";
	struct lw_report_data *d = NULL;
	struct json_object *root;
	char *out, *line, *save = NULL, *frames[8];
	unsigned long long v;
	size_t n;

	(void)state;
	assert_int_equal(lw_rd__new(&d), 0);
	assert_int_equal(lw_rd__load_line(d, rec), 0);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	out = run_export(d, 0, LW_WEIGHT_WALL);
	root = json_tokener_parse(out);
	assert_non_null(root);
	json_object_put(root);
	free(out);
	out = run_export(d, 1, LW_WEIGHT_WALL);
	line = strtok_r(out, "\n", &save);
	assert_non_null(line);
	assert_int_equal(parse_folded(line, frames, 8, &n, &v), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v, 150000);
	assert_null(strtok_r(NULL, "\n", &save));
	free(out);
	out = run_export(d, 2, LW_WEIGHT_WALL);
	assert_null(strstr(out, "d<e>"));
	assert_non_null(strstr(out, "d&lt;e&gt;"));
	free(out);
	lw_rd__free(d);
}

static void test_empty(void **state)
{
	struct lw_report_data *d = NULL;
	struct json_object *root;
	char *out;

	(void)state;
	assert_int_equal(lw_rd__new(&d), 0);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	out = run_export(d, 0, LW_WEIGHT_WALL);
	root = json_tokener_parse(out);
	assert_non_null(root);
	assert_int_equal(json_object_array_length(lw_j_get(root, "traceEvents")), 0);
	json_object_put(root);
	free(out);
	out = run_export(d, 1, LW_WEIGHT_WALL);
	assert_string_equal(out, "");
	free(out);
	out = run_export(d, 2, LW_WEIGHT_WALL);
	assert_non_null(strstr(out, "<section id=\"timeline\">"));
	assert_non_null(strstr(out, "</html>"));
	free(out);
	lw_rd__free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_trace_clips_children),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_weight_parse),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_native_names),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
