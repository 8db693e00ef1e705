// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* prom.c — per-target Prometheus counters: taking start/summary/stuck_task/end records in
 * (monotonic per target, not per pid). The textfile is written by prom_render.c, read back by prom_load.c. */
#include "service/prom_priv.h"
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

struct psite *lw_prom_site_get(struct lw_prom *p, const char *runtime, const char *site,
			      const char *file_line, int other)
{
	uint64_t k = other ? key3(runtime, "\x1eother", "") : key3(runtime, site, file_line);
	struct psite *s = lw_u64map__get(p->sites, k);
	int created;

	if (s)
		return s;
	if (!other && p->nsites >= MAX_SITES)
		return lw_prom_site_get(p, runtime, NULL, NULL, 1);
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

struct psys *lw_prom_sys_get(struct lw_prom *p, const char *runtime, const char *name)
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

struct prt *lw_prom_rt_get(struct lw_prom *p, const char *runtime)
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
	struct prt *rt = lw_prom_rt_get(p, pp->runtime);
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
		s = lw_prom_site_get(p, pp->runtime, q, fl, 0);
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
		sc = lw_prom_sys_get(p, pp->runtime, name);
		if (sc) {
			sc->count += v.count;
			sc->seconds += v.total_ms / 1000.0;
		}
		s = lw_prom_site_get(p, pp->runtime, q, fl, 0);
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
		lw_prom_rt_get(p, pp->runtime)->started++;
	} else if (kind == LW_RK_SUMMARY) {
		pp = find(p, pid);
		if (!pp)
			pp = add(p, pid);
		if (pp)
			take_summary(p, pp, rec);
	} else if (kind == LW_RK_STUCK_TASK ||
		   (kind == LW_RK_SUPPRESSED &&
		    lw_rec_kind_of(lw_j_get_str(rec, "record_type")) == LW_RK_STUCK_TASK)) {
		/* each stuck Task, written or held back by the rate limit (deadlocks never are) */
		int64_t c = kind == LW_RK_SUPPRESSED ? lw_j_get_int(rec, "count", 0) : 1;
		struct prt *rt;

		pp = find(p, pid);
		if (!pp)
			pp = add(p, pid);
		if (!pp || c <= 0)
			return;
		rt = lw_prom_rt_get(p, pp->runtime);
		rt->stuck_tasks += (uint64_t)c;
		if (kind == LW_RK_STUCK_TASK && lw_j_get_bool(rec, "deadlock"))
			rt->deadlocked_tasks++;
	} else if (kind == LW_RK_END) {
		pp = find(p, pid);
		if (pp) {
			lw_prom_rt_get(p, pp->runtime)->exited++;
			forget_pid(p, pid);
			memmove(pp, pp + 1, (size_t)(&p->p[p->n] - (pp + 1)) * sizeof(*pp));
			p->n--;
		}
	}
}
