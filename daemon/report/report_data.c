// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* `loopwatch report`: records read back, split into runs, filtered, aggregated (report_data.h) */
#include "report/report_data.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "record/noise.h"
#include "base/u64map.h"

#define RD_MAX_FRAMES 256
#define RD_MAX_LINE (64u << 20)		/* a longer line is not a record of ours */
#define RD_MAX_MS 1e10			/* durations past ~115 days are nonsense */
#define RD_NEST_SLACK_NS 500000ull	/* a blocking call may end this much after its callback */
#define RD_START_SLACK_NS 2000000000ull	/* records may precede their run's `start` this much */

/* ---- interned strings */

struct rd_pool {
	char **slot;
	size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
	return lw_hash_str(s);
}

static int pool_grow(struct rd_pool *p)
{
	size_t ncap = p->cap ? p->cap * 2 : 1024, i;
	char **ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < p->cap; i++) {
		size_t j;

		if (!p->slot[i])
			continue;
		j = str_hash(p->slot[i]) & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = p->slot[i];
	}
	free(p->slot);
	p->slot = ns;
	p->cap = ncap;
	return 0;
}

/* the pooled copy of s; NULL for NULL (and, with *oom set, on allocation failure) */
static const char *pool_get(struct rd_pool *p, const char *s, int *oom)
{
	size_t j;

	if (!s)
		return NULL;
	if ((p->n + 1) * 2 > p->cap && pool_grow(p)) {
		*oom = 1;
		return NULL;
	}
	j = str_hash(s) & (p->cap - 1);
	while (p->slot[j]) {
		if (strcmp(p->slot[j], s) == 0)
			return p->slot[j];
		j = (j + 1) & (p->cap - 1);
	}
	p->slot[j] = strdup(s);
	if (!p->slot[j]) {
		*oom = 1;
		return NULL;
	}
	p->n++;
	return p->slot[j];
}

static void pool_free(struct rd_pool *p)
{
	size_t i;

	for (i = 0; i < p->cap; i++)
		free(p->slot[i]);
	free(p->slot);
	memset(p, 0, sizeof(*p));
}

/* ---- what the loader keeps until lw_rd__finish() */

struct rd_start {
	const char *comm, *runtime, *runtime_version, *mode, *target_name;
};

struct rd_end {
	uint64_t lost_events, suppressed;
};

struct rd_summary {
	int final;
	uint64_t span_ns;		/* interval_s */
	enum lw_rd_scope scope;
	const char *comm, *mode, *target_name;
	struct lw_rd_site *sites;
	size_t nsites;
	struct lw_rd_site *bsites;
	size_t nbsites;
	struct lw_rd_loop *loops;
	size_t nloops;
	uint64_t slow_callbacks, blocking_calls, lost_events;
	int used;
};

struct rd_supp {
	int blocking;
	const char *qualname, *file;
	int64_t line;
	uint64_t count;
	double total_ms, max_ms;
};

enum rd_kind { RD_K_START, RD_K_END, RD_K_EVENT, RD_K_SUMMARY, RD_K_SUPP };

struct rd_item {
	uint64_t ts;
	size_t seq;
	pid_t pid;
	enum rd_kind kind;
	size_t idx;
	size_t run;
};

struct rd_run {
	pid_t pid;
	uint64_t first_ts;
	long start, end, final;		/* indexes into starts, ends, sums; -1: none */
	int closed;
	int use_final;
};

struct lw_rd_priv {
	struct rd_pool pool;
	struct rd_item *items;
	size_t nitems, capitems;
	struct lw_rd_event *evs;
	size_t nevs, capevs;
	struct rd_start *starts;
	size_t nstarts, capstarts;
	struct rd_end *ends;
	size_t nends, capends;
	struct rd_summary *sums;
	size_t nsums, capsums;
	struct rd_supp *supps;
	size_t nsupps, capsupps;
	size_t capfiles;
	struct rd_run *runs;
	size_t nruns;
	int oom;
	int finished;
};

static int grow(void **p, size_t *cap, size_t need, size_t elsz)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elsz);
	if (!np)
		return -ENOMEM;
	memset((char *)np + *cap * elsz, 0, (ncap - *cap) * elsz);
	*p = np;
	*cap = ncap;
	return 0;
}

#define GROW(d, arr, n, cap) grow((void **)&(d)->arr, &(d)->cap, (d)->n + 1, sizeof(*(d)->arr))

int lw_rd__new(struct lw_report_data **out)
{
	struct lw_report_data *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->priv = calloc(1, sizeof(*d->priv));
	if (!d->priv) {
		free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static void free_sites(struct lw_rd_site *s)
{
	free(s);
}

void lw_rd__free(struct lw_report_data *d)
{
	struct lw_rd_priv *p;
	size_t i;

	if (!d)
		return;
	p = d->priv;
	for (i = 0; p && i < p->nevs; i++) {
		free(p->evs[i].blocked);
		free(p->evs[i].stack);
		free(p->evs[i].native);
	}
	for (i = 0; p && i < p->nsums; i++) {
		free_sites(p->sums[i].sites);
		free_sites(p->sums[i].bsites);
		free(p->sums[i].loops);
	}
	for (i = 0; i < d->npids; i++) {
		free(d->pids[i].sites);
		free(d->pids[i].bsites);
		free(d->pids[i].loops);
	}
	free(d->pids);
	free(d->ev);
	free(d->files);
	if (p) {
		free(p->items);
		free(p->evs);
		free(p->starts);
		free(p->ends);
		free(p->sums);
		free(p->supps);
		free(p->runs);
		pool_free(&p->pool);
		free(p);
	}
	free(d);
}

/* ---- reading JSON values defensively */

static const char *jstr(struct lw_report_data *d, struct json_object *o, const char *key)
{
	return pool_get(&d->priv->pool, lw_j_get_str(o, key), &d->priv->oom);
}

/* a finite number, or dflt */
static double jnum(struct json_object *o, const char *key, double dflt)
{
	double v = lw_j_get_num(o, key, dflt);

	return isfinite(v) ? v : dflt;
}

/* a finite, non-negative number of milliseconds, clamped */
static double jms(struct json_object *o, const char *key)
{
	double v = jnum(o, key, 0);

	if (v < 0)
		return 0;
	return v > RD_MAX_MS ? RD_MAX_MS : v;
}

static uint64_t jcount(struct json_object *o, const char *key)
{
	double v = jnum(o, key, 0);

	if (v < 0)
		return 0;
	if (v > 1e15)
		return 1000000000000000ull;
	return (uint64_t)v;
}

static int64_t jline(struct json_object *o, const char *key)
{
	double v = jnum(o, key, -1);

	if (v < 0 || v > INT_MAX)
		return -1;
	return (int64_t)v;
}

static size_t alen(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static struct json_object *aget(struct json_object *a, size_t i)
{
	return i < alen(a) ? json_object_array_get_idx(a, i) : NULL;
}

static uint64_t ms_to_ns(double ms)
{
	if (!(ms > 0))
		return 0;
	if (ms > RD_MAX_MS)
		ms = RD_MAX_MS;
	return (uint64_t)llround(ms * 1e6);
}

static int parse_frames(struct lw_report_data *d, struct json_object *a, struct lw_rd_frame **out,
			size_t *n)
{
	size_t i, len = alen(a), k = 0;
	struct lw_rd_frame *f;

	*out = NULL;
	*n = 0;
	if (!len)
		return 0;
	if (len > RD_MAX_FRAMES)
		len = RD_MAX_FRAMES;
	f = calloc(len, sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		struct json_object *fr = aget(a, i);

		if (!fr || !json_object_is_type(fr, json_type_object))
			continue;
		f[k].function = jstr(d, fr, "function");
		f[k].file = jstr(d, fr, "file");
		f[k].line = jline(fr, "line");
		if (!f[k].function && !f[k].file)
			continue;
		k++;
	}
	if (!k) {
		free(f);
		return 0;
	}
	*out = f;
	*n = k;
	return 0;
}

static int parse_native(struct lw_report_data *d, struct json_object *a, struct lw_rd_native **out,
			size_t *n)
{
	size_t i, len = alen(a), k = 0;
	struct lw_rd_native *f;

	*out = NULL;
	*n = 0;
	if (!len)
		return 0;
	if (len > RD_MAX_FRAMES)
		len = RD_MAX_FRAMES;
	f = calloc(len, sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		struct json_object *fr = aget(a, i);

		if (!fr || !json_object_is_type(fr, json_type_object))
			continue;
		f[k].symbol = jstr(d, fr, "symbol");
		f[k].module = jstr(d, fr, "module");
		f[k].offset = jcount(fr, "offset");
		if (!f[k].symbol && !f[k].module)
			continue;
		k++;
	}
	if (!k) {
		free(f);
		return 0;
	}
	*out = f;
	*n = k;
	return 0;
}

static void parse_callback(struct lw_report_data *d, struct json_object *cb,
			   struct lw_rd_callback *c)
{
	c->kind = jstr(d, cb, "kind");
	c->task_name = jstr(d, cb, "task_name");
	c->qualname = jstr(d, cb, "qualname");
	c->file = jstr(d, cb, "file");
	c->line = jline(cb, "line");
}

static pid_t jpid(struct json_object *o, const char *key)
{
	double v = jnum(o, key, 0);

	return v >= 1 && v <= INT_MAX ? (pid_t)v : 0;
}

static int add_item(struct lw_report_data *d, enum rd_kind kind, uint64_t ts, pid_t pid, size_t idx)
{
	struct lw_rd_priv *p = d->priv;
	struct rd_item *it;

	if (GROW(p, items, nitems, capitems))
		return -ENOMEM;
	it = &p->items[p->nitems];
	it->ts = ts;
	it->seq = p->nitems;
	it->pid = pid;
	it->kind = kind;
	it->idx = idx;
	p->nitems++;
	return 0;
}

/* 1: skipped (malformed), 0: kept, -ENOMEM */
static int load_event(struct lw_report_data *d, struct json_object *r, enum lw_rd_type type,
		      uint64_t ts, pid_t pid)
{
	struct lw_rd_priv *p = d->priv;
	struct json_object *dur = lw_j_get(r, "duration_ms"), *cb, *bl;
	struct lw_rd_event *e;
	uint64_t dns;
	size_t i, n;
	int err;

	if (!dur || !(json_object_is_type(dur, json_type_double) ||
		      json_object_is_type(dur, json_type_int)))
		return 1;
	if (!isfinite(json_object_get_double(dur)) || json_object_get_double(dur) < 0)
		return 1;
	if (GROW(p, evs, nevs, capevs))
		return -ENOMEM;
	e = &p->evs[p->nevs];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->pid = pid;
	e->tid = jpid(r, "tid");
	e->end_ns = ts;
	e->duration_ms = jms(r, "duration_ms");
	dns = ms_to_ns(e->duration_ms);
	e->start_ns = ts > dns ? ts - dns : 0;
	e->comm = jstr(d, r, "comm");
	e->fd = -1;
	cb = lw_j_get(r, "callback");
	if (cb && json_object_is_type(cb, json_type_object)) {
		e->has_callback = 1;
		parse_callback(d, cb, &e->cb);
	} else {
		e->cb.line = -1;
	}
	err = parse_frames(d, lw_j_get(r, "stack"), &e->stack, &e->nstack);
	if (!err)
		err = parse_native(d, lw_j_get(r, "native_stack"), &e->native, &e->nnative);
	if (err)
		goto fail;
	if (type == LW_RD_SLOW_CALLBACK) {
		e->cpu_ms = jms(r, "cpu_ms");
		e->offcpu_ms = jms(r, "offcpu_ms");
		e->runq_ms = jms(r, "runq_ms");
		e->gil_ms = jms(r, "gil_ms");
		e->gc_ms = jms(r, "gc_ms");
		e->stack_kind = jstr(d, r, "stack_kind");
		e->mode = jstr(d, r, "mode");
		bl = lw_j_get(r, "blocked");
		n = alen(bl);
		if (n > RD_MAX_FRAMES)
			n = RD_MAX_FRAMES;
		if (n) {
			e->blocked = calloc(n, sizeof(*e->blocked));
			if (!e->blocked)
				goto fail;
		}
		for (i = 0; i < n; i++) {
			struct json_object *b = aget(bl, i);

			if (!b || !json_object_is_type(b, json_type_object))
				continue;
			e->blocked[e->nblocked].syscall = jstr(d, b, "syscall");
			e->blocked[e->nblocked].ms = jms(b, "ms");
			e->blocked[e->nblocked].count = (int64_t)jcount(b, "count");
			e->blocked_ms += e->blocked[e->nblocked].ms;
			e->nblocked++;
		}
	} else {
		double fd = jnum(r, "fd", -1);

		e->syscall = jstr(d, r, "syscall");
		e->target = jstr(d, r, "target");
		e->fd = fd >= 0 && fd <= INT_MAX ? (int64_t)fd : -1;
	}
	if (add_item(d, RD_K_EVENT, ts, pid, p->nevs))
		goto fail;
	p->nevs++;
	return 0;
fail:
	free(e->blocked);
	free(e->stack);
	free(e->native);
	memset(e, 0, sizeof(*e));
	return -ENOMEM;
}

static int is_num(struct json_object *v)
{
	return v && (json_object_is_type(v, json_type_double) ||
		     json_object_is_type(v, json_type_int));
}

static void hist_from_json(struct json_object *a, struct lw_hist *h, double max_ms)
{
	size_t i, n = alen(a);

	memset(h, 0, sizeof(*h));
	for (i = 0; i < n; i++) {
		struct json_object *pair = aget(a, i), *lo = aget(pair, 0), *c = aget(pair, 1);
		double lov, cv;
		uint32_t slot;

		if (!is_num(lo) || !is_num(c))
			continue;
		lov = json_object_get_double(lo);
		cv = json_object_get_double(c);
		if (!isfinite(lov) || !isfinite(cv) || lov < 0 || cv < 1)
			continue;
		if (cv > UINT32_MAX)
			cv = UINT32_MAX;
		slot = lw_hist_slot(ms_to_ns(lov));
		if (h->slots[slot] > UINT32_MAX - (uint32_t)cv)
			h->slots[slot] = UINT32_MAX;
		else
			h->slots[slot] += (uint32_t)cv;
		h->count += (uint64_t)cv;
	}
	if (h->count)
		h->max_ns = ms_to_ns(max_ms);
}

static int parse_rows(struct lw_report_data *d, struct json_object *a, int blocking,
		      struct lw_rd_site **out, size_t *nout)
{
	size_t i, n = alen(a), k = 0;
	struct lw_rd_site *s;

	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	s = calloc(n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *r = aget(a, i);
		struct lw_rd_site *x = &s[k];

		if (!r || !json_object_is_type(r, json_type_object))
			continue;
		x->qualname = jstr(d, r, "qualname");
		x->file = jstr(d, r, "file");
		x->line = jline(r, "line");
		if (blocking) {
			x->syscall = jstr(d, r, "syscall");
			x->target = jstr(d, r, "target");
		}
		x->count = jcount(r, "count");
		x->total_ms = jms(r, "total_ms");
		x->max_ms = jms(r, "max_ms");
		x->p50_ms = jms(r, "p50_ms");
		x->p99_ms = jms(r, "p99_ms");
		if (!x->count)
			continue;
		hist_from_json(lw_j_get(r, "hist"), &x->hist, x->max_ms);
		x->sources = 1;
		k++;
	}
	if (!k) {
		free(s);
		return 0;
	}
	*out = s;
	*nout = k;
	return 0;
}

static int parse_loops(struct lw_report_data *d, struct json_object *a, double span_ms,
		       struct lw_rd_loop **out, size_t *nout)
{
	size_t i, n = alen(a), k = 0;
	struct lw_rd_loop *l;

	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	l = calloc(n, sizeof(*l));
	if (!l)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *r = aget(a, i);
		struct lw_rd_loop *x = &l[k];
		double u;

		if (!r || !json_object_is_type(r, json_type_object))
			continue;
		x->tid = jpid(r, "tid");
		if (!x->tid)
			continue;
		x->comm = jstr(d, r, "comm");
		x->iterations = jcount(r, "iterations");
		x->busy_ms = jms(r, "busy_ms");
		u = jnum(r, "utilization", 0);
		if (u < 0)
			u = 0;
		if (u > 1)
			u = 1;
		x->wall_ms = u > 0 && x->busy_ms > 0 ? x->busy_ms / u : span_ms;
		if (x->wall_ms < x->busy_ms)
			x->wall_ms = x->busy_ms;
		x->utilization = u;
		hist_from_json(lw_j_get(r, "lag_hist"), &x->lag, 0);
		k++;
	}
	if (!k) {
		free(l);
		return 0;
	}
	*out = l;
	*nout = k;
	return 0;
}

static int load_summary(struct lw_report_data *d, struct json_object *r, uint64_t ts, pid_t pid)
{
	struct lw_rd_priv *p = d->priv;
	struct rd_summary *s;
	const char *scope = lw_j_get_str(r, "sites_scope");
	double span = jnum(r, "interval_s", 0);
	int err;

	if (GROW(p, sums, nsums, capsums))
		return -ENOMEM;
	s = &p->sums[p->nsums];
	memset(s, 0, sizeof(*s));
	s->final = lw_j_get_bool(r, "final");
	if (span < 0)
		span = 0;
	if (span > 1e8)
		span = 1e8;
	s->span_ns = (uint64_t)(span * 1e9);
	s->scope = scope && strcmp(scope, "all") == 0 ? LW_RD_SCOPE_ALL : LW_RD_SCOPE_SLOW;
	s->comm = jstr(d, r, "comm");
	s->mode = jstr(d, r, "mode");
	s->target_name = jstr(d, r, "target_name");
	s->slow_callbacks = jcount(r, "slow_callbacks");
	s->blocking_calls = jcount(r, "blocking_calls");
	s->lost_events = jcount(r, "lost_events");
	err = parse_rows(d, lw_j_get(r, "sites"), 0, &s->sites, &s->nsites);
	if (!err)
		err = parse_rows(d, lw_j_get(r, "blocking_sites"), 1, &s->bsites, &s->nbsites);
	if (!err)
		err = parse_loops(d, lw_j_get(r, "loops"), span * 1000, &s->loops, &s->nloops);
	if (!err)
		err = add_item(d, RD_K_SUMMARY, ts, pid, p->nsums);
	if (err) {
		free(s->sites);
		free(s->bsites);
		free(s->loops);
		return err;
	}
	p->nsums++;
	return 0;
}

static int load_start(struct lw_report_data *d, struct json_object *r, uint64_t ts, pid_t pid)
{
	struct lw_rd_priv *p = d->priv;
	struct rd_start *s;

	if (GROW(p, starts, nstarts, capstarts))
		return -ENOMEM;
	s = &p->starts[p->nstarts];
	s->comm = jstr(d, r, "comm");
	s->runtime = jstr(d, r, "runtime");
	s->runtime_version = jstr(d, r, "runtime_version");
	s->mode = jstr(d, r, "mode");
	s->target_name = jstr(d, r, "target_name");
	if (add_item(d, RD_K_START, ts, pid, p->nstarts))
		return -ENOMEM;
	p->nstarts++;
	return 0;
}

static int load_end(struct lw_report_data *d, struct json_object *r, uint64_t ts, pid_t pid)
{
	struct lw_rd_priv *p = d->priv;
	struct rd_end *e;

	if (GROW(p, ends, nends, capends))
		return -ENOMEM;
	e = &p->ends[p->nends];
	e->lost_events = jcount(r, "lost_events");
	e->suppressed = jcount(r, "suppressed");
	if (add_item(d, RD_K_END, ts, pid, p->nends))
		return -ENOMEM;
	p->nends++;
	return 0;
}

static int load_suppressed(struct lw_report_data *d, struct json_object *r, uint64_t ts, pid_t pid)
{
	struct lw_rd_priv *p = d->priv;
	struct json_object *site = lw_j_get(r, "site");
	const char *rt = lw_j_get_str(r, "record_type");
	struct rd_supp *s;

	if (!rt || (strcmp(rt, "slow_callback") && strcmp(rt, "blocking_call")))
		return 0;	/* suppressed slow ticks: nothing to count */
	if (GROW(p, supps, nsupps, capsupps))
		return -ENOMEM;
	s = &p->supps[p->nsupps];
	s->blocking = strcmp(rt, "blocking_call") == 0;
	s->qualname = jstr(d, site, "qualname");
	s->file = jstr(d, site, "file");
	s->line = jline(site, "line");
	s->count = jcount(r, "count");
	s->total_ms = jms(r, "total_ms");
	s->max_ms = jms(r, "max_ms");
	if (!s->count)
		return 0;
	if (add_item(d, RD_K_SUPP, ts, pid, p->nsupps))
		return -ENOMEM;
	p->nsupps++;
	return 0;
}

int lw_rd__load_line(struct lw_report_data *d, const char *line)
{
	struct json_object *r;
	const char *type;
	uint64_t ts;
	pid_t pid;
	int ret = 1;

	if (d->priv->finished)
		return -EINVAL;
	r = json_tokener_parse(line);
	if (!r || !json_object_is_type(r, json_type_object))
		goto out;
	type = lw_j_get_str(r, "type");
	pid = jpid(r, "pid");
	if (!type || !pid || lw_rd_parse_time(lw_j_get_str(r, "ts"), 0, &ts) || !ts)
		goto out;
	ret = 0;
	if (strcmp(type, "slow_callback") == 0) {
		if (lw_j_get_bool(r, "in_progress"))
			d->in_progress++;
		else
			ret = load_event(d, r, LW_RD_SLOW_CALLBACK, ts, pid);
	} else if (strcmp(type, "blocking_call") == 0) {
		ret = load_event(d, r, LW_RD_BLOCKING_CALL, ts, pid);
	} else if (strcmp(type, "summary") == 0) {
		ret = load_summary(d, r, ts, pid);
	} else if (strcmp(type, "start") == 0) {
		ret = load_start(d, r, ts, pid);
	} else if (strcmp(type, "end") == 0) {
		ret = load_end(d, r, ts, pid);
	} else if (strcmp(type, "suppressed") == 0) {
		ret = load_suppressed(d, r, ts, pid);
	}
	if (!ret && d->priv->oom)
		ret = -ENOMEM;
out:
	json_object_put(r);
	if (ret == 0)
		d->records++;
	else if (ret == 1)
		d->skipped++;
	return ret;
}

int lw_rd__load_stream(struct lw_report_data *d, FILE *f, const char *name)
{
	struct lw_rd_priv *p = d->priv;
	struct lw_rd_file_stats *fs;
	char *line = NULL;
	size_t cap = 0, records0 = d->records, skipped0 = d->skipped;
	ssize_t n;
	int r = 0;

	if (grow((void **)&d->files, &p->capfiles, d->nfiles + 1, sizeof(*d->files)))
		return -ENOMEM;
	fs = &d->files[d->nfiles++];
	memset(fs, 0, sizeof(*fs));
	fs->path = pool_get(&p->pool, name ? name : "-", &p->oom);
	if (p->oom)
		return -ENOMEM;
	errno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		int last = line[n - 1] != '\n';
		size_t len = (size_t)n;

		fs->lines++;
		d->lines++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len)
			continue;	/* blank lines are not worth a word */
		if (len > RD_MAX_LINE || strlen(line) != len) {
			d->skipped++;	/* huge, or with NUL bytes */
			continue;
		}
		r = lw_rd__load_line(d, line);
		if (r < 0)
			break;
		if (r == 1 && last)
			fs->truncated_last = 1;
		r = 0;
	}
	if (!r && ferror(f))
		r = -(errno ? errno : EIO);
	free(line);
	fs->records = d->records - records0;
	fs->skipped = d->skipped - skipped0;
	if (fs->truncated_last)
		d->truncated++;
	return r;
}

int lw_rd__load_file(struct lw_report_data *d, const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		snprintf(err, errlen, "cannot read %s: it is a directory", path);
		return -EISDIR;
	}
	r = lw_rd__load_stream(d, f, path);
	fclose(f);
	if (r)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
	return r;
}

/* ---- time */

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_abs_time(const char *s, uint64_t *ns)
{
	struct tm tm = { 0 };
	int y, mo, dd, h = 0, mi = 0, sec = 0, oh, om;
	long off = 0;
	uint64_t frac = 0, scale = 100000000;
	const char *p = s;
	time_t t;

	if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &dd))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (parse_digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				while (isdigit((unsigned char)*p)) {
					frac += (uint64_t)(*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int neg = *p == '-';

		p++;
		if (parse_digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (parse_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off = (oh * 60L + om) * 60L * (neg ? -1 : 1);
	}
	if (*p)
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || dd < 1 || dd > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t < 0 || (long)t - off < 0)
		return -EINVAL;
	*ns = (uint64_t)((long)t - off) * 1000000000ull + frac;
	return 0;
}

/* "10m", "1.5h", "2d", "1w", "250ms" (a unit is required) */
static int parse_ago(const char *s, uint64_t *ns)
{
	char *end;
	double v, scale;
	size_t len = strlen(s);

	if (!len || !isalpha((unsigned char)s[len - 1]))
		return -EINVAL;
	if (strcmp(s + len - 1, "d") == 0 || strcmp(s + len - 1, "w") == 0) {
		errno = 0;
		v = strtod(s, &end);
		if (errno || end != s + len - 1 || !isfinite(v) || v < 0 ||
		    !isdigit((unsigned char)*s))
			return -EINVAL;
		scale = s[len - 1] == 'd' ? 86400e9 : 7 * 86400e9;
		if (v * scale > 1.8e19)
			return -ERANGE;
		*ns = (uint64_t)(v * scale);
		return 0;
	}
	return lw_parse_duration(s, ns);
}

int lw_rd_parse_time(const char *s, uint64_t now_ns, uint64_t *ns)
{
	char buf[64];
	size_t len;
	uint64_t ago;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	if (strcmp(buf, "now") == 0) {
		*ns = now_ns;
		return 0;
	}
	if (buf[0] == '@') {
		char *end;
		double v;

		errno = 0;
		v = strtod(buf + 1, &end);
		if (errno || end == buf + 1 || *end || !isfinite(v) || v < 0 || v > 1e10)
			return -EINVAL;
		*ns = (uint64_t)(v * 1e9);
		return 0;
	}
	if (len >= 10 && isdigit((unsigned char)buf[0]) && buf[4] == '-')
		return parse_abs_time(buf, ns);
	/* relative: "10m", "10m ago", "10 m ago", "-10m" */
	{
		char *p = buf, *q;
		int minus = 0;

		if (*p == '-') {
			minus = 1;
			p++;
		}
		if (len > 3 && strcmp(buf + len - 3, "ago") == 0) {
			if (minus)
				return -EINVAL;
			buf[len - 3] = 0;
		}
		/* drop inner blanks ("10 m") */
		for (q = p; *p; p++)
			if (!isspace((unsigned char)*p))
				*q++ = *p;
		*q = 0;
		p = buf + minus;
		if (!*p || !isdigit((unsigned char)*p) || parse_ago(p, &ago))
			return -EINVAL;
		*ns = now_ns > ago ? now_ns - ago : 0;
		return 0;
	}
}

/* ---- rotated files */

static int add_path(char ***v, size_t *n, size_t *cap, const char *path)
{
	char *c = strdup(path);

	if (!c || grow((void **)v, cap, *n + 1, sizeof(**v))) {
		free(c);
		return -ENOMEM;
	}
	(*v)[(*n)++] = c;
	return 0;
}

struct rot {
	unsigned long k;
	char *path;
};

static int rot_cmp(const void *a, const void *b)
{
	const struct rot *x = a, *y = b;

	return x->k < y->k ? 1 : x->k > y->k ? -1 : 0;	/* oldest (highest number) first */
}

/* NAME.1, NAME.2, ... in NAME's directory, oldest first */
static int add_rotated(char ***v, size_t *n, size_t *cap, const char *path)
{
	const char *base = lw_basename(path);
	size_t blen = strlen(base), dlen = (size_t)(base - path), nr = 0, caprot = 0, i;
	char dir[4096];
	struct rot *rots = NULL;
	struct dirent *de;
	DIR *dh;
	int r = 0;

	if (dlen >= sizeof(dir) || !blen)
		return 0;
	if (dlen) {
		memcpy(dir, path, dlen);
		dir[dlen] = 0;
	} else {
		strcpy(dir, ".");
	}
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		const char *suf;
		char *end, full[8192];
		unsigned long k;

		if (strncmp(de->d_name, base, blen) || de->d_name[blen] != '.')
			continue;
		suf = de->d_name + blen + 1;
		if (!isdigit((unsigned char)*suf))
			continue;
		errno = 0;
		k = strtoul(suf, &end, 10);
		if (errno || *end || !k)
			continue;
		snprintf(full, sizeof(full), "%.*s%s", (int)dlen, path, de->d_name);
		if (grow((void **)&rots, &caprot, nr + 1, sizeof(*rots))) {
			r = -ENOMEM;
			break;
		}
		rots[nr].k = k;
		rots[nr].path = strdup(full);
		if (!rots[nr].path) {
			r = -ENOMEM;
			break;
		}
		nr++;
	}
	closedir(dh);
	if (!r && nr)
		qsort(rots, nr, sizeof(*rots), rot_cmp);
	for (i = 0; i < nr; i++) {
		if (!r)
			r = add_path(v, n, cap, rots[i].path);
		free(rots[i].path);
	}
	free(rots);
	return r;
}

void lw_rd_free_paths(char **paths, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int lw_rd_expand_paths(char *const *args, size_t nargs, char ***out, size_t *nout)
{
	char **v = NULL, **u = NULL;
	size_t n = 0, cap = 0, i, j, nu = 0;
	dev_t *devs = NULL;
	ino_t *inos = NULL;
	int r = 0;

	for (i = 0; i < nargs && !r; i++) {
		struct stat st;
		char alt[4200];
		const char *path = args[i];

		if (strcmp(path, "-") == 0) {
			r = add_path(&v, &n, &cap, path);
			continue;
		}
		if (stat(path, &st) && errno == ENOENT) {
			snprintf(alt, sizeof(alt), "%s.jsonl", path);
			if (stat(alt, &st) == 0)
				path = alt;
		}
		r = add_rotated(&v, &n, &cap, path);
		if (!r)
			r = add_path(&v, &n, &cap, path);
	}
	/* the same file twice (given and found, or two names): keep the first */
	if (!r && n) {
		u = calloc(n, sizeof(*u));
		devs = calloc(n, sizeof(*devs));
		inos = calloc(n, sizeof(*inos));
		if (!u || !devs || !inos)
			r = -ENOMEM;
	}
	for (i = 0; !r && i < n; i++) {
		struct stat st;
		int dup = 0;

		if (strcmp(v[i], "-") && stat(v[i], &st) == 0) {
			for (j = 0; j < nu; j++)
				if (inos[j] == st.st_ino && devs[j] == st.st_dev && inos[j])
					dup = 1;
			if (!dup) {
				devs[nu] = st.st_dev;
				inos[nu] = st.st_ino;
			}
		} else {
			for (j = 0; j < nu; j++)
				if (!inos[j] && strcmp(u[j], v[i]) == 0)
					dup = 1;
			if (!dup) {
				devs[nu] = 0;
				inos[nu] = 0;
			}
		}
		if (dup) {
			free(v[i]);
		} else {
			u[nu++] = v[i];
		}
		v[i] = NULL;
	}
	free(devs);
	free(inos);
	if (r) {
		lw_rd_free_paths(v, n);
		lw_rd_free_paths(u, nu);
		return r;
	}
	free(v);
	*out = u;
	*nout = nu;
	return 0;
}

/* ---- sites */

int lw_rd_site_matches(const char *pattern, const char *qualname, const char *file, int64_t line)
{
	return lw_site_matches(pattern, qualname, file, (long)line);
}

struct dvec {
	double *v;
	size_t n, cap;
};

/*
 * What is known of a site's quantiles while merging its sources (summaries, the record set):
 * a quantile of the merged data lies between the smallest and the largest of the sources' own.
 */
struct site_x {
	int inexact;			/* some source lacks a histogram covering its count */
	double p50_lo, p50_hi, p99_lo, p99_hi;
};

/* a table of sites being built, with the record durations of each for exact quantiles */
struct site_acc {
	struct lw_rd_site *v;
	struct dvec *vals;
	struct site_x *xs;
	size_t n, cap;
	struct lw_u64map *map;		/* key hash -> index + 1 */
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t site_hash(const char *q, const char *f, int64_t line, const char *sc, const char *t)
{
	uint64_t h = 1469598103934665603ull;

	h = mix(h, (uint64_t)(uintptr_t)q);
	h = mix(h, (uint64_t)(uintptr_t)f);
	h = mix(h, (uint64_t)line);
	h = mix(h, (uint64_t)(uintptr_t)sc);
	return mix(h, (uint64_t)(uintptr_t)t);
}

static int site_is(const struct lw_rd_site *s, const char *q, const char *f, int64_t line,
		   const char *sc, const char *t)
{
	return s->qualname == q && s->file == f && s->line == line && s->syscall == sc &&
	       s->target == t;
}

/* the site's index, created when missing; -ENOMEM */
static long acc_get(struct site_acc *a, const char *q, const char *f, int64_t line, const char *sc,
		    const char *t)
{
	uint64_t h = site_hash(q, f, line, sc, t);
	size_t *pi, i, need = a->n + 1;
	int created;

	if (!a->map && lw_u64map__new(sizeof(size_t), &a->map))
		return -ENOMEM;
	pi = lw_u64map__get(a->map, h);
	if (pi && site_is(&a->v[*pi - 1], q, f, line, sc, t))
		return (long)(*pi - 1);
	if (pi)	/* a hash collision: look the slow way */
		for (i = 0; i < a->n; i++)
			if (site_is(&a->v[i], q, f, line, sc, t))
				return (long)i;
	if (need > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		struct lw_rd_site *nv = realloc(a->v, ncap * sizeof(*nv));
		struct dvec *nd;
		struct site_x *ni;

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		nd = realloc(a->vals, ncap * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		a->vals = nd;
		ni = realloc(a->xs, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		a->xs = ni;
		a->cap = ncap;
	}
	memset(&a->v[a->n], 0, sizeof(a->v[a->n]));
	memset(&a->vals[a->n], 0, sizeof(a->vals[a->n]));
	memset(&a->xs[a->n], 0, sizeof(a->xs[a->n]));
	a->v[a->n].qualname = q;
	a->v[a->n].file = f;
	a->v[a->n].line = line;
	a->v[a->n].syscall = sc;
	a->v[a->n].target = t;
	if (!pi) {
		pi = lw_u64map__put(a->map, h, &created);
		if (!pi)
			return -ENOMEM;
		*pi = a->n + 1;
	}
	return (long)a->n++;
}

static void acc_free(struct site_acc *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->vals[i].v);
	free(a->vals);
	free(a->xs);
	free(a->v);
	lw_u64map__free(a->map, NULL);
	memset(a, 0, sizeof(*a));
}

static void x_bounds(struct site_x *x, unsigned sources, double p50, double p99)
{
	if (!sources || p50 < x->p50_lo)
		x->p50_lo = p50;
	if (!sources || p50 > x->p50_hi)
		x->p50_hi = p50;
	if (!sources || p99 < x->p99_lo)
		x->p99_lo = p99;
	if (!sources || p99 > x->p99_hi)
		x->p99_hi = p99;
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* a summary's row into the table */
static int acc_add_row(struct site_acc *a, const struct lw_rd_site *row)
{
	long i = acc_get(a, row->qualname, row->file, row->line, row->syscall, row->target);
	struct lw_rd_site *s;

	if (i < 0)
		return (int)i;
	s = &a->v[i];
	x_bounds(&a->xs[i], s->sources, row->p50_ms, row->p99_ms);
	if (!s->sources) {
		s->p50_ms = row->p50_ms;
		s->p99_ms = row->p99_ms;
	} else {
		/* used only when the histograms cannot say: weighted p50, worst p99 */
		double c = (double)s->count + (double)row->count;

		s->p50_ms = c > 0 ? (s->p50_ms * (double)s->count +
				     row->p50_ms * (double)row->count) / c : 0;
		if (row->p99_ms > s->p99_ms)
			s->p99_ms = row->p99_ms;
	}
	s->count += row->count;
	s->total_ms += row->total_ms;
	if (row->max_ms > s->max_ms)
		s->max_ms = row->max_ms;
	if (row->hist.count != row->count)
		a->xs[i].inexact = 1;
	lw_hist_merge(&s->hist, &row->hist);
	s->sources++;
	return 0;
}

static int acc_add_value(struct site_acc *a, const char *q, const char *f, int64_t line,
			 const char *sc, const char *t, double ms)
{
	long i = acc_get(a, q, f, line, sc, t);
	struct dvec *dv;

	if (i < 0)
		return (int)i;
	dv = &a->vals[i];
	if (grow((void **)&dv->v, &dv->cap, dv->n + 1, sizeof(*dv->v)))
		return -ENOMEM;
	dv->v[dv->n++] = ms;
	return 0;
}

static int acc_add_supp(struct site_acc *a, const struct rd_supp *sp)
{
	long i = acc_get(a, sp->qualname, sp->file, sp->line, NULL, NULL);
	struct lw_rd_site *s;

	if (i < 0)
		return (int)i;
	s = &a->v[i];
	s->count += sp->count;
	s->total_ms += sp->total_ms;
	if (sp->max_ms > s->max_ms)
		s->max_ms = sp->max_ms;
	a->xs[i].inexact = 1;
	return 0;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank */
static double vquant(const double *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p * (double)n);

	if (!n)
		return 0;
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static int site_cmp(const void *a, const void *b)
{
	const struct lw_rd_site *x = a, *y = b;

	if (x->total_ms != y->total_ms)
		return x->total_ms < y->total_ms ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->max_ms < y->max_ms ? 1 : x->max_ms > y->max_ms ? -1 : 0;
}

/* the table's rows, final numbers, by total time; the accumulator is emptied */
static void acc_finish(struct site_acc *a, struct lw_rd_site **out, size_t *nout)
{
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		struct lw_rd_site *s = &a->v[i];
		struct dvec *dv = &a->vals[i];
		struct site_x *x = &a->xs[i];
		int summaries = (int)s->sources;

		if (dv->n) {
			double vmax = 0;

			qsort(dv->v, dv->n, sizeof(*dv->v), dcmp);
			x_bounds(x, s->sources, vquant(dv->v, dv->n, 0.5),
				 vquant(dv->v, dv->n, 0.99));
			for (j = 0; j < dv->n; j++) {
				lw_hist_add(&s->hist, ms_to_ns(dv->v[j]));
				s->total_ms += dv->v[j];
				if (dv->v[j] > vmax)
					vmax = dv->v[j];
			}
			s->count += dv->n;
			if (vmax > s->max_ms)
				s->max_ms = vmax;
			s->sources++;
		}
		if (!summaries && dv->n) {
			s->p50_ms = vquant(dv->v, dv->n, 0.5);
			s->p99_ms = vquant(dv->v, dv->n, 0.99);
		} else if (s->sources > 1) {
			if (!x->inexact && s->hist.count) {
				s->hist.max_ns = ms_to_ns(s->max_ms);
				s->p50_ms = (double)lw_hist_quantile(&s->hist, 0.5) / 1e6;
				s->p99_ms = (double)lw_hist_quantile(&s->hist, 0.99) / 1e6;
			}
			s->p50_ms = clampd(s->p50_ms, x->p50_lo, x->p50_hi);
			s->p99_ms = clampd(s->p99_ms, x->p99_lo, x->p99_hi);
		}
		if (s->hist.count)
			s->hist.max_ns = ms_to_ns(s->max_ms);
		if (s->p99_ms > s->max_ms)
			s->p99_ms = s->max_ms;
		if (s->p50_ms > s->p99_ms)
			s->p50_ms = s->p99_ms;
	}
	if (a->n)
		qsort(a->v, a->n, sizeof(*a->v), site_cmp);
	*out = a->v;
	*nout = a->n;
	a->v = NULL;
	for (i = 0; i < a->n; i++)
		free(a->vals[i].v);
	a->n = 0;
	acc_free(a);
}

/* ---- finishing: runs, filters, aggregation */

static int item_cmp(const void *a, const void *b)
{
	const struct rd_item *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int in_window(const struct lw_rd_filter *f, uint64_t ts)
{
	return (!f->since_ns || ts >= f->since_ns) && (!f->until_ns || ts <= f->until_ns);
}

static int span_in_window(const struct lw_rd_filter *f, uint64_t ts, uint64_t span)
{
	return in_window(f, ts > span ? ts - span : 0) && in_window(f, ts);
}

static int event_matches(const struct lw_rd_event *e, const char *pat)
{
	if (!pat)
		return 1;
	if (e->has_callback && lw_rd_site_matches(pat, e->cb.qualname, e->cb.file, e->cb.line))
		return 1;
	return e->nstack && lw_rd_site_matches(pat, e->stack[0].function, e->stack[0].file,
					       e->stack[0].line);
}

struct pid_acc {
	struct lw_rd_pid *pid;
	struct site_acc sites, bsites;
	struct lw_rd_loop *loops;
	size_t nloops, caploops;
	unsigned scopes;		/* bit 1: slow, bit 2: all */
};

static int merge_loop(struct pid_acc *pa, const struct lw_rd_loop *l)
{
	size_t i;
	struct lw_rd_loop *x = NULL;

	for (i = 0; i < pa->nloops; i++)
		if (pa->loops[i].tid == l->tid)
			x = &pa->loops[i];
	if (!x) {
		if (grow((void **)&pa->loops, &pa->caploops, pa->nloops + 1, sizeof(*pa->loops)))
			return -ENOMEM;
		x = &pa->loops[pa->nloops++];
		memset(x, 0, sizeof(*x));
		x->tid = l->tid;
	}
	if (l->comm)
		x->comm = l->comm;
	x->iterations += l->iterations;
	x->busy_ms += l->busy_ms;
	x->wall_ms += l->wall_ms;
	lw_hist_merge(&x->lag, &l->lag);
	x->utilization = x->wall_ms > 0 ? x->busy_ms / x->wall_ms : 0;
	if (x->utilization > 1)
		x->utilization = 1;
	return 0;
}

static void seen(struct lw_rd_pid *p, uint64_t from, uint64_t to)
{
	if (!p->first_ns || from < p->first_ns)
		p->first_ns = from;
	if (to > p->last_ns)
		p->last_ns = to;
}

/* 1: the summary counted (with a site filter: some row of it matched), 0: not, -ENOMEM */
static int use_summary(struct pid_acc *pa, const struct rd_summary *s, uint64_t ts,
		       const struct lw_rd_filter *f)
{
	size_t i, matched = 0;
	int r = 0;

	for (i = 0; i < s->nsites && !r; i++)
		if (!f->site || lw_rd_site_matches(f->site, s->sites[i].qualname, s->sites[i].file,
						   s->sites[i].line)) {
			r = acc_add_row(&pa->sites, &s->sites[i]);
			matched++;
		}
	/* blocking rows are keyed by the frame that blocked, not by callback: with a site
	 * filter, blocking sites come from the matching records (see lw_rd__finish) */
	for (i = 0; i < s->nbsites && !r && !f->site; i++) {
		r = acc_add_row(&pa->bsites, &s->bsites[i]);
		matched++;
	}
	if (r)
		return r;
	if (f->site && !matched)
		return 0;
	for (i = 0; i < s->nloops && !r; i++)
		r = merge_loop(pa, &s->loops[i]);
	if (r)
		return r;
	pa->scopes |= s->scope == LW_RD_SCOPE_ALL ? 2 : 1;
	if (!f->site) {
		pa->pid->slow_callbacks += s->slow_callbacks;
		pa->pid->blocking_calls += s->blocking_calls;
	}
	pa->pid->summaries_used++;
	if (!pa->pid->comm && s->comm)
		pa->pid->comm = s->comm;
	if (!pa->pid->target_name && s->target_name)
		pa->pid->target_name = s->target_name;
	seen(pa->pid, ts > s->span_ns ? ts - s->span_ns : 0, ts);
	return 1;
}

static int ev_cmp(const void *a, const void *b)
{
	const struct lw_rd_event *x = *(const struct lw_rd_event *const *)a;
	const struct lw_rd_event *y = *(const struct lw_rd_event *const *)b;

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	if (y->parent == x || x->parent == y)
		return y->parent == x ? -1 : 1;		/* the parent first */
	if (x->end_ns != y->end_ns)
		return x->end_ns > y->end_ns ? -1 : 1;	/* the longer first */
	if (x->type != y->type)
		return x->type == LW_RD_SLOW_CALLBACK ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int thread_cmp(const void *a, const void *b)
{
	const struct lw_rd_event *x = *(const struct lw_rd_event *const *)a;
	const struct lw_rd_event *y = *(const struct lw_rd_event *const *)b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* each blocking call's slow callback: same thread, a time span that holds the call's end */
static int link_parents(struct lw_report_data *d)
{
	const struct lw_rd_event **cbs;
	size_t n = 0, i;
	int moved = 0;

	cbs = calloc(d->nev ? d->nev : 1, sizeof(*cbs));
	if (!cbs)
		return -ENOMEM;
	for (i = 0; i < d->nev; i++)
		if (d->ev[i]->type == LW_RD_SLOW_CALLBACK)
			cbs[n++] = d->ev[i];
	qsort(cbs, n, sizeof(*cbs), thread_cmp);
	for (i = 0; i < d->nev; i++) {
		struct lw_rd_event *b = (struct lw_rd_event *)d->ev[i];
		size_t lo = 0, hi = n;

		if (b->type != LW_RD_BLOCKING_CALL)
			continue;
		/* the last callback of the thread that started at or before the call ended */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct lw_rd_event *c = cbs[mid];
			int before = c->pid < b->pid || (c->pid == b->pid && (c->tid < b->tid ||
				     (c->tid == b->tid && c->start_ns <= b->end_ns)));

			if (before)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo) {
			const struct lw_rd_event *c = cbs[lo - 1];

			if (c->pid == b->pid && c->tid == b->tid && c->start_ns <= b->end_ns &&
			    b->end_ns <= c->end_ns + RD_NEST_SLACK_NS) {
				b->parent = c;
				/* a call cannot start before the callback it was made in */
				if (b->start_ns < c->start_ns)
					b->start_ns = c->start_ns;
				moved = 1;
			}
		}
	}
	free(cbs);
	if (moved)
		qsort(d->ev, d->nev, sizeof(*d->ev), ev_cmp);
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	const struct lw_rd_pid *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int loop_cmp(const void *a, const void *b)
{
	const struct lw_rd_loop *x = a, *y = b;

	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* runs: a `start` opens one; records of a pid with no open run open an implicit one */
static int split_runs(struct lw_rd_priv *p)
{
	struct lw_u64map *cur = NULL;
	size_t i, caprun = 0;
	int created;

	if (lw_u64map__new(sizeof(size_t), &cur))
		return -ENOMEM;
	for (i = 0; i < p->nitems; i++) {
		struct rd_item *it = &p->items[i];
		size_t *rp = lw_u64map__put(cur, (uint64_t)it->pid, &created);
		struct rd_run *run;

		if (!rp)
			goto oom;
		/* the start record is written once the probes are live: the first records of the
		 * run may be stamped a little before it (and so sort before it) */
		if (!created && it->kind == RD_K_START) {
			run = &p->runs[*rp - 1];
			if (run->start < 0 && !run->closed && run->final < 0 &&
			    run->first_ts + RD_START_SLACK_NS >= it->ts) {
				run->start = (long)it->idx;
				it->run = *rp - 1;
				continue;
			}
		}
		if (created || it->kind == RD_K_START || p->runs[*rp - 1].closed) {
			if (grow((void **)&p->runs, &caprun, p->nruns + 1, sizeof(*p->runs)))
				goto oom;
			run = &p->runs[p->nruns++];
			memset(run, 0, sizeof(*run));
			run->pid = it->pid;
			run->first_ts = it->ts;
			run->start = run->end = run->final = -1;
			*rp = p->nruns;
		}
		run = &p->runs[*rp - 1];
		it->run = *rp - 1;
		if (it->kind == RD_K_START)
			run->start = (long)it->idx;
		else if (it->kind == RD_K_END) {
			run->end = (long)it->idx;
			run->closed = 1;
		} else if (it->kind == RD_K_SUMMARY && p->sums[it->idx].final)
			run->final = (long)i;	/* the item, for its time stamp */
	}
	lw_u64map__free(cur, NULL);
	return 0;
oom:
	lw_u64map__free(cur, NULL);
	return -ENOMEM;
}

/* is ts inside a periodic summary of this run that is counted? */
static int covered(const struct lw_rd_priv *p, const size_t *used, size_t nused, uint64_t ts)
{
	size_t i;

	for (i = 0; i < nused; i++) {
		const struct rd_item *it = &p->items[used[i]];
		uint64_t span = p->sums[it->idx].span_ns;

		if (ts <= it->ts && ts + span > it->ts)
			return 1;
	}
	return 0;
}

/* item indexes grouped by run, in time order: run k's are idx[start[k]] .. idx[start[k + 1] - 1] */
static int group_by_run(const struct lw_rd_priv *p, size_t **idx, size_t **start)
{
	size_t *pos, i;

	*idx = calloc(p->nitems + 1, sizeof(**idx));
	*start = calloc(p->nruns + 2, sizeof(**start));
	pos = calloc(p->nruns + 1, sizeof(*pos));
	if (!*idx || !*start || !pos) {
		free(pos);
		return -ENOMEM;
	}
	for (i = 0; i < p->nitems; i++)
		(*start)[p->items[i].run + 1]++;
	for (i = 0; i < p->nruns; i++)
		(*start)[i + 1] += (*start)[i];
	for (i = 0; i < p->nruns; i++)
		pos[i] = (*start)[i];
	for (i = 0; i < p->nitems; i++)
		(*idx)[pos[p->items[i].run]++] = i;
	free(pos);
	return 0;
}

int lw_rd__finish(struct lw_report_data *d, const struct lw_rd_filter *flt)
{
	struct lw_rd_filter none = { 0 };
	struct lw_rd_priv *p = d->priv;
	struct lw_u64map *pidmap = NULL;
	struct pid_acc *pas = NULL;
	size_t npas = 0, cappas = 0, i, j, k, nused = 0, capused = 0, run0;
	size_t *used = NULL, *ridx = NULL, *rstart = NULL;
	int r = -ENOMEM;

	if (p->finished)
		return -EINVAL;
	p->finished = 1;
	if (p->oom)
		return -ENOMEM;
	if (!flt)
		flt = &none;
	if (p->nitems)
		qsort(p->items, p->nitems, sizeof(*p->items), item_cmp);
	if (split_runs(p) || group_by_run(p, &ridx, &rstart) ||
	    lw_u64map__new(sizeof(size_t), &pidmap))
		goto out;
	d->ev = calloc(p->nevs ? p->nevs : 1, sizeof(*d->ev));
	if (!d->ev)
		goto out;
	for (run0 = 0; run0 < p->nruns; run0++) {
		struct rd_run *run = &p->runs[run0];
		struct pid_acc *pa;
		struct lw_rd_pid *pp;
		size_t *slot;
		const char *mode = NULL;
		int recs = 0, created, touched = 0;

		if (flt->pid && run->pid != flt->pid)
			continue;
		slot = lw_u64map__put(pidmap, (uint64_t)run->pid, &created);
		if (!slot)
			goto out;
		if (created) {
			if (grow((void **)&pas, &cappas, npas + 1, sizeof(*pas)))
				goto out;
			pa = &pas[npas++];
			memset(pa, 0, sizeof(*pa));
			*slot = npas;
			pa->pid = calloc(1, sizeof(*pa->pid));
			if (!pa->pid)
				goto out;
			pa->pid->pid = run->pid;
		}
		pa = &pas[*slot - 1];
		pp = pa->pid;
		if (run->start >= 0) {
			const struct rd_start *st = &p->starts[run->start];

			pp->comm = st->comm ? st->comm : pp->comm;
			pp->runtime = st->runtime ? st->runtime : pp->runtime;
			pp->runtime_version = st->runtime_version ? st->runtime_version :
								    pp->runtime_version;
			pp->target_name = st->target_name ? st->target_name : pp->target_name;
			mode = st->mode;
		}
		if (run->final >= 0) {
			const struct rd_item *fi = &p->items[run->final];

			run->use_final = span_in_window(flt, fi->ts, p->sums[fi->idx].span_ns);
		}
		/* summaries first: which ones count, and which time they cover */
		nused = 0;
		for (k = rstart[run0]; k < rstart[run0 + 1]; k++) {
			const struct rd_item *it = &p->items[ridx[k]];

			i = ridx[k];
			if (it->kind == RD_K_SUMMARY) {
				const struct rd_summary *s = &p->sums[it->idx];
				int use = run->use_final ? (long)i == run->final :
					  !s->final && span_in_window(flt, it->ts, s->span_ns);

				if (!mode)
					mode = s->mode;
				if (!use)
					continue;
				r = use_summary(pa, s, it->ts, flt);
				if (r < 0)
					goto out;
				touched |= r;
				r = -ENOMEM;
				if (!s->final) {
					if (grow((void **)&used, &capused, nused + 1,
						 sizeof(*used)))
						goto out;
					used[nused++] = i;
				}
			} else if (it->kind == RD_K_END) {
				if (!in_window(flt, it->ts) || flt->site)
					continue;
				pp->lost_events += p->ends[it->idx].lost_events;
				pp->suppressed += p->ends[it->idx].suppressed;
				touched = 1;
			}
		}
		/* events, suppressed counts: listed when in range, counted when no summary did */
		for (k = rstart[run0]; k < rstart[run0 + 1]; k++) {
			const struct rd_item *it = &p->items[ridx[k]];
			int count;

			if (it->kind != RD_K_EVENT && it->kind != RD_K_SUPP)
				continue;
			if (!in_window(flt, it->ts))
				continue;
			count = !run->use_final && !covered(p, used, nused, it->ts);
			if (it->kind == RD_K_SUPP) {
				const struct rd_supp *sp = &p->supps[it->idx];

				if (!count || (flt->site &&
					       !lw_rd_site_matches(flt->site, sp->qualname,
								   sp->file, sp->line)))
					continue;
				/* suppressed slow callbacks count at their callback's site;
				 * blocking ones are keyed by callback, blocking sites are not */
				if (!sp->blocking && acc_add_supp(&pa->sites, sp))
					goto out;
				if (sp->blocking && !flt->site)
					pp->blocking_calls += sp->count;
				else if (!sp->blocking)
					pp->slow_callbacks += sp->count;
				recs = touched = 1;
				continue;
			}
			{
				struct lw_rd_event *e = &p->evs[it->idx];
				const struct lw_rd_frame *top = e->nstack ? &e->stack[0] : NULL;

				if (!event_matches(e, flt->site))
					continue;
				d->ev[d->nev++] = e;
				pp->nevents++;
				touched = 1;
				if (!mode)
					mode = e->mode;
				seen(pp, e->start_ns, e->end_ns);
				if (!pp->comm && e->comm)
					pp->comm = e->comm;
				/* with a site filter the counts are the matching records: summaries
				 * do not say which of their slow callbacks and blocking calls match */
				if (flt->site) {
					if (e->type == LW_RD_SLOW_CALLBACK)
						pp->slow_callbacks++;
					else
						pp->blocking_calls++;
				}
				if (!count && !(flt->site && e->type == LW_RD_BLOCKING_CALL))
					continue;
				recs = 1;
				if (e->type == LW_RD_SLOW_CALLBACK) {
					pp->slow_callbacks += !flt->site;
					pa->scopes |= 1;
					if (acc_add_value(&pa->sites, e->cb.qualname, e->cb.file,
							  e->has_callback ? e->cb.line : -1, NULL,
							  NULL, e->duration_ms))
						goto out;
				} else {
					pp->blocking_calls += !flt->site;
					if (acc_add_value(&pa->bsites,
							  top ? top->function : NULL,
							  top ? top->file : NULL,
							  top ? top->line : -1,
							  e->syscall, e->target, e->duration_ms))
						goto out;
				}
			}
		}
		pp->record_sets += recs;
		if (!touched)
			continue;
		pp->runs++;
		if (mode && strcmp(mode, "precise") == 0)
			pp->precise_runs++;
		else if (mode)
			pp->default_runs++;
	}
	/* per pid tables */
	d->pids = calloc(npas ? npas : 1, sizeof(*d->pids));
	if (!d->pids)
		goto out;
	for (i = 0; i < npas; i++) {
		struct pid_acc *pa = &pas[i];
		struct lw_rd_pid *pp = pa->pid;

		if (!pp->runs)
			continue;	/* nothing of it in range */
		acc_finish(&pa->sites, &pp->sites, &pp->nsites);
		acc_finish(&pa->bsites, &pp->bsites, &pp->nbsites);
		pp->loops = pa->loops;
		pp->nloops = pa->nloops;
		pa->loops = NULL;
		if (pp->nloops)
			qsort(pp->loops, pp->nloops, sizeof(*pp->loops), loop_cmp);
		pp->scope = pa->scopes == 3 ? LW_RD_SCOPE_MIXED :
			    pa->scopes == 2 ? LW_RD_SCOPE_ALL :
			    pa->scopes == 1 ? LW_RD_SCOPE_SLOW : LW_RD_SCOPE_NONE;
		if (pp->first_ns && (!d->first_ns || pp->first_ns < d->first_ns))
			d->first_ns = pp->first_ns;
		if (pp->last_ns > d->last_ns)
			d->last_ns = pp->last_ns;
		d->pids[d->npids++] = *pp;
		free(pp);
		pa->pid = NULL;
	}
	if (d->npids)
		qsort(d->pids, d->npids, sizeof(*d->pids), pid_cmp);
	if (d->nev)
		qsort(d->ev, d->nev, sizeof(*d->ev), ev_cmp);
	r = link_parents(d);
out:
	for (j = 0; j < npas; j++) {
		acc_free(&pas[j].sites);
		acc_free(&pas[j].bsites);
		free(pas[j].loops);
		free(pas[j].pid);
	}
	free(pas);
	free(used);
	free(ridx);
	free(rstart);
	lw_u64map__free(pidmap, NULL);
	return r;
}
