// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A session's live alerts: lw_session__tick, the periodic look at each loop thread (late
 * interpreter setup, uvloop, asyncio hooks, then an alert for an iteration running past its
 * limit; session.h). The records themselves: session.c. */
#include "probe/session_priv.h"

/* asyncio: the periodic Task inventory. A Task pending at the same await past stuck_after is
 * a stuck_task record, once per wait; a deadlock (Tasks awaiting each other) says so. Costs one
 * snapshot per period (about 5 ms per 1,000 Tasks); nothing when asyncio is not imported. */
static void stuck_inventory(struct lw_session *s, uint64_t now, lw_emit_fn emit, void *ctx)
{
	uint64_t every = s->o.stuck_every_ns ? s->o.stuck_every_ns : 10000000000ull;
	uint64_t after = s->o.stuck_after_ns ? s->o.stuck_after_ns : 60000000000ull;
	struct lw_stuck_task out[8];
	struct lw_tasks ts;
	char err[256];
	int n, i;
	unsigned k;

	if (!s->is_python || now - s->last_stuck < every)
		return;
	s->last_stuck = now;
	if (!s->stuck && lw_stuck__new(&s->stuck))
		return;
	if (lw_pytasks__snapshot(&s->py, &s->rd, &ts, err, sizeof(err)))
		return;
	n = lw_stuck__update(s->stuck, &ts, now, after, out, LW_ARRAY_SIZE(out));
	for (i = 0; i < n; i++) {
		const struct lw_task *t = out[i].t;
		struct json_object *o = lw_j_record("stuck_task", s->pid, lw_sess_real_of(now));
		struct json_object *task = json_object_new_object(), *st = json_object_new_array(),
				   *by = json_object_new_array();
		char id[32];

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->addr);
		json_object_object_add(o, "tid", t->tid ? json_object_new_int(t->tid) : NULL);
		json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
		if (s->target[0])
			json_object_object_add(o, "target_name", json_object_new_string(s->target));
		json_object_object_add(task, "id", json_object_new_string(id));
		json_object_object_add(task, "name", json_object_new_string(t->name));
		json_object_object_add(task, "coro", json_object_new_string(t->coro));
		json_object_object_add(task, "state",
				       json_object_new_string(lw_task_state_name(t->state)));
		json_object_object_add(o, "task", task);
		json_object_object_add(o, "pending_ms", lw_j_ms(out[i].pending_ns));
		json_object_object_add(o, "threshold_ms", lw_j_ms(after));
		for (k = 0; k < t->nframes; k++) {
			struct json_object *f = json_object_new_object();

			json_object_object_add(f, "qualname",
					       json_object_new_string(t->frames[k].qualname));
			json_object_object_add(f, "file", json_object_new_string(t->frames[k].file));
			json_object_object_add(f, "line", t->frames[k].line >= 0 ?
					       json_object_new_int(t->frames[k].line) : NULL);
			json_object_array_add(st, f);
		}
		json_object_object_add(o, "stack", st);
		if (t->awaits_kind[0]) {
			struct json_object *a = json_object_new_object();

			json_object_object_add(a, "kind", json_object_new_string(t->awaits_kind));
			json_object_object_add(a, "what", json_object_new_string(t->awaits));
			json_object_object_add(o, "awaits", a);
		} else {
			json_object_object_add(o, "awaits", NULL);
		}
		for (k = 0; k < t->nawaiters; k++) {
			struct json_object *a = json_object_new_object();
			long w = lw_tasks__find(&ts, t->awaiters[k].task);

			snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->awaiters[k].task);
			json_object_object_add(a, "id", json_object_new_string(id));
			json_object_object_add(a, "name", w >= 0 ?
					       json_object_new_string(ts.v[w].name) : NULL);
			json_object_object_add(a, "via", json_object_new_string(t->awaiters[k].via));
			json_object_array_add(by, a);
		}
		json_object_object_add(o, "awaited_by", by);
		json_object_object_add(o, "deadlock", json_object_new_boolean(t->deadlock));
		s->counts.stuck_tasks++;
		emit(ctx, o);
	}
	lw_pytasks__free(&ts);
}

#define LOOK_RETRIES 5

/* A live-alert look: the thread's BPF stacks, and the stack walked now */
struct look {
	struct lw_tstacks t;
	struct lw_pystack walk, again;
};

/* The frame _run_once calls (Handle._run, its select(), ...), or 0 */
static uint64_t run_once_callee(const struct lw_session *s, const struct lw_pystack *st,
				uint64_t *frame)
{
	uint32_t i;

	for (i = 1; i < st->nframes && i < LW_MAX_PYFRAMES; i++)
		if (st->frames[i].code == s->py.cfg.run_once_code) {
			*frame = st->frames[i - 1].frame;
			return st->frames[i - 1].code;
		}
	*frame = 0;
	return 0;
}

/*
 * A stack walked from outside while the thread runs on is torn when the frames change under
 * the reads (a loop running thousands of short callbacks: the walk joins one callback's frames
 * to another's _run_once line). Two walks that agree on what _run_once calls and on the
 * callback are one state; a long-running callback always gives that.
 */
static int walks_agree(const struct lw_session *s, const struct lw_pystack *a,
		       const struct lw_pystack *b)
{
	uint64_t fa, fb;

	if (!s->py.cfg.run_once_code)
		return 1;
	return run_once_callee(s, a, &fa) == run_once_callee(s, b, &fb) && fa == fb &&
	       a->cb_callable == b->cb_callable && a->hrun.code == b->hrun.code;
}

/* the look's frames as its alert names them, for the iteration's own record (lw_sess_add_stack) */
static void keep_look(struct lw_sthread *t, struct json_object *o)
{
	struct json_object *a = lw_j_get(o, "stack"), *inc = lw_j_get(o, "stack_incomplete");

	if (!a || json_object_deep_copy(a, &t->alert_js, NULL)) {
		t->alert_js = NULL;
		return;
	}
	t->alert_js_dropped = inc && strcmp(json_object_get_string(inc), "unreadable") == 0;
}

/* One CPU sample stack of this iteration in the callback the look found (or none to say) */
static int sample_in(const struct lw_pystack *x, const struct lw_pystack *look, uint64_t since)
{
	if (!(x->flags & LW_STACK_VALID) || x->ts_ns < since)
		return 1;	/* none taken in this iteration: nothing against it */
	return x->cb_callable == look->cb_callable;
}

/*
 * Default mode names an on-CPU iteration after the callback its look finds running. Right
 * when that callback is what has been running: the latest CPU sample of the iteration, and
 * the function most of them were taken in, are in the same callback. A loop whose selector
 * never polls (a mock) runs thousands of short callbacks in one "iteration": a look lands in
 * one of them, the samples in others. No samples (--no-sampling, none yet): as before.
 */
static int samples_agree(const struct lw_session *s, const struct lw_tstacks *k,
			 const struct lw_pystack *look, uint64_t since)
{
	if (!look->cb_callable)
		return 1;
	return sample_in(&k->sample, look, since) && sample_in(&k->cpu, look, since);
}

/*
 * Precise mode: the callback running on th began less than the threshold before now. One that
 * began after now (the tick's clock was read before this thread's state: between them a loop
 * that never polls begins many callbacks) is young too; before, it read as old and a live alert
 * went out for a callback microseconds old, named after nothing (issue 20: a 0.13 s alert in
 * a mock-selector loop on sid's 3.15, about 1 run in 12).
 */
int lw_sess_cb_young(const struct lw_session *s, const struct lw_thread *th, uint64_t now)
{
	return s->o.precise && th->cb_depth && th->cb_start_ns &&
	       th->cb_start_ns + s->o.threshold_ns > now;
}

/*
 * Whether the tick can pass over thread t without copying its BPF state (~2.8 KB a syscall;
 * issue 19: 0.35 s of CPU a second at 2,048 idle threads): by its busy-period word, when it is
 * the thread's own, the loop below would pass over it too: not in a busy period, in one
 * known to be no iteration or alerted twice already, or in one younger than its alert limit.
 * Anything else (a word of another thread, a start after now) is left to the full look.
 */
static int tick_can_skip(const struct lw_session *s, const struct lw_sthread *t, uint64_t now)
{
	uint64_t w = lw_bpf__busy_word(s->bpf, t->tid), start = w & LW_BUSY_TIME_MASK, limit;
	int same;

	if ((w >> LW_BUSY_SHIFT) != ((uint64_t)t->tid & LW_BUSY_TID_MASK))
		return 0;
	if (!start)
		return 1;
	if (t->noiter && LW_BUSY_TIME(t->noiter) == start)
		return 1;
	same = t->alerted_iter && LW_BUSY_TIME(t->alerted_iter) == start;
	if (same && t->alert_level >= 2)
		return 1;
	limit = s->o.threshold_ns * (same && t->alert_level ? 10 : 1);
	/* in 16 ns units, modulo the word's round */
	return ((LW_BUSY_TIME(now) - start) & LW_BUSY_TIME_MASK) < (limit >> 4);
}

void lw_session__tick(struct lw_session *s, uint64_t now, lw_emit_fn emit, void *ctx)
{
	struct lw_sthread *t;
	struct lw_thread th;
	struct look *stk = NULL;
	size_t it = 0;

	/* an interpreter attached while it started: thread states, GIL, asyncio appear later */
	if (s->is_python && now - s->last_refresh > 500000000ull &&
	    (!(s->py.tsd_base || s->py.tls_off) || !s->py.gil || !s->py.cfg.run_once_code)) {
		s->last_refresh = now;
		if (lw_py__refresh(&s->py, &s->rd)) {
			lw_sess_refresh_tstates(s);
			lw_sess_push_cfg(s);
		}
		if (!s->py.cfg.run_once_code)
			lw_sess_learn_some(s);
	}
	if (s->o.precise && s->is_python && s->uv_handles[0] < 0 &&
	    now - s->last_uv_try > 1000000000ull) {
		s->last_uv_try = now;
		lw_sess_attach_uvloop(s);
	}
	/* asyncio may be imported after attach: hook its module when it shows up */
	if (s->hooks && !lw_pyhooks__complete(s->hooks) && now - s->last_hook_try > 1000000000ull) {
		s->last_hook_try = now;
		lw_pyhooks__update(s->hooks);
	}

	lw_sess_threads_tick(s, now);
	stuck_inventory(s, now, emit, ctx);
	while ((t = lw_u64map__next(s->threads, &it, NULL))) {
		uint64_t busy, limit;
		struct lw_pystack *st;
		const char *kind = "cpu";
		struct cb_ident id;
		struct json_object *o;
		int oncpu, got;

		if (tick_can_skip(s, t, now))
			continue;
		if (lw_bpf__get_thread(s->bpf, t->tid, &th) || !th.iter_start_ns ||
		    now <= th.iter_start_ns)
			continue;
		busy = now - th.iter_start_ns;
		if (t->alerted_iter != th.iter_start_ns) {
			t->alerted_iter = th.iter_start_ns;
			t->alert_level = 0;
			t->look_retries = 0;
		}
		if (t->noiter == th.iter_start_ns)
			continue;	/* seen to be no iteration */
		limit = s->o.threshold_ns * (t->alert_level == 0 ? 1 : 10);
		if (t->alert_level >= 2 || busy < limit)
			continue;
		/* precise: the callback running now began less than the threshold ago, so the time
		 * is not its own (a loop that never polls runs many): it is named once it is slow */
		if (lw_sess_cb_young(s, &th, now))
			continue;
		if (!stk)
			stk = calloc(1, sizeof(*stk));
		if (!stk)
			return;
		/* the stack as it stands: the one taken when it went to sleep, if it sleeps */
		st = NULL;
		oncpu = 0;
		got = lw_bpf__get_stacks(s->bpf, t->tid, &stk->t) == 0;
		/* a CPU sample of this period was in no loop: no iteration (issue 20) */
		if (got && lw_sess_left_loop(s, &stk->t.cpu, th.iter_start_ns)) {
			t->noiter = th.iter_start_ns;
			t->noiter_weak = 0;
			continue;
		}
		if (th.off_ts && th.off_kind != LW_OFF_RUNQ && th.off_stack_ok && got &&
		    (stk->t.pending.flags & LW_STACK_VALID)) {
			st = &stk->t.pending;
			kind = "blocked";
			lw_nstack__refine(s->nstk, t->tid, st);
		} else if (s->is_python &&
			   lw_py__walk(&s->py, &s->rd, lw_sess_tstate_of(s, t->tid), &stk->walk) == 0) {
			st = &stk->walk;
			oncpu = 1;
		}
		/* walked on CPU while its frames changed under the read: look again at the next
		 * tick (a few times) rather than alert about an unknown stack; a torn one (two
		 * walks disagree) is no state to name at all, nor to drop the iteration for: a
		 * read of a running thread's frames proves nothing until a second read agrees */
		if (oncpu && (st->flags & LW_STACK_READ_ERR) && t->look_retries < LOOK_RETRIES) {
			t->look_retries++;
			continue;
		}
		if (oncpu && !(st->flags & LW_STACK_READ_ERR) &&
		    (lw_py__walk(&s->py, &s->rd, lw_sess_tstate_of(s, t->tid), &stk->again) ||
		     !walks_agree(s, &stk->walk, &stk->again)))
			continue;
		/* in no asyncio loop: no iteration; not alerted, and its tick is dropped (issue 20) */
		if (lw_sess_outside_loop(s, st)) {
			t->noiter = th.iter_start_ns;
			t->noiter_weak = 0;
			continue;
		}
		/*
		 * On CPU in the loop's own code (a selector that never polls: a mock): the same, but
		 * only when a second look of this iteration, a tick later, finds it running there
		 * again. One look is no proof: a real selector's select() and _run_once's self.time()
		 * are Python code too, run after a slow callback on the way to the poll. A look that
		 * landed there (for microseconds, or for as long as the thread waited for a CPU in
		 * there) dropped that slow callback without a trace (issue 18: 999 of 1,000 counted;
		 * 22 of 200 with a select() that spins 3 ms). Not counted as a sighting: a thread
		 * waiting for a CPU (it runs no loop code), a look of the thread off CPU.
		 */
		if (oncpu && lw_sess_loop_own_code(s, st)) {
			if (!th.off_ts) {
				if (t->loop_code_seen == th.iter_start_ns) {
					t->noiter = th.iter_start_ns;
					t->noiter_weak = 1;
				}
				else
					t->loop_code_seen = th.iter_start_ns;
			}
			continue;
		}
		/* precise: on CPU with no callback running, the loop's own time: nothing to name
		 * (issue 20: such alerts named whatever was on the stack) */
		if (s->o.precise && oncpu && !th.cb_depth)
			continue;
		/* no Python stack at all while asyncio's loop is known: a process shutting down */
		if (s->is_python && s->py.cfg.run_once_code && s->uv_handles[0] < 0 &&
		    (!st || !st->nframes))
			continue;
		/* default: on CPU in a callback, but the CPU samples of this iteration were taken
		 * in others (a loop that never polls runs many): not this one's time */
		if (oncpu && !s->o.precise && got && !samples_agree(s, &stk->t, st, th.iter_start_ns))
			continue;
		memset(&id, 0, sizeof(id));
		if (st)
			lw_sess_ident_from_stack(s, st, &id);
		/* a first look that names nothing and shows no frame (every code object on it
		 * unreadable, or no stack) proves nothing either: put off like an unreadable one.
		 * Seen once in CI (sid's 3.14, a mock-selector loop): a 0.13 s alert with an empty
		 * stack for a stretch the iteration's end then found to be none. A loop still stuck
		 * after the retries is alerted all the same, a few ticks later. */
		if (s->is_python && !id.found && !t->alert_level &&
		    t->look_retries < LOOK_RETRIES && (!st || !lw_sess_stack_shows(s, st))) {
			t->look_retries++;
			continue;
		}
		t->alert_level++;
		json_object_put(t->alert_js);
		t->alert_js = NULL;
		if (st && id.found && (t->alert_stack ||
				       (t->alert_stack = malloc(sizeof(*t->alert_stack))))) {
			memcpy(t->alert_stack, st, sizeof(*st));
			t->alert_blocked = st == &stk->t.pending;
			t->alert_look_ns = now;
		}
		/* the off-CPU period going on now is not in the split yet */
		if (th.off_ts && now > th.off_ts) {
			uint64_t off = now - th.off_ts, blk = 0, rq = 0;

			if (th.off_kind == LW_OFF_RUNQ) {
				rq = off;
			} else if (th.wake_ts >= th.off_ts && th.wake_ts <= now) {
				blk = th.wake_ts - th.off_ts;
				rq = now - th.wake_ts;
			} else {
				blk = off;
			}
			th.iter.runq_ns += rq;
			if (th.off_kind == LW_OFF_GIL) {
				th.iter.gil_ns += blk;
			} else if (blk) {
				uint32_t i;

				th.iter.blocked_ns += blk;
				for (i = 0; i < th.iter.nsys && i < LW_SPLIT_SYSCALLS; i++)
					if (th.iter.sys[i].nr == th.off_sys)
						break;
				if (i < LW_SPLIT_SYSCALLS) {
					if (i == th.iter.nsys) {
						th.iter.sys[i].nr = th.off_sys;
						th.iter.nsys++;
					}
					th.iter.sys[i].ns += blk;
					th.iter.sys[i].count++;
				} else {
					th.iter.other_blocked_ns += blk;
				}
			}
		}
		o = lw_sess_slow_callback_json(s, (uint32_t)t->tid, now, busy, 1, &id, &th.iter, st,
				       st ? kind : NULL);
		json_object_object_add(o, "duration_basis", json_object_new_string("iteration"));
		json_object_object_add(o, "alert_level", json_object_new_int(t->alert_level));
		if (st && id.found && t->alert_stack && t->alert_look_ns == now)
			keep_look(t, o);
		emit(ctx, o);
	}
	free(stk);
}
