/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPU samples of busy loop threads; precise mode (uprobes on context_run and uvloop handles).
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_PRECISE_BPF_H
#define LW_LW_PRECISE_BPF_H

/* ---------------------------------------------------------------- precise mode */

/* A callback begins (outermost only: user code may call Context.run inside a callback) */
static __always_inline void cb_begin(struct lw_thread *th, __u64 callable, __u64 ctxobj)
{
	th->cb_seen = 1;
	if (th->cb_depth++)
		return;
	th->cb_start_ns = bpf_ktime_get_ns();
	th->cb_noloop_ns = 0;
	th->cb_left_ns = 0;
	th->cb_ctx = ctxobj;
	th->cb_callable = callable;
	th->cb_best_block_ns = 0;
	if (th->cb_dirty) {
		split_reset(&th->cb);
		th->cb_dirty = 0;
	}
}

/*
 * The full identity (strings) of the callback that ends. Begun by the entry-only probe, its
 * callable may be gone by now (the next callback's entry): when its type changed, the identity
 * taken at entry is completed from the code object (which outlives its callables).
 */
static __always_inline void cb_ident_full(const struct lw_pycfg *c, struct lw_thread *th,
					  struct lw_ident *id)
{
	if (!th->cb_entry_only) {
		classify(c, th->cb_callable, th->cb_ctx, id, 1);
		return;
	}
	/* a freed object keeps its type pointer: no re-reading the callable, only what outlives
	 * it (code objects, types) */
	bpf_probe_read_kernel(id, sizeof(*id), &th->cb_id);
	if (id->kind == LW_KIND_OTHER && id->type && !id->qualname[0]) {
		__u64 p = rd_ptr(id->type + c->tp_name);

		if (p)
			bpf_probe_read_user_str(id->qualname, sizeof(id->qualname), (const void *)p);
		return;
	}
	ident_from_code(c, id->code, id);
}

/* A callback ends: time it, count it in its site's histogram, report it when slow. */
static __always_inline void cb_end(struct lw_thread *th, __u32 tgid, __u32 tid)
{
	struct lw_pycfg *c;
	struct lw_zero *z;
	struct lw_site_key key = {};
	struct lw_hist *h;
	struct lw_rec_callback *r;
	struct lw_rec_site *rs;
	struct lw_tstacks *st;
	__u64 now, dur, site, code, type, task;
	__u32 slot, kind;

	if (!th->cb_depth) {
		/* before any entry on this thread: a call entered while the probes were being
		 * attached (return probe first), not an error */
		if (th->cb_seen)
			__sync_fetch_and_add(&depth_errors, 1);
		return;
	}
	/* a sleep in the callback whose switch-in was not seen: closed before it is timed */
	if (th->off_ts)
		off_close_missed(th, tid, (struct task_struct *)bpf_get_current_task(),
				 bpf_ktime_get_ns());
	if (--th->cb_depth)
		return;
	c = bpf_map_lookup_elem(&procs, &tgid);
	z = zeroes();
	if (!c || !z)
		return;
	/* entry-only: where the CPU samples found the loop left, if they did */
	now = th->cb_left_ns ? th->cb_left_ns : bpf_ktime_get_ns();
	dur = now - th->cb_start_ns;
	th->iter_callbacks++;

	/* site key: a few pointer reads for every callback (entry-only: read at its entry, and
	 * its identity not copied: read where it is) */
	if (th->cb_entry_only) {
		site = th->cb_site;
		kind = th->cb_id.kind;
		code = th->cb_id.code;
		type = th->cb_id.type;
		task = th->cb_id.task;
	} else {
		__builtin_memset(&z->id, 0, sizeof(z->id));
		site = classify(c, th->cb_callable, th->cb_ctx, &z->id, 0);
		kind = z->id.kind;
		code = z->id.code;
		type = z->id.type;
		task = z->id.task;
	}
	key.tgid = tgid;
	key.site = site;
	h = bpf_map_lookup_elem(&sites, &key);
	if (!h) {
		if (bpf_map_update_elem(&sites, &key, &z->h, BPF_NOEXIST) == 0) {
			/* first sighting: tell userspace who this is while it still exists */
			rs = bpf_ringbuf_reserve(&events, sizeof(*rs), 0);
			if (rs) {
				hdr_fill(&rs->hdr, LW_REC_SITE, sizeof(*rs), tgid, tid, now);
				rs->site = site;
				__builtin_memset(&rs->ident, 0, sizeof(rs->ident));
				cb_ident_full(c, th, &rs->ident);
				bpf_ringbuf_submit(rs, 0);
			} else {
				__sync_fetch_and_add(&lost_events, 1);
			}
		}
		h = bpf_map_lookup_elem(&sites, &key);
		if (!h)
			__sync_fetch_and_add(&sites_full, 1);
	}
	if (h) {
		slot = lw_hist_slot(dur) & (LW_HIST_SLOTS - 1);
		__sync_fetch_and_add(&h->count, 1);
		__sync_fetch_and_add(&h->total_ns, dur);
		__sync_fetch_and_add(&h->slots[slot], 1);
		if (dur > h->max_ns)
			h->max_ns = dur;
		if (!h->min_ns || dur < h->min_ns)
			h->min_ns = dur;
	}
	if (dur > th->slowest_cb_ns && th->iter_start_ns) {
		th->slowest_cb_ns = dur;
		th->slowest.kind = kind;
		th->slowest.code = code;
		th->slowest.callable = th->cb_callable;
		th->slowest.type = type;
		th->slowest.task = task;
	}
	if (dur < c->threshold_ns || !fair_ok(tgid, sizeof(*r)))
		return;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	hdr_fill(&r->hdr, LW_REC_CALLBACK, sizeof(*r), tgid, tid, now);
	r->start_ns = th->cb_start_ns;
	r->duration_ns = dur;
	r->flags = 0;
	r->depth_errors = 0;
	__builtin_memset(&r->ident, 0, sizeof(r->ident));
	cb_ident_full(c, th, &r->ident);
	bpf_probe_read_kernel(&r->split, sizeof(r->split), &th->cb);
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (st && th->cb_best_block_ns)
		copy_stack(&r->block_stack, &st->cb_block);
	else
		no_stack(&r->block_stack);
	if (st && st->cpu.ts_ns >= th->cb_start_ns)
		copy_stack(&r->cpu_stack, &st->cpu);
	else
		no_stack(&r->cpu_stack);
	bpf_ringbuf_submit(r, 0);
}


/*
 * An outermost Context.run that no event loop made: no callback. Since 3.14 every
 * threading.Thread runs its run() inside Context.run (Thread._bootstrap_inner): timed as a
 * callback, a worker thread's whole life would be one slow callback, its waits blocking calls,
 * and the loop callbacks of a thread that runs asyncio would nest inside it, never timed.
 * Only when it can be told: no asyncio _run_once among the caller's frames (unknown: counted,
 * as before).
 */
static __always_inline int ctxrun_outside_loop(__u32 tgid, __u32 tid)
{
	const struct lw_pycfg *c;
	__u64 f, code;
	char name[20];
	int pos = lw_loop_position(tgid, tid);

	if (pos != LW_LOOP_UNKNOWN)
		return pos == LW_NO_LOOP;
	/* 3.14+ before _run_once is learnt (a thread started before the first loop ran): the
	 * caller is Thread._bootstrap_inner itself */
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c || !(c->flags & LW_PROC_PYTHON) || c->minor < 14 || c->cframe_cur != NO_FIELD)
		return 0;
	f = rd_ptr(thread_tstate(c, tid) + c->ts_frame);
	code = f ? rd_ptr(f + c->f_code) & ~(__u64)c->stackref_mask : 0;
	if (!code || rd_pystr(c, rd_ptr(code + c->co_name), name, sizeof(name)))
		return 0;
	return name[0] == '_' && name[1] == 'b' && name[2] == 'o' && name[3] == 'o' &&
	       name[4] == 't' && name[5] == 's' && name[6] == 't' && name[7] == 'r' &&
	       name[8] == 'a' && name[9] == 'p' && name[10] == '_' && name[11] == 'i' &&
	       name[12] == 'n' && name[13] == 'n' && name[14] == 'e' && name[15] == 'r' &&
	       name[16] == 0;
}

/*
 * ctxrun_outside_loop at the entry of an outermost Context.run, with its answer kept: the
 * loop enters every callback from one C stack depth and one Python frame (Handle._run's,
 * reused call after call), so an entry at the stack pointer, frame and code of one that the
 * walk found in a loop is in that loop, without the walk (2 frames read: a third of this
 * probe's BPF work, stop 18). The frame and its code must match too: other code that calls
 * Context.run from the same C stack depth is walked.
 */
static __always_inline int ctxrun_outside_loop_kept(struct lw_thread *th, __u32 tgid,
						    __u32 tid, __u64 sp)
{
	const struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	__u64 f = 0, code = 0, ts;
	int pos;

	if (c && (c->flags & LW_PROC_PYTHON) && c->run_once_code) {
		ts = thread_tstate(c, tid);
		f = ts ? rd_ptr(ts + c->ts_frame) : 0;
		if (c->cframe_cur != NO_FIELD && f)
			f = rd_ptr(f + c->cframe_cur);
		if (f)
			code = rd_ptr(f + c->f_code) & ~(__u64)c->stackref_mask;
	}
	if (code && sp == th->cb_loop_sp && f == th->cb_loop_frame && code == th->cb_loop_code)
		return 0;
	pos = lw_loop_position(tgid, tid);
	if (pos == LW_IN_LOOP || pos == LW_AT_SELECT) {
		th->cb_loop_sp = code ? sp : 0;
		th->cb_loop_frame = f;
		th->cb_loop_code = code;
		return 0;
	}
	if (pos == LW_NO_LOOP)
		return 1;
	return ctxrun_outside_loop(tgid, tid);
}

/*
 * The function a plain function or bound method callable runs, and its __qualname__ object (0:
 * another kind of callable). Four pointer reads.
 */
static __always_inline __u64 callable_function(const struct lw_pycfg *c, __u64 callable,
					       __u64 *type, __u64 *qualname)
{
	__u64 fn = callable;

	*type = rd_ptr(callable + 8);
	if (*type == c->type_method && c->type_method) {
		fn = rd_ptr(callable + c->meth_func);
		if (!fn || rd_ptr(fn + 8) != c->type_function)
			return 0;
	} else if (*type != c->type_function || !c->type_function) {
		return 0;
	}
	*qualname = rd_ptr(fn + c->func_qualname);
	return *qualname ? fn : 0;
}

/*
 * Entry-only precise mode: the identity of a callable that runs the same function as the last
 * callback classified (a call_soon chain, a protocol's method called again and again) is the
 * last one's: same type, code and __qualname__ object, so the same site and names, left in
 * cb_id. Their reads cost a third of the entry probe's BPF work (bpf_stats: 633 ns a call,
 * call_soon chain, 3.11). A string object is immutable while alive, and one at the same address
 * in a function with the same code at the same address is the same name. Otherwise classified,
 * and th->cb_qualname_obj kept for the next entry when the identity is a function's, whole.
 */
static __always_inline void cb_identify(const struct lw_pycfg *c, struct lw_thread *th)
{
	__u64 type, qualname = 0, fn = callable_function(c, th->cb_callable, &type, &qualname);
	__u64 code = fn ? rd_ptr(fn + c->func_code) : 0;

	if (code && qualname == th->cb_qualname_obj && type == th->cb_id.type &&
	    code == th->cb_id.code) {
		th->cb_id.callable = th->cb_callable;
		return;
	}
	__builtin_memset(&th->cb_id, 0, sizeof(th->cb_id));
	th->cb_site = classify(c, th->cb_callable, th->cb_ctx, &th->cb_id, 1);
	th->cb_qualname_obj = 0;
	if (code && code == th->cb_id.code && type == th->cb_id.type &&
	    (th->cb_id.kind == LW_KIND_FUNCTION || th->cb_id.kind == LW_KIND_METHOD) &&
	    !(th->cb_id.flags & (LW_IDENT_READ_ERR | LW_IDENT_PARTIAL)))
		th->cb_qualname_obj = qualname;
}

SEC("uprobe")
int BPF_KPROBE(lw_ctxrun_enter, void *ctxobj, void *args)
{
	__u64 id = bpf_get_current_pid_tgid(), sp;
	struct lw_thread *th = thread_of(id >> 32, (__u32)id);

	if (!th)
		return 0;
	if (!ctxrun_entry_only) {
		if (!th->cb_depth &&
		    ctxrun_outside_loop_kept(th, id >> 32, (__u32)id, PT_REGS_SP(ctx))) {
			th->cb_skipped++;	/* its return is no callback's end */
			return 0;
		}
		cb_begin(th, rd_ptr((__u64)args), (__u64)ctxobj);
		return 0;
	}
	/*
	 * One trap per callback: no return probe. The loop calls every callback from the same
	 * depth, so an entry at or above the open callback's stack pointer means that callback
	 * returned: it ends here. A deeper one is user code calling Context.run inside it.
	 */
	sp = PT_REGS_SP(ctx);
	if (th->cb_depth) {
		if (!th->cb_entry_only || (sp < th->cb_sp && !th->cb_left_ns))
			return 0;
		cb_end(th, id >> 32, (__u32)id);
		if (th->cb_depth)
			return 0;
	}
	/* in a loop? A walk of the frames up to _run_once, once per stack depth: the loop calls
	 * every callback from one depth, and an entry at the depth of one found in the loop is
	 * the loop's (stop 17: the walk was part of the BPF work of every callback) */
	if (sp != th->cb_loop_sp) {
		int pos = lw_loop_position(id >> 32, (__u32)id);

		if (pos == LW_IN_LOOP || pos == LW_AT_SELECT)
			th->cb_loop_sp = sp;
		else if (pos == LW_NO_LOOP || ctxrun_outside_loop(id >> 32, (__u32)id))
			return 0;
	}
	cb_begin(th, rd_ptr((__u64)args), (__u64)ctxobj);
	th->cb_sp = sp;
	th->cb_ret = 0;
	bpf_probe_read_user(&th->cb_ret, sizeof(th->cb_ret), (void *)sp);
	th->cb_entry_only = 1;
	{
		__u32 tgid = id >> 32;
		struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);

		if (!c)
			return 0;
		/* identified now, while the callable surely exists, in place, with its names: a
		 * function's qualname before 3.11 is the function's (its code has none), a builtin
		 * method's (uvloop's callbacks) its PyMethodDef's, a Task's its own; at the end
		 * the callable may be gone. Stop 17: without them, sched mode (now the default
		 * here) named a 3.8 lambda '<lambda>' and uvloop's callbacks by their type. The
		 * names are read only when the function differs from the last callback's. */
		cb_identify(c, th);
	}
	return 0;
}

/* The loop is back in its poll: the callback begun by the entry-only probe has returned */
static __always_inline void cb_close_open(struct lw_thread *th, __u32 tgid, __u32 tid)
{
	if (ctxrun_entry_only && th->cb_entry_only && th->cb_depth == 1) {
		cb_end(th, tgid, tid);
		th->cb_entry_only = 0;
	}
}

/* ---------------------------------------------------------------- CPU samples */

/*
 * What a CPU sample votes for: the innermost Python function (its code object); with no Python
 * frame, the 64 KiB block of code the sample's instruction is in (a function's address range is
 * not known here, and the return addresses above it are not reliable: code built without frame
 * pointers uses rbp as it likes; one block holds a hot loop, a JIT's function, a parser, an
 * assembly hash routine, most of the time). 0: nothing to vote for.
 */
static __always_inline __u64 cpu_vote_key(const struct lw_pystack *p)
{
	if (p->nframes)
		return p->frames[0].code;
	return p->nnative ? (p->native[0] >> 16) + 1 : 0;
}

/* The instruction vote restarts at this sample's instruction */
static __always_inline void instr_vote_reset(struct lw_tstacks *st, __u64 instr)
{
	__u32 i;

	for (i = 0; i < LW_CPU_VOTES; i++)
		st->vote_n[i] = 0;
	st->vote_instr[0] = instr;
	st->vote_n[0] = 1;
	st->cpu_instr = instr;
}

/*
 * A sample of the candidate function votes for its instruction (Misra-Gries: its counter, or a
 * free one, goes up; with none free, every counter goes down). 1: the sample is at the
 * instruction kept (cpu_instr) or its instruction now has more votes than the kept one's, and
 * becomes it; ties keep the earlier (a hot loop's tail, a return after it, comes late).
 */
static __noinline int instr_vote(struct lw_tstacks *st, __u64 instr)
{
	__u32 i, hit = LW_CPU_VOTES, free = LW_CPU_VOTES, mine, kept = 0;

	for (i = 0; i < LW_CPU_VOTES; i++) {
		if (st->vote_n[i] && st->vote_instr[i] == instr)
			hit = i;
		else if (!st->vote_n[i] && free == LW_CPU_VOTES)
			free = i;
	}
	if (hit == LW_CPU_VOTES && free < LW_CPU_VOTES) {
		hit = free;
		st->vote_instr[hit] = instr;
		st->vote_n[hit] = 0;
	}
	if (hit >= LW_CPU_VOTES) {
		for (i = 0; i < LW_CPU_VOTES; i++)
			if (st->vote_n[i])
				st->vote_n[i]--;
		return 0;
	}
	mine = ++st->vote_n[hit];
	if (instr == st->cpu_instr)
		return 1;
	for (i = 0; i < LW_CPU_VOTES; i++)
		if (st->vote_n[i] && st->vote_instr[i] == st->cpu_instr)
			kept = st->vote_n[i];
	if (mine <= kept)
		return 0;
	st->cpu_instr = instr;
	return 1;
}

/*
 * Where does it burn CPU? A majority vote (Boyer-Moore) over the innermost function of the
 * samples of this busy period: Python keeps that function's latest sample at the instruction
 * with the most votes (instr_vote, for its line); a native-only stack (Node, libuv, epoll) keeps
 * the candidate's first sample, whose user-stack copy (ustacks, keyed by its ts_ns) the
 * unwinder then finds. smp: the sample (the sampler's, or one taken at a preemption);
 * counted: whether it counts toward the samples in no loop (the sampler's only); copy: smp has
 * a user-stack copy (the sampler's), or will have one if it is taken (a preemption in a busy
 * period old enough to matter, lw_sched.bpf.h). A candidate taken without a copy gives way to
 * the next sample of its own function that has one, keeping its votes.
 */
static __always_inline int cpu_vote(struct lw_thread *th, struct lw_tstacks *st, __u32 tid,
				    const struct lw_pystack *smp, int counted, int copy)
{
	__u64 since, votes, ts, key, instr;
	__u32 copied;
	int noloop, taken = 0;

	since = busy_since(th);
	key = cpu_vote_key(smp);
	instr = smp->nframes ? smp->frames[0].instr : 0;
	/* samples of this busy period outside any asyncio loop: two make the period no iteration
	 * (synchronous code between two loops, loops whose selector never polls: issue 20); the
	 * count is kept across the vote's stack copies below and, in precise mode, callbacks */
	noloop = 0;
	if ((st->cpu.flags & LW_STACK_VALID) && st->cpu.ts_ns >= th->iter_start_ns)
		noloop = (st->cpu.flags & LW_STACK_LEFT_LOOP) ? 2 :
			 (st->cpu.flags & LW_STACK_NOLOOP_ONE) ? 1 : 0;
	if (counted && (smp->flags & LW_STACK_NOLOOP) && noloop < 2)
		noloop++;
	if (!(st->cpu.flags & LW_STACK_VALID) || st->cpu.ts_ns < since || !cpu_vote_key(&st->cpu)) {
		copy_stack(&st->cpu, smp);
		st->cpu.ns = 1;
		instr_vote_reset(st, instr);
		taken = 1;
	} else if (key && key == cpu_vote_key(&st->cpu)) {
		if (smp->nframes) {
			votes = st->cpu.ns + 1;
			ts = st->cpu.ts_ns;
			copied = st->cpu.flags & LW_STACK_USTACK;
			/* the same vote within the function, on the instruction (for the line) */
			if (instr_vote(st, instr)) {
				copy_stack(&st->cpu, smp);
				if (!copied && copy) {
					ts = smp->ts_ns;	/* its copy's key */
					taken = 1;
				} else {
					/* the stack copy is still the candidate's (its time, below) */
					st->cpu.flags = (st->cpu.flags & ~LW_STACK_USTACK) | copied;
				}
			}
			st->cpu.ns = votes;
			st->cpu.ts_ns = ts;	/* the candidate's age, not the sample's */
		} else if (copy && !(st->cpu.flags & LW_STACK_USTACK)) {
			votes = st->cpu.ns + 1;
			copy_stack(&st->cpu, smp);
			st->cpu.ns = votes;
			taken = 1;
		} else {
			st->cpu.ns++;
		}
	} else if (st->cpu.ns <= 1) {
		copy_stack(&st->cpu, smp);
		st->cpu.ns = 1;
		instr_vote_reset(st, instr);
		taken = 1;
	} else {
		st->cpu.ns--;
	}
	st->cpu.flags &= ~(LW_STACK_NOLOOP_ONE | LW_STACK_LEFT_LOOP);
	if (noloop)
		st->cpu.flags |= noloop >= 2 ? LW_STACK_LEFT_LOOP : LW_STACK_NOLOOP_ONE;
	/* the candidate's user-stack copy is the one a record will unwind: keep it ahead of the
	 * copies of later samples and sleeps in the LRU's eviction order (a 3 s callback takes
	 * ~150 samples, and as many page-fault sleeps, after it) */
	ustack_keep(tid, st->cpu.ts_ns);
	return taken;
}

SEC("perf_event")
int lw_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;
	struct lw_tstacks *st;

	if (th && th->in_poll)	/* running, so woken from its poll unseen */
		lw_poll_missed(tid, bpf_ktime_get_ns());
	if (!th || !busy(th))
		return 0;
	if (cb_open_entry_only(th))
		lw_cb_returned(tid, bpf_ktime_get_ns());
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c || !(c->flags & LW_PROC_STACKS))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st)
		return 0;
	__sync_fetch_and_add(&samples, 1);
	walk_pystack(c, tid, &st->sample, LW_WALK_SAMPLE);
	st->sample.syscall = (__u32)-1;
	capture_native(ctx, &st->sample, c, 1);
	/*
	 * Precise mode, entry probe only: a callback never leaves its loop, so two samples of the
	 * open callback in no loop mean it has returned and the loop was left without a poll or a
	 * next callback to end it (loop.stop() in run_until_complete, then synchronous code): it
	 * ends at the first of them, not at the next loop's first poll (cb_end, when that comes).
	 * Two, not one: a sample in a frame push's few instructions can read a stale chain.
	 */
	if (ctxrun_entry_only && th->cb_entry_only && th->cb_depth == 1 && !th->cb_left_ns) {
		if (!(st->sample.flags & LW_STACK_NOLOOP))
			th->cb_noloop_ns = 0;
		else if (!th->cb_noloop_ns)
			th->cb_noloop_ns = bpf_ktime_get_ns();
		else
			th->cb_left_ns = th->cb_noloop_ns;
	}
	cpu_vote(th, st, tid, &st->sample, 1, !!(st->sample.flags & LW_STACK_USTACK));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(lw_ctxrun_exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (!th)
		return 0;
	if (!th->cb_depth && th->cb_skipped) {
		th->cb_skipped--;
		return 0;
	}
	cb_end(th, id >> 32, tid);
	return 0;
}

/*
 * uvloop: its Handle._run and TimerHandle._run (Cython, no symbols: found through the types'
 * __pyx_vtable__). A Handle holds a Python callable only when cb_type == 1; its other kinds
 * (the loop's own idle handler, which runs the ready callbacks nested inside it) are not
 * callbacks of the program. Each thread keeps a bit stack of which entries were counted so
 * that the shared return probe knows.
 */
SEC("uprobe")
int BPF_KPROBE(lw_uv_handle, void *self)
{
	__u64 id = bpf_get_current_pid_tgid(), h = (__u64)self;
	__u32 tgid = id >> 32;
	struct lw_thread *th = thread_of(tgid, (__u32)id);
	struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	__s32 cb_type = 0;
	int counted;

	if (!th || !c)
		return 0;
	rd(&cb_type, sizeof(cb_type), h + c->uv_cbtype);
	counted = cb_type == 1;
	th->uv_stack = (th->uv_stack << 1) | (__u64)counted;
	if (counted)
		cb_begin(th, rd_ptr(h + c->uv_arg1), rd_ptr(h + c->uv_ctx));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(lw_uv_timer, void *self)
{
	__u64 id = bpf_get_current_pid_tgid(), h = (__u64)self;
	__u32 tgid = id >> 32;
	struct lw_thread *th = thread_of(tgid, (__u32)id);
	struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);

	if (!th || !c)
		return 0;
	th->uv_stack = (th->uv_stack << 1) | 1;
	cb_begin(th, rd_ptr(h + c->uv_timer_cb), rd_ptr(h + c->uv_timer_ctx));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(lw_uv_exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	int counted;

	if (!th)
		return 0;
	counted = th->uv_stack & 1;
	th->uv_stack >>= 1;
	if (counted)
		cb_end(th, id >> 32, tid);
	return 0;
}

#endif
