// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A session's live alerts: lw_session__tick, the periodic look at each loop thread (late
 * interpreter setup, uvloop, asyncio hooks, then an alert for an iteration running past its
 * limit; session.h). The records themselves: session.c. */
#include "probe/session_priv.h"

void lw_session__tick(struct lw_session *s, uint64_t now, lw_emit_fn emit, void *ctx)
{
	struct lw_sthread *t;
	struct lw_thread th;
	struct lw_tstacks *stk = NULL;
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
			lw_sess_learn_from_threads(s);
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

	while ((t = lw_u64map__next(s->threads, &it, NULL))) {
		uint64_t busy, limit;
		struct lw_pystack *st;
		const char *kind = "cpu";
		struct cb_ident id;
		struct json_object *o;

		if (lw_bpf__get_thread(s->bpf, t->tid, &th) || !th.iter_start_ns ||
		    now <= th.iter_start_ns)
			continue;
		busy = now - th.iter_start_ns;
		if (t->alerted_iter != th.iter_start_ns) {
			t->alerted_iter = th.iter_start_ns;
			t->alert_level = 0;
		}
		limit = s->o.threshold_ns * (t->alert_level == 0 ? 1 : 10);
		if (t->alert_level >= 2 || busy < limit)
			continue;
		t->alert_level++;
		if (!stk)
			stk = calloc(1, sizeof(*stk));
		if (!stk)
			return;
		/* the stack as it stands: the one taken when it went to sleep, if it sleeps */
		st = NULL;
		if (th.off_ts && th.off_kind != LW_OFF_RUNQ && th.off_stack_ok &&
		    lw_bpf__get_stacks(s->bpf, t->tid, stk) == 0 && (stk->pending.flags & LW_STACK_VALID)) {
			st = &stk->pending;
			kind = "blocked";
			lw_nstack__refine(s->nstk, t->tid, st);
		} else if (s->is_python &&
			   lw_py__walk(&s->py, &s->rd, lw_sess_tstate_of(s, t->tid), &stk->cpu) == 0) {
			st = &stk->cpu;
		}
		/* in no asyncio loop (or no Python stack at all while asyncio's loop is known: a
		 * process shutting down): no iteration to alert about */
		if (lw_sess_outside_loop(s, st) || (s->is_python && s->py.cfg.run_once_code &&
					    s->uv_handles[0] < 0 && (!st || !st->nframes)))
			continue;
		memset(&id, 0, sizeof(id));
		if (st)
			lw_sess_ident_from_stack(s, st, &id);
		if (st && id.found && (t->alert_stack ||
				       (t->alert_stack = malloc(sizeof(*t->alert_stack))))) {
			memcpy(t->alert_stack, st, sizeof(*st));
			t->alert_blocked = st == &stk->pending;
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
		emit(ctx, o);
	}
	free(stk);
}
