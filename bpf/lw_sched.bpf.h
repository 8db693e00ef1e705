/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The scheduler: where a loop thread sleeps (fds it blocks on), wakes, runs; process exit/exec/fork.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_SCHED_BPF_H
#define LW_LW_SCHED_BPF_H

/* ---------------------------------------------------------------- scheduler */

/* user registers of the current task */
static __always_inline struct pt_regs *current_regs(struct task_struct *t)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs) &&
	    bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	/* older kernels (< 5.15, no FRED): pt_regs sit at the top of the 16 KiB stack */
	return (struct pt_regs *)((__u64)BPF_CORE_READ(t, stack) + 16384 - sizeof(struct pt_regs));
}

/* t is a BTF pointer (tp_btf argument): plain loads, no helper calls */
static __always_inline __u32 task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	{
		struct task_struct___old {
			long state;
		} *o = (void *)t;

		return (__u32)o->state;
	}
}

/* The thread id behind a PyThreadState */
static __always_inline __u32 tstate_tid(const struct lw_pycfg *c, __u64 tstate)
{
	__u32 tid = 0;

	if (!tstate)
		return 0;
	if (c->ts_native_id) {
		rd(&tid, sizeof(tid), tstate + c->ts_native_id);
	} else if (c->pthread_tid) {
		__u64 pt = rd_ptr(tstate + c->ts_thread_id);

		if (pt)
			rd(&tid, sizeof(tid), pt + c->pthread_tid);
	}
	return tid;
}

/* ---------------------------------------------------------------- file descriptors a thread blocks on */

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define PIPEFS_MAGIC 0x50495045
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

#include "lw_fdsys.h"

/* syscalls whose first argument is a file descriptor (lw_fdsys.h, shared with userspace) */
static __always_inline int fd_syscall(__u32 nr)
{
	switch (nr) {
#define LW_FD_CASE_(nr, name) case nr:
	LW_FD_SYSCALLS(LW_FD_CASE_)
#undef LW_FD_CASE_
		return 1;
	}
	return 0;
}

/*
 * The path of file f (a kernel address) into the off_fd of thread tid. A global function: the
 * verifier checks its loop once, on its own (inlined into switch_out it was most of
 * lw_sched_switch's verification, at every attach); it takes scalars only (Linux >= 5.8).
 */
__noinline int lw_fd_path(__u64 file, __u32 tid)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct file *f = (struct file *)file;
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry), *parent;
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = container_of(vm, struct mount, mnt);
	/* the path as the task sees it: stop at its root (a chroot, a container's pivot_root) */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *root_d = BPF_CORE_READ(task, fs, root.dentry);
	struct vfsmount *root_m = BPF_CORE_READ(task, fs, root.mnt);
	struct lw_fdinfo *o;
	__u32 i;

	if (!th)
		return 0;
	o = &th->off_fd;

	for (i = 0; i < LW_FD_COMPS + 8; i++) {
		const unsigned char *name;

		if (d == root_d && &mnt->mnt == root_m)
			break;
		parent = BPF_CORE_READ(d, d_parent);
		if (d == parent || !parent) {
			/* the root of a mount: continue from where it is mounted */
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (!up || up == mnt)
				break;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			continue;
		}
		if (o->ncomp >= LW_FD_COMPS) {
			o->truncated = 1;
			break;
		}
		name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(o->comp[o->ncomp & 15],
					  LW_FD_COMPLEN, name);
		o->ncomp++;
		d = parent;
	}
	return 0;
}

static __always_inline void fd_describe(__u32 fd, struct lw_fdinfo *o, __u32 tid)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds, *f = 0;
	struct inode *ino;
	__u32 max = BPF_CORE_READ(fdt, max_fds);
	__u16 mode;

	o->kind = LW_FD_NONE;
	o->ncomp = 0;
	o->truncated = 0;
	if (fd >= max)
		return;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return;
	ino = BPF_CORE_READ(f, f_inode);
	mode = BPF_CORE_READ(ino, i_mode);
	if ((mode & S_IFMT) == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(f, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);
		__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

		o->family = (__u8)fam;
		if (fam == AF_INET || fam == AF_INET6) {
			o->kind = LW_FD_INET;
			o->proto = (__u8)BPF_CORE_READ(sk, sk_protocol);
			o->state = BPF_CORE_READ(sk, __sk_common.skc_state);
			o->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
			o->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
			if (fam == AF_INET) {
				__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
				__u32 b = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

				__builtin_memcpy(o->daddr, &a, 4);
				__builtin_memcpy(o->saddr, &b, 4);
			} else {
				BPF_CORE_READ_INTO(&o->daddr, sk, __sk_common.skc_v6_daddr);
				BPF_CORE_READ_INTO(&o->saddr, sk, __sk_common.skc_v6_rcv_saddr);
			}
		} else if (fam == AF_UNIX) {
			struct unix_sock *u = (struct unix_sock *)sk;
			struct unix_address *ua = BPF_CORE_READ(u, addr);

			o->kind = LW_FD_UNIX;
			if (!ua) {
				struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(u, peer);

				if (peer)
					ua = BPF_CORE_READ(peer, addr);
			}
			if (ua) {
				/* sun_path after the 2-byte family; abstract names start with NUL */
				bpf_probe_read_kernel_str(o->comp[0], LW_FD_COMPLEN * 4,
							  (char *)ua->name + 2);
				o->ncomp = 1;
			}
		} else {
			o->kind = LW_FD_SOCKET;
		}
		return;
	}
	if ((mode & S_IFMT) == S_IFIFO &&
	    BPF_CORE_READ(ino, i_sb, s_magic) == PIPEFS_MAGIC) {
		o->kind = LW_FD_PIPE;
		return;
	}
	o->kind = (mode & S_IFMT) == S_IFIFO ? LW_FD_FIFO : LW_FD_FILE;
	lw_fd_path((__u64)f, tid);
}

/* ---------------------------------------------------------------- switches: a loop thread leaves and rejoins the CPU */

/*
 * How long a thread off the CPU waited in the run queue (woken, not yet running). With the
 * wake-up program (wake_hook = 1, where the kernel lacks what follows) it is the time since
 * its sched_wakeup. Without it, from the kernel's own accounting (CONFIG_SCHED_INFO, which
 * keeps /proc/PID/schedstat): sched_info.run_delay sums a task's completed run-queue waits,
 * sched_info.last_queued (the run queue's clock) is when the current one began, 0 when none.
 * The wake-up program ran on every wake-up on the host, so a context-switch-bound neighbour
 * paid it on every round trip (issue 16); this reads a few fields of a task already in hand.
 * What it gives up: while a woken thread still waits for its CPU, nothing has seen the wake-up,
 * so a live alert's split counts that wait as blocked until the switch-in (the final records
 * have it right).
 */
const volatile __u32 wake_hook = 1;

/* t's run-queue wait since off_ts: completed waits (a migration ends one and begins another),
 * and, when t is being switched in here (sched_switch runs before the kernel's own accounting
 * of the arrival), the wait that ends now, by this CPU's run-queue clock. That run queue is
 * reached through t's own cfs_rq (CONFIG_FAIR_GROUP_SCHED; kept for tasks of every class):
 * the per-CPU `runqueues` is no ksym where kallsyms lists no data (no CONFIG_KALLSYMS_ALL) */
static __always_inline __u64 runq_waited(struct lw_thread *th, struct task_struct *t,
					 int arriving)
{
	__u64 rd, w, lq, clk;
	struct rq *rq;

	/* t may be bpf_get_current_task()'s (no BTF pointer: the poll and context_run probes) */
	rd = BPF_CORE_READ(t, sched_info.run_delay);
	w = rd > th->off_rundelay ? rd - th->off_rundelay : 0;
	if (!arriving)
		return w;
	lq = t->sched_info.last_queued;	/* arriving: sched_switch's next, a BTF pointer */
	rq = t->se.cfs_rq->rq;
	clk = rq ? rq->clock : 0;
	if (lq && clk > lq)
		w += clk - lq;
	return w;
}

/* off-CPU periods whose switch-in no program saw, closed later by the thread itself (read by
 * userspace only for diagnosis: bpftool map dump of .bss) */
__u64 switch_in_missed = 0;

/* The thread leaves the CPU at now (off_ts): its runtime then, to tell later how long it ran */
static __always_inline void off_begin(struct lw_thread *th, struct task_struct *t, __u64 now,
				      __u32 kind)
{
	th->off_ts = now;
	th->wake_ts = 0;
	th->off_kind = kind;
	th->off_stack_ok = 0;
	th->off_rt = BPF_CORE_READ(t, se.sum_exec_runtime);
	th->off_clk = BPF_CORE_READ(t, se.exec_start);
	if (!wake_hook)
		th->off_rundelay = BPF_CORE_READ(t, sched_info.run_delay);
}

static __always_inline void off_end(struct lw_thread *th, __u32 tid, __u64 now, __u64 blocked,
				    __u64 runq);

/* The CPU time t has had in the `wall` ns since it left the CPU (its runtime then off_rt, at
 * run-queue clock off_clk): its runtime's growth, plus the time since the last update of it */
static __always_inline __u64 ran_since_off(const struct lw_thread *th, struct task_struct *t,
					   __u64 wall)
{
	__u64 rt = BPF_CORE_READ(t, se.sum_exec_runtime), es = BPF_CORE_READ(t, se.exec_start);
	__u64 ran = rt > th->off_rt ? rt - th->off_rt : 0;

	if (es >= th->off_clk && wall > es - th->off_clk)
		ran += wall - (es - th->off_clk);
	return ran;
}

/*
 * The current thread t runs, so it is not off the CPU: an off period still open here is one
 * whose switch-in (and often the wake-up) no program saw. Measured on kernel 6.18 with 2 CPUs
 * (issue 18): 2 to 6 in 1,000 of a loop thread's 12 ms sleeps. The kernel did switch the thread
 * in (its sched_info.pcount rose by one, its runtime by 50-250 us) but lw_sched_switch was never
 * called with it as next (a per-thread count at the program's entry stayed 0), and bpftool shows
 * no recursion_misses for either sched program. Left open, the period was lost when the next
 * switch-out overwrote it: that iteration came out all on-CPU, no blocking call, no callback.
 *
 * Closed here, at the thread's next switch-out or loop poll, the period's end is not known, but
 * the thread's own runtime since off_ts is: se.sum_exec_runtime (brought up to date at each tick
 * and switch) plus the time since that update (se.exec_start, in the run queue's clock, measured
 * from off_clk). Only the rest is off-CPU time: blocked up to the wake-up when it was seen, run
 * queue after it. Closing at the next poll without this subtraction counted a preempted
 * CPU-bound callback's remaining CPU time as run-queue time (150 ms on CPU came out as 9 ms).
 */
static __always_inline void off_close_missed(struct lw_thread *th, __u32 tid,
					     struct task_struct *t, __u64 now)
{
	__u64 wall, ran, off, blocked = 0, runq = 0;

	if (!th->off_ts || now <= th->off_ts)
		return;
	wall = now - th->off_ts;
	ran = ran_since_off(th, t, wall);
	off = ran < wall ? wall - ran : 0;
	if (th->off_kind == LW_OFF_RUNQ) {
		runq = off;
	} else if (!wake_hook) {
		runq = runq_waited(th, t, 0);
		if (runq > off)
			runq = off;
		blocked = off - runq;
	} else if (th->wake_ts && th->wake_ts >= th->off_ts && th->wake_ts <= now) {
		blocked = th->wake_ts - th->off_ts;
		if (blocked > off)
			blocked = off;
		runq = off - blocked;
	} else {
		blocked = off;
	}
	__sync_fetch_and_add(&switch_in_missed, 1);
	off_end(th, tid, now, blocked, runq);
}

/*
 * The same for a sleep in the loop's poll (sched mode): a thread found running with in_poll
 * still set was woken there and switched in unseen. Its iteration began at that switch-in: now,
 * less the CPU time it has had since it fell asleep (it has not left the CPU since, or its
 * switch-out would have come here first). Left open, the iteration began only at the thread's
 * next seen switch-in, after the callback's first sleep (test_epoll_generic in CI: a 350 ms
 * iteration, 200 ms asleep then 150 ms on CPU, came out as its last 150 ms), and one that never
 * slept was not seen at all. Called where the thread is known to be running in user space or
 * leaving the CPU: its switch-out, its poll entry, a CPU sample (a cpu-clock hrtimer, which
 * cannot fire inside the scheduler's irq-off switch).
 */
static __always_inline void poll_close_missed(struct lw_thread *th, __u32 tid,
					      struct task_struct *t, __u64 now)
{
	__u64 wall, ran, since;

	if (!iter_sched || !th->in_poll || !th->poll_sleep_ns || now <= th->poll_sleep_ns)
		return;
	wall = now - th->poll_sleep_ns;
	ran = ran_since_off(th, t, wall);
	since = ran < wall ? now - ran : th->poll_sleep_ns;
	th->in_poll = 0;
	th->poll_sleep_ns = 0;
	if (th->poll_enter_ns && since > th->poll_enter_ns)
		th->ls.idle_ns += since - th->poll_enter_ns;
	th->poll_enter_ns = since;
	__sync_fetch_and_add(&switch_in_missed, 1);
	iteration_begin(th, tid, since);
}

/* an entry-only callback is open on th: lw_cb_returned can tell whether it has returned */
static __always_inline int cb_open_entry_only(const struct lw_thread *th)
{
	return ctxrun_entry_only && th->cb_entry_only && th->cb_depth == 1 && !th->cb_left_ns;
}

/*
 * Entry-only precise mode: has the open callback returned? Its end is the next callback's entry
 * or the loop's poll, but a preemption, a sleep or a long CPU stretch (a collection) between
 * its return and that probe was charged to it (stop 17: 46.8 ms of run queue after a callback
 * under CPU contention). Its context_run frame is live while the user stack pointer is at or
 * below the entry's (cb_sp) and that slot still holds the return address the entry found
 * there: any call made after the return, from the loop's own code, is at the same depth at
 * most and writes its own return address there (only another call through the very same C
 * path, at the same depth, would pass for it; then the callback ends at the next probe, as
 * before). Called where the thread is current: its switch-out, a CPU sample.
 */
static __always_inline void cb_check_returned(struct lw_thread *th, struct task_struct *t,
					      __u64 now)
{
	struct pt_regs *regs;
	__u64 sp, ret = 0;

	if (!cb_open_entry_only(th))
		return;
	regs = current_regs(t);
	sp = BPF_CORE_READ(regs, sp);
	if (sp <= th->cb_sp &&
	    (bpf_probe_read_user(&ret, sizeof(ret), (void *)th->cb_sp) || ret == th->cb_ret))
		return;
	th->cb_left_ns = now;
}

/*
 * The two checks above for the current thread, as global functions (scalars only, Linux >=
 * 5.8): each verified once, on its own. Inlined into lw_sched_switch they took its
 * verification from under 100k to 112k instructions (test_programs_loaded_per_mode). Callers
 * test the cheap condition first: neither runs on the common path.
 */
__noinline int lw_poll_missed(__u32 tid, __u64 now)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (th)
		poll_close_missed(th, tid, (struct task_struct *)bpf_get_current_task(), now);
	return 0;
}

__noinline int lw_cb_returned(__u32 tid, __u64 now)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (th)
		cb_check_returned(th, (struct task_struct *)bpf_get_current_task(), now);
	return 0;
}

/* lw_precise.bpf.h: a preempted busy thread's stack votes as a CPU sample (1: it is the
 * candidate now) */
static __always_inline int cpu_vote(struct lw_thread *th, struct lw_tstacks *st, __u32 tid,
				    const struct lw_pystack *smp, int counted, int copy);

/* The thread `prev` (== current) leaves the CPU. */
static __always_inline void switch_out(void *ctx, struct task_struct *prev, __u32 preempt,
				       __u64 now)
{
	__u32 tid = prev->pid;
	struct lw_thread *th;
	struct lw_pycfg *c;
	struct lw_tstacks *st;
	struct pt_regs *regs;
	__u32 tgid;
	__u16 insn = 0;
	__u64 ip, nr, a0;
	int old;

	if (task_untraced(prev))
		return;
	th = bpf_map_lookup_elem(&threads, &tid);
	if (!th)
		return;
	off_close_missed(th, tid, prev, now);
	if (th->in_poll)
		lw_poll_missed(tid, now);
	if (cb_open_entry_only(th))
		lw_cb_returned(tid, now);
	/* sched mode: a sleep in the loop's poll matters even outside a busy period */
	if (!busy(th) && !(iter_sched && !preempt && !th->in_poll && task_state(prev) != 0))
		return;
	if (preempt || task_state(prev) == 0) {
		/* preempted, or yielding: runnable. Where a busy thread was running is where it
		 * burnt CPU, a sample as good as the sampler's, and it votes as one (cpu_vote; not
		 * counted as a sample in no loop). Issue 20 item 11: under CPU contention a callback
		 * that spends most of its time waiting for a CPU runs a few slices only, which the
		 * 49 Hz sampler often misses; with no sleep in it either, its record had no stack.
		 * Walked into the sleep stack's slot, which a runnable period does not use. */
		if (!busy(th))
			return;
		off_begin(th, prev, now, LW_OFF_RUNQ);
		tgid = th->tgid;
		c = bpf_map_lookup_elem(&procs, &tgid);
		if (!c)
			return;
		goto stack;
	}
	/* going to sleep: in which syscall? orig_ax holds its number, but also a page fault's
	 * error code (0-31): outside epoll's numbers, the instruction before the user ip must be
	 * `syscall` (0f 05) */
	regs = current_regs(prev);
	ip = BPF_CORE_READ(regs, ip);
	nr = BPF_CORE_READ(regs, orig_ax);
	if (!is_epoll((__u32)nr) &&
	    !(ip > 2 && !bpf_probe_read_user(&insn, 2, (void *)(ip - 2)) && insn == 0x050f &&
	      nr < 1024))
		nr = (__u64)-1;
	if (iter_sched && nr != (__u64)-1 && !th->cb_depth && loop_syscall(th, (__u32)nr) &&
	    waits_on_fds((__u32)nr, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si))) {
		/* asleep in the loop's poll: idle until the wake, which begins the next iteration.
		 * With the poll-entry probe, the entry already ended the iteration: what began
		 * there (or at a wake that found nothing and sleeps again) is no iteration. */
		if (th->poll_probe) {
			set_iter_start(th, tid, 0);
		} else {
			if (th->iter_start_ns)
				iteration_end(th, tid, now);
			th->poll_enter_ns = now;
			th->poll_nr = (__u32)nr;
			th->ls.poll_nr = (__u32)nr;
		}
		th->in_poll = 1;
		th->poll_sleep_ns = now;
		th->off_rt = BPF_CORE_READ(prev, se.sum_exec_runtime);
		th->off_clk = BPF_CORE_READ(prev, se.exec_start);
		return;
	}
	if (!busy(th))
		return;
	if (!iter_sched && nr != (__u64)-1 && !th->cb_depth && th->iter_start_ns &&
	    loop_syscall(th, (__u32)nr) &&
	    waits_on_fds((__u32)nr, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si))) {
		/* back in the loop's poll: the iteration ends here, idle time begins */
		iteration_end(th, tid, now);
		th->poll_enter_ns = now;
		th->in_poll = 1;
		return;
	}
	tgid = th->tgid;
	off_begin(th, prev, now, LW_OFF_BLOCKED);
	th->off_gil_holder = 0;
	th->off_gil_holder_tid = 0;
	th->off_path[0] = 0;
	th->off_fd.kind = LW_FD_NONE;
	th->off_sys = (__u32)nr;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c)
		return;
	if (nr != (__u64)-1) {
		a0 = BPF_CORE_READ(regs, di);
		th->off_args[0] = a0;
		th->off_args[1] = BPF_CORE_READ(regs, si);
		th->off_args[2] = BPF_CORE_READ(regs, dx);
		th->off_fd.kind = LW_FD_NONE;
		if (fd_syscall((__u32)nr) && a0 < (1u << 20))
			fd_describe((__u32)a0, &th->off_fd, tid);
		if (nr == NR_openat || nr == NR_newfstatat || nr == NR_mkfifoat)
			bpf_probe_read_user_str(th->off_path, sizeof(th->off_path),
						(void *)th->off_args[1]);
		else if (nr == NR_open || nr == NR_stat || nr == NR_lstat)
			bpf_probe_read_user_str(th->off_path, sizeof(th->off_path), (void *)a0);
		if (nr == NR_futex && c->gil && a0 >= c->gil && a0 < c->gil + c->gil_size) {
			th->off_kind = LW_OFF_GIL;
			th->off_gil_holder = rd_ptr(c->gil + c->gil_last_holder);
			th->off_gil_holder_tid = tstate_tid(c, th->off_gil_holder);
		}
	}
stack:
	/* one walk for both (each call site of the walk is verified again: attach time) */
	if (!(c->flags & LW_PROC_STACKS))
		return;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st)
		return;
	walk_pystack(c, tid, &st->pending, LW_WALK_SCHED);
	/* off_kind read back from the map: the verifier sees one state after the walk, not one
	 * per path (a constant from each branch would verify the rest twice) */
	if (th->off_kind == LW_OFF_RUNQ) {
		/* its stack's top copied (for the unwind tables) only when it is the vote's
		 * candidate: a loop thread under load is preempted ~1,250 times a second, and a
		 * copy at each (16 KiB) pushed the copies of an iteration's CPU samples out of the
		 * 256-entry LRU before its record was named (Express, the first /hash: no JS
		 * function). Nor in a busy period younger than an eighth of the threshold: under
		 * load most iterations last a millisecond, and the first preemption of each was a
		 * new candidate, copied (~100 copies a second of the 150 an Express app under
		 * autocannon made) for a record that never comes; a slow period's candidate taken
		 * then gets its copy from its next sample (cpu_vote). The sampler's 49 Hz samples
		 * are all copied. */
		st->pending.syscall = (__u32)-1;
		capture_native(ctx, &st->pending, c, 0);
		old = now - busy_since(th) >= th->threshold_ns / 8;
		if (cpu_vote(th, st, tid, &st->pending, 0, old) && old &&
		    !lw_capture_ustack(st->cpu.ts_ns))
			st->cpu.flags |= LW_STACK_USTACK;
		return;
	}
	st->pending.syscall = th->off_sys;
	capture_native(ctx, &st->pending, c, 1);
	th->off_stack_ok = 1;
	/* precise mode, entry probe only: asleep in no loop, the open callback has returned and
	 * the loop was left (loop.stop(), then a join, a lock): it ended by now at the latest
	 * (lw_sample's two CPU samples in no loop may have said earlier); the sleep is not its */
	if (ctxrun_entry_only && th->cb_entry_only && th->cb_depth == 1 && !th->cb_left_ns &&
	    (st->pending.flags & LW_STACK_NOLOOP))
		th->cb_left_ns = th->cb_noloop_ns ? th->cb_noloop_ns : now;
}

static __always_inline void emit_block(struct lw_thread *th, struct lw_tstacks *st, __u32 tid,
				       __u64 now, __u64 blocked)
{
	struct lw_rec_block *r;

	if (!fair_ok(th->tgid, sizeof(*r)))
		return;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	hdr_fill(&r->hdr, LW_REC_BLOCK, sizeof(*r), th->tgid, tid, now);
	r->start_ns = th->off_ts;
	r->duration_ns = blocked;
	r->syscall = th->off_sys;
	r->flags = 0;
	r->args[0] = th->off_args[0];
	r->args[1] = th->off_args[1];
	r->args[2] = th->off_args[2];
	r->cb_callable = th->cb_depth && !th->cb_left_ns ? th->cb_callable : 0;
	bpf_probe_read_kernel_str(r->path, sizeof(r->path), th->off_path);
	bpf_probe_read_kernel(&r->fd, sizeof(r->fd), &th->off_fd);
	if (st && th->off_stack_ok)
		copy_stack(&r->stack, &st->pending);
	else
		no_stack(&r->stack);
	bpf_ringbuf_submit(r, 0);
}

/*
 * The thread's off-CPU period (since off_ts) ends, at now or earlier: `blocked` and `runq` are
 * added to the iteration and the callback, its stack kept when it is the longest block, a
 * blocking record written when slow.
 */
static __always_inline void off_end(struct lw_thread *th, __u32 tid, __u64 now, __u64 blocked,
				    __u64 runq)
{
	struct lw_pycfg *c;
	struct lw_tstacks *st = 0;
	__u32 tgid;

	th->off_ts = 0;
	th->wake_ts = 0;
	if (!busy(th))
		return;
	split_add(&th->iter, th->off_kind, th->off_sys, blocked, runq, th->off_gil_holder,
		  th->off_gil_holder_tid);
	th->iter_dirty = 1;
	/* not in a callback that has ended where the loop was left (entry-only precise mode) */
	if (th->cb_depth && !th->cb_left_ns) {
		split_add(&th->cb, th->off_kind, th->off_sys, blocked, runq, th->off_gil_holder,
			  th->off_gil_holder_tid);
		th->cb_dirty = 1;
	}
	if (th->off_kind != LW_OFF_BLOCKED)
		return;
	if (th->off_stack_ok) {
		st = bpf_map_lookup_elem(&stacks, &tid);
		if (st) {
			st->pending.ns = blocked;
			if (blocked > th->best_block_ns || blocked > th->cb_best_block_ns)
				ustack_keep(tid, st->pending.ts_ns);
			if (blocked > th->best_block_ns) {
				th->best_block_ns = blocked;
				copy_stack(&st->iter_block, &st->pending);
			}
			if (th->cb_depth && !th->cb_left_ns && blocked > th->cb_best_block_ns) {
				th->cb_best_block_ns = blocked;
				copy_stack(&st->cb_block, &st->pending);
			}
		}
	}
	tgid = th->tgid;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (c && blocked >= c->block_threshold_ns)
		emit_block(th, st, tid, now, blocked);
}

/* The thread `next` gets the CPU back. current is someone else: no user reads here. */
static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 tid = next->pid;
	struct lw_thread *th;
	__u64 blocked = 0, runq = 0;

	if (task_untraced(next))
		return;
	th = bpf_map_lookup_elem(&threads, &tid);
	if (!th)
		return;
	if (iter_sched && th->in_poll) {
		/* woken in the loop's poll: the next iteration begins */
		th->in_poll = 0;
		th->poll_sleep_ns = 0;
		if (th->poll_enter_ns && now > th->poll_enter_ns)
			th->ls.idle_ns += now - th->poll_enter_ns;
		th->poll_enter_ns = now;
		iteration_begin(th, tid, now);
		return;
	}
	if (!th->off_ts)
		return;
	if (th->off_kind == LW_OFF_RUNQ) {
		runq = now - th->off_ts;
	} else if (!wake_hook) {
		__u64 off = now > th->off_ts ? now - th->off_ts : 0;

		runq = runq_waited(th, next, 1);
		if (runq > off)
			runq = off;
		blocked = off - runq;
	} else if (th->wake_ts && th->wake_ts >= th->off_ts && th->wake_ts <= now) {
		blocked = th->wake_ts - th->off_ts;
		runq = now - th->wake_ts;
	} else {
		blocked = now - th->off_ts;
	}
	off_end(th, tid, now, blocked, runq);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(lw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now;

	if (task_untraced(prev) && task_untraced(next))
		return 0;	/* most switches on the host: no clock read, no hash lookup */
	now = bpf_ktime_get_ns();

	switch_out(ctx, prev, preempt, now);
	switch_in(next, now);
	return 0;
}

/* only where the kernel keeps no sched_info (or LOOPWATCH_WAKE_HOOK=1): see wake_hook */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(lw_sched_wakeup, struct task_struct *p)
{
	__u32 tid = p->pid;
	struct lw_thread *th;

	if (task_untraced(p))
		return 0;
	th = bpf_map_lookup_elem(&threads, &tid);
	if (th && th->off_ts && !th->wake_ts && th->off_kind != LW_OFF_RUNQ)
		th->wake_ts = bpf_ktime_get_ns();
	return 0;
}

/* ---------------------------------------------------------------- process lifetime: exit, exec, fork */

/*
 * A thread (not its process's first) exits: a thread that never ran a loop iteration has
 * nothing userspace still reads (the summary's loop statistics are of threads with iterations),
 * so its entries go now and its process's share of the threads map is given back (issue 19: a
 * process that churns threads would otherwise reach its quota for good). Loop threads keep
 * their entry until userspace forgets the process.
 */
static __always_inline void thread_exit(__u32 tgid, __u32 tid)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (!th) {
		bpf_map_delete_elem(&tquota_seen, &tid);	/* refused for the quota, perhaps */
		return;
	}
	if (th->tgid != tgid || th->ls.iterations)
		return;
	bpf_map_delete_elem(&threads, &tid);
	bpf_map_delete_elem(&stacks, &tid);
	bpf_map_delete_elem(&tstates, &tid);
	thread_quota_release(tgid);
}

SEC("raw_tp/sched_process_exit")
int lw_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct lw_rec_task *r;

	/* every task's exit on the host comes here: one lookup for those of untraced processes */
	if (!bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	if (tid != tgid) {
		thread_exit(tgid, tid);
		return 0;
	}
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	hdr_fill(&r->hdr, LW_REC_EXIT, sizeof(*r), tgid, tid, bpf_ktime_get_ns());
	r->ppid = 0;
	r->exit_code = BPF_CORE_READ(p, exit_code);
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int lw_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct lw_rec_task *r;
	int traced = bpf_map_lookup_elem(&procs, &tgid) != 0;

	/* a traced process replaced its image: its configuration no longer describes it */
	if (traced)
		bpf_map_delete_elem(&procs, &tgid);
	if (!want_exec && !traced)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	hdr_fill(&r->hdr, LW_REC_EXEC, sizeof(*r), id >> 32, (__u32)id, bpf_ktime_get_ns());
	r->ppid = BPF_CORE_READ(p, real_parent, tgid);
	r->exit_code = traced;	/* for EXEC: 1 when the process was traced */
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* a new process (not a thread): pre-fork servers start their workers this way, no exec */
SEC("raw_tp/sched_process_fork")
int lw_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 pid, tgid;
	struct lw_rec_task *r;

	if (!want_exec)
		return 0;
	pid = BPF_CORE_READ(child, pid);
	tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	hdr_fill(&r->hdr, LW_REC_FORK, sizeof(*r), tgid, pid, bpf_ktime_get_ns());
	r->ppid = BPF_CORE_READ(parent, tgid);
	r->exit_code = 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

#endif
