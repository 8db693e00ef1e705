/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps shared by every program: processes, threads, stacks, thread states, sites, the ring buffer.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_MAPS_BPF_H
#define LW_LW_MAPS_BPF_H

/* tgid -> its configuration, kept by userspace. max_entries is set at load to the processes the
 * caller traces at once (loopwatchd: 65,536); not preallocated, so that costs nothing unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lw_pycfg);
} procs SEC(".maps");

/* (tgid, cause) -> failed reads of that process's memory (read_errors counts them all); kept
 * while the process is traced (lw_bpf__forget_proc drops them). Full: only the global counts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lw_rderr_key);
	__type(value, __u64);
} rderr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lw_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lw_tstacks);
} stacks SEC(".maps");

/*
 * A flag on every task loopwatch keeps state for: the scheduler programs run at every context
 * switch on the host, and a task-local lookup (a load from the task itself) lets them return at
 * once for the others, before the threads hash. Kernels without task storage (< 5.11): not
 * created, the programs go straight to the hash (use_tflag = 0).
 */
const volatile __u32 use_tflag = 1;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} tflag SEC(".maps");

/*
 * t is a trusted task pointer (tp_btf argument, or the current task's BTF pointer). First a
 * plain load: a task with no BPF task storage at all (every task, unless some BPF program on
 * the host keeps task storage) has no flag, and the helper call is not made. bpf_stats here:
 * the sched_switch program's run for two untraced tasks went from 135 to ~40 ns (measured on a
 * pipe ping-pong, docs/benchmarks.md).
 */
/* a task with task storage whose flag lookup failed, found traced in the threads hash */
__u64 tflag_missed = 0;

static __always_inline int task_untraced(struct task_struct *t)
{
	__u32 tid;

	if (!use_tflag)
		return 0;
	if (bpf_core_field_exists(t->bpf_storage) && !t->bpf_storage)
		return 1;
	if (bpf_task_storage_get(&tflag, t, 0, 0))
		return 0;
	/*
	 * NULL: no flag, or the per-CPU task-storage lock was busy (the helper's trylock fails
	 * when a lookup on this CPU was interrupted or preempted in the middle, by an NMI sample
	 * or a faultable syscall tracepoint): the hash decides, so a busy lock never hides a
	 * traced thread's switch. Tasks with another tool's task storage pay the lookup.
	 */
	tid = t->pid;
	if (!bpf_map_lookup_elem(&threads, &tid))
		return 1;
	__sync_fetch_and_add(&tflag_missed, 1);
	return 0;
}

static __always_inline void mark_current_traced(void)
{
	if (use_tflag)
		bpf_task_storage_get(&tflag, bpf_get_current_task_btf(), 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* a traced thread still without storage (its flag's creation found the lock busy): again */
static __always_inline void remark_current_traced(void)
{
	struct task_struct *t;

	if (!use_tflag || !bpf_core_field_exists(struct task_struct, bpf_storage))
		return;
	t = bpf_get_current_task_btf();
	if (!t->bpf_storage)
		mark_current_traced();
}

/* tid -> PyThreadState*, kept by userspace (walks interp->threads) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} tstates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lw_site_key);
	__type(value, struct lw_hist);
} sites SEC(".maps");



#define LW_RB_BYTES (4 * 1024 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LW_RB_BYTES);
} events SEC(".maps");

/*
 * Each process's share of the ring buffer (issue 19: one target flooding records filled the
 * ring and the others' records were lost with its own). While userspace keeps up, nothing is
 * held back. Once half the ring waits to be read, a process that wrote more than
 * LW_FAIR_BYTES in the current window (1 s) has its slow-event records dropped, counted for it
 * (the map) and in all (fair_drops; lost_events counts a full ring); processes that wrote
 * less keep the other half. Entries are made and removed by userspace with the procs entry,
 * the map sized like procs; lifecycle records (exit, exec, fork, new thread, sites) always go.
 */
#define LW_FAIR_WINDOW_NS 1000000000ull
#define LW_FAIR_BYTES (LW_RB_BYTES / 16)

__u64 fair_drops = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lw_fair);
} fair SEC(".maps");

static __always_inline void fair_window(struct lw_fair *f, __u64 now)
{
	if (now - f->window_ns >= LW_FAIR_WINDOW_NS) {
		f->window_ns = now;
		f->bytes = 0;
	}
}

/*
 * may process tgid put a record of size bytes in the ring now? (accounted when it may) The
 * processes of one loopwatchd target (lw_pycfg.share) also share one LW_FAIR_BYTES between
 * them (entry LW_SHARE_KEY(share), made by userspace): a target of many processes, each under
 * its own share, could otherwise fill the ring together. Drops are counted for the process.
 */
static __always_inline int fair_ok(__u32 tgid, __u64 size)
{
	struct lw_fair *f = bpf_map_lookup_elem(&fair, &tgid), *g = 0;
	struct lw_pycfg *c;
	__u64 now;

	if (!f)
		return 1;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (c && c->share) {
		__u32 k = LW_SHARE_KEY(c->share);

		g = bpf_map_lookup_elem(&fair, &k);
	}
	now = bpf_ktime_get_ns();
	fair_window(f, now);
	if (g)
		fair_window(g, now);
	if ((f->bytes >= LW_FAIR_BYTES || (g && g->bytes >= LW_FAIR_BYTES)) &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= LW_RB_BYTES / 2) {
		__sync_fetch_and_add(&f->drops, 1);
		if (g)
			__sync_fetch_and_add(&g->drops, 1);
		__sync_fetch_and_add(&fair_drops, 1);
		return 0;
	}
	__sync_fetch_and_add(&f->bytes, size);
	if (g)
		__sync_fetch_and_add(&g->bytes, size);
	return 1;
}

/*
 * Each process's share of the threads map (issue 19: its 8,192 entries serve every target, and
 * one process with thousands of threads filled it: the others' new threads went untracked,
 * counted only as thread_map_full). A process holds at most thread_quota entries (a quarter of
 * the map), counted in its fair entry: made in thread_get, given back when a thread without
 * loop statistics exits or its tid goes to another process; userspace drops the rest with the
 * process. A thread refused for the quota is counted once, in thread_quota_drops and its
 * process's thread_drops, while tquota_seen remembers it (an LRU: a thread forgotten there is
 * counted again when it next tries).
 */
#define LW_THREAD_QUOTA 2048
const volatile __u32 thread_quota = LW_THREAD_QUOTA;
__u64 thread_quota_drops = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);	/* tid */
	__type(value, __u32);	/* its tgid */
} tquota_seen SEC(".maps");

/* thread tid of process tgid (entry f) is not tracked: its process has its quota */
static __always_inline void thread_quota_refused(__u32 tgid, __u32 tid, struct lw_fair *f)
{
	__u32 *seen = bpf_map_lookup_elem(&tquota_seen, &tid);

	if (seen && *seen == tgid)
		return;
	bpf_map_update_elem(&tquota_seen, &tid, &tgid, BPF_ANY);
	__sync_fetch_and_add(&f->thread_drops, 1);
	__sync_fetch_and_add(&thread_quota_drops, 1);
}

/* process tgid holds one threads entry less */
static __always_inline void thread_quota_release(__u32 tgid)
{
	struct lw_fair *f = bpf_map_lookup_elem(&fair, &tgid);

	if (f && f->threads)
		__sync_fetch_and_add(&f->threads, (__u32)-1);
}

/* zero-filled templates to create map values from (too big for the BPF stack) */
struct lw_zero {
	struct lw_thread th;
	struct lw_tstacks st;
	struct lw_hist h;
	struct lw_ident id;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lw_zero);
} zero SEC(".maps");

#endif
