/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-thread state, the time split, record headers.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_THREAD_BPF_H
#define LW_LW_THREAD_BPF_H

/* ---------------------------------------------------------------- thread state */

static __always_inline struct lw_zero *zeroes(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&zero, &k);
}

/*
 * Find or create (syscall/uprobe context only) the state of a thread of a traced process. A tid
 * reused by another process gets a fresh state.
 */
static __always_inline struct lw_thread *thread_get(__u32 tgid, __u32 tid,
						    const struct lw_pycfg *c)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_fair *f;
	struct lw_zero *z;
	struct lw_rec_task *r;
	__u32 old_tgid = 0;

	if (th && th->tgid == tgid)
		return th;
	/* its process's share of the map (lw_maps.bpf.h) */
	f = bpf_map_lookup_elem(&fair, &tgid);
	if (f && f->threads >= thread_quota) {
		thread_quota_refused(tgid, tid, f);
		return 0;
	}
	if (th)
		old_tgid = th->tgid;	/* the tid's previous process: read before it is replaced */
	z = zeroes();
	if (!z)
		return 0;
	z->th.tgid = tgid;
	z->th.poll_nr = (__u32)-1;
	z->th.off_sys = (__u32)-1;
	z->th.threshold_ns = c->threshold_ns;
	z->th.ls.tgid = tgid;
	if (bpf_map_update_elem(&threads, &tid, &z->th, th ? BPF_EXIST : BPF_NOEXIST)) {
		__sync_fetch_and_add(&thread_map_full, 1);
		z->th.tgid = 0;
		z->th.poll_nr = 0;
		z->th.off_sys = 0;
		z->th.threshold_ns = 0;
		z->th.ls.tgid = 0;
		return 0;
	}
	if (f)
		__sync_fetch_and_add(&f->threads, 1);
	if (old_tgid)
		thread_quota_release(old_tgid);
	bpf_map_update_elem(&stacks, &tid, &z->st, BPF_ANY);
	mark_current_traced();
	z->th.tgid = 0;
	z->th.poll_nr = 0;
	z->th.off_sys = 0;
	z->th.threshold_ns = 0;
	z->th.ls.tgid = 0;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (r) {
		r->hdr.type = LW_REC_NEWTHREAD;
		r->hdr.size = sizeof(*r);
		r->hdr.tgid = tgid;
		r->hdr.tid = tid;
		r->hdr.ts_ns = bpf_ktime_get_ns();
		r->ppid = 0;
		r->exit_code = 0;
		bpf_get_current_comm(r->comm, sizeof(r->comm));
		bpf_ringbuf_submit(r, 0);
	} else {
		__sync_fetch_and_add(&lost_events, 1);
	}
	return bpf_map_lookup_elem(&threads, &tid);
}

/* The state of a thread of a traced process, found or created (syscall/uprobe context only);
 * NULL when its process is not traced. */
static __always_inline struct lw_thread *thread_of(__u32 tgid, __u32 tid)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;

	if (th && th->tgid == tgid) {
		remark_current_traced();
		return th;
	}
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c)
		return 0;
	return thread_get(tgid, tid, c);
}

static __always_inline void split_reset(struct lw_split *s)
{
	__builtin_memset(s, 0, sizeof(*s));
}

static __always_inline void split_add_sys(struct lw_split *s, __u32 nr, __u64 ns)
{
	__u32 i;

	for (i = 0; i < LW_SPLIT_SYSCALLS; i++) {
		if (i >= s->nsys)
			break;
		if (s->sys[i].nr == nr) {
			s->sys[i].ns += ns;
			s->sys[i].count++;
			return;
		}
	}
	if (s->nsys < LW_SPLIT_SYSCALLS) {
		i = s->nsys;
		if (i < LW_SPLIT_SYSCALLS) {
			s->sys[i].nr = nr;
			s->sys[i].ns = ns;
			s->sys[i].count = 1;
			s->nsys = i + 1;
		}
		return;
	}
	s->other_blocked_ns += ns;
}

static __always_inline void split_add(struct lw_split *s, __u32 kind, __u32 sys, __u64 blocked,
				      __u64 runq, __u64 holder, __u32 holder_tid)
{
	s->runq_ns += runq;
	if (kind == LW_OFF_GIL) {
		s->gil_ns += blocked;
		s->gil_switches++;
		if (blocked > s->gil_holder_ns) {
			s->gil_holder_ns = blocked;
			s->gil_holder = holder;
			s->gil_holder_tid = holder_tid;
		}
	} else if (kind == LW_OFF_BLOCKED) {
		s->blocked_ns += blocked;
		split_add_sys(s, sys, blocked);
	}
}

/* the live tick's view of busy periods (loopwatch.h LW_BUSY_SLOTS), mapped by userspace */
__u64 lw_busy[LW_BUSY_SLOTS] = {};

/* every write of th->iter_start_ns goes through here */
static __always_inline void set_iter_start(struct lw_thread *th, __u32 tid, __u64 ns)
{
	th->iter_start_ns = ns;
	lw_busy[tid & (LW_BUSY_SLOTS - 1)] = LW_BUSY_WORD(tid, ns);
}

static __always_inline int busy(const struct lw_thread *th)
{
	return th->iter_start_ns || th->cb_depth;
}

/* When the busy period began: the iteration, or the callback running in it (precise mode) */
static __always_inline __u64 busy_since(const struct lw_thread *th)
{
	return th->cb_depth && th->cb_start_ns > th->iter_start_ns ? th->cb_start_ns :
								     th->iter_start_ns;
}

/* ---------------------------------------------------------------- records */

static __always_inline void hdr_fill(struct lw_rec_hdr *h, __u32 type, __u32 size, __u32 tgid,
				     __u32 tid, __u64 now)
{
	h->type = type;
	h->size = size;
	h->tgid = tgid;
	h->tid = tid;
	h->ts_ns = now;
}

static __always_inline void copy_stack(struct lw_pystack *dst, const struct lw_pystack *src)
{
	bpf_probe_read_kernel(dst, sizeof(*dst), src);
}

static __always_inline void no_stack(struct lw_pystack *s)
{
	s->flags = 0;
	s->nframes = 0;
	s->nnative = 0;
}

#endif
