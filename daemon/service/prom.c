// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "service/prom.h"
#include "record/rectype.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bucket upper bounds: 2^10 .. 2^25 microseconds; the last slot: above them all */
#define BUCKET_FIRST_LOG2 10
#define NBUCKETS 16
#define NB (NBUCKETS + 1)
#define MAX_SITES 4096		/* per target; beyond: straight into "other" */
#define MAX_RUNTIMES 8
#define MAX_SYSCALLS 64

/* what a site (or "other") counts */
struct sval {
	uint64_t slow;
	double slow_s;
	uint64_t b[NB];		/* not cumulative */
	double hsum_s;
	double blocked_s;
};

struct psite {
	char runtime[16];
	char site[128];
	char file_line[300];
	int other;		/* the "other" series of its runtime */
	int named;		/* has a series of its own now */
	int has_slow;		/* a callback site (file_line: where it is defined) */
	int has_blocked;	/* a place where callbacks blocked (file_line: the call) */
	double rank;		/* slow + blocked seconds since loopwatchd started (or restored) */
	struct sval pend;	/* gained since the last render */
	struct sval out;	/* its own series' values */
};

struct psys {
	char runtime[16];
	char name[32];
	uint64_t count;
	double seconds;
};

struct prt {			/* per runtime */
	char runtime[16];
	uint64_t slow_ticks, started, exited;
};

struct pproc {
	int pid;
	char comm[32];
	char runtime[16];
	char version[32];
	char mode[16];
	double threshold_ms;
	uint64_t slow_ticks;	/* the session's cumulative count, last seen */
	double util;		/* busiest loop thread, last interval */
};

/* what the periodic summaries of one pid gave for one row so far (for its final summary) */
struct acc {
	int pid;
	uint64_t count;		/* slow callbacks (blocking calls) */
	double total_ms;	/* their time */
	double all_ms;		/* the time of all in the histogram (precise mode: every callback) */
	uint64_t b[NB];
};

struct lw_prom {
	char target[64];
	unsigned top;
	struct lw_u64map *sites;	/* hash(runtime, site, file_line) -> psite */
	size_t nsites;
	struct lw_u64map *accs;		/* hash(pid, kind, row) -> acc */
	struct pproc *p;
	size_t n, cap;
	struct psys sys[MAX_SYSCALLS];
	int nsys;
	struct prt rt[MAX_RUNTIMES];
	int nrt;
	uint64_t write_errors;
	gid_t gid;
};

void lw_prom__set_group(struct lw_prom *p, gid_t gid)
{
	p->gid = gid;
}

int lw_prom__new(const char *target, struct lw_prom **out)
{
	struct lw_prom *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	lw_strlcpy(p->target, target, sizeof(p->target));
	p->top = LW_PROM_TOP_SITES;
	if (lw_u64map__new(sizeof(struct psite), &p->sites) ||
	    lw_u64map__new(sizeof(struct acc), &p->accs)) {
		lw_prom__free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void lw_prom__free(struct lw_prom *p)
{
	if (!p)
		return;
	lw_u64map__free(p->sites, NULL);
	lw_u64map__free(p->accs, NULL);
	free(p->p);
	free(p);
}

void lw_prom__set_top_sites(struct lw_prom *p, unsigned n)
{
	p->top = n ? n : 1;
}

size_t lw_prom__nprocs(const struct lw_prom *p)
{
	return p->n;
}

void lw_prom__set_write_errors(struct lw_prom *p, uint64_t n)
{
	p->write_errors = n;
}

/* ------------------------------------------------------------------ lookups */

static uint64_t key3(const char *a, const char *b, const char *c)
{
	char buf[600];

	snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%s", a, b, c);
	return lw_hash_str(buf);
}

static struct psite *site_get(struct lw_prom *p, const char *runtime, const char *site,
			      const char *file_line, int other)
{
	uint64_t k = other ? key3(runtime, "\x1eother", "") : key3(runtime, site, file_line);
	struct psite *s = lw_u64map__get(p->sites, k);
	int created;

	if (s)
		return s;
	if (!other && p->nsites >= MAX_SITES)
		return site_get(p, runtime, NULL, NULL, 1);
	s = lw_u64map__put(p->sites, k, &created);
	if (!s)
		return NULL;
	lw_strlcpy(s->runtime, runtime, sizeof(s->runtime));
	s->other = other;
	if (!other) {
		lw_strlcpy(s->site, site, sizeof(s->site));
		lw_strlcpy(s->file_line, file_line, sizeof(s->file_line));
		p->nsites++;
	}
	return s;
}

static struct psys *sys_get(struct lw_prom *p, const char *runtime, const char *name)
{
	int i;

	for (i = 0; i < p->nsys; i++)
		if (!strcmp(p->sys[i].runtime, runtime) && !strcmp(p->sys[i].name, name))
			return &p->sys[i];
	if (p->nsys == MAX_SYSCALLS)
		return NULL;
	memset(&p->sys[i], 0, sizeof(p->sys[i]));
	lw_strlcpy(p->sys[i].runtime, runtime, sizeof(p->sys[i].runtime));
	lw_strlcpy(p->sys[i].name, name, sizeof(p->sys[i].name));
	return &p->sys[p->nsys++];
}

static struct prt *rt_get(struct lw_prom *p, const char *runtime)
{
	int i;

	for (i = 0; i < p->nrt; i++)
		if (!strcmp(p->rt[i].runtime, runtime))
			return &p->rt[i];
	if (p->nrt == MAX_RUNTIMES)
		return &p->rt[MAX_RUNTIMES - 1];
	memset(&p->rt[i], 0, sizeof(p->rt[i]));
	lw_strlcpy(p->rt[i].runtime, runtime, sizeof(p->rt[i].runtime));
	return &p->rt[p->nrt++];
}

static struct pproc *find(struct lw_prom *p, int pid)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->p[i].pid == pid)
			return &p->p[i];
	return NULL;
}

static struct pproc *add(struct lw_prom *p, int pid)
{
	struct pproc *pp;

	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		struct pproc *np = realloc(p->p, nc * sizeof(*np));

		if (!np)
			return NULL;
		p->p = np;
		p->cap = nc;
	}
	pp = &p->p[p->n++];
	memset(pp, 0, sizeof(*pp));
	pp->pid = pid;
	lw_strlcpy(pp->runtime, "unknown", sizeof(pp->runtime));
	pp->threshold_ms = 100;
	return pp;
}

static void forget_pid(struct lw_prom *p, int pid)
{
	uint64_t keys[256], k;
	size_t it, nk;
	struct acc *a;

	do {
		it = 0;
		nk = 0;
		while (nk < LW_ARRAY_SIZE(keys) && (a = lw_u64map__next(p->accs, &it, &k)))
			if (a->pid == pid)
				keys[nk++] = k;
		for (it = 0; it < nk; it++)
			lw_u64map__del(p->accs, keys[it], NULL);
	} while (nk == LW_ARRAY_SIZE(keys));
}

static void copy_str(char *dst, size_t size, struct json_object *rec, const char *key)
{
	const char *s = lw_j_get_str(rec, key);

	if (s)
		lw_strlcpy(dst, s, size);
}

/* ------------------------------------------------------------------ summaries */

/* the bucket of a histogram slot starting at low_ns (slots never straddle a power of two) */
static int bucket_of(uint64_t low_ns)
{
	int b;

	for (b = 0; b < NBUCKETS; b++)
		if (low_ns < (1000ull << (BUCKET_FIRST_LOG2 + b)))
			return b;
	return NBUCKETS;
}

static int is_number(struct json_object *o)
{
	return o &&
	       (json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double));
}

/* a row of "sites" or "blocking_sites": its count, total and buckets; slow_from_ms >= 0:
 * only the slots from there up (precise mode's slow callbacks) */
static void row_values(struct json_object *row, double slow_from_ms, struct acc *v)
{
	struct json_object *hist = lw_j_get(row, "hist");
	size_t j, m;

	memset(v, 0, sizeof(*v));
	v->all_ms = lw_j_get_num(row, "total_ms", 0);
	if (!(v->all_ms >= 0) || v->all_ms > 1e15)
		v->all_ms = 0;
	if (slow_from_ms < 0) {
		int64_t c = lw_j_get_int(row, "count", 0);

		v->count = c > 0 ? (uint64_t)c : 0;
		v->total_ms = v->all_ms;
	}
	if (!hist || !json_object_is_type(hist, json_type_array))
		return;
	m = json_object_array_length(hist);
	for (j = 0; j < m; j++) {
		struct json_object *pair = json_object_array_get_idx(hist, j), *lo, *cnt;
		double low_ms;
		int64_t c;

		if (!pair || !json_object_is_type(pair, json_type_array) ||
		    json_object_array_length(pair) < 2)
			continue;
		lo = json_object_array_get_idx(pair, 0);
		cnt = json_object_array_get_idx(pair, 1);
		if (!is_number(lo) || !is_number(cnt))
			continue;
		low_ms = json_object_get_double(lo);
		c = json_object_get_int64(cnt);
		if (c <= 0 || !(low_ms >= 0) || low_ms > 1e12)
			continue;
		v->b[bucket_of((uint64_t)llround(low_ms * 1e6))] += (uint64_t)c;
		if (slow_from_ms >= 0 && low_ms >= slow_from_ms) {
			v->count += (uint64_t)c;
			v->total_ms += low_ms * (double)c;
		}
	}
}

/* what this summary adds for a row: the row itself (periodic: an interval), or the whole run
 * minus what the periodic ones gave (final) */
static void row_delta(struct lw_prom *p, int pid, const char *kind, const char *id, int final,
		      struct acc *v)
{
	char pk[32];
	int created, i;
	struct acc *a;

	snprintf(pk, sizeof(pk), "%d", pid);
	a = lw_u64map__put(p->accs, key3(pk, kind, id), &created);
	if (!a)
		return;		/* out of memory: the row counts as it is */
	a->pid = pid;
	if (!final) {
		a->count += v->count;
		a->total_ms += v->total_ms;
		a->all_ms += v->all_ms;
		for (i = 0; i < NB; i++)
			a->b[i] += v->b[i];
		return;
	}
	{
		struct acc d = *v;

		d.count = v->count > a->count ? v->count - a->count : 0;
		d.total_ms = v->total_ms > a->total_ms ? v->total_ms - a->total_ms : 0;
		d.all_ms = v->all_ms > a->all_ms ? v->all_ms - a->all_ms : 0;
		for (i = 0; i < NB; i++)
			d.b[i] = v->b[i] > a->b[i] ? v->b[i] - a->b[i] : 0;
		*a = *v;
		a->pid = pid;
		*v = d;
	}
}

static void site_label(struct json_object *row, char *q, size_t qn, char *fl, size_t fln)
{
	const char *qual = lw_j_get_str(row, "qualname"), *file = lw_j_get_str(row, "file");
	int64_t line = lw_j_get_int(row, "line", 0);

	lw_strlcpy(q, qual && *qual ? qual : "<unknown>", qn);
	if (file && *file)
		snprintf(fl, fln, "%s:%lld", file, (long long)line);
	else
		lw_strlcpy(fl, "?", fln);
}

static size_t array_len(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static void take_summary(struct lw_prom *p, struct pproc *pp, struct json_object *rec)
{
	int final = lw_j_get_bool(rec, "final");
	const char *scope = lw_j_get_str(rec, "sites_scope");
	struct json_object *sites = lw_j_get(rec, "sites"), *bs = lw_j_get(rec, "blocking_sites");
	struct json_object *loops = lw_j_get(rec, "loops");
	double slow_from = scope && !strcmp(scope, "all") ? pp->threshold_ms : -1;
	struct prt *rt = rt_get(p, pp->runtime);
	int64_t ticks;
	size_t k, n;
	int i;

	copy_str(pp->comm, sizeof(pp->comm), rec, "comm");
	copy_str(pp->mode, sizeof(pp->mode), rec, "mode");
	/* the session's whole-run counter: what it gained since the last summary */
	ticks = lw_j_get_int(rec, "slow_ticks", -1);
	if (ticks >= 0 && (uint64_t)ticks >= pp->slow_ticks) {
		rt->slow_ticks += (uint64_t)ticks - pp->slow_ticks;
		pp->slow_ticks = (uint64_t)ticks;
	}
	/* callback sites */
	n = array_len(sites);
	for (k = 0; k < n; k++) {
		struct json_object *row = json_object_array_get_idx(sites, k);
		char q[128], fl[300], id[440];
		struct psite *s;
		struct acc v;

		if (!row || !json_object_is_type(row, json_type_object))
			continue;
		site_label(row, q, sizeof(q), fl, sizeof(fl));
		row_values(row, slow_from, &v);
		snprintf(id, sizeof(id), "%s\x1f%s", q, fl);
		row_delta(p, pp->pid, "s", id, final, &v);
		if (!v.count && !v.all_ms)
			continue;
		s = site_get(p, pp->runtime, q, fl, 0);
		if (!s)
			continue;
		s->has_slow = 1;
		s->pend.slow += v.count;
		s->pend.slow_s += v.total_ms / 1000.0;
		for (i = 0; i < NB; i++)
			s->pend.b[i] += v.b[i];
		s->pend.hsum_s += v.all_ms / 1000.0;
		s->rank += v.total_ms / 1000.0;
	}
	/* blocking calls: by syscall, and the blocked time of the callback site */
	n = array_len(bs);
	for (k = 0; k < n; k++) {
		struct json_object *row = json_object_array_get_idx(bs, k);
		const char *name = lw_j_get_str(row, "syscall"), *tgt = lw_j_get_str(row, "target");
		char q[128], fl[300], id[520];
		struct psite *s;
		struct psys *sc;
		struct acc v;

		if (!row || !json_object_is_type(row, json_type_object) || !name || !*name)
			continue;
		site_label(row, q, sizeof(q), fl, sizeof(fl));
		row_values(row, -1, &v);
		snprintf(id, sizeof(id), "%s\x1f%s\x1f%s\x1f%s", q, fl, name, tgt ? tgt : "");
		row_delta(p, pp->pid, "b", id, final, &v);
		if (!v.count)
			continue;
		sc = sys_get(p, pp->runtime, name);
		if (sc) {
			sc->count += v.count;
			sc->seconds += v.total_ms / 1000.0;
		}
		s = site_get(p, pp->runtime, q, fl, 0);
		if (s) {
			s->has_blocked = 1;
			s->pend.blocked_s += v.total_ms / 1000.0;
			s->rank += v.total_ms / 1000.0;
		}
	}
	/* the busiest loop thread of the interval */
	n = array_len(loops);
	pp->util = 0;
	for (k = 0; k < n; k++) {
		double u = lw_j_get_num(json_object_array_get_idx(loops, k), "utilization", -1);

		if (u > pp->util)
			pp->util = u > 1 ? 1 : u;
	}
}

void lw_prom__update(struct lw_prom *p, struct json_object *rec)
{
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind kind = lw_rec_kind_of(type);
	int pid = (int)lw_j_get_int(rec, "pid", 0);
	struct pproc *pp;

	if (!type || pid <= 0)
		return;
	if (kind == LW_RK_START) {
		pp = find(p, pid);
		if (pp) {
			/* a start without an end before it: a new run of that pid */
			forget_pid(p, pid);
			pp->slow_ticks = 0;
		} else {
			pp = add(p, pid);
		}
		if (!pp)
			return;
		copy_str(pp->comm, sizeof(pp->comm), rec, "comm");
		copy_str(pp->runtime, sizeof(pp->runtime), rec, "runtime");
		copy_str(pp->version, sizeof(pp->version), rec, "runtime_version");
		copy_str(pp->mode, sizeof(pp->mode), rec, "mode");
		pp->threshold_ms = lw_j_get_num(rec, "threshold_ms", pp->threshold_ms);
		rt_get(p, pp->runtime)->started++;
	} else if (kind == LW_RK_SUMMARY) {
		pp = find(p, pid);
		if (!pp)
			pp = add(p, pid);
		if (pp)
			take_summary(p, pp, rec);
	} else if (kind == LW_RK_END) {
		pp = find(p, pid);
		if (pp) {
			rt_get(p, pp->runtime)->exited++;
			forget_pid(p, pid);
			memmove(pp, pp + 1, (size_t)(&p->p[p->n] - (pp + 1)) * sizeof(*pp));
			p->n--;
		}
	}
}

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
			struct psite *o = site_get(p, s->runtime, NULL, NULL, 1);

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
	family(f, "loopwatch_processes_started_total", "counter",
		"Processes of this target loopwatchd started tracing.");
	for (k = 0; k < p->nrt; k++)
		fprintf(f, "loopwatch_processes_started_total{target=\"%s\",runtime=\"%s\"} %llu\n",
			t, lw_prom_escape(p->rt[k].runtime, a, sizeof(a)),
			(unsigned long long)p->rt[k].started);
	family(f, "loopwatch_processes_exited_total", "counter",
		"Processes of this target that ended (or were detached).");
	for (k = 0; k < p->nrt; k++)
		fprintf(f, "loopwatch_processes_exited_total{target=\"%s\",runtime=\"%s\"} %llu\n",
			t, lw_prom_escape(p->rt[k].runtime, a, sizeof(a)),
			(unsigned long long)p->rt[k].exited);
	family(f, "loopwatch_slow_callbacks_total", "counter",
	       "Callbacks that held the event loop at least the slow threshold, by site.");
	for (i = 0; i < nv; i++) {
		if (!v[i]->has_slow && !v[i]->other)
			continue;
		site_labels(p, v[i], lab, sizeof(lab));
		fprintf(f, "loopwatch_slow_callbacks_total{%s} %llu\n", lab,
			(unsigned long long)v[i]->out.slow);
	}
	family(f, "loopwatch_slow_callback_seconds_total", "counter",
	       "Time the event loop spent in slow callbacks, by site.");
	for (i = 0; i < nv; i++) {
		if (!v[i]->has_slow && !v[i]->other)
			continue;
		site_labels(p, v[i], lab, sizeof(lab));
		fprintf(f, "loopwatch_slow_callback_seconds_total{%s} %.6f\n", lab,
			v[i]->out.slow_s);
	}
	family(f, "loopwatch_blocked_seconds_total", "counter",
	       "Time callbacks spent in blocking syscalls (at least the block threshold), by the "
	       "function and line that made the call.");
	for (i = 0; i < nv; i++) {
		if (!v[i]->has_blocked && !v[i]->other)
			continue;
		site_labels(p, v[i], lab, sizeof(lab));
		fprintf(f, "loopwatch_blocked_seconds_total{%s} %.6f\n", lab, v[i]->out.blocked_s);
	}
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
	family(f, "loopwatch_slow_ticks_total", "counter",
	       "Loop iterations busy at least the slow threshold.");
	for (k = 0; k < p->nrt; k++)
		fprintf(f, "loopwatch_slow_ticks_total{target=\"%s\",runtime=\"%s\"} %llu\n", t,
			lw_prom_escape(p->rt[k].runtime, a, sizeof(a)),
			(unsigned long long)p->rt[k].slow_ticks);
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

/* ------------------------------------------------------------------ reading a file back */

/* one sample line: name, up to 8 labels, value. 0 or -1 */
struct sample {
	char name[96];
	int nl;
	char key[8][24];
	char val[8][640];
	double value;
};

static int parse_line(const char *s, struct sample *o)
{
	size_t n = 0;
	char *end;

	memset(o, 0, sizeof(*o));
	while (*s && *s != '{' && *s != ' ' && n + 1 < sizeof(o->name))
		o->name[n++] = *s++;
	if (*s == '{') {
		s++;
		while (*s && *s != '}') {
			size_t kn = 0, vn = 0;

			if (o->nl == 8)
				return -1;
			while (*s && *s != '=' && kn + 1 < sizeof(o->key[0]))
				o->key[o->nl][kn++] = *s++;
			if (s[0] != '=' || s[1] != '"')
				return -1;
			s += 2;
			while (*s && *s != '"') {
				char ch = *s++;

				if (ch == '\\' && *s) {
					ch = *s++;
					if (ch == 'n')
						ch = '\n';
				}
				if (vn + 1 < sizeof(o->val[0]))
					o->val[o->nl][vn++] = ch;
			}
			if (*s != '"')
				return -1;
			s++;
			o->nl++;
			if (*s == ',')
				s++;
		}
		if (*s != '}')
			return -1;
		s++;
	}
	if (*s != ' ')
		return -1;
	o->value = strtod(s + 1, &end);
	if (end == s + 1 || !(o->value >= 0) || o->value > 1e18)
		return -1;
	return 0;
}

static const char *label(const struct sample *o, const char *key)
{
	int i;

	for (i = 0; i < o->nl; i++)
		if (!strcmp(o->key[i], key))
			return o->val[i];
	return NULL;
}

static int take_back(struct lw_prom *p, const struct sample *o)
{
	const char *rt = label(o, "runtime"), *site = label(o, "site"), *fl = label(o, "file_line");
	const char *tgt = label(o, "target"), *sys = label(o, "syscall"), *le = label(o, "le");
	const char *nm = o->name + strlen("loopwatch_");
	uint64_t u = (uint64_t)llround(o->value);
	struct psite *s = NULL;
	struct psys *sc;

	if (strncmp(o->name, "loopwatch_", 10) || !tgt || strcmp(tgt, p->target) || !rt)
		return 0;
	if (site && fl) {
		int other = !strcmp(site, "other") && !*fl;

		s = site_get(p, rt, site, fl, other);
		if (!s)
			return 0;
		s->named = !other;
	}
	if (s && (!strcmp(nm, "slow_callbacks_total") ||
		  !strncmp(nm, "callback_duration_seconds", 25) ||
		  !strcmp(nm, "slow_callback_seconds_total")))
		s->has_slow = 1;
	if (s && !strcmp(nm, "blocked_seconds_total"))
		s->has_blocked = 1;
	if (s && !strcmp(nm, "slow_callbacks_total")) {
		s->out.slow = u;
	} else if (s && !strcmp(nm, "slow_callback_seconds_total")) {
		s->out.slow_s = o->value;
		s->rank += o->value;
	} else if (s && !strcmp(nm, "blocked_seconds_total")) {
		s->out.blocked_s = o->value;
		s->rank += o->value;
	} else if (s && !strcmp(nm, "callback_duration_seconds_sum")) {
		s->out.hsum_s = o->value;
	} else if (s && le && !strcmp(nm, "callback_duration_seconds_bucket")) {
		int k;

		/* cumulative in the file: keep them so, undone below */
		if (!strcmp(le, "+Inf")) {
			s->out.b[NBUCKETS] = u;
		} else {
			double v = strtod(le, NULL);

			for (k = 0; k < NBUCKETS; k++)
				if (fabs(v - (double)(1ull << (BUCKET_FIRST_LOG2 + k)) / 1e6) < 1e-7)
					s->out.b[k] = u;
		}
	} else if (sys && !strcmp(nm, "blocking_calls_total")) {
		if ((sc = sys_get(p, rt, sys)))
			sc->count = u;
	} else if (sys && !strcmp(nm, "blocking_seconds_total")) {
		if ((sc = sys_get(p, rt, sys)))
			sc->seconds = o->value;
	} else if (!strcmp(nm, "slow_ticks_total")) {
		rt_get(p, rt)->slow_ticks = u;
	} else if (!strcmp(nm, "processes_started_total")) {
		rt_get(p, rt)->started = u;
	} else if (!strcmp(nm, "processes_exited_total")) {
		rt_get(p, rt)->exited = u;
	} else {
		return 0;
	}
	return 1;
}

int lw_prom__load(struct lw_prom *p, const char *path)
{
	struct sample *o = malloc(sizeof(*o));
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, it = 0;
	struct psite *s;
	int e, n = 0, k;

	if (!o)
		return -ENOMEM;
	e = lw_read_file(path, 64u << 20, &text, &len);
	if (e) {
		free(o);
		return e == -ENOENT ? 0 : e;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#' && !parse_line(line, o))
			n += take_back(p, o);
	/* buckets back to per-bucket counts (+Inf: the count) */
	while ((s = lw_u64map__next(p->sites, &it, NULL))) {
		for (k = NBUCKETS; k > 0; k--)
			s->out.b[k] = s->out.b[k] >= s->out.b[k - 1] ? s->out.b[k] - s->out.b[k - 1]
								    : 0;
	}
	free(text);
	free(o);
	return n;
}
