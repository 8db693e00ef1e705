/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Loop iterations bounded by the loop's poll-family call. Two ways, chosen at load (iter_sched):
 * - sched (default): the scheduler sees where a loop thread sleeps (lw_sched.bpf.h), and a
 *   per-process uprobe on the libc poll wrappers' entry (lw_poll_enter) sees polls that return
 *   at once. Nothing runs for other processes' syscalls.
 * - syscall: tp_btf/sys_exit (lw_sys_exit). Any syscall tracepoint sends every syscall of every
 *   process on the host through the kernel's slow exit path: a host-wide tax.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_ITER_BPF_H
#define LW_LW_ITER_BPF_H

/* Set by userspace before load: 1 = iterations from the scheduler and poll-entry uprobes
 * (lw_sys_exit is not loaded), 0 = from tp_btf/sys_exit */
const volatile __u32 iter_sched = 0;
/* Set by userspace before load: context_run has an entry probe only (one trap per callback;
 * lw_precise.bpf.h) */
const volatile __u32 ctxrun_entry_only = 0;

/* ---------------------------------------------------------------- loop iterations */

/*
 * An iteration is from the return of the loop's poll-family syscall to the next time the thread
 * goes back into it: at its sleep in there (sched_switch) or, when it did not sleep, at its
 * return (sys_exit). Only one syscall tracepoint per iteration, and no atomics: a thread's
 * state is only written by that thread (or by the scheduler while it is off CPU).
 */
static __always_inline void iteration_end(struct lw_thread *th, __u32 tid, __u64 now)
{
	struct lw_tstacks *st;
	struct lw_rec_tick *r;
	struct lw_pycfg *c;
	__u64 busy_ns = now - th->iter_start_ns;
	__u32 tgid = th->tgid;

	th->ls.iterations++;
	th->ls.busy_ns += busy_ns;
	th->ls.callbacks += th->iter_callbacks;
	th->ls.lag[lw_hist_slot(busy_ns) & (LW_HIST_SLOTS - 1)]++;
	set_iter_start(th, tid, 0);
	if (busy_ns < th->threshold_ns)
		return;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c || !fair_ok(tgid, sizeof(*r)))
		return;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	hdr_fill(&r->hdr, LW_REC_TICK, sizeof(*r), tgid, tid, now);
	r->start_ns = now - busy_ns;
	r->busy_ns = busy_ns;
	r->flags = (c->flags & LW_PROC_PRECISE) ? LW_TICK_PRECISE : 0;
	r->callbacks = th->iter_callbacks;
	r->poll_nr = th->poll_nr;
	r->pad = 0;
	r->slowest_cb_ns = th->slowest_cb_ns;
	bpf_probe_read_kernel(&r->slowest, sizeof(r->slowest), &th->slowest);
	bpf_probe_read_kernel(&r->split, sizeof(r->split), &th->iter);
	st = bpf_map_lookup_elem(&stacks, &tid);
	/* stacks belong to this iteration when taken after it began */
	if (st && th->best_block_ns && st->iter_block.ts_ns >= r->start_ns)
		copy_stack(&r->block_stack, &st->iter_block);
	else
		no_stack(&r->block_stack);
	if (st && st->cpu.ts_ns >= r->start_ns)
		copy_stack(&r->cpu_stack, &st->cpu);
	else
		no_stack(&r->cpu_stack);
	bpf_ringbuf_submit(r, 0);
}

static __always_inline void iteration_begin(struct lw_thread *th, __u32 tid, __u64 now)
{
	set_iter_start(th, tid, now);
	th->iter_callbacks = 0;
	th->best_block_ns = 0;
	th->slowest_cb_ns = 0;
	if (th->iter_dirty) {
		split_reset(&th->iter);
		th->iter_dirty = 0;
	}
}

/*
 * Where the current thread's Python code stands relative to asyncio's BaseEventLoop._run_once
 * (its code is learnt by userspace): LW_AT_SELECT when the innermost Python frame (the
 * selector's select(), whatever the selector) was called by _run_once, so this call is the
 * loop's own poll; LW_IN_LOOP when _run_once is deeper (a call made by a callback); LW_NO_LOOP
 * when no _run_once is among the innermost LW_LOOP_SCAN frames (synchronous code, a thread
 * that is no asyncio loop: socketserver, a recv with a timeout) or there is no Python frame at
 * all; LW_LOOP_UNKNOWN when it cannot be told (not Python, _run_once not learnt yet, no thread
 * state, a read failed, a deeper stack). Only the current thread: reads its user memory.
 */
#define LW_LOOP_UNKNOWN (-1)
#define LW_NO_LOOP 0
#define LW_AT_SELECT 1
#define LW_IN_LOOP 2
#define LW_LOOP_SCAN 8	/* deeper: unknown, the old rule; each frame costs every program that calls it verifier time */

/* a global function: verified once on its own, not again at each caller's state */
__noinline int lw_loop_position(__u32 tgid, __u32 tid)
{
	const struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	__u64 tstate, f, code, run_once, none;
	__u32 i, nth = 0, shim_min;
	__u16 f_owner, f_code, f_back;
	__u64 tagmask;
	__u8 owner;

	if (!c || !(c->flags & LW_PROC_PYTHON) || !c->run_once_code)
		return LW_LOOP_UNKNOWN;
	run_once = c->run_once_code;
	none = c->none_obj;
	f_owner = c->f_owner;
	f_code = c->f_code;
	f_back = c->f_back;
	/* shims (no code of their own): 3.12/3.13 owner 3 (FRAME_OWNED_BY_CSTACK), 3.14+ 3
	 * (FRAME_OWNED_BY_INTERPRETER, the entry frame) and 4 (FRAME_OWNED_BY_CSTACK) */
	shim_min = c->minor >= 12 ? 3 : 256;
	/* 3.14+: f_executable is a _PyStackRef, its low bits a tag (Py_None's is tagged too) */
	tagmask = ~(__u64)c->stackref_mask;
	tstate = thread_tstate(c, tid);
	if (!tstate)
		return LW_LOOP_UNKNOWN;
	f = rd_ptr(tstate + c->ts_frame);
	if (c->cframe_cur != NO_FIELD && f)
		f = rd_ptr(f + c->cframe_cur);
	for (i = 0; i < LW_LOOP_SCAN && f; i++) {
		owner = 0;
		code = 0;
		if (f_owner != NO_FIELD)
			bpf_probe_read_user(&owner, 1, (void *)(f + f_owner));
		if (bpf_probe_read_user(&code, sizeof(code), (void *)(f + f_code)))
			return LW_LOOP_UNKNOWN;
		code &= tagmask;
		if (code == run_once)
			return nth == 1 ? LW_AT_SELECT : LW_IN_LOOP;
		/* a frame with code: the innermost is nth 0, its caller nth 1 (saturates) */
		if (code && code != none && owner < shim_min && nth < 2)
			nth++;
		f = rd_ptr(f + f_back);
	}
	return f ? LW_LOOP_UNKNOWN : LW_NO_LOOP;
}

/*
 * Does a poll-family syscall `nr` (made by the current thread) end iterations on this thread?
 * epoll always does (the Python selector's, libuv's, a C loop's). A poll/ppoll/select/pselect6
 * does when it is the loop's own select (called by _run_once): a thread may run an epoll loop,
 * then a PollSelector or SelectSelector loop. One made inside a callback (a socket with a
 * timeout) is blocking work. One made with no asyncio loop on the stack is no loop at all: the
 * thread's open iteration, if any, is dropped (synchronous code after a loop ended, a
 * socketserver thread taken for a poll loop before _run_once was learnt). Without Python (or
 * before _run_once is known): once a thread has waited in epoll, only epoll does.
 */
static __always_inline int loop_syscall(struct lw_thread *th, __u32 nr)
{
	int pos;

	if (is_epoll(nr))
		return 1;
	if (!is_pollish(nr))
		return 0;
	pos = lw_loop_position(th->tgid, (__u32)bpf_get_current_pid_tgid());
	if (pos == LW_AT_SELECT)
		return 1;
	if (pos == LW_IN_LOOP)
		return 0;
	if (pos == LW_NO_LOOP) {
		set_iter_start(th, (__u32)bpf_get_current_pid_tgid(), 0);
		th->poll_enter_ns = 0;
		th->poll_nr = (__u32)-1;
		return 0;
	}
	return th->poll_nr == (__u32)-1 || !is_epoll(th->poll_nr);
}

/* poll/select with no fds at all is a sleep (time.sleep on CPython <= 3.10), not a loop */
static __always_inline int waits_on_fds(__u32 nr, __u64 di, __u64 si)
{
	if (nr == NR_select || nr == NR_pselect6)
		return di != 0;
	if (nr == NR_poll || nr == NR_ppoll)
		return si != 0;
	return 1;
}

/* lw_sched.bpf.h: close an off-CPU period, or a sleep in the poll, of the current thread whose
 * switch-in was not seen */
static __always_inline void off_close_missed(struct lw_thread *th, __u32 tid,
					     struct task_struct *t, __u64 now);
__noinline int lw_poll_missed(__u32 tid, __u64 now);

/* A poll-family syscall nr (first two arguments di, si) of the current thread returns: from
 * tp_btf/sys_exit here, or from fexit on the kernel's poll functions (lw_fentry.bpf.h) */
static __always_inline int poll_syscall_exit(__u32 nr, __u64 di, __u64 si)
{
	__u32 tid, tgid;
	struct lw_thread *th;
	__u64 id, now;

	if (!is_epoll(nr) && !(is_pollish(nr) && waits_on_fds(nr, di, si)))
		return 0;
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	tgid = id >> 32;
	th = thread_of(tgid, tid);
	if (!th || !loop_syscall(th, nr))
		return 0;
	now = bpf_ktime_get_ns();
	off_close_missed(th, tid, (struct task_struct *)bpf_get_current_task(), now);
	if (th->iter_start_ns)
		iteration_end(th, tid, now);	/* it went round without sleeping in the poll */
	else if (th->poll_enter_ns && now > th->poll_enter_ns)
		th->ls.idle_ns += now - th->poll_enter_ns;
	th->poll_nr = nr;
	th->ls.poll_nr = nr;
	th->in_poll = 0;
	th->poll_enter_ns = 0;
	iteration_begin(th, tid, now);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(lw_sys_exit, struct pt_regs *regs, long ret)
{
	return poll_syscall_exit((__u32)regs->orig_ax, regs->di, regs->si);
}

/*
 * sched mode: the entry of a libc poll wrapper (uprobe, attached per traced process; the cookie
 * is the wrapper's syscall number). The loop's poll call ends the iteration that ran since the
 * previous one, and provisionally begins the next: when the poll returns at once, that is where
 * the next iteration starts (give or take the poll itself); when it sleeps, the sleep discards
 * the provisional iteration and the wake begins the next one (lw_sched.bpf.h).
 */
/* lw_precise.bpf.h: ends a callback begun by the entry-only context_run probe */
static __always_inline void cb_close_open(struct lw_thread *th, __u32 tgid, __u32 tid);

SEC("uprobe")
int lw_poll_enter(struct pt_regs *ctx)
{
	__u32 nr = (__u32)bpf_get_attach_cookie(ctx), tid, tgid;
	__u64 a0 = PT_REGS_PARM1(ctx), a1 = PT_REGS_PARM2(ctx);
	struct lw_thread *th;
	__u64 id, now;

	if (!is_epoll(nr) && !(is_pollish(nr) && waits_on_fds(nr, a0, a1)))
		return 0;
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	tgid = id >> 32;
	th = thread_of(tgid, tid);
	if (!th || !loop_syscall(th, nr))
		return 0;
	now = bpf_ktime_get_ns();
	off_close_missed(th, tid, (struct task_struct *)bpf_get_current_task(), now);
	if (th->in_poll)
		lw_poll_missed(tid, now);
	cb_close_open(th, tgid, tid);
	if (th->iter_start_ns)
		iteration_end(th, tid, now);
	th->poll_nr = nr;
	th->ls.poll_nr = nr;
	th->poll_probe = 1;
	th->in_poll = 0;
	th->poll_enter_ns = now;
	iteration_begin(th, tid, now);
	return 0;
}

#endif
