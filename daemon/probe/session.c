// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/session_priv.h"
#include "target/pytasks.h"

/* ------------------------------------------------------------------ small helpers */

const char *lw_sess_kind_name(int kind)
{
	switch (kind) {
	case LW_KIND_TASK:
		return "task";
	case LW_KIND_FUNCTION:
		return "function";
	case LW_KIND_METHOD:
		return "method";
	default:
		return "other";
	}
}

void lw_sess_read_comm(const char *proc_root, pid_t pid, pid_t tid, char *buf, size_t size)
{
	char path[128], *text = NULL;
	size_t n = 0;

	if (tid)
		snprintf(path, sizeof(path), "%s/%d/task/%d/comm", proc_root, (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "%s/%d/comm", proc_root, (int)pid);
	buf[0] = 0;
	if (lw_read_file(path, 64, &text, &n) == 0) {
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
			text[--n] = 0;
		lw_strlcpy(buf, text, size);
	}
	free(text);
}

int lw_sess_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------------ time split */

struct tid_of_ts {
	uint64_t tstate;
	pid_t tid;
};

static int find_tid(void *arg, pid_t tid, uint64_t tstate)
{
	struct tid_of_ts *q = arg;

	if (tstate == q->tstate) {
		q->tid = tid;
		return 1;
	}
	return 0;
}

static uint64_t split_offcpu(const struct lw_split *sp)
{
	return sp->runq_ns + sp->blocked_ns + sp->gil_ns;
}

static void add_split(struct lw_session *s, struct json_object *o, const struct lw_split *sp,
		      uint64_t dur_ns)
{
	struct json_object *blocked = json_object_new_array();
	uint64_t off = split_offcpu(sp), cpu = dur_ns > off ? dur_ns - off : 0;
	uint32_t i, n = sp->nsys < LW_SPLIT_SYSCALLS ? sp->nsys : LW_SPLIT_SYSCALLS;
	int order[LW_SPLIT_SYSCALLS], k, j;

	json_object_object_add(o, "cpu_ms", lw_j_ms(cpu));
	json_object_object_add(o, "offcpu_ms", lw_j_ms(off));
	json_object_object_add(o, "runq_ms", lw_j_ms(sp->runq_ns));
	json_object_object_add(o, "gil_ms", lw_j_ms(sp->gil_ns));
	json_object_object_add(o, "gc_ms", lw_j_ms(sp->gc_ns));
	/* blocked syscalls, longest first */
	for (k = 0; k < (int)n; k++)
		order[k] = k;
	for (k = 1; k < (int)n; k++)
		for (j = k; j > 0 && sp->sys[order[j]].ns > sp->sys[order[j - 1]].ns; j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (k = 0; k < (int)n; k++) {
		const struct lw_split_sys *y = &sp->sys[order[k]];
		struct json_object *b = json_object_new_object();
		char nb[32];

		/* (u32)-1: asleep outside any syscall (a page fault, an exception), no placeholder */
		json_object_object_add(b, "syscall",
				       json_object_new_string(y->nr == (uint32_t)-1 ? "page-fault-or-lock" :
							      lw_syscall_name(y->nr, nb, sizeof(nb))));
		json_object_object_add(b, "ms", lw_j_ms(y->ns));
		json_object_object_add(b, "count", json_object_new_int64(y->count));
		json_object_array_add(blocked, b);
	}
	if (sp->other_blocked_ns) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "syscall", json_object_new_string("other"));
		json_object_object_add(b, "ms", lw_j_ms(sp->other_blocked_ns));
		json_object_object_add(b, "count", NULL);
		json_object_array_add(blocked, b);
	}
	json_object_object_add(o, "blocked", blocked);
	(void)i;
	/* the GIL: who held it during the longest wait */
	if (sp->gil_ns && sp->gil_holder) {
		struct json_object *h = json_object_new_object();
		struct tid_of_ts q = { sp->gil_holder, (pid_t)sp->gil_holder_tid };
		struct lw_pystack *hs;

		if (s->is_python && !q.tid)
			lw_py__threads(&s->py, &s->rd, find_tid, &q);
		q.tid = lw_sess_ns_to_host(s, q.tid);
		/* every field right or absent (issue 20): a holder that is gone has no comm, a
		 * stack that cannot be read is left out, and a holder with nothing known is too */
		if (q.tid) {
			char comm[16];

			json_object_object_add(h, "tid", json_object_new_int(q.tid));
			lw_sess_read_comm(s->proc_root, s->pid, q.tid, comm, sizeof(comm));
			if (comm[0])
				json_object_object_add(h, "comm", json_object_new_string(comm));
		}
		/* the holder is probably still at it: its stack now */
		hs = calloc(1, sizeof(*hs));
		if (hs && s->is_python && lw_py__walk(&s->py, &s->rd, sp->gil_holder, hs) == 0 &&
		    hs->nframes) {
			struct json_object *js = lw_sess_stack_json(s, hs);

			if (json_object_array_length(js))
				json_object_object_add(h, "stack", js);
			else
				json_object_put(js);
		}
		free(hs);
		if (json_object_object_length(h))
			json_object_object_add(o, "gil_holder", h);
		else
			json_object_put(h);
	}
}
/* ------------------------------------------------------------------ records */

/* a native stack unwound by CFI that stopped early says why; the mixed Python + C stack */
static void mark_native(struct json_object *o, const struct lw_pystack *st)
{
	const char *why = lw_nstack_incomplete(st);

	if (why)
		json_object_object_add(o, "native_stack_incomplete", json_object_new_string(why));
	lw_sess_add_mixed(o);
}

uint64_t lw_sess_real_of(uint64_t mono)
{
	return lw_mono_to_real(mono);
}

/*
 * A busy iteration with no stack of its own (default mode: it ran on CPU between two samples
 * of the 49 Hz sampler, which a loaded machine makes likely for a callback of a few tens of
 * ms): the stack its live alert was named from, walked while it ran, if it raised one.
 */
static const struct lw_pystack *alert_stack_of(struct lw_session *s, const struct lw_rec_tick *r,
					       const char **kind)
{
	struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)r->hdr.tid);

	if (!t || !t->alert_stack || !t->alert_level || t->alerted_iter != r->start_ns)
		return NULL;
	*kind = t->alert_blocked ? "blocked" : "cpu";
	return t->alert_stack;
}

/* A live-alert look found this iteration to be none (lw_session__tick): 2 in no loop at all, 1
 * on CPU in the loop's own code, twice (weaker: a real loop runs that code too) */
static int noiter_seen(struct lw_session *s, const struct lw_rec_tick *r)
{
	struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)r->hdr.tid);

	if (!t || !t->noiter || t->noiter != r->start_ns)
		return 0;
	return t->noiter_weak ? 1 : 2;
}

static const struct lw_pystack *pick_stack(const struct lw_pystack *blk, const struct lw_pystack *cpu,
					   const struct lw_split *sp, uint64_t dur, const char **kind)
{
	uint64_t off = sp->blocked_ns + sp->gil_ns;
	int blk_ok = (blk->flags & LW_STACK_VALID) && (blk->nframes || blk->nnative);
	int cpu_ok = (cpu->flags & LW_STACK_VALID) && (cpu->nframes || cpu->nnative);

	if (blk_ok && (!cpu_ok || off * 2 >= dur)) {
		*kind = "blocked";
		return blk;
	}
	if (cpu_ok) {
		*kind = "cpu";
		return cpu;
	}
	*kind = NULL;
	return NULL;
}

/*
 * A complete Python stack of a thread that is in no asyncio loop (no BaseEventLoop._run_once
 * and no Handle._run on it): what ran there was no loop iteration (synchronous code between
 * two loops, a thread that is no loop). 0 when it cannot be told: not Python, _run_once not
 * learnt yet, uvloop probes (uvloop has no _run_once frame), no stack, an incomplete one.
 */
int lw_sess_outside_loop(const struct lw_session *s, const struct lw_pystack *st)
{
	uint32_t i;

	if (!s->is_python || !s->py.cfg.run_once_code || s->uv_handles[0] >= 0 || !st ||
	    !(st->flags & LW_STACK_VALID) || st->hrun.code ||
	    (st->flags & (LW_STACK_TRUNCATED | LW_STACK_READ_ERR | LW_STACK_NO_TSTATE)))
		return 0;
	/* no Python frame at all (a thread state with no frame: the interpreter finalizing, a
	 * process exiting) is no loop either */
	for (i = 0; i < st->nframes && i < LW_MAX_PYFRAMES; i++)
		if (st->frames[i].code == s->py.cfg.run_once_code ||
		    (s->py.cfg.handle_run_code && st->frames[i].code == s->py.cfg.handle_run_code))
			return 0;
	return 1;
}

/*
 * A complete Python stack inside BaseEventLoop._run_once but in no callback (no Handle._run):
 * the loop in a Python function of its own. Walked on CPU well past the threshold, that is a
 * selector whose select() never polls the kernel (a unittest.mock selector, a test double): every _run_once
 * is an iteration loopwatch cannot see, so the stretch is none. 0 when it cannot be told.
 */
int lw_sess_loop_own_code(const struct lw_session *s, const struct lw_pystack *st)
{
	uint32_t i;

	if (!s->is_python || !s->py.cfg.run_once_code || !s->py.cfg.handle_run_code ||
	    s->uv_handles[0] >= 0 || !st || !(st->flags & LW_STACK_VALID) || st->hrun.code ||
	    st->cb_callable ||
	    (st->flags & (LW_STACK_TRUNCATED | LW_STACK_READ_ERR | LW_STACK_NO_TSTATE)))
		return 0;
	for (i = 0; i < st->nframes && i < LW_MAX_PYFRAMES; i++)
		if (st->frames[i].code == s->py.cfg.handle_run_code)
			return 0;
	/* _run_once calling a Python function (its select(): a mock's __call__); _run_once
	 * itself innermost is its C work between callbacks, a storm of call_soon's real cost */
	for (i = 1; i < st->nframes && i < LW_MAX_PYFRAMES; i++)
		if (st->frames[i].code == s->py.cfg.run_once_code)
			return st->frames[i - 1].code != 0;
	return 0;
}

/*
 * Two CPU samples of the busy period that began at since found the thread in no asyncio loop
 * (the sampler's sticky LW_STACK_LEFT_LOOP on the kept CPU stack): the period left the loop, so it is
 * no iteration (synchronous code between loops, loops whose selector never polls: issue 20). A
 * real iteration never leaves _run_once between its two polls.
 */
int lw_sess_left_loop(const struct lw_session *s, const struct lw_pystack *cpu, uint64_t since)
{
	return s->is_python && s->py.cfg.run_once_code && s->uv_handles[0] < 0 &&
	       (cpu->flags & LW_STACK_VALID) && (cpu->flags & LW_STACK_LEFT_LOOP) &&
	       cpu->ts_ns >= since;
}

/* A Python stack of a sleep taken in one of an asyncio loop's callbacks (Handle._run on it) */
static int blocked_in_callback(const struct lw_session *s, const struct lw_pystack *b)
{
	uint32_t i;

	if (!s->is_python || !(b->flags & LW_STACK_VALID))
		return 0;
	if (b->hrun.code || b->cb_callable)
		return 1;
	for (i = 0; i < b->nframes && i < LW_MAX_PYFRAMES; i++)
		if (s->py.cfg.handle_run_code && b->frames[i].code == s->py.cfg.handle_run_code)
			return 1;
	return 0;
}

/* Both stacks of an iteration that have one say it ran outside any loop */
static int tick_outside_loop(const struct lw_session *s, const struct lw_rec_tick *r)
{
	int any = 0;

	if (r->block_stack.flags & LW_STACK_VALID) {
		if (!lw_sess_outside_loop(s, &r->block_stack))
			return 0;
		any = 1;
	}
	if (r->cpu_stack.flags & LW_STACK_VALID) {
		if (!lw_sess_outside_loop(s, &r->cpu_stack))
			return 0;
		any = 1;
	}
	return any;
}

/* Where the iteration burnt most CPU (the samples' majority) was the loop's own select() or
 * other Python function of _run_once's, no callback: a selector that never polls (issue 20) */
static int tick_in_loop_code(const struct lw_session *s, const struct lw_rec_tick *r)
{
	return (r->cpu_stack.flags & LW_STACK_VALID) && r->cpu_stack.ns >= 2 &&
	       lw_sess_loop_own_code(s, &r->cpu_stack) &&
	       (!(r->flags & LW_TICK_PRECISE) || r->slowest_cb_ns < s->o.threshold_ns);
}

/* Two CPU samples of the iteration were in no loop at all */
static int tick_left_loop(const struct lw_session *s, const struct lw_rec_tick *r)
{
	return lw_sess_left_loop(s, &r->cpu_stack, r->start_ns) &&
	       (!(r->flags & LW_TICK_PRECISE) || r->slowest_cb_ns < s->o.threshold_ns);
}

/* The Tasks held up by a slow Task step, read now from the target (a few of its done
 * callbacks; nothing when the Task is done by now): who awaits it, who awaits that one... */
static void add_await_chain(struct lw_session *s, struct json_object *o, uint64_t task)
{
	struct lw_task_link links[8];
	struct json_object *a;
	size_t n, i;

	n = lw_pytasks__await_chain(&s->py, NULL, &s->rd, task, links, LW_ARRAY_SIZE(links));
	if (!n)
		return;
	a = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *l = json_object_new_object();
		char id[32];

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)links[i].task);
		json_object_object_add(l, "id", json_object_new_string(id));
		json_object_object_add(l, "name", json_object_new_string(links[i].name));
		json_object_object_add(l, "coro", json_object_new_string(links[i].coro));
		json_object_object_add(l, "via", json_object_new_string(links[i].via));
		json_object_array_add(a, l);
	}
	json_object_object_add(o, "await_chain", a);
}

struct json_object *lw_sess_slow_callback_json(struct lw_session *s, uint32_t tid, uint64_t ts_mono,
					      uint64_t dur, int in_progress,
					      const struct cb_ident *id, const struct lw_split *sp,
					      const struct lw_pystack *stack, const char *stack_kind)
{
	struct json_object *o = lw_j_record("slow_callback", s->pid, lw_sess_real_of(ts_mono));

	json_object_object_add(o, "tid", json_object_new_int64(tid));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "duration_ms", lw_j_ms(dur));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "in_progress", json_object_new_boolean(in_progress));
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	json_object_object_add(o, "runtime", json_object_new_string(lw_runtime_name(s->runtime)));
	json_object_object_add(o, "callback", lw_sess_ident_json(id));
	if (s->is_python && id->task)
		add_await_chain(s, o, id->task);
	add_split(s, o, sp, dur);
	lw_sess_add_stack(s, o, stack);
	json_object_object_add(o, "stack_kind", lw_j_str_or_null(stack_kind));
	if (stack && stack->nnative)
		json_object_object_add(o, "native_stack", lw_sess_native_json(s, stack));
	mark_native(o, stack);
	return o;
}

/* a slow callback's duration in its site's row of the summary; 0, or -ENOMEM without room */
static int agg_slow(struct lw_session *s, const struct cb_ident *id, uint64_t dur)
{
	struct lw_agg *a = lw_sess_agg_get(s->slow_sites, id->found ? id->qualname : "<unknown>",
					   id->file, id->line, NULL, NULL, &s->sites_evicted);

	if (!a)
		return -ENOMEM;
	lw_hist_add(&a->h, dur);
	return 0;
}

static void count_slow(struct lw_session *s, const struct cb_ident *id, uint64_t dur)
{
	s->counts.slow_callbacks++;
	if (!s->o.precise)	/* precise mode counts every callback in BPF */
		agg_slow(s, id, dur);
}

/*
 * Precise mode counts every callback in BPF, under its callback. A slow one whose site is
 * another (a framework's dispatcher counted under its route, as in default mode) is counted
 * under its site here and taken out of its BPF site's row (the summary, session_summary.c).
 */
static void count_moved(struct lw_session *s, const struct lw_ident *bi, const struct cb_ident *site,
			uint64_t dur)
{
	uint64_t key = bi->code ? bi->code : bi->type;	/* BPF's site key (classify()) */
	struct lw_hist *h;
	int created;

	if (!key || !(h = lw_u64map__put(s->moved_out, key, &created)) || agg_slow(s, site, dur))
		return;
	lw_hist_add(h, dur);
}

static int same_site(const struct cb_ident *a, const struct cb_ident *b)
{
	return a->found == b->found && a->line == b->line && !strcmp(a->qualname, b->qualname) &&
	       !strcmp(a->file, b->file);
}

/*
 * Precise mode: a slow callback with neither a blocked stack nor a CPU sample (it ran between
 * two samples of the 49 Hz sampler, or waited for a CPU: a preempted thread's stack is not
 * read): the stack its live alert was named from, when that was walked while this callback
 * ran and names the same callable (issue 20 item 11: 20 of 100 under CPU contention).
 */
static const struct lw_pystack *alert_stack_in(struct lw_session *s, const struct lw_rec_callback *r,
					       const struct cb_ident *id, const char **kind)
{
	struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)r->hdr.tid);
	struct cb_ident aid;

	if (!t || !t->alert_stack || !id->found || t->alert_look_ns < r->start_ns ||
	    t->alert_look_ns > r->start_ns + r->duration_ns)
		return NULL;
	lw_sess_ident_from_stack(s, t->alert_stack, &aid);
	if (!aid.found || strcmp(aid.qualname, id->qualname))
		return NULL;
	*kind = t->alert_blocked ? "blocked" : "cpu";
	return t->alert_stack;
}

/* The thread whose live look, kept in alert_stack, fell in [from, to]: what it named is this
 * stretch's (lw_sess_add_stack) */
static const struct lw_sthread *looked_at(struct lw_session *s, uint32_t tid, uint64_t from,
					  uint64_t to)
{
	const struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)tid);

	if (!t || !t->alert_stack || !t->alert_js || t->alert_look_ns < from ||
	    t->alert_look_ns > to)
		return NULL;
	return t;
}

/*
 * A slow callback's record, counted under its site: a framework's dispatcher under the route it
 * ran (issue 21; the dispatcher stays the record's callback). bi: precise mode's BPF identity,
 * whose BPF-side count moves to the site when they differ; NULL in default mode.
 */
static struct json_object *slow_callback_at_site(struct lw_session *s, uint32_t tid, uint64_t ts,
						 uint64_t dur, const struct cb_ident *id,
						 const struct lw_split *split,
						 const struct lw_pystack *st, const char *kind,
						 const struct lw_ident *bi)
{
	struct cb_ident site = *id;
	struct json_object *o;

	if (s->is_python)
		lw_sess_py_site(s, st, id, &site);
	count_slow(s, &site, dur);
	if (bi && s->o.precise && !same_site(&site, id))
		count_moved(s, bi, &site, dur);
	o = lw_sess_slow_callback_json(s, tid, ts, dur, 0, id, split, st, kind);
	json_object_object_add(o, "site", lw_sess_ident_json(&site));
	return o;
}

static void on_callback(struct lw_session *s, const struct lw_rec_callback *r, lw_emit_fn emit,
			void *ctx)
{
	const struct lw_pystack *st;
	const char *kind = NULL;
	struct cb_ident id;

	lw_sess_ident_from_bpf(s, &r->ident, &id);
	st = pick_stack(&r->block_stack, &r->cpu_stack, &r->split, r->duration_ns, &kind);
	if (!st)
		st = alert_stack_in(s, r, &id, &kind);
	s->memo = looked_at(s, r->hdr.tid, r->start_ns, r->start_ns + r->duration_ns);
	emit(ctx, slow_callback_at_site(s, r->hdr.tid, r->hdr.ts_ns, r->duration_ns, &id, &r->split,
					st, kind, &r->ident));
	s->memo = NULL;
}

/*
 * Why a slow stretch is no loop iteration, or NULL. In no loop (both stacks, a look, two CPU
 * samples): none. In the loop's own code (two looks, the CPU samples' majority): none unless
 * it slept in one of the loop's callbacks, which only a real iteration does (the loop's own
 * select() runs after a slow callback too: issue 18).
 */
static const char *no_iteration(struct lw_session *s, const struct lw_rec_tick *r)
{
	int seen = noiter_seen(s, r);

	if (tick_outside_loop(s, r))
		return "its stacks are in no loop";
	if (seen == 2)
		return "a live look found no loop";
	if (tick_left_loop(s, r))
		return "its CPU samples left the loop";
	if (blocked_in_callback(s, &r->block_stack))
		return NULL;
	if (seen)
		return "two live looks found it on CPU in the loop's own code";
	if (tick_in_loop_code(s, r))
		return "its CPU samples sat in the loop's own code";
	return NULL;
}

static void on_tick(struct lw_session *s, const struct lw_rec_tick *r, lw_emit_fn emit, void *ctx)
{
	const char *why;
	struct json_object *o = lw_j_record("slow_tick", s->pid, lw_sess_real_of(r->hdr.ts_ns));
	const struct lw_pystack *st;
	const char *kind = NULL;
	struct cb_ident id;
	struct native_info ni = { 0 };
	struct json_object *js = NULL;
	char nb[32];

	if ((why = no_iteration(s, r))) {
		/* no iteration: the stretch between a loop's end and the next poll, or loops whose
		 * selector never polls (issue 20) */
		lw_dbg("pid %d tid %u: %.3f ms not an iteration: %s", (int)s->pid, r->hdr.tid,
		       r->busy_ns / 1e6, why);
		s->counts.not_iterations++;
		json_object_put(o);
		return;
	}
	s->counts.slow_ticks++;
	s->memo = looked_at(s, r->hdr.tid, r->start_ns, r->start_ns + r->busy_ns);
	st = pick_stack(&r->block_stack, &r->cpu_stack, &r->split, r->busy_ns, &kind);
	if (!st && !(r->flags & LW_TICK_PRECISE))
		st = alert_stack_of(s, r, &kind);
	memset(&id, 0, sizeof(id));
	if (r->flags & LW_TICK_PRECISE) {
		if (r->slowest_cb_ns && r->slowest.code && s->codes) {
			const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, r->slowest.code);

			if (pc) {
				id.found = 1;
				id.kind = (int)r->slowest.kind;
				lw_strlcpy(id.qualname, pc->qualname, sizeof(id.qualname));
				lw_strlcpy(id.file, pc->file, sizeof(id.file));
				id.line = pc->firstlineno;
			}
		}
	} else if (st && s->is_python) {
		const struct lw_pystack *look;
		const char *look_kind = NULL;

		lw_sess_ident_from_stack(s, st, &id);
		/* its stack names no callback (the CPU vote's candidate a sample or preemption in
		 * the loop's own code, uvloop's C between two callbacks: one of two samples of a
		 * 40 ms callback on a loaded machine): the live look that named one while it ran */
		if (!id.found && (look = alert_stack_of(s, r, &look_kind)) && look != st) {
			lw_sess_ident_from_stack(s, look, &id);
			if (id.found) {
				st = look;
				kind = look_kind;
			}
		}
	} else if (st) {
		lw_sess_native_ident(s, st, &ni, &js);
		if (ni.js_found) {
			id.found = 1;
			id.kind = LW_KIND_FUNCTION;
			lw_strlcpy(id.qualname, ni.js_name, sizeof(id.qualname));
			lw_strlcpy(id.file, ni.js_file, sizeof(id.file));
			id.line = ni.js_line;
		}
	}
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "runtime", json_object_new_string(lw_runtime_name(s->runtime)));
	json_object_object_add(o, "busy_ms", lw_j_ms(r->busy_ns));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "callbacks", (r->flags & LW_TICK_PRECISE) ?
							json_object_new_int64(r->callbacks) : NULL);
	json_object_object_add(o, "poll", json_object_new_string(lw_syscall_name(r->poll_nr, nb,
										  sizeof(nb))));
	if (!s->is_python)
		json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
	if (id.found) {
		struct json_object *sl = lw_sess_ident_json(&id);

		json_object_object_add(sl, "duration_ms", (r->flags & LW_TICK_PRECISE) ?
								   lw_j_ms(r->slowest_cb_ns) : NULL);
		json_object_object_add(o, "slowest", sl);
	} else {
		json_object_object_add(o, "slowest", NULL);
	}
	add_split(s, o, &r->split, r->busy_ns);
	if (js) {
		json_object_object_add(o, "stack", json_object_get(js));
		lw_sess_mark_stack(o, st);
	} else {
		lw_sess_add_stack(s, o, st);
	}
	json_object_object_add(o, "stack_kind", lw_j_str_or_null(kind));
	if (st && st->nnative)
		json_object_object_add(o, "native_stack", lw_sess_native_json(s, st));
	mark_native(o, st);
	/* a slow_callback record covers this iteration already (precise: its slowest callback was
	 * slow itself; default: it is named after the callback below) */
	json_object_object_add(o, "has_slow_callback",
			       json_object_new_boolean((r->flags & LW_TICK_PRECISE) ?
						       r->slowest_cb_ns >= s->o.threshold_ns :
						       id.found));
	emit(ctx, o);

	/* default mode: the busy iteration, named after the callback its stacks point at */
	if (!(r->flags & LW_TICK_PRECISE) && id.found) {
		o = slow_callback_at_site(s, r->hdr.tid, r->hdr.ts_ns, r->busy_ns, &id, &r->split, st,
					  kind, NULL);
		json_object_object_add(o, "duration_basis", json_object_new_string("iteration"));
		if (js) {
			json_object_object_add(o, "stack", json_object_get(js));
			json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
		}
		emit(ctx, o);
	}
	s->memo = NULL;
	json_object_put(js);
}

static void on_block(struct lw_session *s, const struct lw_rec_block *r, lw_emit_fn emit, void *ctx)
{
	struct json_object *o = lw_j_record("blocking_call", s->pid, lw_sess_real_of(r->hdr.ts_ns));
	char nb[32], target[256] = "";
	const char *sys = lw_syscall_name(r->syscall, nb, sizeof(nb));
	int has_fd = r->syscall != (uint32_t)-1 && lw_syscall_fd_arg0(r->syscall);
	struct cb_ident id;
	struct lw_agg *a;
	const char *top_q = NULL, *top_f = NULL;
	int top_l = 0;
	struct frame_info fi;
	uint32_t i;

	if (lw_sess_outside_loop(s, &r->stack) && !r->cb_callable) {
		/* made by synchronous code outside any loop (the thread's last loop ended) */
		json_object_put(o);
		return;
	}
	s->counts.blocking_calls++;
	if (r->syscall == (uint32_t)-1)
		sys = "page-fault-or-lock";
	/* what the kernel saw when it blocked; else what the fd is now, if still open */
	if (lw_fd_format(&r->fd, target, sizeof(target)) && has_fd && (int64_t)r->args[0] >= 0 &&
	    r->args[0] < (1u << 24))
		lw_fd_describe(s->proc_root, s->pid, (int)r->args[0], target, sizeof(target));
	if (!target[0] && r->path[0])
		lw_strlcpy(target, r->path, sizeof(target));
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "runtime", json_object_new_string(lw_runtime_name(s->runtime)));
	json_object_object_add(o, "syscall", json_object_new_string(sys));
	json_object_object_add(o, "duration_ms", lw_j_ms(r->duration_ns));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.block_threshold_ns));
	json_object_object_add(o, "fd", has_fd ? json_object_new_int64((int64_t)r->args[0]) : NULL);
	json_object_object_add(o, "target", lw_j_str_or_null(target));
	if (s->is_python) {
		lw_sess_add_stack(s, o, &r->stack);
		lw_sess_ident_from_stack(s, &r->stack, &id);
	} else {
		struct native_info ni;
		struct json_object *js = NULL;

		lw_sess_native_ident(s, &r->stack, &ni, &js);
		json_object_object_add(o, "stack", js);
		json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
		memset(&id, 0, sizeof(id));
		if (ni.js_found) {
			id.found = 1;
			id.kind = LW_KIND_FUNCTION;
			lw_strlcpy(id.qualname, ni.js_name, sizeof(id.qualname));
			lw_strlcpy(id.file, ni.js_file, sizeof(id.file));
			id.line = ni.js_line;
		}
	}
	json_object_object_add(o, "native_stack", lw_sess_native_json(s, &r->stack));
	mark_native(o, &r->stack);
	json_object_object_add(o, "callback", id.found ? lw_sess_ident_json(&id) : NULL);
	emit(ctx, o);

	/* blocking site: syscall + the innermost Python frame */
	for (i = 0; i < r->stack.nframes && i < LW_MAX_PYFRAMES; i++) {
		if (r->stack.frames[i].code && lw_sess_frame_info(s, &r->stack.frames[i], &fi) == 0) {
			top_q = fi.qualname;
			top_f = fi.file;
			top_l = fi.line;
			break;
		}
	}
	a = lw_sess_agg_get(s->block_sites, top_q ? top_q : "<native>", top_f, top_l, sys, target,
			    &s->sites_evicted);
	if (a)
		lw_hist_add(&a->h, r->duration_ns);
}

/* record kind by enum lw_aio_kind */
static const enum lw_rec_kind AIO_KINDS[] = {
	[LW_AIO_UNAWAITED] = LW_RK_UNAWAITED_COROUTINE,
	[LW_AIO_NEVER_RETRIEVED] = LW_RK_EXCEPTION_NEVER_RETRIEVED,
	[LW_AIO_DESTROYED_PENDING] = LW_RK_TASK_DESTROYED_PENDING,
};

static void on_asyncio(struct lw_session *s, const struct lw_rec_asyncio *r, lw_emit_fn emit,
		       void *ctx)
{
	struct json_object *o;
	struct cb_ident id;
	char exc[256];

	if (r->kind < 1 || r->kind > 3)
		return;
	s->aio_counts[r->kind]++;
	o = lw_j_record(lw_rec_kind_name(AIO_KINDS[r->kind]), s->pid, lw_sess_real_of(r->hdr.ts_ns));
	lw_sess_ident_from_bpf(s, &r->ident, &id);
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	if (r->kind != LW_AIO_UNAWAITED)
		json_object_object_add(o, "task_name", lw_j_str_or_null(id.task_name));
	json_object_object_add(o, "qualname", lw_j_str_or_null(id.qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(id.file));
	json_object_object_add(o, "line", id.line > 0 ? json_object_new_int(id.line) : NULL);
	if (r->kind == LW_AIO_NEVER_RETRIEVED) {
		char t[65], m[161];

		memcpy(t, r->exc_type, 64);
		t[64] = 0;
		memcpy(m, r->exc_msg, 160);
		m[160] = 0;
		if (m[0])
			snprintf(exc, sizeof(exc), "%s: %s", t, m);
		else
			snprintf(exc, sizeof(exc), "%s", t);
		json_object_object_add(o, "exception", lw_j_str_or_null(exc));
		json_object_object_add(o, "future_kind",
				       json_object_new_string(r->flags & LW_AIO_IS_TASK ? "task" : "future"));
	}
	lw_sess_add_stack(s, o, &r->stack);
	if (!(r->flags & LW_AIO_FOUND))
		json_object_object_add(o, "incomplete", json_object_new_boolean(1));
	emit(ctx, o);
}

static void on_site(struct lw_session *s, const struct lw_rec_site *r)
{
	int created;
	struct lw_site_id *si = lw_u64map__put(s->sites, r->site, &created);
	struct cb_ident id;

	if (!si)
		return;
	lw_sess_ident_from_bpf(s, &r->ident, &id);
	si->kind = id.kind;
	lw_strlcpy(si->qualname, id.qualname, sizeof(si->qualname));
	lw_strlcpy(si->file, id.file, sizeof(si->file));
	si->line = id.line;
}

void lw_session__handle(struct lw_session *s, const struct lw_rec_hdr *h, size_t size,
			lw_emit_fn emit, void *ctx)
{
	struct lw_rec_hdr *copy = NULL;

	/* native stacks unwound by CFI where the BPF side copied the stack: in a copy of the
	 * record (the ring buffer is read-only) */
	if (s->nstk && (h->type == LW_REC_CALLBACK || h->type == LW_REC_TICK ||
			h->type == LW_REC_BLOCK) && (copy = malloc(size))) {
		memcpy(copy, h, size);
		/* Node: the sample naming a slow iteration, by the JS functions of its samples */
		if (h->type == LW_REC_TICK && s->runtime == LW_RT_NODE &&
		    size >= sizeof(struct lw_rec_tick)) {
			struct lw_rec_tick *t = (struct lw_rec_tick *)copy;

			lw_sess_js_vote(s, t->hdr.tid, t->start_ns, t->start_ns + t->busy_ns,
					&t->cpu_stack);
		}
		lw_nstack__refine_record(s->nstk, copy, size);
		lw_nstack__release(s->nstk);
		h = copy;
	}
	switch (h->type) {
	case LW_REC_CALLBACK:
		on_callback(s, (const struct lw_rec_callback *)h, emit, ctx);
		break;
	case LW_REC_TICK:
		on_tick(s, (const struct lw_rec_tick *)h, emit, ctx);
		break;
	case LW_REC_BLOCK:
		on_block(s, (const struct lw_rec_block *)h, emit, ctx);
		break;
	case LW_REC_SITE:
		on_site(s, (const struct lw_rec_site *)h);
		break;
	case LW_REC_ASYNCIO:
		on_asyncio(s, (const struct lw_rec_asyncio *)h, emit, ctx);
		break;
	case LW_REC_NEWTHREAD: {
		const struct lw_rec_task *t = (const struct lw_rec_task *)h;
		struct lw_sthread *st;
		char comm[17];

		memcpy(comm, t->comm, 16);
		comm[16] = 0;
		st = lw_sess_thread_get(s, (pid_t)h->tid, comm);
		/* a loop idle in its poll since before the attach: that wait was idle time, which
		 * BPF could not see begin (issue 20: 100 % utilization for an idle loop) */
		if (st && st->poll_since && h->ts_ns > st->poll_since && !st->pre_idle_ns)
			st->pre_idle_ns = h->ts_ns - st->poll_since;
		if (st)
			st->poll_since = 0;
		/* a thread's first poll: an asyncio loop has just started on it, and its
		 * _run_once frame is there to be learnt now, before its first callback */
		lw_sess_new_tstates(s);
		if (s->is_python && !s->py.cfg.run_once_code)
			lw_sess_learn_at_first_poll(s, (pid_t)h->tid);
		break;
	}
	default:
		break;
	}
	free(copy);
	(void)size;
}

/* ------------------------------------------------------------------ lifecycle */

static struct json_object *probes_json(const struct lw_session *s, int sampling)
{
	struct json_object *p = json_object_new_array();
	char buf[4400];

	if (lw_bpf__iter_mode(s->bpf) == LW_ITER_SYSCALL)
		json_object_array_add(p, json_object_new_string("tp_btf/sys_exit:poll-family"));
	else if (lw_bpf__iter_mode(s->bpf) == LW_ITER_FENTRY)
		json_object_array_add(p, json_object_new_string(
			"fexit:do_epoll_wait,do_sys_poll,core_sys_select"));
	else
		json_object_array_add(p, json_object_new_string("uprobe:libc poll-family entry"));
	json_object_array_add(p, json_object_new_string("tp_btf/sched_switch"));
	if (lw_bpf__wake_hook_of(s->bpf))
		json_object_array_add(p, json_object_new_string("tp_btf/sched_wakeup"));
	if (sampling)
		json_object_array_add(p, json_object_new_string("perf_event/cpu-clock"));
	if (s->o.precise && s->is_python && s->py.ctxrun_addr) {
		snprintf(buf, sizeof(buf), "%s:%s:context_run+0x%llx",
			 lw_bpf__ctxrun_entry_only(s->bpf) ? "uprobe" : "uprobe+uretprobe",
			 s->py.elf, (unsigned long long)s->py.ctxrun_off);
		json_object_array_add(p, json_object_new_string(buf));
	}
	if (s->uv_handles[0] >= 0) {
		snprintf(buf, sizeof(buf), "uprobe+uretprobe:uvloop Handle._run, TimerHandle._run (%s)",
			 lw_basename(s->uv.so_host));
		json_object_array_add(p, json_object_new_string(buf));
	}
	return p;
}

struct json_object *lw_session__start_record(struct lw_session *s)
{
	struct json_object *o = lw_j_record("start", s->pid, lw_now_real());

	json_object_object_add(o, "tool_version", json_object_new_string(LW_VERSION));
	/* the same process as it knows itself (a container's pid namespace; = pid otherwise) */
	json_object_object_add(o, "pid_in_namespace",
			       json_object_new_int(lw_ns_pid(s->proc_root, s->pid)));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "runtime", json_object_new_string(lw_runtime_name(s->runtime)));
	/* the interpreter as the process sees it (inside a chroot or a container: its own path) */
	if (s->is_python && s->py.exe[0])
		json_object_object_add(o, "executable", json_object_new_string(s->py.exe));
	if (s->is_python && s->py.elf[0])
		json_object_object_add(o, "interpreter_elf", json_object_new_string(s->py.elf));
	json_object_object_add(o, "runtime_version", s->is_python ?
							json_object_new_string(s->py.version) : NULL);
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "block_threshold_ms", lw_j_ms(s->o.block_threshold_ns));
	json_object_object_add(o, "probes", probes_json(s, lw_bpf__sampling(s->bpf)));
	if (s->hooks)
		json_object_object_add(o, "hooks", lw_pyhooks_plan_json(lw_pyhooks__plan(s->hooks)));
	else if (s->v8gc.how[0]) {
		struct json_object *h = json_object_new_object();

		json_object_object_add(h, "gc", json_object_new_string(s->v8gc.how));
		json_object_object_add(o, "hooks", h);
	}
	/* can JS frames be named and given their lines, and how to start node for both */
	if (s->runtime == LW_RT_NODE)
		lw_sess_describe_node(o, s->proc_root, s->pid);
	return o;
}

struct json_object *lw_session__end_record(struct lw_session *s, const char *reason,
					   uint64_t lost_events)
{
	struct json_object *o = lw_j_record("end", s->pid, lw_now_real());

	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "lost_events", json_object_new_int64((int64_t)lost_events));
	lw_sess_add_bpf_losses(s, o);
	json_object_object_add(o, "duration_s",
			       lw_j_num((double)(lw_now_mono() - s->start_mono) / 1e9, 3));
	return o;
}
struct json_object *lw_session__describe(struct lw_session *s)
{
	return lw_sess_describe(&s->o, s->pid, s->comm, s->is_python, s->runtime, &s->py, s->runtime_why);
}

int lw_session__new(struct lw_bpf *b, pid_t pid, const struct lw_session_opts *o,
		    struct lw_session **out, char *err, size_t errlen)
{
	struct lw_session *s = calloc(1, sizeof(*s));
	char why[4608];
	int r;

	if (!s)
		return -ENOMEM;
	s->bpf = b;
	s->pid = pid;
	s->o = *o;
	s->ctxrun = -1;
	s->uv_handles[0] = s->uv_handles[1] = s->uv_handles[2] = s->uv_handles[3] = -1;
	lw_v8gc__init(&s->v8gc);
	lw_strlcpy(s->proc_root, o->proc_root ? o->proc_root : "/proc", sizeof(s->proc_root));
	s->o.proc_root = s->proc_root;
	s->o.target_name = NULL;
	if (o->target_name) {
		lw_strlcpy(s->target, o->target_name, sizeof(s->target));
		s->o.target_name = s->target;
	}
	s->start_mono = s->last_summary_mono = lw_now_mono();
	if (lw_u64map__new(sizeof(struct lw_sthread), &s->threads) ||
	    lw_u64map__new(sizeof(struct lw_tst), &s->tst) ||
	    lw_u64map__new(sizeof(struct lw_site_id), &s->sites) ||
	    lw_u64map__new(sizeof(struct lw_agg), &s->slow_sites) ||
	    lw_u64map__new(sizeof(struct lw_hist), &s->moved_out) ||
	    lw_u64map__new(sizeof(struct lw_agg), &s->block_sites)) {
		r = -ENOMEM;
		goto fail;
	}
	r = lw_memread__open(pid, &s->mem);
	if (r)
		goto fail;
	s->rd = lw_memread__reader(s->mem);
	r = lw_sess_probe(pid, o, s->mem, &s->py, &s->is_python, &s->runtime, why, sizeof(why), err, errlen);
	if (r)
		goto fail;
	lw_sess_read_comm(s->proc_root, pid, 0, s->comm, sizeof(s->comm));
	s->other_pidns = !lw_sess_same_pidns(s->proc_root, pid);
	lw_strlcpy(s->runtime_why, why, sizeof(s->runtime_why));
	lw_nativesym__new(s->proc_root, pid, &s->nsym);
	if (b)
		lw_nstack__new(b, s->proc_root, pid, &s->rd, &s->nstk);
	if (s->is_python) {
		r = lw_pycache__new(&s->py.lay, s->py.minor, &s->codes);
		if (r)
			goto fail;
		lw_pycache__set_types(s->codes, s->py.code_type, s->py.cfg.type_unicode);
		s->py.cfg.flags |= LW_PROC_STACKS | LW_PROC_NATIVE;
	} else {
		memset(&s->py.cfg, 0, sizeof(s->py.cfg));
		s->py.cfg.flags = LW_PROC_STACKS | LW_PROC_NATIVE;
		s->py.cfg.tss_key = -1;
	}
	s->py.cfg.threshold_ns = o->threshold_ns;
	s->py.cfg.block_threshold_ns = o->block_threshold_ns;
	s->py.cfg.share = o->share;
	if (o->precise && s->is_python)
		s->py.cfg.flags |= LW_PROC_PRECISE;
	lw_strlcpy(s->mode, o->precise ? "precise" : "default", sizeof(s->mode));
	/* tid -> tstate before anything fires; find asyncio's _run_once on the loop threads */
	if (s->is_python) {
		lw_sess_refresh_tstates(s);
		lw_sess_learn_from_threads(s);
	}
	r = lw_bpf__set_proc(b, pid, &s->py.cfg);
	if (r) {
		snprintf(err, errlen, "cannot configure the BPF maps for pid %d: %s", (int)pid,
			 strerror(-r));
		goto fail;
	}
	lw_sess_note_polling_threads(s);
	if (s->is_python && !o->no_hooks)
		lw_pyhooks__new(b, &s->py, s->proc_root, &s->hooks);
	if (s->runtime == LW_RT_NODE && !o->no_hooks)
		lw_v8gc__attach(b, s->proc_root, pid, &s->v8gc);
	if (o->precise && s->is_python) {
		r = lw_bpf__attach_ctxrun(b, pid, s->py.elf_host, s->py.ctxrun_off, err, errlen);
		if (r < 0) {
			lw_bpf__forget_proc(b, pid);
			goto fail;
		}
		s->ctxrun = r;
		lw_sess_attach_uvloop(s);
	}
	*out = s;
	return 0;
fail:
	lw_session__free(s);
	return r;
}

void lw_session__free(struct lw_session *s)
{
	if (!s)
		return;
	lw_stuck__free(s->stuck);
	lw_pyhooks__free(s->hooks);
	if (s->bpf) {
		int i;

		for (i = 0; i < 4; i++)
			if (s->uv_handles[i] >= 0)
				lw_bpf__detach_hook(s->bpf, s->uv_handles[i]);
		if (s->ctxrun >= 0)
			lw_bpf__detach(s->bpf, s->ctxrun);
		lw_v8gc__detach(s->bpf, &s->v8gc);
		if (s->threads)
			lw_bpf__forget_proc(s->bpf, s->pid);
	}
	lw_pycache__free(s->codes);
	lw_nativesym__free(s->nsym);
	lw_nstack__free(s->nstk);
	lw_memread__close(s->mem);
	lw_u64map__free(s->threads, lw_sess_thread_free);
	lw_u64map__free(s->tst, NULL);
	lw_u64map__free(s->ns_by_id, NULL);
	lw_u64map__free(s->ns_by_host, NULL);
	lw_u64map__free(s->sites, NULL);
	lw_u64map__free(s->slow_sites, NULL);
	lw_u64map__free(s->moved_out, NULL);
	lw_u64map__free(s->block_sites, NULL);
	free(s);
}

pid_t lw_session__pid(const struct lw_session *s)
{
	return s->pid;
}

const struct lw_session_opts *lw_session__opts(const struct lw_session *s)
{
	return &s->o;
}

const char *lw_session__comm(const struct lw_session *s)
{
	return s->comm;
}

const char *lw_session__target(const struct lw_session *s)
{
	return s->target;
}

void lw_session__counts(const struct lw_session *s, struct lw_session_counts *out)
{
	uint64_t by[LW_RD_NCAUSES];

	*out = s->counts;
	/* this process's failed reads: the BPF side's and loopwatch's own */
	out->read_errors = (s->bpf ? lw_bpf__proc_read_errors(s->bpf, s->pid, by) : 0) +
			   (s->mem ? lw_memread__errors(s->mem) : 0);
}
