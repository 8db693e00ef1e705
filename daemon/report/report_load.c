// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "report/report_priv.h"
#include "record/rectype.h"

#include <fcntl.h>
#include <unistd.h>

/* ---- reading JSON values defensively */

static const char *jstr(struct lw_report_data *d, struct json_object *o, const char *key)
{
	return lw_rd_pool_get(&d->priv->pool, lw_j_get_str(o, key), &d->priv->oom);
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

uint64_t lw_rd_ms_to_ns(double ms)
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
	dns = lw_rd_ms_to_ns(e->duration_ms);
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
	cb = lw_j_get(r, "site");
	if (cb && json_object_is_type(cb, json_type_object))
		parse_callback(d, cb, &e->site);
	else
		e->site = e->cb;
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
		slot = lw_hist_slot(lw_rd_ms_to_ns(lov));
		if (h->slots[slot] > UINT32_MAX - (uint32_t)cv)
			h->slots[slot] = UINT32_MAX;
		else
			h->slots[slot] += (uint32_t)cv;
		h->count += (uint64_t)cv;
	}
	if (h->count)
		h->max_ns = lw_rd_ms_to_ns(max_ms);
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
	enum lw_rec_kind rk = lw_rec_kind_of(lw_j_get_str(r, "record_type"));
	struct rd_supp *s;

	if (rk != LW_RK_SLOW_CALLBACK && rk != LW_RK_BLOCKING_CALL)
		return 0;	/* suppressed slow ticks: nothing to count */
	if (GROW(p, supps, nsupps, capsupps))
		return -ENOMEM;
	s = &p->supps[p->nsupps];
	s->blocking = rk == LW_RK_BLOCKING_CALL;
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

static const char *const skip_names[LW_RD_SKIP_N] = {
	[LW_RD_SKIP_TOO_LONG] = "too_long",
	[LW_RD_SKIP_BINARY] = "binary",
	[LW_RD_SKIP_NOT_JSON] = "not_json",
	[LW_RD_SKIP_NOT_RECORD] = "not_record",
	[LW_RD_SKIP_MALFORMED] = "malformed",
};

const char *lw_rd_skip_name(enum lw_rd_skip why)
{
	return (unsigned)why < LW_RD_SKIP_N ? skip_names[why] : "unknown";
}

static void skip(struct lw_report_data *d, enum lw_rd_skip why)
{
	d->skipped++;
	d->skipped_by[why]++;
}

int lw_rd__load_line(struct lw_report_data *d, const char *line)
{
	struct json_object *r;
	const char *type;
	enum lw_rec_kind kind;
	enum lw_rd_skip why = LW_RD_SKIP_NOT_JSON;
	uint64_t ts;
	pid_t pid;
	int ret = 1;

	if (d->priv->finished)
		return -EINVAL;
	r = json_tokener_parse(line);
	if (!r || !json_object_is_type(r, json_type_object))
		goto out;
	why = LW_RD_SKIP_NOT_RECORD;
	type = lw_j_get_str(r, "type");
	kind = lw_rec_kind_of(type);
	pid = jpid(r, "pid");
	if (!type || !pid || lw_rd_parse_time(lw_j_get_str(r, "ts"), 0, &ts) || !ts)
		goto out;
	why = LW_RD_SKIP_MALFORMED;
	ret = 0;
	if (kind == LW_RK_SLOW_CALLBACK) {
		if (lw_j_get_bool(r, "in_progress"))
			d->in_progress++;
		else
			ret = load_event(d, r, LW_RD_SLOW_CALLBACK, ts, pid);
	} else if (kind == LW_RK_BLOCKING_CALL) {
		ret = load_event(d, r, LW_RD_BLOCKING_CALL, ts, pid);
	} else if (kind == LW_RK_SUMMARY) {
		ret = load_summary(d, r, ts, pid);
	} else if (kind == LW_RK_START) {
		ret = load_start(d, r, ts, pid);
	} else if (kind == LW_RK_END) {
		ret = load_end(d, r, ts, pid);
	} else if (kind == LW_RK_SUPPRESSED) {
		ret = load_suppressed(d, r, ts, pid);
	}
	if (!ret && d->priv->oom)
		ret = -ENOMEM;
out:
	json_object_put(r);
	if (ret == 0)
		d->records++;
	else if (ret == 1)
		skip(d, why);
	return ret;
}

/*
 * The bounded line reader: blocks of RD_BLOCK bytes from the stream, a line copied out only
 * while it fits LW_RD_MAX_LINE (the buffer grows to that and no further); the rest of a longer
 * line is read past and counted, never kept. Allocation failure is an error, not an end.
 */
#define RD_BLOCK (64u << 10)

struct rd_in {
	FILE *f;
	char *blk;
	size_t pos, len;
	int eof, err;			/* err: 0 or -errno */
	char *line;			/* the line so far, NUL-terminated when it fits */
	size_t cap, used;
	uint64_t total;			/* bytes in the line, newline excluded */
	int newline;			/* the line ended with one (not with the end of input) */
};

static int rd_fill(struct rd_in *in)
{
	size_t n;

	if (in->pos < in->len)
		return 1;
	if (in->eof)
		return 0;
	errno = 0;
	n = fread(in->blk, 1, RD_BLOCK, in->f);
	if (!n) {
		in->eof = 1;
		if (ferror(in->f))
			in->err = -(errno ? errno : EIO);
		return 0;
	}
	in->pos = 0;
	in->len = n;
	return 1;
}

/* 1: a line in in->line (in->total bytes; only kept when total <= LW_RD_MAX_LINE),
 * 0: end of input, -errno; -EFBIG when the line grows past budget bytes */
static int rd_line(struct rd_in *in, uint64_t budget)
{
	in->used = 0;
	in->total = 0;
	in->newline = 0;
	while (rd_fill(in)) {
		const char *b = in->blk + in->pos, *nl = memchr(b, '\n', in->len - in->pos);
		size_t take = nl ? (size_t)(nl - b) : in->len - in->pos;

		if (in->total + take <= LW_RD_MAX_LINE) {
			if (in->used + take + 1 > in->cap) {
				size_t cap = in->cap ? in->cap : 4096;
				char *p;

				while (cap < in->used + take + 1)
					cap *= 2;
				if (cap > LW_RD_MAX_LINE + 1)
					cap = LW_RD_MAX_LINE + 1;
				p = realloc(in->line, cap);
				if (!p)
					return -ENOMEM;
				in->line = p;
				in->cap = cap;
			}
			memcpy(in->line + in->used, b, take);
			in->used += take;
		}
		in->total += take;
		in->pos += take + (nl != NULL);
		if (nl) {
			in->newline = 1;
			break;
		}
		if (in->total > budget)
			return -EFBIG;
	}
	if (in->err)
		return in->err;
	if (!in->newline && !in->total)
		return 0;
	if (in->total <= LW_RD_MAX_LINE)
		in->line[in->used] = 0;
	return 1;
}

int lw_rd__load_stream(struct lw_report_data *d, FILE *f, const char *name)
{
	struct lw_rd_priv *p = d->priv;
	struct lw_rd_file_stats *fs;
	struct rd_in in = { .f = f };
	size_t records0 = d->records, skipped0 = d->skipped, by0[LW_RD_SKIP_N];
	uint64_t junk = 0;		/* bytes of skipped lines since the last record */
	int r = 0, k;

	if (lw_rd_grow((void **)&d->files, &p->capfiles, d->nfiles + 1, sizeof(*d->files)))
		return -ENOMEM;
	fs = &d->files[d->nfiles++];
	memset(fs, 0, sizeof(*fs));
	fs->path = lw_rd_pool_get(&p->pool, name ? name : "-", &p->oom);
	if (p->oom)
		return -ENOMEM;
	memcpy(by0, d->skipped_by, sizeof(by0));
	in.blk = malloc(RD_BLOCK);
	if (!in.blk)
		return -ENOMEM;
	while ((r = rd_line(&in, LW_RD_MAX_JUNK - junk)) > 0) {
		size_t len = in.used;

		fs->lines++;
		d->lines++;
		if (in.total > LW_RD_MAX_LINE) {
			skip(d, LW_RD_SKIP_TOO_LONG);
		} else {
			while (len && (in.line[len - 1] == '\r' || in.line[len - 1] == '\n'))
				in.line[--len] = 0;
			if (!len)
				continue;	/* blank lines are not worth a word */
			if (strlen(in.line) != len) {
				skip(d, LW_RD_SKIP_BINARY);
			} else {
				r = lw_rd__load_line(d, in.line);
				if (r < 0)
					break;
				if (r == 0) {
					junk = 0;
					continue;
				}
				if (!in.newline)
					fs->truncated_last = 1;
			}
		}
		junk += in.total + in.newline;
		if (junk > LW_RD_MAX_JUNK) {
			r = -EFBIG;
			break;
		}
	}
	free(in.blk);
	free(in.line);
	fs->records = d->records - records0;
	fs->skipped = d->skipped - skipped0;
	for (k = 0; k < LW_RD_SKIP_N; k++)
		fs->skipped_by[k] = d->skipped_by[k] - by0[k];
	if (fs->truncated_last)
		d->truncated++;
	return r < 0 ? r : 0;
}

int lw_rd__load_file(struct lw_report_data *d, const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	int fd, r;

	/* O_NONBLOCK: a FIFO with no writer opens at once (and reads as empty); cleared below */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st)) {
		r = -errno;
		close(fd);
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "cannot read %s: it is a directory", path);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "cannot read %s: it is a %s, not a report file (only regular "
			 "files and pipes are read; for anything else use standard input: "
			 "loopwatch report - < %s)", path, S_ISCHR(st.st_mode) ? "character device" :
			 S_ISBLK(st.st_mode) ? "block device" : S_ISSOCK(st.st_mode) ? "socket" :
			 "special file", path);
		return -ENODEV;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 || !(f = fdopen(fd, "r"))) {
		r = -errno;
		close(fd);
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	r = lw_rd__load_stream(d, f, path);
	fclose(f);
	if (r)
		lw_rd_load_error(err, errlen, path, r);
	return r;
}

void lw_rd_load_error(char *err, size_t errlen, const char *name, int r)
{
	if (r == -EFBIG)
		snprintf(err, errlen, "cannot read %s: %llu GiB without a record (not a report "
			 "file: binary data or no line breaks)", name,
			 (unsigned long long)(LW_RD_MAX_JUNK >> 30));
	else if (r == -ENOMEM)
		snprintf(err, errlen, "cannot read %s: out of memory (the report keeps every "
			 "record: read fewer files, or narrow it with --since/--until)", name);
	else
		snprintf(err, errlen, "cannot read %s: %s", name, strerror(-r));
}
