// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch report [--format text|json|trace|folded|html] [-o FILE] [--pid PID] [--since TIME]
 *                  [--until TIME] [--site PATTERN] [--weight wall|blocked|cpu] FILE...
 *
 * Reads JSON Lines records back (rotated files included, a cut-short last line tolerated) and
 * prints, per process, the slowest callback sites with their histograms, the top blocking sites
 * and the slowest callbacks; or exports them (export.h). Loading, filtering and aggregation are
 * report_data.c's.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report/export.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/textesc.h"
#include "base/safefile.h"
#include "report/report_data.h"

#define EXIT_UNREADABLE 1
#define TEXT_SITES 20
#define TEXT_HISTS 5
#define TEXT_SLOWEST 10

/* ---- text */

/* Every string below came from a file (and before that from a target): escaped for the terminal
 * (base/textesc.h). tx() hands out one of a few rotating buffers: enough for one fprintf. */
static const char *tx(const char *s)
{
	static char ring[8][1024];
	static unsigned k;

	if (!s)
		return NULL;
	if (!lw_esc_needed(s))
		return s;
	k = (k + 1) % 8;
	return lw_esc(s, ring[k], sizeof(ring[k]));
}

/* escape a whole line built from file strings, in place */
static void tx_buf(char *buf, size_t size)
{
	if (lw_esc_needed(buf)) {
		char *e = lw_esc_dup(buf);

		if (e)
			lw_strlcpy(buf, e, size);
		else
			lw_strlcpy(buf, "?", size);
		free(e);
	}
}

static void fmt_ms(char *buf, size_t size, double v)
{
	if (v >= 1000)
		snprintf(buf, size, "%.3f s", v / 1000);
	else
		snprintf(buf, size, "%.3f ms", v);
}

/* "2026-11-25 04:14:15.623" (UTC) */
static char *fmt_when(uint64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, size, "?");
		return buf;
	}
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%03u", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ns % 1000000000ull / 1000000ull));
	return buf;
}

static void site_name(char *buf, size_t size, const char *q, const char *file, int64_t line)
{
	q = tx(q);
	file = file ? tx(lw_basename(file)) : NULL;
	if (file && line >= 0)
		snprintf(buf, size, "%s (%s:%lld)", q ? q : "?", file, (long long)line);
	else if (file)
		snprintf(buf, size, "%s (%s)", q ? q : "?", file);
	else
		snprintf(buf, size, "%s", q ? q : "<unidentified>");
}

/* the width a site table's column needs (targets or site names): longer cells are cut from the
 * left (lw_tail), so a file name and its line number stay whole */
static int col_width(const struct lw_rd_site *sites, size_t n, int target, int min)
{
	char buf[600];
	size_t i, need = 0, l;

	for (i = 0; i < n && i < TEXT_SITES; i++) {
		if (target) {
			l = strlen(sites[i].target ? tx(sites[i].target) : "-");
		} else {
			site_name(buf, sizeof(buf), sites[i].qualname, sites[i].file, sites[i].line);
			l = strlen(buf);
		}
		need = l > need ? l : need;
	}
	return lw_col_width(need, min);
}

static void text_hist(FILE *f, const struct lw_hist *h)
{
	uint32_t i, maxc = 0;

	for (i = 0; i < LW_HIST_SLOTS; i++)
		if (h->slots[i] > maxc)
			maxc = h->slots[i];
	for (i = 0; i < LW_HIST_SLOTS; i++) {
		char lo[32], bar[31];
		int w;

		if (!h->slots[i])
			continue;
		w = (int)((uint64_t)h->slots[i] * 30 / maxc);
		if (!w)
			w = 1;
		memset(bar, '*', (size_t)w);
		bar[w] = 0;
		fmt_ms(lo, sizeof(lo), (double)lw_hist_slot_low(i) / 1e6);
		fprintf(f, "        >= %-11s %8u |%-30s|\n", lo, h->slots[i], bar);
	}
}

static int dur_desc(const void *a, const void *b)
{
	const struct lw_rd_event *x = *(const struct lw_rd_event *const *)a;
	const struct lw_rd_event *y = *(const struct lw_rd_event *const *)b;

	if (x->duration_ms != y->duration_ms)
		return x->duration_ms < y->duration_ms ? 1 : -1;
	return x->end_ns < y->end_ns ? -1 : x->end_ns > y->end_ns;
}

/* the slow callbacks of an entry (a pid, or a target's pids), slowest first, at most max
 * (malloc'd) */
static const struct lw_rd_event **slowest_of(const struct lw_report_data *d,
					     const struct lw_rd_pid *p, size_t max, size_t *n)
{
	const struct lw_rd_event **v = malloc((d->nev ? d->nev : 1) * sizeof(*v));
	size_t i, k = 0;

	*n = 0;
	if (!v)
		return NULL;
	for (i = 0; i < d->nev; i++)
		if (d->ev[i]->type == LW_RD_SLOW_CALLBACK && lw_rd_entry_has(d, p, d->ev[i]))
			v[k++] = d->ev[i];
	qsort(v, k, sizeof(*v), dur_desc);
	*n = k < max ? k : max;
	return v;
}

static const char *scope_text(enum lw_rd_scope s)
{
	switch (s) {
	case LW_RD_SCOPE_ALL:
		return "every callback (precise mode)";
	case LW_RD_SCOPE_MIXED:
		return "every callback in precise runs, slow ones in default runs";
	default:
		return "slow callbacks";
	}
}

static void text_pid(FILE *f, const struct lw_report_data *d, const struct lw_rd_pid *p)
{
	const struct lw_rd_event **slow;
	char a[40], b[40], site[600], tot[32], p50[32], p99[32], mx[32], cut[2][LW_COL_MAX + 8];
	size_t i, n;
	int sw, tw;

	if (!p->pid)
		fprintf(f, "\ntarget %s (%u processes, %s", p->target_name ? tx(p->target_name) : "?",
			p->nprocs, p->comm ? tx(p->comm) : "?");
	else if (p->run_seq)
		fprintf(f, "\npid %d run %u (%s", (int)p->pid, p->run_seq, p->comm ? tx(p->comm) : "?");
	else
		fprintf(f, "\npid %d (%s", (int)p->pid, p->comm ? tx(p->comm) : "?");
	if (p->runtime)
		fprintf(f, ", %s%s%s", tx(p->runtime), p->runtime_version ? " " : "",
			p->runtime_version ? tx(p->runtime_version) : "");
	if (p->target_name && p->pid)
		fprintf(f, ", target %s", tx(p->target_name));
	fprintf(f, "), %u run%s", p->runs, p->runs == 1 ? "" : "s");
	if (p->precise_runs || p->default_runs)
		fprintf(f, " (%u default, %u precise)", p->default_runs, p->precise_runs);
	if (p->first_ns)
		fprintf(f, ", %s .. %s UTC", fmt_when(p->first_ns, a, sizeof(a)),
			fmt_when(p->last_ns, b, sizeof(b)));
	fprintf(f, "\n  slow callbacks %llu · blocking calls %llu · lost events %llu",
		(unsigned long long)p->slow_callbacks, (unsigned long long)p->blocking_calls,
		(unsigned long long)p->lost_events);
	if (p->suppressed)
		fprintf(f, " · rate-limited records %llu (counted)",
			(unsigned long long)p->suppressed);
	fprintf(f, "\n");
	for (i = 0; i < p->nloops; i++) {
		const struct lw_rd_loop *l = &p->loops[i];

		fmt_ms(tot, sizeof(tot), l->busy_ms);
		fprintf(f, "  loop thread %d (%s): utilization %.1f%%, %llu iterations, busy %s, "
			   "iteration p99 %.3f ms\n", (int)l->tid, l->comm ? tx(l->comm) : "?",
			100 * l->utilization, (unsigned long long)l->iterations, tot,
			(double)lw_hist_quantile(&l->lag, 0.99) / 1e6);
	}
	fprintf(f, "  callback sites by total time (%s; from %u summar%s%s):\n",
		scope_text(p->scope), p->summaries_used, p->summaries_used == 1 ? "y" : "ies",
		p->record_sets ? " and records" : "");
	if (!p->nsites) {
		fprintf(f, "    (none)\n");
	} else {
		sw = col_width(p->sites, p->nsites, 0, 50);
		fprintf(f, "    %-*s %8s %11s %11s %11s %11s\n", sw, "site", "count", "total", "p50",
			"p99", "max");
		for (i = 0; i < p->nsites && i < TEXT_SITES; i++) {
			const struct lw_rd_site *s = &p->sites[i];

			site_name(site, sizeof(site), s->qualname, s->file, s->line);
			fmt_ms(tot, sizeof(tot), s->total_ms);
			fmt_ms(p50, sizeof(p50), s->p50_ms);
			fmt_ms(p99, sizeof(p99), s->p99_ms);
			fmt_ms(mx, sizeof(mx), s->max_ms);
			fprintf(f, "    %-*s %8llu %11s %11s %11s %11s\n",
				sw, lw_tail(site, (size_t)sw, cut[1], sizeof(cut[1])),
				(unsigned long long)s->count, tot, p50, p99, mx);
		}
		if (p->nsites > TEXT_SITES)
			fprintf(f, "    ... %zu more\n", p->nsites - TEXT_SITES);
		for (i = 0; i < p->nsites && i < TEXT_HISTS; i++) {
			const struct lw_rd_site *s = &p->sites[i];

			if (!s->hist.count)
				continue;
			site_name(site, sizeof(site), s->qualname, s->file, s->line);
			fprintf(f, "    histogram of %s:\n", site);
			text_hist(f, &s->hist);
		}
	}
	fprintf(f, "  blocking call sites by total time:\n");
	if (!p->nbsites) {
		fprintf(f, "    (none)\n");
	} else {
		tw = col_width(p->bsites, p->nbsites, 1, 6);
		sw = col_width(p->bsites, p->nbsites, 0, 2);
		fprintf(f, "    %-16s %-*s %-*s %7s %11s %11s\n", "syscall", tw, "target", sw, "at",
			"count", "total", "max");
		for (i = 0; i < p->nbsites && i < TEXT_SITES; i++) {
			const struct lw_rd_site *s = &p->bsites[i];

			site_name(site, sizeof(site), s->qualname, s->file, s->line);
			fmt_ms(tot, sizeof(tot), s->total_ms);
			fmt_ms(mx, sizeof(mx), s->max_ms);
			fprintf(f, "    %-16.16s %-*s %-*s %7llu %11s %11s\n",
				s->syscall ? tx(s->syscall) : "?",
				tw, lw_tail(s->target ? tx(s->target) : "-", (size_t)tw, cut[0],
					    sizeof(cut[0])),
				sw, lw_tail(site, (size_t)sw, cut[1], sizeof(cut[1])),
				(unsigned long long)s->count, tot, mx);
		}
		if (p->nbsites > TEXT_SITES)
			fprintf(f, "    ... %zu more\n", p->nbsites - TEXT_SITES);
	}
	slow = slowest_of(d, p, TEXT_SLOWEST, &n);
	fprintf(f, "  slowest callbacks:\n");
	if (!n)
		fprintf(f, "    (none in the records)\n");
	for (i = 0; i < n; i++) {
		const struct lw_rd_event *e = slow[i];
		char cb[1600];

		lw_ex_callback_repr(&e->cb, e->has_callback, cb, sizeof(cb));
		tx_buf(cb, sizeof(cb));
		fmt_ms(tot, sizeof(tot), e->duration_ms);
		fprintf(f, "    %s  tid %d  %10s  %s\n", fmt_when(e->end_ns, a, sizeof(a)),
			(int)e->tid, tot, cb);
		if (e->nstack) {
			const char *sc = e->nblocked ? e->blocked[0].syscall : NULL;
			int cpu = e->stack_kind && strcmp(e->stack_kind, "cpu") == 0;

			lw_ex_frame_name(&e->stack[0], site, sizeof(site));
			tx_buf(site, sizeof(site));
			fmt_ms(p50, sizeof(p50), e->cpu_ms);
			fmt_ms(p99, sizeof(p99), e->blocked_ms);
			fprintf(f, "        on-cpu %s · blocked %s%s%s · %s at %s\n", p50, p99,
				sc ? " in " : "", sc ? tx(sc) : "", cpu ? "on cpu" : "blocked", site);
		}
	}
	free(slow);
}

static void text_report(FILE *f, const struct lw_report_data *d, const struct lw_rd_pid *v,
			size_t nv)
{
	char a[40], b[40];
	size_t i;

	fprintf(f, "loopwatch report: %zu file%s, %zu lines, %zu records", d->nfiles,
		d->nfiles == 1 ? "" : "s", d->lines, d->records);
	if (d->skipped)
		fprintf(f, ", %zu skipped", d->skipped);
	fprintf(f, "\n");
	if (d->first_ns)
		fprintf(f, "time range: %s .. %s UTC (%.1f s)\n",
			fmt_when(d->first_ns, a, sizeof(a)), fmt_when(d->last_ns, b, sizeof(b)),
			(double)(d->last_ns - d->first_ns) / 1e9);
	if (!nv)
		fprintf(f, "no records in range\n");
	for (i = 0; i < nv; i++)
		text_pid(f, d, &v[i]);
}

/* ---- json */

static struct json_object *jnum(double v, int decimals)
{
	return lw_j_num(v, decimals);
}

static struct json_object *jts(uint64_t ns)
{
	char buf[40];

	return ns ? json_object_new_string(lw_fmt_rfc3339(ns, buf, sizeof(buf))) : NULL;
}

static struct json_object *jhist(const struct lw_hist *h)
{
	struct json_object *a = json_object_new_array();
	uint32_t i;

	for (i = 0; i < LW_HIST_SLOTS; i++) {
		struct json_object *pair;

		if (!h->slots[i])
			continue;
		pair = json_object_new_array();
		json_object_array_add(pair, lw_j_ms(lw_hist_slot_low(i)));
		json_object_array_add(pair, json_object_new_int64(h->slots[i]));
		json_object_array_add(a, pair);
	}
	return a;
}

static struct json_object *jsite(const struct lw_rd_site *s, int blocking)
{
	struct json_object *o = json_object_new_object();

	if (blocking) {
		json_object_object_add(o, "syscall", lw_j_str_or_null(s->syscall));
		json_object_object_add(o, "target", lw_j_str_or_null(s->target));
	}
	json_object_object_add(o, "qualname", lw_j_str_or_null(s->qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(s->file));
	json_object_object_add(o, "line", s->line >= 0 ? json_object_new_int64(s->line) : NULL);
	json_object_object_add(o, "count", json_object_new_int64((int64_t)s->count));
	json_object_object_add(o, "total_ms", jnum(s->total_ms, 3));
	json_object_object_add(o, "p50_ms", jnum(s->p50_ms, 3));
	json_object_object_add(o, "p99_ms", jnum(s->p99_ms, 3));
	json_object_object_add(o, "max_ms", jnum(s->max_ms, 3));
	if (!blocking || s->hist.count)
		json_object_object_add(o, "hist", jhist(&s->hist));
	return o;
}

static struct json_object *jcallback(const struct lw_rd_event *e)
{
	struct json_object *o;

	if (!e->has_callback)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "kind", lw_j_str_or_null(e->cb.kind));
	json_object_object_add(o, "task_name", lw_j_str_or_null(e->cb.task_name));
	json_object_object_add(o, "qualname", lw_j_str_or_null(e->cb.qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(e->cb.file));
	json_object_object_add(o, "line",
			       e->cb.line >= 0 ? json_object_new_int64(e->cb.line) : NULL);
	return o;
}

static struct json_object *jevent(const struct lw_rd_event *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ts", jts(e->end_ns));
	json_object_object_add(o, "start_ts", jts(e->start_ns));
	json_object_object_add(o, "tid", json_object_new_int(e->tid));
	json_object_object_add(o, "duration_ms", jnum(e->duration_ms, 3));
	json_object_object_add(o, "callback", jcallback(e));
	json_object_object_add(o, "cpu_ms", jnum(e->cpu_ms, 3));
	json_object_object_add(o, "blocked_ms", jnum(e->blocked_ms, 3));
	json_object_object_add(o, "gil_ms", jnum(e->gil_ms, 3));
	if (e->nstack) {
		struct json_object *at = json_object_new_object();

		json_object_object_add(at, "function", lw_j_str_or_null(e->stack[0].function));
		json_object_object_add(at, "file", lw_j_str_or_null(e->stack[0].file));
		json_object_object_add(at, "line", e->stack[0].line >= 0 ?
					json_object_new_int64(e->stack[0].line) : NULL);
		json_object_object_add(o, "at", at);
	}
	return o;
}

static const char *scope_name(enum lw_rd_scope s)
{
	return s == LW_RD_SCOPE_ALL ? "all" : s == LW_RD_SCOPE_SLOW ? "slow" :
	       s == LW_RD_SCOPE_MIXED ? "mixed" : "none";
}

/* one table's numbers: a pid, or a target's pids added up */
static struct json_object *json_entry(const struct lw_report_data *d, const struct lw_rd_pid *p)
{
	struct json_object *x = json_object_new_object(), *a;
	const struct lw_rd_event **slow;
	size_t j, n;

	json_object_object_add(x, "pid", json_object_new_int(p->pid));
	if (p->run_seq)	/* --by run: the pid's 1st, 2nd... run */
		json_object_object_add(x, "run", json_object_new_int64(p->run_seq));
	json_object_object_add(x, "comm", lw_j_str_or_null(p->comm));
	json_object_object_add(x, "runtime", lw_j_str_or_null(p->runtime));
	json_object_object_add(x, "runtime_version", lw_j_str_or_null(p->runtime_version));
	json_object_object_add(x, "target_name", lw_j_str_or_null(p->target_name));
	json_object_object_add(x, "runs", json_object_new_int64(p->runs));
	json_object_object_add(x, "default_runs", json_object_new_int64(p->default_runs));
	json_object_object_add(x, "precise_runs", json_object_new_int64(p->precise_runs));
	json_object_object_add(x, "first_ts", jts(p->first_ns));
	json_object_object_add(x, "last_ts", jts(p->last_ns));
	json_object_object_add(x, "slow_callbacks",
			       json_object_new_int64((int64_t)p->slow_callbacks));
	json_object_object_add(x, "blocking_calls",
			       json_object_new_int64((int64_t)p->blocking_calls));
	json_object_object_add(x, "lost_events",
			       json_object_new_int64((int64_t)p->lost_events));
	json_object_object_add(x, "suppressed",
			       json_object_new_int64((int64_t)p->suppressed));
	json_object_object_add(x, "summaries_used",
			       json_object_new_int64(p->summaries_used));
	json_object_object_add(x, "record_sets", json_object_new_int64(p->record_sets));
	json_object_object_add(x, "sites_scope",
			       json_object_new_string(scope_name(p->scope)));
	a = json_object_new_array();
	for (j = 0; j < p->nsites; j++)
		json_object_array_add(a, jsite(&p->sites[j], 0));
	json_object_object_add(x, "sites", a);
	a = json_object_new_array();
	for (j = 0; j < p->nbsites; j++)
		json_object_array_add(a, jsite(&p->bsites[j], 1));
	json_object_object_add(x, "blocking_sites", a);
	a = json_object_new_array();
	for (j = 0; j < p->nloops; j++) {
		const struct lw_rd_loop *l = &p->loops[j];
		struct json_object *y = json_object_new_object();

		json_object_object_add(y, "tid", json_object_new_int(l->tid));
		json_object_object_add(y, "comm", lw_j_str_or_null(l->comm));
		json_object_object_add(y, "utilization", jnum(l->utilization, 4));
		json_object_object_add(y, "iterations",
				       json_object_new_int64((int64_t)l->iterations));
		json_object_object_add(y, "busy_ms", jnum(l->busy_ms, 3));
		json_object_object_add(y, "lag_p50_ms",
				       lw_j_ms(lw_hist_quantile(&l->lag, 0.5)));
		json_object_object_add(y, "lag_p99_ms",
				       lw_j_ms(lw_hist_quantile(&l->lag, 0.99)));
		json_object_array_add(a, y);
	}
	json_object_object_add(x, "loops", a);
	a = json_object_new_array();
	slow = slowest_of(d, p, TEXT_SLOWEST, &n);
	for (j = 0; j < n; j++)
		json_object_array_add(a, jevent(slow[j]));
	free(slow);
	json_object_object_add(x, "slowest", a);
	json_object_object_add(x, "processes", json_object_new_int64(p->nprocs ? p->nprocs : 1));
	return x;
}

/* {"too_long": N, ...}: the causes of skipped lines that occurred */
static struct json_object *skipped_by(const size_t *by)
{
	struct json_object *o = json_object_new_object();
	int k;

	for (k = 0; k < LW_RD_SKIP_N; k++)
		if (by[k])
			json_object_object_add(o, lw_rd_skip_name(k),
					       json_object_new_int64((int64_t)by[k]));
	return o;
}

static struct json_object *json_report(const struct lw_report_data *d,
				       const struct lw_rd_filter *flt, const struct lw_rd_pid *v,
				       size_t nv)
{
	struct json_object *o = json_object_new_object(), *files = json_object_new_array();
	struct json_object *pids = json_object_new_array(), *fo = json_object_new_object();
	size_t i, nslow = 0, nblk = 0;

	for (i = 0; i < d->nfiles; i++) {
		struct json_object *x = json_object_new_object();

		json_object_object_add(x, "path", json_object_new_string(d->files[i].path));
		json_object_object_add(x, "lines",
				       json_object_new_int64((int64_t)d->files[i].lines));
		json_object_object_add(x, "records",
				       json_object_new_int64((int64_t)d->files[i].records));
		json_object_object_add(x, "skipped",
				       json_object_new_int64((int64_t)d->files[i].skipped));
		json_object_object_add(x, "truncated_last",
				       json_object_new_boolean(d->files[i].truncated_last));
		json_object_object_add(x, "skipped_by", skipped_by(d->files[i].skipped_by));
		json_object_array_add(files, x);
	}
	json_object_object_add(o, "files", files);
	json_object_object_add(o, "lines", json_object_new_int64((int64_t)d->lines));
	json_object_object_add(o, "records", json_object_new_int64((int64_t)d->records));
	json_object_object_add(o, "skipped", json_object_new_int64((int64_t)d->skipped));
	json_object_object_add(o, "skipped_by", skipped_by(d->skipped_by));
	json_object_object_add(o, "in_progress_alerts",
			       json_object_new_int64((int64_t)d->in_progress));
	json_object_object_add(fo, "since", jts(flt->since_ns));
	json_object_object_add(fo, "until", jts(flt->until_ns));
	json_object_object_add(fo, "pid", flt->pid ? json_object_new_int(flt->pid) : NULL);
	json_object_object_add(fo, "site", lw_j_str_or_null(flt->site));
	json_object_object_add(o, "filter", fo);
	json_object_object_add(o, "first_ts", jts(d->first_ns));
	json_object_object_add(o, "last_ts", jts(d->last_ns));
	for (i = 0; i < d->nev; i++) {
		if (d->ev[i]->type == LW_RD_SLOW_CALLBACK)
			nslow++;
		else
			nblk++;
	}
	json_object_object_add(o, "slow_callback_records", json_object_new_int64((int64_t)nslow));
	json_object_object_add(o, "blocking_call_records", json_object_new_int64((int64_t)nblk));
	for (i = 0; i < d->npids; i++)
		json_object_array_add(pids, json_entry(d, &d->pids[i]));
	json_object_object_add(o, "pids", pids);
	/* --by target: the targets' tables too (each pid stays in "pids") */
	json_object_object_add(o, "by", json_object_new_string(v != d->pids ? "target" :
							       flt->by_run ? "run" : "pid"));
	if (v != d->pids) {
		struct json_object *t = json_object_new_array();

		for (i = 0; i < nv; i++)
			json_object_array_add(t, json_entry(d, &v[i]));
		json_object_object_add(o, "targets", t);
	}
	return o;
}

/* ---- the command */

static void say_skipped(const struct lw_report_data *d)
{
	size_t i;
	int k;

	for (i = 0; i < d->nfiles; i++) {
		const struct lw_rd_file_stats *fs = &d->files[i];
		char why[256];
		size_t len = 0;

		if (!fs->skipped)
			continue;
		if (fs->skipped == 1 && fs->truncated_last) {
			fprintf(stderr, "loopwatch: %s: skipped 1 line: the last one is cut short "
					"(still being written?)\n", tx(fs->path));
			continue;
		}
		why[0] = 0;
		for (k = 0; k < LW_RD_SKIP_N && len + 1 < sizeof(why); k++) {
			if (!fs->skipped_by[k])
				continue;
			snprintf(why + len, sizeof(why) - len, "%s%zu %s", len ? ", " : "",
				 fs->skipped_by[k], lw_rd_skip_name(k));
			len = strlen(why);
		}
		fprintf(stderr, "loopwatch: %s: skipped %zu line%s that %s not complete "
				"records%s: %s%s\n", tx(fs->path), fs->skipped,
			fs->skipped == 1 ? "" : "s", fs->skipped == 1 ? "was" : "were",
			fs->truncated_last ? " (the last one is cut short)" : "", why,
			fs->skipped_by[LW_RD_SKIP_TOO_LONG] ? " (too_long: over 64 MiB, not read "
			"into memory)" : "");
	}
}

static int parse_filter(const struct lw_cli_opts *o, struct lw_rd_filter *flt)
{
	uint64_t now = lw_now_real();

	memset(flt, 0, sizeof(*flt));
	if (o->since && lw_rd_parse_time(o->since, now, &flt->since_ns))
		return lw_cli_usage_error("invalid --since '%s': expected a time like 2026-11-25T04:14:14Z, "
			     "a time ago like 10m or '1h ago', or 'now'", o->since);
	if (o->until && lw_rd_parse_time(o->until, now, &flt->until_ns))
		return lw_cli_usage_error("invalid --until '%s': expected a time like 2026-11-25T04:14:14Z, "
			     "a time ago like 10m or '1h ago', or 'now'", o->until);
	if (o->since && !flt->since_ns)
		flt->since_ns = 1;
	if (o->until && !flt->until_ns)
		return lw_cli_usage_error("--until '%s' is before any record could be", o->until);
	if (flt->since_ns && flt->until_ns && flt->since_ns > flt->until_ns)
		return lw_cli_usage_error("--since is after --until ('%s')", o->until);
	if (o->site && !*o->site)
		return lw_cli_usage_error("--site needs a pattern%s", "");
	flt->pid = o->pid;
	flt->site = o->site;
	flt->by_run = o->by && strcmp(o->by, "run") == 0;
	return 0;
}

static int load_all(struct lw_report_data *d, const struct lw_cli_opts *o)
{
	char **paths = NULL, err[4400];
	size_t n = 0, i;
	int r;

	r = lw_rd_expand_paths(o->args, (size_t)o->nargs, &paths, &n);
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", strerror(-r));
		return EXIT_UNREADABLE;
	}
	/* every file readable, or no report at all */
	for (i = 0; i < n; i++) {
		if (strcmp(paths[i], "-") && access(paths[i], R_OK)) {
			fprintf(stderr, "loopwatch: cannot read %s: %s\n", paths[i],
				strerror(errno));
			lw_rd_free_paths(paths, n);
			return EXIT_UNREADABLE;
		}
	}
	for (i = 0; i < n; i++) {
		if (strcmp(paths[i], "-") == 0)
			r = lw_rd__load_stream(d, stdin, "-");
		else
			r = lw_rd__load_file(d, paths[i], err, sizeof(err));
		if (r) {
			if (strcmp(paths[i], "-") == 0)
				lw_rd_load_error(err, sizeof(err), "standard input", r);
			fprintf(stderr, "loopwatch: %s\n", err);
			lw_rd_free_paths(paths, n);
			return EXIT_UNREADABLE;
		}
	}
	lw_rd_free_paths(paths, n);
	return 0;
}

static char *title_of(const struct lw_cli_opts *o, char *buf, size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < o->nargs && len + 1 < size; i++) {
		snprintf(buf + len, size - len, "%s%s", i ? ", " : "", o->args[i]);
		len = strlen(buf);
	}
	return buf;
}

/* -o FILE: a regular file of the caller's or root's, never through a link, never a FIFO or a
 * device, emptied only once that is checked (base/safefile.h) */
static FILE *open_output(const char *path, char *err, size_t errlen)
{
	int fd;
	FILE *f;

	if (!path || strcmp(path, "-") == 0)
		return stdout;
	fd = lw_safe_replace(path, 0644, LW_NO_UID, err, errlen);
	if (fd < 0) {
		char why[1024];

		/* a refusal (a link, a FIFO, someone else's file) says why; otherwise errno */
		lw_strlcpy(why, fd == -ELOOP || fd == -EPERM || fd == -EINVAL ? err : strerror(-fd),
			   sizeof(why));
		snprintf(err, errlen, "cannot write %s: %s", path, why);
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

int lw_cli_report(const struct lw_cli_opts *o)
{
	struct lw_report_data *d = NULL;
	struct lw_export_opts eo = { 0 };
	struct lw_rd_filter flt;
	const char *fmt = o->format ? o->format : "text";
	struct lw_rd_pid *rolled = NULL;
	const struct lw_rd_pid *v;
	size_t nv;
	char title[1024], oerr[4400];
	FILE *out;
	int r, ret = 0;

	if (o->nargs < 1) {
		fputs("loopwatch: report needs at least one FILE\n"
		      "Try 'loopwatch --help'.\n", stderr);
		return EXIT_USAGE;
	}
	r = parse_filter(o, &flt);
	if (r)
		return r;
	if (o->weight && lw_weight_parse(o->weight, &eo.weight))
		return lw_cli_usage_error("invalid --weight '%s': expected wall, blocked or cpu", o->weight);
	if (lw_rd__new(&d)) {
		fprintf(stderr, "loopwatch: out of memory\n");
		return EXIT_UNREADABLE;
	}
	r = load_all(d, o);
	if (r) {
		lw_rd__free(d);
		return r;
	}
	r = lw_rd__finish(d, &flt);
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", strerror(-r));
		lw_rd__free(d);
		return EXIT_UNREADABLE;
	}
	say_skipped(d);
	out = open_output(o->output, oerr, sizeof(oerr));
	if (!out) {
		fprintf(stderr, "loopwatch: %s\n", oerr);
		lw_rd__free(d);
		return EXIT_UNREADABLE;
	}
	eo.title = title_of(o, title, sizeof(title));
	/* tables per target (loopwatchd's files: many processes of one target) or per pid */
	v = d->pids;
	nv = d->npids;
	if (!flt.by_run && (!o->by || strcmp(o->by, "pid"))) {
		size_t i;
		int named = 0;

		for (i = 0; i < d->npids; i++)
			named |= d->pids[i].target_name != NULL;
		if ((named || o->by) && lw_rd_rollup_targets(d, &rolled, &nv) == 0)
			v = rolled;
		else
			nv = d->npids;
	}
	if (strcmp(fmt, "json") == 0) {
		struct json_object *j = json_report(d, &flt, v, nv);

		fprintf(out, "%s\n",
			json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else if (strcmp(fmt, "trace") == 0) {
		r = lw_export_trace(out, d);
	} else if (strcmp(fmt, "folded") == 0) {
		r = lw_export_folded(out, d, eo.weight);
	} else if (strcmp(fmt, "html") == 0) {
		r = lw_export_html(out, d, &eo);
	} else {
		text_report(out, d, v, nv);
	}
	if (fflush(out) || ferror(out) || (r && r != -ENOMEM)) {
		fprintf(stderr, "loopwatch: cannot write %s: %s\n",
			out == stdout ? "the report" : o->output, strerror(errno ? errno : EIO));
		ret = EXIT_UNREADABLE;
	} else if (r) {
		fprintf(stderr, "loopwatch: out of memory\n");
		ret = EXIT_UNREADABLE;
	}
	if (out != stdout && fclose(out) && !ret) {
		fprintf(stderr, "loopwatch: cannot write %s: %s\n", o->output, strerror(errno));
		ret = EXIT_UNREADABLE;
	}
	lw_rd_rollup_free(rolled, rolled ? nv : 0);
	lw_rd__free(d);
	return ret;
}
