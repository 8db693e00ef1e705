// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* prom_render.c — the textfile: families, the top-N sites and "other", host-wide counters */
#include "service/prom_priv.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ rendering */

const char *lw_prom_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (!size)
		return buf;
	for (; s && *s && o + 2 < size; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sval_add(struct sval *d, const struct sval *s)
{
	int i;

	d->slow += s->slow;
	d->slow_s += s->slow_s;
	for (i = 0; i < NB; i++)
		d->b[i] += s->b[i];
	d->hsum_s += s->hsum_s;
	d->blocked_s += s->blocked_s;
}

static int rank_cmp(const void *a, const void *b)
{
	const struct psite *x = *(const struct psite *const *)a, *y = *(const struct psite *const *)b;

	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if (x->named != y->named)
		return y->named - x->named;	/* ties keep their series */
	return strcmp(x->site, y->site);
}

static int out_cmp(const void *a, const void *b)
{
	const struct psite *x = *(const struct psite *const *)a, *y = *(const struct psite *const *)b;
	int c = strcmp(x->runtime, y->runtime);

	if (c)
		return c;
	if (x->other != y->other)
		return x->other - y->other;
	c = strcmp(x->site, y->site);
	return c ? c : strcmp(x->file_line, y->file_line);
}

/* the top N sites (per target) keep or get their own series; what the others gained goes
 * to their runtime's "other" */
static struct psite **settle(struct lw_prom *p, size_t *nout)
{
	size_t n = lw_u64map__count(p->sites), i = 0, it = 0, named = 0, m = 0;
	struct psite **v = calloc(n ? n : 1, sizeof(*v)), *s;

	if (!v)
		return NULL;
	while ((s = lw_u64map__next(p->sites, &it, NULL)))
		if (!s->other)
			v[i++] = s;
	qsort(v, i, sizeof(*v), rank_cmp);
	for (m = 0; m < i; m++) {
		s = v[m];
		s->named = named < p->top && (s->rank > 0 || s->named ||
					      s->pend.slow || s->pend.blocked_s > 0);
		named += s->named;
		if (s->named) {
			sval_add(&s->out, &s->pend);
		} else {
			struct psite *o = lw_prom_site_get(p, s->runtime, NULL, NULL, 1);

			if (o)
				sval_add(&o->out, &s->pend);
		}
		memset(&s->pend, 0, sizeof(s->pend));
	}
	/* what is shown: named sites and the "other" series that have something */
	n = lw_u64map__count(p->sites);
	free(v);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return NULL;
	it = 0;
	i = 0;
	while ((s = lw_u64map__next(p->sites, &it, NULL)))
		if (s->named || (s->other && (s->out.slow || s->out.blocked_s > 0)))
			v[i++] = s;
	qsort(v, i, sizeof(*v), out_cmp);
	*nout = i;
	return v;
}

static void site_labels(const struct lw_prom *p, const struct psite *s, char *buf, size_t size)
{
	char t[160], r[48], q[300], fl[640];

	snprintf(buf, size, "target=\"%s\",runtime=\"%s\",site=\"%s\",file_line=\"%s\"",
		 lw_prom_escape(p->target, t, sizeof(t)), lw_prom_escape(s->runtime, r, sizeof(r)),
		 s->other ? "other" : lw_prom_escape(s->site, q, sizeof(q)),
		 s->other ? "" : lw_prom_escape(s->file_line, fl, sizeof(fl)));
}

/* a counter per runtime of the target: the uint64_t at off in struct prt */
static void rt_counter(FILE *f, const struct lw_prom *p, const char *t, const char *name,
		       const char *help, size_t off)
{
	char a[96];
	int k;

	family(f, name, "counter", help);
	for (k = 0; k < p->nrt; k++) {
		uint64_t val;

		memcpy(&val, (const char *)&p->rt[k] + off, sizeof(val));
		fprintf(f, "%s{target=\"%s\",runtime=\"%s\"} %llu\n", name, t,
			lw_prom_escape(p->rt[k].runtime, a, sizeof(a)), (unsigned long long)val);
	}
}

enum site_value { SITE_SLOW_COUNT, SITE_SLOW_SECONDS, SITE_BLOCKED_SECONDS };

/* a counter per site series: callback sites for the slow values, blocking places for the
 * blocked time, and each runtime's "other" series for both */
static void site_series(FILE *f, const struct lw_prom *p, struct psite **v, size_t nv,
			const char *name, const char *help, enum site_value what)
{
	char lab[1200];
	size_t i;

	family(f, name, "counter", help);
	for (i = 0; i < nv; i++) {
		const struct sval *sv = &v[i]->out;

		if (!(what == SITE_BLOCKED_SECONDS ? v[i]->has_blocked : v[i]->has_slow) &&
		    !v[i]->other)
			continue;
		site_labels(p, v[i], lab, sizeof(lab));
		if (what == SITE_SLOW_COUNT)
			fprintf(f, "%s{%s} %llu\n", name, lab, (unsigned long long)sv->slow);
		else
			fprintf(f, "%s{%s} %.6f\n", name, lab,
				what == SITE_SLOW_SECONDS ? sv->slow_s : sv->blocked_s);
	}
}

static void render(struct lw_prom *p, FILE *f, struct psite **v, size_t nv)
{
	char t[160], a[96], b[96], c[96], m[48], lab[1200];
	size_t i;
	int k;

	lw_prom_escape(p->target, t, sizeof(t));
	family(f, "loopwatch_process_info", "gauge",
	       "A process loopwatchd traces for this target now (value 1).");
	for (i = 0; i < p->n; i++) {
		const struct pproc *pp = &p->p[i];

		fprintf(f,
			"loopwatch_process_info{target=\"%s\",pid=\"%d\",comm=\"%s\","
			"runtime=\"%s\",runtime_version=\"%s\",mode=\"%s\"} 1\n",
			t, pp->pid, lw_prom_escape(pp->comm, a, sizeof(a)),
			lw_prom_escape(pp->runtime, b, sizeof(b)),
			lw_prom_escape(pp->version, c, sizeof(c)),
			pp->mode[0] ? lw_prom_escape(pp->mode, m, sizeof(m)) : "default");
	}
	family(f, "loopwatch_target_processes", "gauge", "Processes traced for this target now.");
	fprintf(f, "loopwatch_target_processes{target=\"%s\"} %zu\n", t, p->n);
	rt_counter(f, p, t, "loopwatch_processes_started_total",
		   "Processes of this target loopwatchd started tracing.",
		   offsetof(struct prt, started));
	rt_counter(f, p, t, "loopwatch_processes_exited_total",
		   "Processes of this target that ended (or were detached).",
		   offsetof(struct prt, exited));
	site_series(f, p, v, nv, "loopwatch_slow_callbacks_total",
		    "Callbacks that held the event loop at least the slow threshold, by site.",
		    SITE_SLOW_COUNT);
	site_series(f, p, v, nv, "loopwatch_slow_callback_seconds_total",
		    "Time the event loop spent in slow callbacks, by site.", SITE_SLOW_SECONDS);
	site_series(f, p, v, nv, "loopwatch_blocked_seconds_total",
		    "Time callbacks spent in blocking syscalls (at least the block threshold), by the "
		    "function and line that made the call.", SITE_BLOCKED_SECONDS);
	family(f, "loopwatch_callback_duration_seconds", "histogram",
	       "Callback durations by site (default mode: slow callbacks only; precise mode: all).");
	for (i = 0; i < nv; i++) {
		const struct sval *sv = &v[i]->out;
		uint64_t cum = 0;

		if (!v[i]->has_slow && !v[i]->other)
			continue;
		site_labels(p, v[i], lab, sizeof(lab));
		for (k = 0; k < NBUCKETS; k++) {
			double le = (double)(1ull << (BUCKET_FIRST_LOG2 + k)) / 1e6;

			cum += sv->b[k];
			fprintf(f, "loopwatch_callback_duration_seconds_bucket{%s,le=\"%.6f\"} %llu\n",
				lab, le, (unsigned long long)cum);
		}
		cum += sv->b[NBUCKETS];
		fprintf(f, "loopwatch_callback_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", lab,
			(unsigned long long)cum);
		fprintf(f, "loopwatch_callback_duration_seconds_sum{%s} %.6f\n", lab, sv->hsum_s);
		fprintf(f, "loopwatch_callback_duration_seconds_count{%s} %llu\n", lab,
			(unsigned long long)cum);
	}
	family(f, "loopwatch_blocking_calls_total", "counter",
	       "Syscalls made inside a callback that blocked at least the block threshold.");
	for (k = 0; k < p->nsys; k++)
		fprintf(f, "loopwatch_blocking_calls_total{target=\"%s\",runtime=\"%s\","
			"syscall=\"%s\"} %llu\n", t, lw_prom_escape(p->sys[k].runtime, b, sizeof(b)),
			lw_prom_escape(p->sys[k].name, a, sizeof(a)),
			(unsigned long long)p->sys[k].count);
	family(f, "loopwatch_blocking_seconds_total", "counter",
	       "Time spent in those blocking syscalls.");
	for (k = 0; k < p->nsys; k++)
		fprintf(f, "loopwatch_blocking_seconds_total{target=\"%s\",runtime=\"%s\","
			"syscall=\"%s\"} %.6f\n", t, lw_prom_escape(p->sys[k].runtime, b, sizeof(b)),
			lw_prom_escape(p->sys[k].name, a, sizeof(a)), p->sys[k].seconds);
	rt_counter(f, p, t, "loopwatch_slow_ticks_total",
		   "Loop iterations busy at least the slow threshold.",
		   offsetof(struct prt, slow_ticks));
	rt_counter(f, p, t, "loopwatch_stuck_tasks_total",
		   "asyncio Tasks found pending at one await past stuck_after (stuck_task records; "
		   "each Task once per wait).", offsetof(struct prt, stuck_tasks));
	rt_counter(f, p, t, "loopwatch_deadlocked_tasks_total",
		   "Of those, Tasks on a cycle of Tasks awaiting each other (a deadlock).",
		   offsetof(struct prt, deadlocked_tasks));
	family(f, "loopwatch_loop_utilization", "gauge",
	       "Busy share of the busiest event-loop thread of the target's live processes over "
	       "the last summary interval (0..1).");
	for (k = 0; k < p->nrt; k++) {
		double u = 0;
		int live = 0;

		for (i = 0; i < p->n; i++)
			if (!strcmp(p->p[i].runtime, p->rt[k].runtime)) {
				live = 1;
				if (p->p[i].util > u)
					u = p->p[i].util;
			}
		if (live)
			fprintf(f, "loopwatch_loop_utilization{target=\"%s\",runtime=\"%s\"} %.4f\n",
				t, lw_prom_escape(p->rt[k].runtime, a, sizeof(a)), u);
	}
	family(f, "loopwatch_report_write_errors_total", "counter",
	       "Records or files of this target that could not be written.");
	fprintf(f, "loopwatch_report_write_errors_total{target=\"%s\"} %llu\n", t,
		(unsigned long long)p->write_errors);
}

int lw_prom__render(struct lw_prom *p, char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0, nv = 0;
	struct psite **v = settle(p, &nv);
	FILE *f;

	if (!v)
		return -ENOMEM;
	f = open_memstream(&buf, &size);
	if (!f) {
		free(v);
		return -ENOMEM;
	}
	render(p, f, v, nv);
	free(v);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = size;
	return 0;
}

int lw_prom__write(struct lw_prom *p, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = lw_prom__render(p, &buf, &len);
	if (r) {
		snprintf(err, errlen, "out of memory rendering %s", path);
		return r;
	}
	r = lw_write_file_atomic_gid(path, buf, len, p->gid, err, errlen);
	free(buf);
	return r;
}

int lw_prom_host_render(uint64_t lost_events, uint64_t read_errors, uint64_t suppressed,
			char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	family(f, "loopwatch_lost_events_total", "counter",
	       "Events the BPF side could not deliver (ring buffer full), host-wide, since "
	       "loopwatchd started.");
	fprintf(f, "loopwatch_lost_events_total %llu\n", (unsigned long long)lost_events);
	family(f, "loopwatch_read_errors_total", "counter",
	       "Reads of target memory the BPF side could not make (stacks, names), host-wide, "
	       "since loopwatchd started.");
	fprintf(f, "loopwatch_read_errors_total %llu\n", (unsigned long long)read_errors);
	family(f, "loopwatch_suppressed_records_total", "counter",
	       "Records not written because of the per-site rate limit (still counted in the "
	       "metrics), host-wide, since loopwatchd started.");
	fprintf(f, "loopwatch_suppressed_records_total %llu\n", (unsigned long long)suppressed);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = size;
	return 0;
}

int lw_prom_counts_render(const char *name, const char *help, const char *key,
			  const struct lw_prom_count *v, size_t n, char **out, size_t *len)
{
	char *buf = NULL, esc[256];
	size_t size = 0, i;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	family(f, name, "counter", help);
	for (i = 0; i < n; i++)
		fprintf(f, "%s{%s=\"%s\"} %llu\n", name, key,
			lw_prom_escape(v[i].label, esc, sizeof(esc)), (unsigned long long)v[i].value);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = size;
	return 0;
}
