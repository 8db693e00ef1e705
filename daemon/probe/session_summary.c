// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/session_priv.h"

/* ------------------------------------------------------------------ aggregation */

static size_t agg_budget(void)
{
	static size_t budget;

	if (!budget) {
		const char *e = getenv("LW_SITE_BUDGET");
		long v = e ? atol(e) : 0;

		budget = v > 0 && v < LW_AGG_BUDGET ? (size_t)v : LW_AGG_BUDGET;
	}
	return budget;
}

/* the entry updated least recently goes */
static void agg_evict_one(struct lw_u64map *m)
{
	struct lw_agg *a;
	uint64_t key, oldest_key = 0, oldest = UINT64_MAX;
	size_t it = 0;

	while ((a = lw_u64map__next(m, &it, &key))) {
		if (a->used < oldest) {
			oldest = a->used;
			oldest_key = key;
		}
	}
	if (oldest != UINT64_MAX)
		lw_u64map__del(m, oldest_key, NULL);
}

struct lw_agg *lw_sess_agg_get(struct lw_u64map *m, const char *qualname, const char *file, int line,
			       const char *syscall, const char *target, uint64_t *evicted)
{
	static uint64_t seq;
	char key[600];
	int created;
	struct lw_agg *a;
	uint64_t h;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%d\x1f%s\x1f%s", qualname ? qualname : "",
		 file ? file : "", line, syscall ? syscall : "", target ? target : "");
	h = lw_hash_str(key);
	if (!lw_u64map__get(m, h) && lw_u64map__count(m) >= agg_budget()) {
		agg_evict_one(m);
		if (evicted)
			(*evicted)++;
	}
	a = lw_u64map__put(m, h, &created);
	if (a)
		a->used = ++seq;
	if (a && created) {
		lw_strlcpy(a->qualname, qualname ? qualname : "", sizeof(a->qualname));
		lw_strlcpy(a->file, file ? file : "", sizeof(a->file));
		a->line = line;
		lw_strlcpy(a->syscall, syscall ? syscall : "", sizeof(a->syscall));
		lw_strlcpy(a->target, target ? target : "", sizeof(a->target));
	}
	return a;
}

/* ------------------------------------------------------------------ summary */

struct site_row {
	const char *qualname;
	const char *file;
	int line;
	const char *syscall;
	const char *target;
	struct lw_hist h;
};

static int row_cmp(const void *a, const void *b)
{
	const struct site_row *x = a, *y = b;

	return x->h.total_ns < y->h.total_ns ? 1 : x->h.total_ns > y->h.total_ns ? -1 : 0;
}

static struct json_object *row_json(const struct site_row *r, int blocking)
{
	struct json_object *o = json_object_new_object();

	if (blocking) {
		json_object_object_add(o, "syscall", lw_j_str_or_null(r->syscall));
		json_object_object_add(o, "target", lw_j_str_or_null(r->target));
	}
	json_object_object_add(o, "qualname", lw_j_str_or_null(r->qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(r->file));
	json_object_object_add(o, "line", r->line > 0 ? json_object_new_int(r->line) : NULL);
	json_object_object_add(o, "count", json_object_new_int64((int64_t)r->h.count));
	json_object_object_add(o, "total_ms", lw_j_ms(r->h.total_ns));
	json_object_object_add(o, "p50_ms", lw_j_ms(lw_hist_quantile(&r->h, 0.50)));
	json_object_object_add(o, "p99_ms", lw_j_ms(lw_hist_quantile(&r->h, 0.99)));
	json_object_object_add(o, "max_ms", lw_j_ms(r->h.max_ns));
	if (!blocking) {
		struct json_object *hist = json_object_new_array();
		uint32_t i;

		/* the histogram itself: [low_ms, count] for non-empty slots */
		for (i = 0; i < LW_HIST_SLOTS; i++) {
			struct json_object *pair;

			if (!r->h.slots[i])
				continue;
			pair = json_object_new_array();
			json_object_array_add(pair, lw_j_ms(lw_hist_slot_low(i)));
			json_object_array_add(pair, json_object_new_int64(r->h.slots[i]));
			json_object_array_add(hist, pair);
		}
		json_object_object_add(o, "hist", hist);
	}
	return o;
}

struct rows {
	struct site_row *v;
	size_t n, cap;
};

static struct site_row *rows_add(struct rows *rs)
{
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 64;
		struct site_row *nv = realloc(rs->v, nc * sizeof(*nv));

		if (!nv)
			return NULL;
		rs->v = nv;
		rs->cap = nc;
	}
	memset(&rs->v[rs->n], 0, sizeof(rs->v[0]));
	return &rs->v[rs->n++];
}

struct site_walk {
	struct lw_session *s;
	struct rows *rows;
	int final;
};

static int site_cb(void *arg, uint64_t site, const struct lw_hist *h)
{
	struct site_walk *w = arg;
	struct lw_session *s = w->s;
	int created = 0;
	struct lw_site_id *si = lw_u64map__put(s->sites, site, &created);
	const struct lw_hist *moved = lw_u64map__get(s->moved_out, site);
	struct lw_hist adj;
	struct site_row *r;

	if (!si)
		return 0;
	if (moved) {
		/* its slow callbacks counted under their routes (session.c, count_moved) */
		int i;

		lw_hist_delta(&adj, h, moved);
		for (i = LW_HIST_SLOTS - 1; i >= 0 && !adj.slots[i]; i--)
			;
		if (i < 0)
			adj.max_ns = 0;
		else if (adj.max_ns >= lw_hist_slot_high((uint32_t)i))
			adj.max_ns = lw_hist_slot_high((uint32_t)i) - 1;	/* at most */
		h = &adj;
	}
	if (created && s->codes) {
		/* the SITE record was lost: ask the code object itself */
		const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, site);

		if (pc) {
			lw_strlcpy(si->qualname, pc->qualname, sizeof(si->qualname));
			lw_strlcpy(si->file, pc->file, sizeof(si->file));
			si->line = pc->firstlineno;
		} else {
			snprintf(si->qualname, sizeof(si->qualname), "<site 0x%llx>",
				 (unsigned long long)site);
		}
	}
	r = rows_add(w->rows);
	if (!r)
		return -ENOMEM;
	r->qualname = si->qualname;
	r->file = si->file;
	r->line = si->line;
	if (w->final) {
		r->h = *h;
	} else {
		lw_hist_delta(&r->h, h, &si->prev);
		si->prev = *h;
	}
	return 0;
}

static void agg_rows(struct lw_u64map *m, struct rows *rows, int final, int blocking)
{
	struct lw_agg *a;
	size_t it = 0;

	while ((a = lw_u64map__next(m, &it, NULL))) {
		struct site_row *r = rows_add(rows);

		if (!r)
			return;
		r->qualname = a->qualname;
		r->file = a->file;
		r->line = a->line;
		if (blocking) {
			r->syscall = a->syscall;
			r->target = a->target;
		}
		if (final) {
			r->h = a->h;
		} else {
			lw_hist_delta(&r->h, &a->h, &a->prev);
			a->prev = a->h;
		}
	}
}

static struct json_object *rows_json(struct rows *rows, int blocking, size_t *omitted)
{
	struct json_object *a = json_object_new_array();
	size_t i, shown = 0;

	if (rows->n)
		qsort(rows->v, rows->n, sizeof(rows->v[0]), row_cmp);
	for (i = 0; i < rows->n; i++) {
		if (!rows->v[i].h.count)
			continue;
		if (shown == MAX_SUMMARY_SITES) {
			(*omitted)++;
			continue;
		}
		json_object_array_add(a, row_json(&rows->v[i], blocking));
		shown++;
	}
	return a;
}

/* the rows of a userspace aggregate (slow callbacks, blocking sites): biggest total first */
struct json_object *lw_sess_agg_json(struct lw_u64map *m, int final, int blocking, size_t *omitted)
{
	struct rows rows = { 0 };
	struct json_object *a;

	agg_rows(m, &rows, final, blocking);
	a = rows_json(&rows, blocking, omitted);
	free(rows.v);
	return a;
}

/*
 * What the BPF side dropped besides ring-buffer records (lost_events), host-wide since the
 * programs were loaded: threads not tracked (threads map full), precise callbacks not counted
 * (sites map full), unbalanced entry/return probes, user stacks for the CFI unwinder not copied
 * or cut short. Zero when nothing was lost; always present, so that a reader can tell.
 */
void lw_sess_add_bpf_losses(const struct lw_session *s, struct json_object *o)
{
	struct lw_bpf_counters bc = { 0 };

	if (s->bpf)
		lw_bpf__counters(s->bpf, &bc);
	json_object_object_add(o, "thread_map_full",
			       json_object_new_int64((int64_t)bc.thread_map_full));
	json_object_object_add(o, "sites_map_full", json_object_new_int64((int64_t)bc.sites_full));
	/* this process's records dropped for its share of the ring (the others' are kept) */
	json_object_object_add(o, "fair_share_drops",
			       json_object_new_int64((int64_t)lw_bpf__fair_drops(s->bpf, s->pid)));
	/* this process's threads not tracked: it had its share of the threads map */
	json_object_object_add(o, "thread_quota_drops",
			       json_object_new_int64((int64_t)lw_bpf__thread_quota_drops(s->bpf,
											  s->pid)));
	/* this process's threads refused an entry in the tstates map (its share, or a full map) */
	json_object_object_add(o, "tstate_quota_drops",
			       json_object_new_int64((int64_t)s->tst_quota_drops));
	json_object_object_add(o, "depth_errors", json_object_new_int64((int64_t)bc.depth_errors));
	json_object_object_add(o, "ustack_failed",
			       json_object_new_int64((int64_t)bc.ustack_failed));
	json_object_object_add(o, "ustack_cut", json_object_new_int64((int64_t)bc.ustack_cut));
}

/* read_errors by what the read was for (the BPF walk's causes, then loopwatch's own reads of
 * the target's memory: names, lines, Tasks); only causes with failures. Sums to read_errors. */
static struct json_object *read_errors_by(struct lw_session *s, const uint64_t bpf_by[LW_RD_NCAUSES])
{
	static const char *const names[LW_RD_NCAUSES] = LW_RD_CAUSE_NAMES;
	struct json_object *by = json_object_new_object();
	uint64_t user = s->mem ? lw_memread__errors(s->mem) : 0;
	int i;

	for (i = 0; i < LW_RD_NCAUSES; i++)
		if (bpf_by[i])
			json_object_object_add(by, names[i],
					       json_object_new_int64((int64_t)bpf_by[i]));
	if (user)
		json_object_object_add(by, "userspace", json_object_new_int64((int64_t)user));
	return by;
}

struct json_object *lw_session__summary(struct lw_session *s, int final, uint64_t now)
{
	struct json_object *o = lw_j_record("summary", s->pid, lw_sess_real_of(now));
	struct json_object *util = json_object_new_object(), *loops = json_object_new_array();
	struct rows rows = { 0 };
	struct site_walk w = { s, &rows, final };
	struct lw_bpf_counters bc;
	struct lw_sthread *t;
	struct lw_loop_stats *ls;
	size_t it = 0, omitted = 0, bomitted = 0;
	uint64_t since = final ? s->start_mono : s->last_summary_mono;

	ls = malloc(sizeof(*ls));
	json_object_object_add(o, "final", json_object_new_boolean(final));
	json_object_object_add(o, "interval_s", lw_j_num((double)(now - since) / 1e9, 3));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	/* loop threads */
	while (ls && (t = lw_u64map__next(s->threads, &it, NULL))) {
		struct lw_loop_stats d;
		struct json_object *l;
		char key[16];
		uint64_t wall;
		struct lw_hist lag;
		uint32_t i;

		if (lw_bpf__get_loop_stats(s->bpf, t->tid, ls) || !ls->iterations)
			continue;
		d = *ls;
		if (!final && t->have_prev) {
			d.iterations -= t->prev.iterations;
			d.gc_count -= t->prev.gc_count;
			d.gc_ns -= t->prev.gc_ns;
			d.busy_ns -= t->prev.busy_ns;
			d.idle_ns -= t->prev.idle_ns;
			d.callbacks -= t->prev.callbacks;
			for (i = 0; i < LW_HIST_SLOTS; i++)
				d.lag[i] -= t->prev.lag[i];
		}
		if (final || !t->have_prev)
			d.idle_ns += t->pre_idle_ns;
		if (!final) {
			t->prev = *ls;
			t->have_prev = 1;
		}
		wall = d.busy_ns + d.idle_ns;
		snprintf(key, sizeof(key), "%d", (int)t->tid);
		json_object_object_add(util, key, lw_j_num(wall ? (double)d.busy_ns / (double)wall : 0, 4));
		l = json_object_new_object();
		json_object_object_add(l, "tid", json_object_new_int(t->tid));
		json_object_object_add(l, "comm", lw_j_str_or_null(t->comm));
		json_object_object_add(l, "utilization",
				       lw_j_num(wall ? (double)d.busy_ns / (double)wall : 0, 4));
		json_object_object_add(l, "iterations", json_object_new_int64((int64_t)d.iterations));
		json_object_object_add(l, "busy_ms", lw_j_ms(d.busy_ns));
		json_object_object_add(l, "gc_collections", json_object_new_int64((int64_t)d.gc_count));
		json_object_object_add(l, "gc_ms", lw_j_ms(d.gc_ns));
		json_object_object_add(l, "callbacks", s->o.precise ?
					json_object_new_int64((int64_t)d.callbacks) : NULL);
		json_object_object_add(l, "callbacks_per_iteration",
				       s->o.precise && d.iterations ?
					       lw_j_num((double)d.callbacks / (double)d.iterations, 2) :
					       NULL);
		memset(&lag, 0, sizeof(lag));
		for (i = 0; i < LW_HIST_SLOTS; i++) {
			lag.slots[i] = d.lag[i];
			lag.count += d.lag[i];
		}
		lag.max_ns = lag.count ? lw_hist_slot_high(LW_HIST_SLOTS - 1) : 0;
		for (i = LW_HIST_SLOTS; i-- > 0;)
			if (lag.slots[i]) {
				lag.max_ns = lw_hist_slot_high(i);
				break;
			}
		json_object_object_add(l, "lag_p50_ms", lw_j_ms(lw_hist_quantile(&lag, 0.5)));
		json_object_object_add(l, "lag_p99_ms", lw_j_ms(lw_hist_quantile(&lag, 0.99)));
		{
			struct json_object *hist = json_object_new_array();

			for (i = 0; i < LW_HIST_SLOTS; i++) {
				struct json_object *pair;

				if (!lag.slots[i])
					continue;
				pair = json_object_new_array();
				json_object_array_add(pair, lw_j_ms(lw_hist_slot_low(i)));
				json_object_array_add(pair, json_object_new_int64(lag.slots[i]));
				json_object_array_add(hist, pair);
			}
			json_object_object_add(l, "lag_hist", hist);
		}
		json_object_array_add(loops, l);
	}
	free(ls);
	json_object_object_add(o, "loop_utilization", util);
	json_object_object_add(o, "loops", loops);
	/* callback sites */
	if (s->o.precise)
		lw_bpf__for_each_site(s->bpf, s->pid, site_cb, &w);
	/* precise mode: the slow callbacks counted under a route instead of their callback */
	agg_rows(s->slow_sites, &rows, final, 0);
	json_object_object_add(o, "sites_scope", json_object_new_string(s->o.precise ? "all" : "slow"));
	json_object_object_add(o, "sites", rows_json(&rows, 0, &omitted));
	json_object_object_add(o, "sites_omitted", json_object_new_int64((int64_t)omitted));
	json_object_object_add(o, "sites_evicted", json_object_new_int64((int64_t)s->sites_evicted));
	/* the code-object cache's and the perf map's budgets (issue 19): entries evicted */
	json_object_object_add(o, "codes_evicted",
			       json_object_new_int64((int64_t)lw_pycache__evicted(s->codes)));
	{
		struct lw_perfmap_stats pm;

		lw_nativesym__perf_map_stats(s->nsym, &pm);
		json_object_object_add(o, "perf_map_evicted", json_object_new_int64((int64_t)pm.evicted));
	}
	json_object_object_add(o, "blocking_sites", lw_sess_agg_json(s->block_sites, final, 1, &bomitted));
	if (s->is_python) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "unawaited_coroutines",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_UNAWAITED]));
		json_object_object_add(a, "exceptions_never_retrieved",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_NEVER_RETRIEVED]));
		json_object_object_add(a, "tasks_destroyed_pending",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_DESTROYED_PENDING]));
		json_object_object_add(o, "asyncio", a);
	}
	json_object_object_add(o, "slow_callbacks", json_object_new_int64((int64_t)s->counts.slow_callbacks));
	json_object_object_add(o, "slow_ticks", json_object_new_int64((int64_t)s->counts.slow_ticks));
	/* slow stretches dropped as no loop iteration: outside any asyncio loop, or a loop whose
	 * selector never polls (issue 20); a slow callback lost that way shows here (issue 18) */
	json_object_object_add(o, "not_iterations",
			       json_object_new_int64((int64_t)s->counts.not_iterations));
	json_object_object_add(o, "blocking_calls", json_object_new_int64((int64_t)s->counts.blocking_calls));
	if (s->counts.stuck_tasks)
		json_object_object_add(o, "stuck_tasks",
				       json_object_new_int64((int64_t)s->counts.stuck_tasks));
	lw_bpf__counters(s->bpf, &bc);
	json_object_object_add(o, "lost_events", json_object_new_int64((int64_t)bc.lost_events));
	{
		/* this process's, not every process's of the BPF instance (a loopwatchd tracing
		 * many: issue 20 item 10, a brand-new idle worker showed 12) */
		uint64_t by[LW_RD_NCAUSES], n = lw_bpf__proc_read_errors(s->bpf, s->pid, by);

		json_object_object_add(o, "read_errors",
				       json_object_new_int64((int64_t)(n + (s->mem ?
						       lw_memread__errors(s->mem) : 0))));
		json_object_object_add(o, "read_errors_by", read_errors_by(s, by));
	}
	lw_sess_add_bpf_losses(s, o);
	/* the threads loopwatch keeps state for: live ones and loop threads that ended (issue 19:
	 * a process starting and ending threads grew this without bound) */
	json_object_object_add(o, "threads_tracked",
			       json_object_new_int64((int64_t)lw_u64map__count(s->threads)));
	free(rows.v);
	if (!final)
		s->last_summary_mono = now;
	return o;
}
