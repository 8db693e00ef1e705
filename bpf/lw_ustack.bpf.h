/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Registers and the top of the user stack, for native stacks unwound in userspace by the
 * binaries' unwind tables (daemon/target/unwind.c): frame pointers alone lose every frame of
 * code built without them (distributions' libc, libuv, libpython, -O2 C).
 * Taken where a native stack is (capture_native: a thread of a busy iteration going to sleep,
 * a CPU sample), into the LRU map ustacks keyed by {tid, lw_pystack.ts_ns}.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_USTACK_BPF_H
#define LW_LW_USTACK_BPF_H

/* Bytes of user stack copied per stack (0: none, frame pointers only); set before load */
const volatile __u32 ustack_bytes = LW_USTACK_MAX;

__u64 ustack_copies = 0;	/* stacks copied */
__u64 ustack_cut = 0;		/* ... of which shorter than asked */
__u64 ustack_failed = 0;	/* not copied at all */

/* Stacks outlive the record they belong to only as long as userspace needs to read them once;
 * the least recently used ones go. 512 x 16 KiB = 8 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 512);
	__type(key, struct lw_ustack_key);
	__type(value, struct lw_ustack);
} ustacks SEC(".maps");

/* too big for the BPF stack: built here, then copied into ustacks */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lw_ustack);
} ustack_scratch SEC(".maps");

static __always_inline struct pt_regs *ustack_user_regs(struct task_struct *t)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs) &&
	    bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	/* older kernels: the user registers sit at the top of the 16 KiB kernel stack */
	return (struct pt_regs *)((__u64)BPF_CORE_READ(t, stack) + 16384 - sizeof(struct pt_regs));
}

/* Copy the current thread's user registers and stack top for its stack taken at ts_ns: 0 when
 * the copy is in ustacks. A global function: verified once, not at each caller */
__noinline int lw_capture_ustack(__u64 ts_ns)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct lw_ustack_key key = {};
	struct pt_regs pr;
	struct lw_ustack *u;
	__u64 sp, top;
	__u32 zero = 0, n, want = ustack_bytes;
	int i;

	if (!want)
		return -1;
	u = bpf_map_lookup_elem(&ustack_scratch, &zero);
	if (!u || bpf_probe_read_kernel(&pr, sizeof(pr), ustack_user_regs(t)))
		goto fail;
	sp = pr.sp;
	if (!pr.ip || pr.ip >= 0x800000000000ull || !sp || sp >= 0x800000000000ull)
		goto fail;
	u->regs[0] = pr.ax;
	u->regs[1] = pr.dx;
	u->regs[2] = pr.cx;
	u->regs[3] = pr.bx;
	u->regs[4] = pr.si;
	u->regs[5] = pr.di;
	u->regs[6] = pr.bp;
	u->regs[7] = sp;
	u->regs[8] = pr.r8;
	u->regs[9] = pr.r9;
	u->regs[10] = pr.r10;
	u->regs[11] = pr.r11;
	u->regs[12] = pr.r12;
	u->regs[13] = pr.r13;
	u->regs[14] = pr.r14;
	u->regs[15] = pr.r15;
	u->regs[16] = pr.ip;
	u->flags = 0;
	if (want > LW_USTACK_MAX)
		want = LW_USTACK_MAX;
	/* the main thread's stack ends a little above mm->start_stack: stop there */
	top = BPF_CORE_READ(t, mm, start_stack);
	if (top > sp && top - sp < want)
		want = (__u32)(top - sp);
	/* a copy fails whole when a page of it is not there: the whole size with the red zone
	 * below rsp (hand-written assembly such as OpenSSL's SHA-512 keeps its CFA there), else
	 * from rsp, else halves */
	n = 0;
	for (i = 0; i < 5; i++) {
		__u32 len = i ? want >> (i - 1) : want + LW_USTACK_RED;
		__u64 from = i ? sp : sp - LW_USTACK_RED;

		if (len > LW_USTACK_MAX)
			len = LW_USTACK_MAX;
		if (len < 64)
			break;
		if (!bpf_probe_read_user(u->data, len, (void *)from)) {
			n = len;
			if (!i)
				u->flags |= LW_USTACK_REDZONE;
			else if (i > 1)
				u->flags |= LW_USTACK_CUT;
			break;
		}
	}
	if (!n)
		goto fail;
	u->len = n;
	if (u->flags & LW_USTACK_CUT)
		__sync_fetch_and_add(&ustack_cut, 1);
	key.tid = (__u32)bpf_get_current_pid_tgid();
	key.ts_ns = ts_ns;
	if (bpf_map_update_elem(&ustacks, &key, u, BPF_ANY))
		goto fail;
	__sync_fetch_and_add(&ustack_copies, 1);
	return 0;
fail:
	__sync_fetch_and_add(&ustack_failed, 1);
	return -1;
}

/* A stack copy that a record will use (the longest block so far): a lookup marks it recently
 * used, ahead of the copies of shorter blocks in the LRU's eviction order */
static __always_inline void ustack_keep(__u32 tid, __u64 ts_ns)
{
	struct lw_ustack_key key = { .tid = tid, .ts_ns = ts_ns };

	bpf_map_lookup_elem(&ustacks, &key);
}

#endif
