// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "report/report_priv.h"

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
	if (e->has_callback && (lw_rd_site_matches(pat, e->cb.qualname, e->cb.file, e->cb.line) ||
				lw_rd_site_matches(pat, e->site.qualname, e->site.file, e->site.line)))
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
		if (lw_rd_grow((void **)&pa->loops, &pa->caploops, pa->nloops + 1, sizeof(*pa->loops)))
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
		       const struct lw_rd_filter *f, uint64_t slow, uint64_t blocking)
{
	size_t i, matched = 0;
	int r = 0;

	for (i = 0; i < s->nsites && !r; i++)
		if (!f->site || lw_rd_site_matches(f->site, s->sites[i].qualname, s->sites[i].file,
						   s->sites[i].line)) {
			r = lw_rd_acc_add_row(&pa->sites, &s->sites[i]);
			matched++;
		}
	/* blocking rows are keyed by the frame that blocked, not by callback: with a site
	 * filter, blocking sites come from the matching records (see lw_rd__finish) */
	for (i = 0; i < s->nbsites && !r && !f->site; i++) {
		r = lw_rd_acc_add_row(&pa->bsites, &s->bsites[i]);
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
		pa->pid->slow_callbacks += slow;
		pa->pid->blocking_calls += blocking;
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

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->run_seq < y->run_seq ? -1 : x->run_seq > y->run_seq;	/* --by run */
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
			if (lw_rd_grow((void **)&p->runs, &caprun, p->nruns + 1, sizeof(*p->runs)))
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

/* what lw_rd__finish() builds while it walks the runs */
struct fin {
	struct lw_report_data *d;
	struct lw_rd_priv *p;
	const struct lw_rd_filter *flt;
	struct lw_u64map *pidmap;	/* pid -> index + 1 into pas */
	struct pid_acc *pas;
	size_t npas, cappas;
	size_t *used;			/* items of the run's periodic summaries in use */
	size_t nused, capused;
	size_t *ridx, *rstart;		/* items grouped by run (group_by_run) */
};

/* the accumulator of a pid, created at its first run (by_run: of each run) */
static struct pid_acc *pid_acc_of(struct fin *f, pid_t pid, size_t run0)
{
	struct pid_acc *pa;
	size_t *slot;
	int created;

	slot = lw_u64map__put(f->pidmap, f->flt->by_run ? (uint64_t)run0 : (uint64_t)pid,
			      &created);
	if (!slot)
		return NULL;
	if (created) {
		if (lw_rd_grow((void **)&f->pas, &f->cappas, f->npas + 1, sizeof(*f->pas)))
			return NULL;
		pa = &f->pas[f->npas++];
		memset(pa, 0, sizeof(*pa));
		*slot = f->npas;
		pa->pid = calloc(1, sizeof(*pa->pid));
		if (!pa->pid)
			return NULL;
		pa->pid->pid = pid;
		if (f->flt->by_run) {
			size_t k;

			pa->pid->run_id = run0 + 1;
			pa->pid->run_seq = 1;
			for (k = 0; k < run0; k++)
				pa->pid->run_seq += f->p->runs[k].pid == pid;
		}
	}
	return &f->pas[*slot - 1];
}

/* what the run's start record says of the pid; its mode */
static const char *use_start(const struct rd_start *st, struct lw_rd_pid *pp)
{
	pp->comm = st->comm ? st->comm : pp->comm;
	pp->runtime = st->runtime ? st->runtime : pp->runtime;
	pp->runtime_version = st->runtime_version ? st->runtime_version : pp->runtime_version;
	pp->target_name = st->target_name ? st->target_name : pp->target_name;
	return st->mode;
}

/* summaries first: which ones count, and which time they cover; 0 or -errno */
static int run_summaries(struct fin *f, size_t run0, struct pid_acc *pa, const char **mode,
			 int *touched)
{
	const struct lw_rd_priv *p = f->p;
	const struct rd_run *run = &p->runs[run0];
	struct lw_rd_pid *pp = pa->pid;
	uint64_t prev_slow = 0, prev_blocking = 0, slow, blocking;
	size_t k, i;
	int r;

	f->nused = 0;
	for (k = f->rstart[run0]; k < f->rstart[run0 + 1]; k++) {
		const struct rd_item *it = &p->items[f->ridx[k]];

		i = f->ridx[k];
		if (it->kind == RD_K_SUMMARY) {
			const struct rd_summary *s = &p->sums[it->idx];
			int use = run->use_final ? (long)i == run->final :
				  !s->final && span_in_window(f->flt, it->ts, s->span_ns);

			/* a summary's slow_callbacks and blocking_calls count from the run's start
			 * (periodic ones too): a periodic summary adds what its interval added */
			slow = s->slow_callbacks;
			blocking = s->blocking_calls;
			if (!s->final) {
				slow = slow >= prev_slow ? slow - prev_slow : slow;
				blocking = blocking >= prev_blocking ? blocking - prev_blocking
								     : blocking;
				prev_slow = s->slow_callbacks;
				prev_blocking = s->blocking_calls;
			}
			if (!*mode)
				*mode = s->mode;
			if (!use)
				continue;
			r = use_summary(pa, s, it->ts, f->flt, slow, blocking);
			if (r < 0)
				return r;
			*touched |= r;
			if (!s->final) {
				if (lw_rd_grow((void **)&f->used, &f->capused, f->nused + 1,
					       sizeof(*f->used)))
					return -ENOMEM;
				f->used[f->nused++] = i;
			}
		} else if (it->kind == RD_K_END) {
			if (!in_window(f->flt, it->ts) || f->flt->site)
				continue;
			pp->lost_events += p->ends[it->idx].lost_events;
			pp->suppressed += p->ends[it->idx].suppressed;
			*touched = 1;
		}
	}
	return 0;
}

/* a suppressed-count record in range: 1 when it counted, 0 when not, -ENOMEM */
static int run_supp(struct fin *f, const struct rd_supp *sp, int count, struct pid_acc *pa)
{
	struct lw_rd_pid *pp = pa->pid;

	if (!count || (f->flt->site &&
		       !lw_rd_site_matches(f->flt->site, sp->qualname, sp->file, sp->line)))
		return 0;
	/* suppressed slow callbacks count at their callback's site;
	 * blocking ones are keyed by callback, blocking sites are not */
	if (!sp->blocking && lw_rd_acc_add_supp(&pa->sites, sp))
		return -ENOMEM;
	if (sp->blocking && !f->flt->site)
		pp->blocking_calls += sp->count;
	else if (!sp->blocking)
		pp->slow_callbacks += sp->count;
	return 1;
}

/* an event record in range: listed; counted when *count; sets *recs, *touched; 0 or -ENOMEM */
static int run_event(struct fin *f, struct lw_rd_event *e, int count, struct pid_acc *pa,
		     const char **mode, int *recs, int *touched)
{
	const struct lw_rd_filter *flt = f->flt;
	const struct lw_rd_frame *top = e->nstack ? &e->stack[0] : NULL;
	struct lw_rd_pid *pp = pa->pid;

	if (!event_matches(e, flt->site))
		return 0;
	f->d->ev[f->d->nev++] = e;
	pp->nevents++;
	*touched = 1;
	if (!*mode)
		*mode = e->mode;
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
		return 0;
	*recs = 1;
	if (e->type == LW_RD_SLOW_CALLBACK) {
		pp->slow_callbacks += !flt->site;
		pa->scopes |= 1;
		if (lw_rd_acc_add_value(&pa->sites, e->site.qualname, e->site.file,
					e->has_callback ? e->site.line : -1, NULL, NULL,
					e->duration_ms))
			return -ENOMEM;
	} else {
		pp->blocking_calls += !flt->site;
		if (lw_rd_acc_add_value(&pa->bsites, top ? top->function : NULL,
					top ? top->file : NULL, top ? top->line : -1,
					e->syscall, e->target, e->duration_ms))
			return -ENOMEM;
	}
	return 0;
}

/* events, suppressed counts: listed when in range, counted when no summary did; 0 or -errno */
static int run_records(struct fin *f, size_t run0, struct pid_acc *pa, const char **mode,
		       int *recs, int *touched)
{
	const struct lw_rd_priv *p = f->p;
	const struct rd_run *run = &p->runs[run0];
	size_t k;
	int count, r;

	for (k = f->rstart[run0]; k < f->rstart[run0 + 1]; k++) {
		const struct rd_item *it = &p->items[f->ridx[k]];

		if (it->kind != RD_K_EVENT && it->kind != RD_K_SUPP)
			continue;
		if (it->kind == RD_K_EVENT)
			p->evs[it->idx].run_id = run0 + 1;
		if (!in_window(f->flt, it->ts))
			continue;
		count = !run->use_final && !covered(p, f->used, f->nused, it->ts);
		if (it->kind == RD_K_SUPP) {
			r = run_supp(f, &p->supps[it->idx], count, pa);
			if (r < 0)
				return r;
			if (r)
				*recs = *touched = 1;
			continue;
		}
		r = run_event(f, &p->evs[it->idx], count, pa, mode, recs, touched);
		if (r < 0)
			return r;
	}
	return 0;
}

/* one run of one pid into its pid's accumulator; 0 or -errno */
static int finish_run(struct fin *f, size_t run0)
{
	struct rd_run *run = &f->p->runs[run0];
	struct pid_acc *pa;
	struct lw_rd_pid *pp;
	const char *mode = NULL;
	int recs = 0, touched = 0, r;

	if (f->flt->pid && run->pid != f->flt->pid)
		return 0;
	pa = pid_acc_of(f, run->pid, run0);
	if (!pa)
		return -ENOMEM;
	pp = pa->pid;
	if (run->start >= 0)
		mode = use_start(&f->p->starts[run->start], pp);
	if (run->final >= 0) {
		const struct rd_item *fi = &f->p->items[run->final];

		run->use_final = span_in_window(f->flt, fi->ts, f->p->sums[fi->idx].span_ns);
	}
	r = run_summaries(f, run0, pa, &mode, &touched);
	if (!r)
		r = run_records(f, run0, pa, &mode, &recs, &touched);
	if (r)
		return r;
	pp->record_sets += recs;
	if (!touched)
		return 0;
	pp->runs++;
	if (mode && strcmp(mode, "precise") == 0)
		pp->precise_runs++;
	else if (mode)
		pp->default_runs++;
	return 0;
}

/* per pid tables; 0 or -ENOMEM */
static int pid_tables(struct fin *f)
{
	struct lw_report_data *d = f->d;
	size_t i;

	d->pids = calloc(f->npas ? f->npas : 1, sizeof(*d->pids));
	if (!d->pids)
		return -ENOMEM;
	for (i = 0; i < f->npas; i++) {
		struct pid_acc *pa = &f->pas[i];
		struct lw_rd_pid *pp = pa->pid;

		if (!pp->runs)
			continue;	/* nothing of it in range */
		lw_rd_acc_finish(&pa->sites, &pp->sites, &pp->nsites);
		lw_rd_acc_finish(&pa->bsites, &pp->bsites, &pp->nbsites);
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
	return 0;
}

int lw_rd__finish(struct lw_report_data *d, const struct lw_rd_filter *flt)
{
	static const struct lw_rd_filter none = { 0 };
	struct lw_rd_priv *p = d->priv;
	struct fin f = { .d = d, .p = p, .flt = flt ? flt : &none };
	size_t j, run0;
	int r = -ENOMEM;

	if (p->finished)
		return -EINVAL;
	p->finished = 1;
	if (p->oom)
		return -ENOMEM;
	if (p->nitems)
		qsort(p->items, p->nitems, sizeof(*p->items), item_cmp);
	if (split_runs(p) || group_by_run(p, &f.ridx, &f.rstart) ||
	    lw_u64map__new(sizeof(size_t), &f.pidmap))
		goto out;
	d->ev = calloc(p->nevs ? p->nevs : 1, sizeof(*d->ev));
	if (!d->ev)
		goto out;
	for (run0 = 0; run0 < p->nruns; run0++) {
		r = finish_run(&f, run0);
		if (r)
			goto out;
	}
	r = pid_tables(&f);
	if (r)
		goto out;
	if (d->npids)
		qsort(d->pids, d->npids, sizeof(*d->pids), pid_cmp);
	/* --by run: the runs shown numbered 1, 2... per pid (those with nothing in range left out) */
	for (j = 0; flt && flt->by_run && j < d->npids; j++)
		d->pids[j].run_seq = j && d->pids[j - 1].pid == d->pids[j].pid ?
				     d->pids[j - 1].run_seq + 1 : 1;
	if (d->nev)
		qsort(d->ev, d->nev, sizeof(*d->ev), ev_cmp);
	r = link_parents(d);
out:
	for (j = 0; j < f.npas; j++) {
		lw_rd_acc_free(&f.pas[j].sites);
		lw_rd_acc_free(&f.pas[j].bsites);
		free(f.pas[j].loops);
		free(f.pas[j].pid);
	}
	free(f.pas);
	free(f.used);
	free(f.ridx);
	free(f.rstart);
	lw_u64map__free(f.pidmap, NULL);
	return r;
}
