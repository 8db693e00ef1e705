// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `loopwatch report` data: loading (a cut-short last line, junk, malformed records), rotated
 * files, time parsing, filters, and aggregation (records only, precise and default summaries,
 * periodic vs final, several runs of one pid).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "base/lw_util.h"
#include "record/jsonrec.h"
#include "report/report_data.h"

#define BASE_S 1767225600ull	/* 2026-01-01T00:00:00Z */
#define NS(sec) (BASE_S * 1000000000ull + (uint64_t)((double)(sec) * 1e9 + 0.5))

static void ts_of(char *buf, size_t size, double sec)
{
	int min = (int)(sec / 60);

	snprintf(buf, size, "2026-01-01T00:%02d:%09.6fZ", min, sec - 60.0 * min);
}

static void line_start(char *buf, size_t size, double sec, int pid, const char *mode)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"start\",\"v\":1,\"ts\":\"%s\",\"pid\":%d,\"comm\":\"app\","
		 "\"runtime\":\"cpython\",\"runtime_version\":\"3.11.2\",\"mode\":\"%s\"}", ts, pid,
		 mode);
}

static void line_slow(char *buf, size_t size, double sec, int pid, int tid, double dur,
		      const char *q, int line, const char *task, int in_progress)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"slow_callback\",\"v\":1,\"ts\":\"%s\","
		 "\"pid\":%d,\"tid\":%d,\"comm\":\"app\",\"duration_ms\":%.3f,"
		 "\"threshold_ms\":100.0,\"in_progress\":%s,"
		 "\"callback\":{\"kind\":\"task\",\"task_name\":\"%s\",\"qualname\":\"%s\","
		 "\"file\":\"/srv/app/a.py\",\"line\":%d},\"cpu_ms\":1.0,\"offcpu_ms\":%.3f,"
		 "\"runq_ms\":0.0,\"gil_ms\":0.0,\"blocked\":[{\"syscall\":\"read\",\"ms\":%.3f,"
		 "\"count\":1}],\"stack\":[{\"function\":\"inner\",\"file\":\"/srv/app/b.py\","
		 "\"line\":7},{\"function\":\"%s\",\"file\":\"/srv/app/a.py\",\"line\":%d}],"
		 "\"stack_kind\":\"blocked\",\"mode\":\"default\"}", ts, pid, tid, dur,
		 in_progress ? "true" : "false", task, q, line, dur - 1, dur - 1, q, line + 1);
}

static void line_block(char *buf, size_t size, double sec, int pid, int tid, double dur,
		       const char *q, int line)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"blocking_call\",\"v\":1,\"ts\":\"%s\","
		 "\"pid\":%d,\"tid\":%d,\"syscall\":\"read\",\"duration_ms\":%.3f,\"fd\":3,"
		 "\"target\":\"pipe\","
		 "\"stack\":[{\"function\":\"inner\",\"file\":\"/srv/app/b.py\",\"line\":7}],"
		 "\"native_stack\":[{\"symbol\":\"read\",\"module\":\"libc.so.6\",\"offset\":20}],"
		 "\"callback\":{\"kind\":\"task\",\"task_name\":\"t\",\"qualname\":\"%s\","
		 "\"file\":\"/srv/app/a.py\",\"line\":%d}}", ts, pid, tid, dur, q, line);
}

/* a summary with one site row: count, total; interval seconds */
static void line_summary(char *buf, size_t size, double sec, int pid, int final, double interval,
			 const char *scope, const char *q, int line, long count, double total)
{
	char ts[40];
	double each = total / (double)count;
	double low = (double)lw_hist_slot_low(lw_hist_slot((uint64_t)(each * 1e6))) / 1e6;

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"summary\",\"v\":1,\"ts\":\"%s\",\"pid\":%d,\"final\":%s,"
		 "\"interval_s\":%.3f,\"comm\":\"app\",\"sites_scope\":\"%s\","
		 "\"loops\":[{\"tid\":%d,\"comm\":\"app\",\"utilization\":0.5,\"iterations\":100,"
		 "\"busy_ms\":%.3f,"
		 "\"lag_hist\":[[0.008,100]]}],\"sites\":[{\"qualname\":\"%s\","
		 "\"file\":\"/srv/app/a.py\",\"line\":%d,\"count\":%ld,\"total_ms\":%.3f,"
		 "\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
		 "\"max_ms\":%.3f,\"hist\":[[%.3f,%ld]]}],"
		 "\"blocking_sites\":[{\"syscall\":\"read\",\"target\":\"pipe\","
		 "\"qualname\":\"inner\",\"file\":\"/srv/app/b.py\",\"line\":7,"
		 "\"count\":%ld,\"total_ms\":%.3f,\"p50_ms\":1.0,\"p99_ms\":2.0,\"max_ms\":2.0}],"
		 "\"slow_callbacks\":%ld,\"blocking_calls\":%ld,\"lost_events\":0}",
		 ts, pid, final ? "true" : "false", interval, scope, pid, interval * 500, q, line,
		 count, total, each, each, each, low, count, count, total / 2, count, count);
}

static void line_end(char *buf, size_t size, double sec, int pid)
{
	char ts[40];

	ts_of(ts, sizeof(ts), sec);
	snprintf(buf, size, "{\"type\":\"end\",\"v\":1,\"ts\":\"%s\",\"pid\":%d,"
		 "\"reason\":\"duration\",\"lost_events\":3,\"suppressed\":0}", ts, pid);
}

static struct lw_report_data *new_data(void)
{
	struct lw_report_data *d = NULL;

	assert_int_equal(lw_rd__new(&d), 0);
	return d;
}

static void add(struct lw_report_data *d, const char *line)
{
	assert_int_equal(lw_rd__load_line(d, line), 0);
}

static const struct lw_rd_pid *pid_of(const struct lw_report_data *d, pid_t pid)
{
	size_t i;

	for (i = 0; i < d->npids; i++)
		if (d->pids[i].pid == pid)
			return &d->pids[i];
	return NULL;
}

static const struct lw_rd_site *site_of(const struct lw_rd_pid *p, const char *q)
{
	size_t i;

	for (i = 0; p && i < p->nsites; i++)
		if (p->sites[i].qualname && strcmp(p->sites[i].qualname, q) == 0)
			return &p->sites[i];
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_truncated_last_line(void **state)
{
	char path[] = "/tmp/lw-rd-XXXXXX", l1[2048], l2[2048], l3[2048], text[8192], err[256];
	struct lw_report_data *d = new_data();
	const struct lw_rd_pid *p;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	line_start(l1, sizeof(l1), 1, 4242, "default");
	line_slow(l2, sizeof(l2), 2, 4242, 4242, 150, "charge", 10, "pay-1", 0);
	line_slow(l3, sizeof(l3), 3, 4242, 4242, 250, "charge", 10, "pay-2", 0);
	/* junk in the middle, a blank line, and a last line cut short while being written */
	snprintf(text, sizeof(text), "%s\nnot json at all\n\n%s\n%s\n%.60s", l1, l2, l3, l2);
	write_file(path, text);
	assert_int_equal(lw_rd__load_file(d, path, err, sizeof(err)), 0);
	assert_int_equal(d->records, 3);
	assert_int_equal(d->skipped, 2);
	assert_int_equal(d->truncated, 1);
	assert_int_equal(d->nfiles, 1);
	assert_true(d->files[0].truncated_last);
	assert_int_equal(d->files[0].lines, 6);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	p = pid_of(d, 4242);
	assert_non_null(p);
	assert_int_equal(p->nsites, 1);
	assert_int_equal(p->sites[0].count, 2);
	assert_int_equal(d->nev, 2);
	assert_string_equal(p->comm, "app");
	assert_string_equal(p->runtime_version, "3.11.2");
	lw_rd__free(d);
	unlink(path);

	/* a file that is not there, or a directory */
	d = new_data();
	assert_int_equal(lw_rd__load_file(d, "/nonexistent/x.jsonl", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot read /nonexistent/x.jsonl"));
	assert_int_equal(lw_rd__load_file(d, "/tmp", err, sizeof(err)), -EISDIR);
	lw_rd__free(d);
}

static void test_rotated_files(void **state)
{
	char dir[] = "/tmp/lw-rot-XXXXXX", p[4][512], l[2048], err[256];
	const char *names[] = { "rec.jsonl.2", "rec.jsonl.1", "rec.jsonl", "rec.jsonl.bak" };
	char *args[2], **paths = NULL;
	struct lw_report_data *d;
	const struct lw_rd_pid *pp;
	size_t n = 0, i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (i = 0; i < 4; i++)
		snprintf(p[i], sizeof(p[i]), "%s/%s", dir, names[i]);
	/* oldest in .2: the start and two records; .1: a record; newest: the final summary */
	{
		char a[2048], b[2048], text[8192];

		line_start(a, sizeof(a), 1, 7, "default");
		line_slow(b, sizeof(b), 2, 7, 7, 120, "tick", 5, "t", 0);
		line_slow(l, sizeof(l), 3, 7, 7, 130, "tick", 5, "t", 0);
		snprintf(text, sizeof(text), "%s\n%s\n%s\n", a, b, l);
		write_file(p[0], text);
		line_slow(l, sizeof(l), 4, 7, 7, 140, "tick", 5, "t", 0);
		snprintf(text, sizeof(text), "%s\n", l);
		write_file(p[1], text);
		line_summary(a, sizeof(a), 5, 7, 1, 4.5, "slow", "tick", 5, 3, 390);
		line_end(b, sizeof(b), 5, 7);
		snprintf(text, sizeof(text), "%s\n%s\n", a, b);
		write_file(p[2], text);
		write_file(p[3], "not a rotation\n");
	}
	args[0] = p[2];
	assert_int_equal(lw_rd_expand_paths(args, 1, &paths, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(paths[0], p[0]);
	assert_string_equal(paths[1], p[1]);
	assert_string_equal(paths[2], p[2]);
	lw_rd_free_paths(paths, n);
	/* the base name without .jsonl; a file given twice (explicitly and by rotation) */
	snprintf(l, sizeof(l), "%s/rec", dir);
	args[0] = p[1];
	args[1] = l;
	assert_int_equal(lw_rd_expand_paths(args, 2, &paths, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(paths[0], p[1]);
	assert_string_equal(paths[1], p[0]);
	assert_string_equal(paths[2], p[2]);
	d = new_data();
	for (i = 0; i < n; i++)
		assert_int_equal(lw_rd__load_file(d, paths[i], err, sizeof(err)), 0);
	lw_rd_free_paths(paths, n);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	pp = pid_of(d, 7);
	assert_non_null(pp);
	/* one run across the three files: the final summary counts it, records add nothing */
	assert_int_equal(pp->runs, 1);
	assert_int_equal(pp->default_runs, 1);
	assert_int_equal(pp->summaries_used, 1);
	assert_int_equal(pp->record_sets, 0);
	assert_int_equal(pp->nsites, 1);
	assert_int_equal(pp->sites[0].count, 3);
	assert_int_equal(pp->lost_events, 3);
	assert_int_equal(d->nev, 3);
	lw_rd__free(d);
	for (i = 0; i < 4; i++)
		unlink(p[i]);
	rmdir(dir);
}

static void test_parse_time(void **state)
{
	uint64_t now = NS(3600), t = 0;

	(void)state;
	assert_int_equal(lw_rd_parse_time("2026-01-01T00:00:10Z", now, &t), 0);
	assert_true(t == NS(10));
	assert_int_equal(lw_rd_parse_time("2026-01-01T00:00:10.25Z", now, &t), 0);
	assert_true(t == NS(10.25));
	assert_int_equal(lw_rd_parse_time("2026-01-01T02:00:10+02:00", now, &t), 0);
	assert_true(t == NS(10));
	assert_int_equal(lw_rd_parse_time("2025-12-31T23:00:10-0100", now, &t), 0);
	assert_true(t == NS(10));
	assert_int_equal(lw_rd_parse_time(" 2026-01-01 00:00:10 ", now, &t), 0);
	assert_true(t == NS(10));
	assert_int_equal(lw_rd_parse_time("2026-01-01", now, &t), 0);
	assert_true(t == NS(0));
	assert_int_equal(lw_rd_parse_time("10m", now, &t), 0);
	assert_true(t == NS(3000));
	assert_int_equal(lw_rd_parse_time("1h ago", now, &t), 0);
	assert_true(t == NS(0));
	assert_int_equal(lw_rd_parse_time("-90s", now, &t), 0);
	assert_true(t == NS(3510));
	assert_int_equal(lw_rd_parse_time("10 m ago", now, &t), 0);
	assert_true(t == NS(3000));
	assert_int_equal(lw_rd_parse_time("1d", now, &t), 0);
	assert_true(t == now - 86400ull * 1000000000ull);
	assert_int_equal(lw_rd_parse_time("1w", 1000, &t), 0);
	assert_true(t == 0);
	assert_int_equal(lw_rd_parse_time("now", now, &t), 0);
	assert_true(t == now);
	assert_int_equal(lw_rd_parse_time("@1767225610.5", now, &t), 0);
	assert_true(t == NS(10.5));
	assert_int_equal(lw_rd_parse_time("", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time(NULL, now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("10", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("yesterday", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("2026-13-01", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("2026-01-01T25:00:00Z", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("2026-01-01T00:00:00Zjunk", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("-10m ago", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("10parsecs", now, &t), -EINVAL);
	assert_int_equal(lw_rd_parse_time("@-5", now, &t), -EINVAL);
}

/* pids 100 and 200, slow callbacks every 10 s from 10 to 50, and one blocking call of 100's */
static struct lw_report_data *two_pids(const struct lw_rd_filter *flt)
{
	struct lw_report_data *d = new_data();
	char l[2048];
	int s;

	for (s = 10; s <= 50; s += 10) {
		line_slow(l, sizeof(l), s, 100, 100, 100 + s, "Ledger.flush", 10, "t", 0);
		add(d, l);
		line_slow(l, sizeof(l), s + 1, 200, 201, 200 + s, "poll", 20, "t", 0);
		add(d, l);
	}
	line_block(l, sizeof(l), 29.9, 100, 100, 50, "Ledger.flush", 10);
	add(d, l);
	assert_int_equal(lw_rd__finish(d, flt), 0);
	return d;
}

static void test_filters(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d;
	const struct lw_rd_pid *p;

	(void)state;
	d = two_pids(&f);
	assert_int_equal(d->npids, 2);
	assert_int_equal(d->nev, 11);
	p = pid_of(d, 100);
	assert_int_equal(p->sites[0].count, 5);
	assert_int_equal(p->nbsites, 1);
	assert_string_equal(p->bsites[0].qualname, "inner");
	assert_string_equal(p->bsites[0].target, "pipe");
	lw_rd__free(d);

	/* time range: records ending in [20, 40] */
	f.since_ns = NS(20);
	f.until_ns = NS(40);
	d = two_pids(&f);
	assert_int_equal(pid_of(d, 100)->sites[0].count, 3);
	assert_int_equal(pid_of(d, 200)->sites[0].count, 2);	/* 21, 31 (41 is out) */
	assert_true(d->first_ns >= NS(19));
	lw_rd__free(d);

	/* one pid */
	memset(&f, 0, sizeof(f));
	f.pid = 200;
	d = two_pids(&f);
	assert_int_equal(d->npids, 1);
	assert_int_equal(d->pids[0].pid, 200);
	assert_int_equal(d->nev, 5);
	lw_rd__free(d);

	/* sites: a qualname glob, file:line, basename:line, the innermost frame */
	memset(&f, 0, sizeof(f));
	f.site = "Ledger.*";
	d = two_pids(&f);
	assert_int_equal(d->npids, 1);
	assert_int_equal(d->nev, 6);
	lw_rd__free(d);
	f.site = "/srv/app/a.py:20";
	d = two_pids(&f);
	assert_int_equal(d->npids, 1);
	assert_int_equal(d->pids[0].pid, 200);
	lw_rd__free(d);
	f.site = "a.py:10";
	d = two_pids(&f);
	assert_int_equal(d->npids, 1);
	assert_int_equal(d->pids[0].pid, 100);
	lw_rd__free(d);
	f.site = "inner";	/* where they all blocked */
	d = two_pids(&f);
	assert_int_equal(d->npids, 2);
	lw_rd__free(d);
	f.site = "nothing*";
	d = two_pids(&f);
	assert_int_equal(d->npids, 0);
	assert_int_equal(d->nev, 0);
	lw_rd__free(d);
}

static void test_records_only(void **state)
{
	struct lw_report_data *d = new_data();
	const struct lw_rd_site *s;
	const struct lw_rd_pid *p;
	char l[2048];

	(void)state;
	line_slow(l, sizeof(l), 1, 5, 5, 300, "work", 3, "a", 0);
	add(d, l);
	line_slow(l, sizeof(l), 2, 5, 5, 100, "work", 3, "b", 0);
	add(d, l);
	line_slow(l, sizeof(l), 3, 5, 5, 120, "work", 3, "c", 1);	/* a live alert */
	add(d, l);
	line_slow(l, sizeof(l), 3.5, 5, 5, 200, "work", 3, "c", 0);
	add(d, l);
	line_slow(l, sizeof(l), 4, 5, 5, 1000, "other", 9, "d", 0);
	add(d, l);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	assert_int_equal(d->in_progress, 1);
	p = pid_of(d, 5);
	assert_int_equal(p->scope, LW_RD_SCOPE_SLOW);
	assert_int_equal(p->summaries_used, 0);
	assert_int_equal(p->record_sets, 1);
	assert_int_equal(p->slow_callbacks, 4);
	/* by total time: other (1000) before work (600) */
	assert_string_equal(p->sites[0].qualname, "other");
	s = site_of(p, "work");
	assert_int_equal(s->count, 3);
	assert_float_equal(s->total_ms, 600, 1e-6);
	assert_float_equal(s->p50_ms, 200, 1e-6);
	assert_float_equal(s->p99_ms, 300, 1e-6);
	assert_float_equal(s->max_ms, 300, 1e-6);
	assert_int_equal(s->hist.count, 3);
	assert_int_equal(s->line, 3);
	/* events by start time */
	assert_int_equal(d->nev, 4);
	assert_true(d->ev[0]->start_ns <= d->ev[1]->start_ns);
	assert_true(d->ev[0]->end_ns == NS(1));
	assert_true(d->ev[0]->start_ns == NS(0.7));
	lw_rd__free(d);
}

static void test_precise_final_summary(void **state)
{
	struct lw_report_data *d = new_data();
	const struct lw_rd_pid *p;
	const struct lw_rd_site *s;
	char l[4096];

	(void)state;
	line_start(l, sizeof(l), 10, 9, "precise");
	add(d, l);
	line_slow(l, sizeof(l), 12, 9, 9, 150, "handler", 4, "a", 0);
	add(d, l);
	line_slow(l, sizeof(l), 18, 9, 9, 250, "handler", 4, "b", 0);
	add(d, l);
	/* periodic (10..20) then final (10..40): the final one counts the whole run */
	line_summary(l, sizeof(l), 20, 9, 0, 10, "all", "handler", 4, 1000, 2000);
	add(d, l);
	line_summary(l, sizeof(l), 40, 9, 1, 30, "all", "handler", 4, 3000, 6000);
	add(d, l);
	line_end(l, sizeof(l), 40, 9);
	add(d, l);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	p = pid_of(d, 9);
	assert_int_equal(p->runs, 1);
	assert_int_equal(p->precise_runs, 1);
	assert_int_equal(p->scope, LW_RD_SCOPE_ALL);
	assert_int_equal(p->summaries_used, 1);
	assert_int_equal(p->record_sets, 0);
	s = site_of(p, "handler");
	assert_int_equal(s->count, 3000);
	assert_float_equal(s->total_ms, 6000, 1e-6);
	assert_float_equal(s->p50_ms, 2, 1e-6);
	assert_int_equal(s->hist.count, 3000);
	assert_int_equal(p->nbsites, 1);
	assert_int_equal(p->bsites[0].count, 3000);
	assert_int_equal(p->nloops, 1);
	assert_int_equal(p->loops[0].iterations, 100);
	assert_float_equal(p->loops[0].utilization, 0.5, 1e-9);
	assert_int_equal(p->slow_callbacks, 3000);
	assert_int_equal(d->nev, 2);	/* the records are still listed */
	lw_rd__free(d);
}

static void test_periodic_and_records(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d;
	const struct lw_rd_pid *p;
	const struct lw_rd_site *s;
	char l[4][4096];
	int pass, i;

	(void)state;
	line_start(l[0], sizeof(l[0]), 10, 3, "default");
	for (pass = 0; pass < 2; pass++) {
		d = new_data();
		add(d, l[0]);
		/* records at 15 and 18 are counted by the periodic summary of 10..20; 25 is not */
		line_slow(l[1], sizeof(l[1]), 15, 3, 3, 100, "job", 2, "a", 0);
		line_slow(l[2], sizeof(l[2]), 18, 3, 3, 200, "job", 2, "b", 0);
		line_slow(l[3], sizeof(l[3]), 25, 3, 3, 400, "job", 2, "c", 0);
		for (i = 1; i < 4; i++)
			add(d, l[i]);
		line_summary(l[1], sizeof(l[1]), 20, 3, 0, 10, "slow", "job", 2, 2, 300);
		add(d, l[1]);
		if (pass == 1) {
			/* a final summary of 10..30 that the time range cuts: not used */
			line_summary(l[1], sizeof(l[1]), 30, 3, 1, 20, "slow", "job", 2, 3, 700);
			add(d, l[1]);
			f.since_ns = NS(12);
		}
		assert_int_equal(lw_rd__finish(d, &f), 0);
		p = pid_of(d, 3);
		s = site_of(p, "job");
		if (pass == 0) {
			/* no final summary: the periodic one, plus the record after it */
			assert_int_equal(p->summaries_used, 1);
			assert_int_equal(p->record_sets, 1);
			assert_int_equal(s->count, 3);
			assert_float_equal(s->total_ms, 700, 1e-6);
			assert_float_equal(s->max_ms, 400, 1e-6);
			assert_int_equal(s->sources, 2);
			assert_int_equal(p->slow_callbacks, 3);
		} else {
			/* since 12: the periodic summary (10..20) is cut too; records from 12 on */
			assert_int_equal(p->summaries_used, 0);
			assert_int_equal(p->record_sets, 1);
			assert_int_equal(s->count, 3);
			assert_float_equal(s->total_ms, 700, 1e-6);
			assert_float_equal(s->p50_ms, 200, 1e-6);
		}
		lw_rd__free(d);
	}
}

/* a periodic summary's slow_callbacks counts from the run's start (issue 18: a run without
 * its final summary was counted once per periodic summary: 2 + 5 + 5 for 5) */
static void test_periodic_counters_cumulative(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d = new_data();
	const struct lw_rd_pid *p;
	static const long site[] = { 2, 3, 1 }, cum[] = { 2, 5, 6 };
	char l[4096], *c;
	int i;

	(void)state;
	line_start(l, sizeof(l), 10, 9, "default");
	add(d, l);
	for (i = 0; i < 3; i++) {
		line_summary(l, sizeof(l), 11 + i, 9, 0, 1, "slow", "job", 2, site[i], 150.0 * site[i]);
		c = strstr(l, "\"slow_callbacks\":");
		assert_non_null(c);
		snprintf(c, sizeof(l) - (size_t)(c - l),
			 "\"slow_callbacks\":%ld,\"blocking_calls\":%ld,\"lost_events\":0}", cum[i],
			 cum[i] * 2);
		add(d, l);
	}
	assert_int_equal(lw_rd__finish(d, &f), 0);
	p = pid_of(d, 9);
	assert_int_equal(p->summaries_used, 3);
	assert_int_equal(site_of(p, "job")->count, 6);
	assert_int_equal(p->slow_callbacks, 6);
	assert_int_equal(p->blocking_calls, 12);
	lw_rd__free(d);
	/* from 11: the summaries of 11..12 and 12..13, what they added (5 - 2 + 6 - 5) */
	d = new_data();
	line_start(l, sizeof(l), 10, 9, "default");
	add(d, l);
	for (i = 0; i < 3; i++) {
		line_summary(l, sizeof(l), 11 + i, 9, 0, 1, "slow", "job", 2, site[i], 150.0 * site[i]);
		c = strstr(l, "\"slow_callbacks\":");
		snprintf(c, sizeof(l) - (size_t)(c - l),
			 "\"slow_callbacks\":%ld,\"blocking_calls\":0,\"lost_events\":0}", cum[i]);
		add(d, l);
	}
	f.since_ns = NS(11);
	assert_int_equal(lw_rd__finish(d, &f), 0);
	assert_int_equal(pid_of(d, 9)->slow_callbacks, 4);
	lw_rd__free(d);
}

/* --by target: the processes of a target in one table, each count once */
static void test_rollup_targets(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d = new_data();
	struct lw_rd_pid *v = NULL;
	size_t n = 0, i;
	char l[4096], *c;
	static const int pids[] = { 21, 22, 23 };
	static const char *const tn[] = { "pay", "pay", NULL };

	(void)state;
	for (i = 0; i < 3; i++) {
		line_start(l, sizeof(l), 10 + (double)i * 10, pids[i], "default");
		if (tn[i]) {
			c = strrchr(l, '}');
			snprintf(c, sizeof(l) - (size_t)(c - l), ",\"target_name\":\"%s\"}", tn[i]);
		}
		add(d, l);
		line_summary(l, sizeof(l), 15 + (double)i * 10, pids[i], 1, 5, "slow", "charge", 4,
			     (long)i + 2, 150.0 * (double)(i + 2));
		add(d, l);
		line_end(l, sizeof(l), 16 + (double)i * 10, pids[i]);
		add(d, l);
	}
	assert_int_equal(lw_rd__finish(d, &f), 0);
	assert_int_equal(lw_rd_rollup_targets(d, &v, &n), 0);
	assert_int_equal(n, 2);
	/* pay: pids 21 and 22 (2 + 3), one table, no pid */
	assert_int_equal(v[0].pid, 0);
	assert_string_equal(v[0].target_name, "pay");
	assert_int_equal(v[0].nprocs, 2);
	assert_int_equal(v[0].runs, 2);
	assert_int_equal(v[0].slow_callbacks, 5);
	assert_int_equal(v[0].nsites, 1);
	assert_int_equal(v[0].sites[0].count, 5);
	assert_float_equal(v[0].sites[0].total_ms, 750, 1e-6);
	assert_int_equal(v[0].lost_events, 6);
	/* a pid with no target name stays itself */
	assert_int_equal(v[1].pid, 23);
	assert_int_equal(v[1].nprocs, 1);
	assert_int_equal(v[1].slow_callbacks, 4);
	lw_rd_rollup_free(v, n);
	lw_rd__free(d);
}

static void test_two_runs_one_pid(void **state)
{
	struct lw_report_data *d = new_data();
	const struct lw_rd_pid *p;
	const struct lw_rd_site *s;
	char l[4096];

	(void)state;
	line_start(l, sizeof(l), 1, 11, "default");
	add(d, l);
	line_slow(l, sizeof(l), 2, 11, 11, 150, "f", 1, "a", 0);
	add(d, l);
	line_summary(l, sizeof(l), 3, 11, 1, 2, "slow", "f", 1, 5, 750);
	add(d, l);
	line_end(l, sizeof(l), 3, 11);
	add(d, l);
	line_start(l, sizeof(l), 10, 11, "precise");
	add(d, l);
	line_summary(l, sizeof(l), 20, 11, 1, 10, "all", "f", 1, 100, 500);
	add(d, l);
	line_end(l, sizeof(l), 20, 11);
	add(d, l);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	p = pid_of(d, 11);
	assert_int_equal(p->runs, 2);
	assert_int_equal(p->precise_runs, 1);
	assert_int_equal(p->default_runs, 1);
	assert_int_equal(p->scope, LW_RD_SCOPE_MIXED);
	assert_int_equal(p->summaries_used, 2);
	s = site_of(p, "f");
	assert_int_equal(s->count, 105);
	assert_float_equal(s->total_ms, 1250, 1e-6);
	assert_float_equal(s->max_ms, 150, 1e-6);
	/* between the two runs' own p50s (5 and 150) */
	assert_true(s->p50_ms >= 5 && s->p50_ms <= 150);
	assert_int_equal(p->lost_events, 6);
	lw_rd__free(d);
}

/* --by run: each run of a pid (an attach, a loopwatchd life) in its own entry, counted once,
 * with its own records; the per-pid entry adds them up */
static void test_by_run(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d = new_data();
	const struct lw_rd_site *s;
	size_t i, in1 = 0, in2 = 0;
	char l[4096];

	(void)state;
	/* pid 11: a default run (a 150 ms record and a final summary of 5 slow callbacks, 750 ms
	 * in all), then a precise run (a 300 ms record, 3 slow callbacks, 900 ms); pid 12: one run */
	line_start(l, sizeof(l), 1, 11, "default");
	add(d, l);
	line_slow(l, sizeof(l), 2, 11, 11, 150, "f", 1, "a", 0);
	add(d, l);
	line_summary(l, sizeof(l), 3, 11, 1, 2, "slow", "f", 1, 5, 750);
	add(d, l);
	line_end(l, sizeof(l), 3, 11);
	add(d, l);
	line_start(l, sizeof(l), 10, 11, "precise");
	add(d, l);
	line_slow(l, sizeof(l), 12, 11, 11, 300, "f", 1, "a", 0);
	add(d, l);
	line_summary(l, sizeof(l), 20, 11, 1, 10, "slow", "f", 1, 3, 900);
	add(d, l);
	line_end(l, sizeof(l), 20, 11);
	add(d, l);
	line_start(l, sizeof(l), 5, 12, "default");
	add(d, l);
	line_summary(l, sizeof(l), 8, 12, 1, 3, "slow", "g", 4, 2, 400);
	add(d, l);
	line_end(l, sizeof(l), 8, 12);
	add(d, l);
	f.by_run = 1;
	assert_int_equal(lw_rd__finish(d, &f), 0);
	assert_int_equal(d->npids, 3);
	/* by pid, then the pid's runs in time order */
	assert_int_equal(d->pids[0].pid, 11);
	assert_int_equal(d->pids[0].run_seq, 1);
	assert_int_equal(d->pids[1].pid, 11);
	assert_int_equal(d->pids[1].run_seq, 2);
	assert_int_equal(d->pids[2].pid, 12);
	assert_int_equal(d->pids[2].run_seq, 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(d->pids[i].runs, 1);
	assert_int_equal(d->pids[0].default_runs, 1);
	assert_int_equal(d->pids[1].precise_runs, 1);
	assert_int_equal(d->pids[0].slow_callbacks, 5);
	assert_int_equal(d->pids[1].slow_callbacks, 3);
	assert_int_equal(d->pids[2].slow_callbacks, 2);
	s = site_of(&d->pids[0], "f");
	assert_int_equal(s->count, 5);
	assert_float_equal(s->total_ms, 750, 1e-6);
	s = site_of(&d->pids[1], "f");
	assert_int_equal(s->count, 3);
	assert_float_equal(s->total_ms, 900, 1e-6);
	assert_int_equal(d->pids[0].lost_events, 3);
	assert_int_equal(d->pids[1].lost_events, 3);
	/* each record in its own run's entry only */
	assert_int_equal(d->nev, 2);
	for (i = 0; i < d->nev; i++) {
		in1 += (size_t)lw_rd_entry_has(d, &d->pids[0], d->ev[i]);
		in2 += (size_t)lw_rd_entry_has(d, &d->pids[1], d->ev[i]);
		assert_false(lw_rd_entry_has(d, &d->pids[2], d->ev[i]));
	}
	assert_int_equal(in1, 1);
	assert_int_equal(in2, 1);
	assert_true(lw_rd_entry_has(d, &d->pids[0], d->ev[0]));
	assert_float_equal(d->ev[0]->duration_ms, 150, 1e-6);
	assert_true(lw_rd_entry_has(d, &d->pids[1], d->ev[1]));
	lw_rd__free(d);
}

/* records stamped just before their run's start record belong to that run */
static void test_records_before_start(void **state)
{
	struct lw_rd_filter f = { 0 };
	struct lw_report_data *d;
	const struct lw_rd_pid *p;
	char l[4096];

	(void)state;
	d = new_data();
	line_slow(l, sizeof(l), 9.99, 21, 21, 150, "f", 1, "a", 0);
	add(d, l);
	line_start(l, sizeof(l), 10, 21, "precise");
	add(d, l);
	line_summary(l, sizeof(l), 20, 21, 1, 10.5, "all", "f", 1, 40, 400);
	add(d, l);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	p = pid_of(d, 21);
	assert_int_equal(p->runs, 1);
	assert_int_equal(p->precise_runs, 1);
	assert_int_equal(p->sites[0].count, 40);
	assert_int_equal(p->record_sets, 0);
	lw_rd__free(d);

	/* a site filter that no summary row matches: the pid is not in the report */
	d = new_data();
	line_start(l, sizeof(l), 10, 22, "precise");
	add(d, l);
	line_summary(l, sizeof(l), 20, 22, 1, 10, "all", "f", 1, 40, 400);
	add(d, l);
	line_end(l, sizeof(l), 20, 22);
	add(d, l);
	f.site = "g";
	assert_int_equal(lw_rd__finish(d, &f), 0);
	assert_int_equal(d->npids, 0);
	lw_rd__free(d);
}

static void test_parents(void **state)
{
	struct lw_report_data *d = new_data();
	const struct lw_rd_event *cb = NULL, *in = NULL, *other = NULL, *after = NULL;
	char l[4096];
	size_t i;

	(void)state;
	line_slow(l, sizeof(l), 10, 1, 1, 300, "f", 1, "a", 0);
	add(d, l);
	line_block(l, sizeof(l), 9.99, 1, 1, 290, "f", 1);	/* inside */
	add(d, l);
	line_block(l, sizeof(l), 9.98, 1, 2, 100, "f", 1);	/* another thread */
	add(d, l);
	line_block(l, sizeof(l), 10.5, 1, 1, 100, "f", 1);	/* after it */
	add(d, l);
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	assert_int_equal(d->nev, 4);
	for (i = 0; i < d->nev; i++) {
		const struct lw_rd_event *e = d->ev[i];

		if (e->type == LW_RD_SLOW_CALLBACK)
			cb = e;
		else if (e->tid == 2)
			other = e;
		else if (e->end_ns == NS(9.99))
			in = e;
		else
			after = e;
	}
	assert_non_null(cb);
	assert_ptr_equal(in->parent, cb);
	assert_null(other->parent);
	assert_null(after->parent);
	/* the parent sorts before its child */
	for (i = 0; i < d->nev; i++)
		if (d->ev[i] == in)
			break;
	assert_true(i > 0 && d->ev[i - 1] == cb);
	lw_rd__free(d);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "[]", "null", "42", "\"str\"", "{",
		"{\"type\":5,\"ts\":\"2026-01-01T00:00:01Z\","
		"\"pid\":1}",
		"{\"type\":\"slow_callback\",\"ts\":\"bad\",\"pid\":1,\"duration_ms\":5}",
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":\"x\"}",
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":-4}",
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":1,"
		"\"duration_ms\":\"x\"}",
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":1,"
		"\"duration_ms\":-5}",
		"{\"type\":\"blocking_call\",\"ts\":[],\"pid\":1,\"duration_ms\":5}",
	};
	static const char *const odd[] = {
		/* records of the right type with fields of the wrong one: kept, tolerated */
		"{\"type\":\"slow_callback\",\"ts\":\"2026-01-01T00:00:01Z\",\"pid\":1,"
		"\"tid\":\"t\","
		"\"duration_ms\":5,\"callback\":\"str\",\"stack\":{\"a\":1},\"blocked\":[1,\"x\","
		"{\"syscall\":7,\"ms\":\"y\"},{\"syscall\":\"read\",\"ms\":1e308,\"count\":-3}],"
		"\"native_stack\":[null,{\"symbol\":[]}],\"cpu_ms\":\"x\",\"mode\":3}",
		"{\"type\":\"blocking_call\",\"ts\":\"2026-01-01T00:00:02Z\",\"pid\":1,\"tid\":1,"
		"\"duration_ms\":1e300,\"fd\":\"x\",\"target\":5,\"syscall\":null,\"stack\":[{},"
		"{\"function\":\"f\",\"line\":\"x\"},{\"file\":\"a.py\",\"line\":1e300}],"
		"\"callback\":{\"qualname\":[1],\"line\":-1}}",
		"{\"type\":\"summary\",\"ts\":\"2026-01-01T00:00:03Z\",\"pid\":1,\"final\":\"yes\","
		"\"interval_s\":-4,\"sites\":[1,{\"count\":\"x\"},{\"qualname\":\"q\",\"count\":3,"
		"\"total_ms\":3,\"hist\":[[1],[\"a\",2],[0.004,-1],[1e300,5],[0.008,1e30],5]}],"
		"\"blocking_sites\":{},\"loops\":[{\"tid\":0},{\"tid\":3,\"utilization\":7,"
		"\"busy_ms\":-1,\"lag_hist\":\"x\"}],\"slow_callbacks\":1e99}",
		"{\"type\":\"summary\",\"ts\":\"2026-01-01T00:00:04Z\",\"pid\":1,\"final\":true,"
		"\"interval_s\":1e300,\"sites\":null,\"loops\":null}",
		"{\"type\":\"suppressed\",\"ts\":\"2026-01-01T00:00:05Z\",\"pid\":1,\"site\":5,"
		"\"record_type\":\"slow_callback\",\"count\":2,\"total_ms\":\"x\"}",
		"{\"type\":\"start\",\"ts\":\"2026-01-01T00:00:00Z\",\"pid\":1,\"mode\":[]}",
		"{\"type\":\"end\",\"ts\":\"2026-01-01T00:00:09Z\",\"pid\":1,"
		"\"lost_events\":\"x\"}",
		"{\"type\":\"something_new\",\"ts\":\"2026-01-01T00:00:09Z\",\"pid\":1}",
	};
	struct lw_report_data *d = new_data();
	size_t i;

	(void)state;
	for (i = 0; i < LW_ARRAY_SIZE(bad); i++)
		assert_int_equal(lw_rd__load_line(d, bad[i]), 1);
	for (i = 0; i < LW_ARRAY_SIZE(odd); i++)
		assert_int_equal(lw_rd__load_line(d, odd[i]), 0);
	assert_int_equal(d->skipped, LW_ARRAY_SIZE(bad));
	assert_int_equal(d->records, LW_ARRAY_SIZE(odd));
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	assert_int_equal(d->npids, 1);
	assert_int_equal(d->nev, 2);
	/* finishing twice, loading after finishing: refused */
	assert_int_equal(lw_rd__finish(d, NULL), -EINVAL);
	assert_int_equal(lw_rd__load_line(d, odd[0]), -EINVAL);
	lw_rd__free(d);

	/* an empty data set */
	d = new_data();
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	assert_int_equal(d->npids, 0);
	lw_rd__free(d);
	lw_rd__free(NULL);
}

static void test_stream(void **state)
{
	char l1[2048], l2[2048], text[8192];
	struct lw_report_data *d = new_data();
	FILE *f;

	(void)state;
	line_slow(l1, sizeof(l1), 1, 2, 2, 110, "g", 1, "a", 0);
	line_block(l2, sizeof(l2), 0.9, 2, 2, 100, "g", 1);
	snprintf(text, sizeof(text), "%s\r\n%s", l1, l2);	/* CRLF, no final newline */
	f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	assert_int_equal(lw_rd__load_stream(d, f, "-"), 0);
	fclose(f);
	assert_int_equal(d->records, 2);
	assert_int_equal(d->skipped, 0);
	assert_int_equal(d->truncated, 0);	/* complete, though without a newline */
	assert_int_equal(lw_rd__finish(d, NULL), 0);
	assert_int_equal(d->pids[0].nbsites, 1);
	assert_string_equal(d->pids[0].bsites[0].syscall, "read");
	assert_int_equal(d->pids[0].bsites[0].line, 7);
	lw_rd__free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_last_line),
		cmocka_unit_test(test_rotated_files),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_records_only),
		cmocka_unit_test(test_precise_final_summary),
		cmocka_unit_test(test_periodic_and_records),
		cmocka_unit_test(test_periodic_counters_cumulative),
		cmocka_unit_test(test_rollup_targets),
		cmocka_unit_test(test_two_runs_one_pid),
		cmocka_unit_test(test_by_run),
		cmocka_unit_test(test_records_before_start),
		cmocka_unit_test(test_parents),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
