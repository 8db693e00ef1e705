// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch kernel side.
 *
 * - raw_tp sys_enter/sys_exit: loop iterations, bounded by poll-family syscalls. The syscall
 *   number is compared before anything else, so other syscalls cost one compare.
 * - raw_tp sched_switch/sched_wakeup: where the time of a busy iteration (or callback) went:
 *   run queue, blocked by syscall, GIL; the Python and native stack where it blocked.
 * - perf_event sampler: the Python stack of a loop thread that burns CPU in a busy iteration.
 * - uprobe/uretprobe on CPython's context_run (precise mode): every callback timed, identified,
 *   histogrammed per site; only slow ones reach userspace.
 *
 * Every program returns at once for threads it does not track (a hash lookup on the tid).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "loopwatch.h"
#include "lw_bits.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NO_FIELD 0xffff

/* Set by userspace before load */
const volatile __u32 want_exec = 0;	/* emit LW_REC_EXEC for every exec (daemon discovery) */
const volatile __u32 self_tgid = 0;	/* loopwatch itself: never traced */

/* Counters read by userspace (never silent loss) */
__u64 lost_events = 0;		/* ring buffer full */
__u64 read_errors = 0;		/* a read of target memory failed */
__u64 depth_errors = 0;		/* unbalanced context_run entry/return */
__u64 thread_map_full = 0;	/* could not track a new thread */
__u64 samples = 0;		/* perf samples taken on loop threads */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct lw_pycfg);
} procs SEC(".maps");

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



struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

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

/* ---------------------------------------------------------------- syscalls */

#define NR_poll 7
#define NR_select 23
#define NR_epoll_wait 232
#define NR_pselect6 270
#define NR_ppoll 271
#define NR_epoll_pwait 281
#define NR_futex 202
#define NR_epoll_pwait2 441
#define NR_open 2
#define NR_stat 4
#define NR_lstat 6
#define NR_openat 257
#define NR_mkfifoat 259
#define NR_newfstatat 262

static __always_inline int is_epoll(__u32 nr)
{
	return nr == NR_epoll_wait || nr == NR_epoll_pwait || nr == NR_epoll_pwait2;
}

static __always_inline int is_pollish(__u32 nr)
{
	return nr == NR_poll || nr == NR_ppoll || nr == NR_select || nr == NR_pselect6;
}

/* ---------------------------------------------------------------- reads */

static __always_inline int rd(void *dst, __u32 size, __u64 addr)
{
	if (bpf_probe_read_user(dst, size, (const void *)addr)) {
		__sync_fetch_and_add(&read_errors, 1);
		return -1;
	}
	return 0;
}

static __always_inline __u64 rd_ptr(__u64 addr)
{
	__u64 v = 0;

	if (!addr)
		return 0;
	rd(&v, sizeof(v), addr);
	return v;
}

/* Copy a compact str (ASCII or latin-1) into dst. Returns 0 when it was a str we could read. */
static __always_inline int rd_pystr(const struct lw_pycfg *c, __u64 obj, char *dst, __u32 size)
{
	__u32 state = 0;
	__u64 data;

	dst[0] = 0;
	if (!obj)
		return -1;
	if (rd(&state, sizeof(state), obj + 32))
		return -1;
	/* compact (bit 5) and kind == 1 (bits 2-4) */
	if (!(state & (1u << 5)) || ((state >> 2) & 7) != 1)
		return -1;
	data = obj + ((state & (1u << 6)) ? c->str_ascii : c->str_compact);
	if (bpf_probe_read_user_str(dst, size, (const void *)data) < 0) {
		dst[0] = 0;
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- identity */

static __always_inline int type_name_is(__u64 type, const struct lw_pycfg *c, const char *want,
					__u32 len, char *buf)
{
	__u64 p = rd_ptr(type + c->tp_name);
	__u32 i;

	if (!p || bpf_probe_read_user_str(buf, 32, (const void *)p) < 0)
		return 0;
	for (i = 0; i < 31; i++) {
		if (i >= len)
			return buf[i] == 0;
		if (buf[i] != want[i])
			return 0;
	}
	return 0;
}

/* The Task behind a Task-step or Task-wakeup callable, or 0 */
static __always_inline __u64 callable_task(const struct lw_pycfg *c, __u64 obj, __u64 type)
{
	char buf[32];

	if (type == c->type_cfunction) {
		__u64 mlname = rd_ptr(rd_ptr(obj + c->cfunc_ml));

		if (mlname && bpf_probe_read_user_str(buf, sizeof(buf), (const void *)mlname) > 0 &&
		    buf[0] == 't' && buf[1] == 'a' && buf[2] == 's' && buf[3] == 'k' &&
		    buf[4] == '_' && buf[5] == 'w' && buf[6] == 'a' && buf[7] == 'k' &&
		    buf[8] == 'e' && buf[9] == 'u' && buf[10] == 'p' && buf[11] == 0)
			return rd_ptr(obj + c->cfunc_self);
		return 0;
	}
	if (type_name_is(type, c, "TaskStepMethWrapper", 19, buf) ||
	    type_name_is(type, c, "_asyncio.TaskStepMethWrapper", 28, buf) ||
	    type_name_is(type, c, "TaskWakeupMethWrapper", 21, buf))
		return rd_ptr(obj + c->wrapper_task);
	return 0;
}

/* A Task's name: a str, or (3.12+, unnamed) an int counter shown as "Task-<n>" */
static __always_inline void read_task_name(const struct lw_pycfg *c, __u64 task, char *name,
					   __s64 *num, __u32 *flags)
{
	__u64 obj = rd_ptr(task + c->task_name);

	if (obj && rd_ptr(obj + 8) == c->type_long) {
		__u64 tag = 0;
		__u32 d0 = 0, d1 = 0;
		__s64 ndig;

		rd(&tag, sizeof(tag), obj + 16);
		rd(&d0, sizeof(d0), obj + 24);
		rd(&d1, sizeof(d1), obj + 28);
		ndig = c->long_tag ? (__s64)(tag >> 3) : (__s64)tag;
		*num = d0;
		if (ndig > 1)
			*num |= (__s64)d1 << 30;
		*flags |= LW_IDENT_TASK_NUM;
	} else {
		rd_pystr(c, obj, name, LW_STR_TASK);
	}
}

static __always_inline void ident_from_code(const struct lw_pycfg *c, __u64 code,
					    struct lw_ident *id)
{
	__s32 line = 0;

	id->code = code;
	if (!code)
		return;
	if (!rd(&line, sizeof(line), code + c->co_firstlineno))
		id->firstlineno = line;
	if (c->co_qualname != NO_FIELD && !id->qualname[0])
		rd_pystr(c, rd_ptr(code + c->co_qualname), id->qualname, sizeof(id->qualname));
	if (!id->qualname[0])
		rd_pystr(c, rd_ptr(code + c->co_name), id->qualname, sizeof(id->qualname));
	rd_pystr(c, rd_ptr(code + c->co_filename), id->file, sizeof(id->file));
}

static __always_inline __u64 coro_code(const struct lw_pycfg *c, __u64 coro)
{
	if (!coro)
		return 0;
	return rd_ptr(coro + c->coro_code);
}

/*
 * Classify the callable run by Context.run and find its site key (a code object, or the type
 * for anything else). With full != 0 also read the strings (only for slow callbacks and new
 * sites: they cost a few hundred bytes of reads).
 */
static __always_inline __u64 classify(const struct lw_pycfg *c, __u64 callable, __u64 ctx,
				      struct lw_ident *id, int full)
{
	__u64 type, task = 0, fn = 0, obj = callable;
	char buf[32];

	id->callable = callable;
	id->kind = LW_KIND_UNKNOWN;
	if (!callable)
		return 0;
	type = rd_ptr(obj + 8);
	id->type = type;
	if (!type) {
		id->flags |= LW_IDENT_READ_ERR;
		return 0;
	}
	/* unwrap functools.partial once */
	if (type != c->type_function && type != c->type_method &&
	    type_name_is(type, c, "functools.partial", 17, buf)) {
		obj = rd_ptr(obj + c->partial_fn);
		type = rd_ptr(obj + 8);
		id->flags |= LW_IDENT_PARTIAL;
	}
	if (type == c->type_method) {
		fn = rd_ptr(obj + c->meth_func);
		if (fn && rd_ptr(fn + 8) == c->type_function) {
			id->kind = LW_KIND_METHOD;
			goto function;
		}
		fn = 0;
	}
	if (type == c->type_function) {
		fn = obj;
		id->kind = LW_KIND_FUNCTION;
		goto function;
	}
	/* Task steps and wakeups */
	task = callable_task(c, obj, type);
	if (task) {
		__u64 code;

		id->kind = LW_KIND_TASK;
		id->task = task;
		if (ctx) {
			if (rd_ptr(task + c->task_context) == ctx)
				id->flags |= LW_IDENT_CTX_OK;
			else
				id->flags |= LW_IDENT_CTX_BAD;
		}
		code = coro_code(c, rd_ptr(task + c->task_coro));
		id->code = code;
		if (!full)
			return code ? code : type;
		read_task_name(c, task, id->task_name, &id->task_num, &id->flags);
		/* coroutine qualname (code qualname on 3.11+ is the same) */
		rd_pystr(c, rd_ptr(rd_ptr(task + c->task_coro) + c->coro_qualname), id->qualname,
			 sizeof(id->qualname));
		ident_from_code(c, code, id);
		return code ? code : type;
	}
	/* anything else: its type name */
	id->kind = LW_KIND_OTHER;
	if (full) {
		__u64 p = rd_ptr(type + c->tp_name);

		if (p)
			bpf_probe_read_user_str(id->qualname, sizeof(id->qualname), (const void *)p);
	}
	return type;

function:
	{
		__u64 code = rd_ptr(fn + c->func_code);

		id->code = code;
		if (!full)
			return code ? code : type;
		rd_pystr(c, rd_ptr(fn + c->func_qualname), id->qualname, sizeof(id->qualname));
		ident_from_code(c, code, id);
		return code ? code : type;
	}
}

/* ---------------------------------------------------------------- Python stacks */

static __always_inline __u64 thread_tstate(const struct lw_pycfg *c, __u32 tid)
{
	__u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
	struct task_struct *task;
	__u64 fsbase, v = 0;

	if (ts && *ts)
		return *ts;
	if (c->tss_key < 0 || c->tss_key >= 32)
		return 0;
	/* glibc: pthread_self() == fs base; TSD slot data at specific_1stblock[key].data */
	task = (struct task_struct *)bpf_get_current_task();
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return 0;
	rd(&v, sizeof(v), fsbase + c->tsd_base + (__u64)c->tss_key * 16 + 8);
	return v;
}

/* scratch identity for stack walks (apart from the uprobe's, which may be interrupted) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lw_ident);
} walk_ident SEC(".maps");

/* The callback Handle._run is running (kind, qualname, Task and its name), into the stack */
static __always_inline void stack_task(const struct lw_pycfg *c, struct lw_pystack *s, __u64 cb)
{
	__u32 k = 0;
	struct lw_ident *id = bpf_map_lookup_elem(&walk_ident, &k);

	s->cb_callable = cb;
	if (!cb || !id)
		return;
	__builtin_memset(id, 0, sizeof(*id));
	classify(c, cb, 0, id, 1);
	s->cb_kind = id->kind;
	s->task = id->task;
	s->task_num = id->task_num;
	s->task_flags = id->flags;
	bpf_probe_read_kernel_str(s->task_name, sizeof(s->task_name), id->task_name);
	bpf_probe_read_kernel_str(s->cb_qualname, sizeof(s->cb_qualname), id->qualname);
}

/*
 * Walk the current thread's Python frames into s, innermost first. Frame i goes to slot i;
 * frames without code (3.12+ C-stack shims, 3.13 entry frames) are stored with code 0 and
 * skipped by userspace: one slot per iteration keeps the verifier's state count linear.
 */
static __noinline void walk_pystack(const struct lw_pycfg *c, __u32 tid, struct lw_pystack *s)
{
	__u64 tstate, f, code, instr, hframe = 0, prevf = 0;
	__u64 pcode = 0, pinstr = 0, pf = 0, ppcode = 0, ppinstr = 0, ppf = 0;
	__u32 i;
	__u8 owner;

	s->nframes = 0;
	s->flags = LW_STACK_VALID;
	s->ts_ns = bpf_ktime_get_ns();
	s->cb_frame.code = 0;
	s->cb_frame.instr = 0;
	s->cb_frame.frame = 0;
	s->hrun.code = 0;
	s->hrun.instr = 0;
	s->hrun.frame = 0;
	if (!(c->flags & LW_PROC_PYTHON))
		return;
	tstate = thread_tstate(c, tid);
	if (!tstate) {
		s->flags |= LW_STACK_NO_TSTATE;
		return;
	}
	f = rd_ptr(tstate + c->ts_frame);
	if (c->cframe_cur != NO_FIELD)
		f = rd_ptr(f + c->cframe_cur);

	for (i = 0; i < LW_MAX_PYFRAMES; i++) {
		if (!f)
			break;
		owner = 0;
		code = 0;
		instr = 0;
		if (c->f_owner != NO_FIELD)
			bpf_probe_read_user(&owner, 1, (void *)(f + c->f_owner));
		if (rd(&code, sizeof(code), f + c->f_code))
			s->flags |= LW_STACK_READ_ERR;
		bpf_probe_read_user(&instr, sizeof(instr), (void *)(f + c->f_instr));
		if (code == c->none_obj || (owner == 3 && c->minor >= 12))
			code = 0;
		s->frames[i].code = code;
		s->frames[i].instr = instr;
		s->frames[i].frame = f;
		/* Handle._run: known by its code, or as the frame _run_once called */
		if (code && (code == c->handle_run_code || (code == c->run_once_code && !hframe)))
			hframe = code == c->handle_run_code ? f : prevf;
		prevf = f;
		f = rd_ptr(f + c->f_back);
	}
	if (f)
		s->flags |= LW_STACK_TRUNCATED;
	s->nframes = i;
	/* deeper than the slots (recursion, deep frameworks): keep looking for Handle._run, reading
	 * only what identifies it, so that a deep stack still names its callback. Handle._run is
	 * known by its code, or as the frame with code just inside _run_once; the callback's frame
	 * is the one with code just inside Handle._run (shims skipped, as userspace does). */
	if (f && !hframe && (c->handle_run_code || c->run_once_code)) {
		for (i = 0; i < LW_DEEP_SCAN; i++) {
			if (!f)
				break;
			owner = 0;
			code = 0;
			if (c->f_owner != NO_FIELD)
				bpf_probe_read_user(&owner, 1, (void *)(f + c->f_owner));
			if (rd(&code, sizeof(code), f + c->f_code))
				break;
			if (code == c->none_obj || (owner == 3 && c->minor >= 12))
				code = 0;
			if (code && code == c->run_once_code) {
				/* Handle._run is the frame with code just inside: shift one back */
				code = pcode;
				f = pf;
				pcode = ppcode;
				pinstr = ppinstr;
				pf = ppf;
				hframe = f;
			} else if (code && code == c->handle_run_code) {
				hframe = f;
			}
			if (hframe) {
				s->hrun.code = code;
				s->hrun.frame = f;
				s->cb_frame.code = pcode;
				s->cb_frame.instr = pinstr;
				s->cb_frame.frame = pf;
				break;
			}
			if (code) {
				instr = 0;
				bpf_probe_read_user(&instr, sizeof(instr), (void *)(f + c->f_instr));
				ppcode = pcode;
				ppinstr = pinstr;
				ppf = pf;
				pcode = code;
				pinstr = instr;
				pf = f;
			}
			f = rd_ptr(f + c->f_back);
		}
	}
	s->cb_callable = 0;
	s->task = 0;
	s->task_flags = 0;
	s->cb_kind = LW_KIND_UNKNOWN;
	s->task_name[0] = 0;
	s->cb_qualname[0] = 0;
	if (hframe && c->handle_cb_slot) {
		/* asyncio: Handle._run's self._callback names the callback (and its Task) */
		__u64 self = rd_ptr(hframe + c->f_localsplus);

		if (self)
			stack_task(c, s, rd_ptr(self + c->handle_cb_slot));
	}
}

static __always_inline void capture_native(void *ctx, struct lw_pystack *s, struct lw_pycfg *c)
{
	long n;

	s->nnative = 0;
	if (!(c->flags & LW_PROC_NATIVE))
		return;
	n = bpf_get_stack(ctx, s->native, sizeof(s->native), BPF_F_USER_STACK);
	if (n > 0)
		s->nnative = (__u32)(n / sizeof(__u64));
}

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
	struct lw_zero *z;
	struct lw_rec_task *r;

	if (th && th->tgid == tgid)
		return th;
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
	bpf_map_update_elem(&stacks, &tid, &z->st, BPF_ANY);
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

static __always_inline int busy(const struct lw_thread *th)
{
	return th->iter_start_ns || th->cb_depth;
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
	th->iter_start_ns = 0;
	if (busy_ns < th->threshold_ns)
		return;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c)
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

static __always_inline void iteration_begin(struct lw_thread *th, __u64 now)
{
	th->iter_start_ns = now;
	th->iter_callbacks = 0;
	th->best_block_ns = 0;
	th->slowest_cb_ns = 0;
	if (th->iter_dirty) {
		split_reset(&th->iter);
		th->iter_dirty = 0;
	}
}

/* Does a poll-family syscall `nr` end iterations on this thread? Once a thread has waited in
 * epoll, only epoll does: a poll() inside a callback (a socket with a timeout) is blocking work,
 * not the loop. */
static __always_inline int loop_syscall(const struct lw_thread *th, __u32 nr)
{
	if (is_epoll(nr))
		return 1;
	if (!is_pollish(nr))
		return 0;
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

SEC("tp_btf/sys_exit")
int BPF_PROG(lw_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 nr = (__u32)regs->orig_ax, tid, tgid;
	struct lw_thread *th;
	struct lw_pycfg *c;
	__u64 id, now;

	if (!is_epoll(nr) && !(is_pollish(nr) && waits_on_fds(nr, regs->di, regs->si)))
		return 0;
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	tgid = id >> 32;
	th = bpf_map_lookup_elem(&threads, &tid);
	if (!th || th->tgid != tgid) {
		c = bpf_map_lookup_elem(&procs, &tgid);
		if (!c)
			return 0;
		th = thread_get(tgid, tid, c);
		if (!th)
			return 0;
	}
	if (!loop_syscall(th, nr))
		return 0;
	now = bpf_ktime_get_ns();
	if (th->iter_start_ns)
		iteration_end(th, tid, now);	/* it went round without sleeping in the poll */
	else if (th->poll_enter_ns && now > th->poll_enter_ns)
		th->ls.idle_ns += now - th->poll_enter_ns;
	th->poll_nr = nr;
	th->ls.poll_nr = nr;
	th->in_poll = 0;
	th->poll_enter_ns = 0;
	iteration_begin(th, now);
	return 0;
}

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

/* ---------------------------------------------------------------- file descriptors */

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define PIPEFS_MAGIC 0x50495045
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

/* syscalls whose first argument is the fd they may block on */
static __always_inline int fd_syscall(__u32 nr)
{
	switch (nr) {
	case 0: case 1: case 17: case 18: case 19: case 20:	/* read write pread pwrite readv writev */
	case 42: case 43: case 44: case 45: case 46: case 47:	/* connect accept sendto recvfrom sendmsg recvmsg */
	case 74: case 75: case 288: case 295: case 296:	/* fsync fdatasync accept4 preadv pwritev */
	case 299: case 307: case 327: case 328:		/* recvmmsg sendmmsg preadv2 pwritev2 */
	case 73: case 16: case 40: case 275: case 276:		/* flock ioctl sendfile splice tee */
		return 1;
	}
	return 0;
}

static __always_inline void fd_path(struct file *f, struct lw_fdinfo *o)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry), *parent;
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = container_of(vm, struct mount, mnt);
	__u32 i;

	for (i = 0; i < LW_FD_COMPS + 8; i++) {
		const unsigned char *name;

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
}

static __always_inline void fd_describe(__u32 fd, struct lw_fdinfo *o)
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
	fd_path(f, o);
}

/* The thread `prev` (== current) leaves the CPU. */
static __always_inline void switch_out(void *ctx, struct task_struct *prev, __u32 preempt,
				       __u64 now)
{
	__u32 tid = prev->pid;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;
	struct lw_tstacks *st;
	struct pt_regs *regs;
	__u32 tgid;
	__u16 insn = 0;
	__u64 ip, nr, a0;

	if (!th || !busy(th))
		return;
	if (preempt || task_state(prev) == 0) {
		th->off_ts = now;
		th->wake_ts = 0;
		th->off_kind = LW_OFF_RUNQ;
		th->off_stack_ok = 0;
		return;
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
	if (nr != (__u64)-1 && !th->cb_depth && th->iter_start_ns && loop_syscall(th, (__u32)nr) &&
	    waits_on_fds((__u32)nr, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si))) {
		/* back in the loop's poll: the iteration ends here, idle time begins */
		iteration_end(th, tid, now);
		th->poll_enter_ns = now;
		th->in_poll = 1;
		return;
	}
	tgid = th->tgid;
	th->off_ts = now;
	th->wake_ts = 0;
	th->off_stack_ok = 0;
	th->off_gil_holder = 0;
	th->off_gil_holder_tid = 0;
	th->off_path[0] = 0;
	th->off_fd.kind = LW_FD_NONE;
	th->off_kind = LW_OFF_BLOCKED;
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
			fd_describe((__u32)a0, &th->off_fd);
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
	if (!(c->flags & LW_PROC_STACKS))
		return;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st)
		return;
	walk_pystack(c, tid, &st->pending);
	st->pending.syscall = th->off_sys;
	capture_native(ctx, &st->pending, c);
	th->off_stack_ok = 1;
}

static __always_inline void emit_block(struct lw_thread *th, struct lw_tstacks *st, __u32 tid,
				       __u64 now, __u64 blocked)
{
	struct lw_rec_block *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

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
	r->cb_callable = th->cb_depth ? th->cb_callable : 0;
	bpf_probe_read_kernel_str(r->path, sizeof(r->path), th->off_path);
	bpf_probe_read_kernel(&r->fd, sizeof(r->fd), &th->off_fd);
	if (st && th->off_stack_ok)
		copy_stack(&r->stack, &st->pending);
	else
		no_stack(&r->stack);
	bpf_ringbuf_submit(r, 0);
}

/* The thread `next` gets the CPU back. current is someone else: no user reads here. */
static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 tid = next->pid;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;
	struct lw_tstacks *st = 0;
	__u64 blocked = 0, runq = 0;
	__u32 tgid;

	if (!th || !th->off_ts)
		return;
	if (th->off_kind == LW_OFF_RUNQ) {
		runq = now - th->off_ts;
	} else if (th->wake_ts && th->wake_ts >= th->off_ts && th->wake_ts <= now) {
		blocked = th->wake_ts - th->off_ts;
		runq = now - th->wake_ts;
	} else {
		blocked = now - th->off_ts;
	}
	th->off_ts = 0;
	th->wake_ts = 0;
	if (!busy(th))
		return;
	split_add(&th->iter, th->off_kind, th->off_sys, blocked, runq, th->off_gil_holder,
		  th->off_gil_holder_tid);
	th->iter_dirty = 1;
	if (th->cb_depth) {
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
			if (blocked > th->best_block_ns) {
				th->best_block_ns = blocked;
				copy_stack(&st->iter_block, &st->pending);
			}
			if (th->cb_depth && blocked > th->cb_best_block_ns) {
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

SEC("tp_btf/sched_switch")
int BPF_PROG(lw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	switch_out(ctx, prev, preempt, now);
	switch_in(next, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(lw_sched_wakeup, struct task_struct *p)
{
	__u32 tid = p->pid;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (th && th->off_ts && !th->wake_ts && th->off_kind != LW_OFF_RUNQ)
		th->wake_ts = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tp/sched_process_exit")
int lw_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct lw_rec_task *r;

	if (tid != tgid || !bpf_map_lookup_elem(&procs, &tgid))
		return 0;
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

/* ---------------------------------------------------------------- CPU samples */

SEC("perf_event")
int lw_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;
	struct lw_tstacks *st;
	__u64 since, votes, ts;

	if (!th || !busy(th))
		return 0;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c || !(c->flags & LW_PROC_STACKS))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st)
		return 0;
	__sync_fetch_and_add(&samples, 1);
	walk_pystack(c, tid, &st->sample);
	st->sample.syscall = (__u32)-1;
	capture_native(ctx, &st->sample, c);
	/*
	 * Where does it burn CPU? A majority vote (Boyer-Moore) over the innermost function of
	 * the samples of this busy period, keeping that function's latest sample for its line.
	 */
	since = th->iter_start_ns;
	if (th->cb_depth && th->cb_start_ns > since)
		since = th->cb_start_ns;
	if (!(st->cpu.flags & LW_STACK_VALID) || st->cpu.ts_ns < since || !st->cpu.nframes) {
		copy_stack(&st->cpu, &st->sample);
		st->cpu.ns = 1;
	} else if (st->sample.nframes && st->sample.frames[0].code == st->cpu.frames[0].code) {
		votes = st->cpu.ns + 1;
		ts = st->cpu.ts_ns;
		copy_stack(&st->cpu, &st->sample);
		st->cpu.ns = votes;
		st->cpu.ts_ns = ts;	/* the candidate's age, not the sample's */
	} else if (st->cpu.ns <= 1) {
		copy_stack(&st->cpu, &st->sample);
		st->cpu.ns = 1;
	} else {
		st->cpu.ns--;
	}
	return 0;
}

/* ---------------------------------------------------------------- precise mode */

static __always_inline struct lw_thread *cb_thread(__u32 tgid, __u32 tid)
{
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	struct lw_pycfg *c;

	if (th && th->tgid == tgid)
		return th;
	c = bpf_map_lookup_elem(&procs, &tgid);
	if (!c)
		return 0;
	return thread_get(tgid, tid, c);
}

/* A callback begins (outermost only: user code may call Context.run inside a callback) */
static __always_inline void cb_begin(struct lw_thread *th, __u64 callable, __u64 ctxobj)
{
	th->cb_seen = 1;
	if (th->cb_depth++)
		return;
	th->cb_start_ns = bpf_ktime_get_ns();
	th->cb_ctx = ctxobj;
	th->cb_callable = callable;
	th->cb_best_block_ns = 0;
	if (th->cb_dirty) {
		split_reset(&th->cb);
		th->cb_dirty = 0;
	}
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
	__u64 now, dur, site;
	__u32 slot;

	if (!th->cb_depth) {
		/* before any entry on this thread: a call entered while the probes were being
		 * attached (return probe first), not an error */
		if (th->cb_seen)
			__sync_fetch_and_add(&depth_errors, 1);
		return;
	}
	if (--th->cb_depth)
		return;
	c = bpf_map_lookup_elem(&procs, &tgid);
	z = zeroes();
	if (!c || !z)
		return;
	now = bpf_ktime_get_ns();
	dur = now - th->cb_start_ns;
	th->iter_callbacks++;

	/* site key: a few pointer reads for every callback */
	__builtin_memset(&z->id, 0, sizeof(z->id));
	site = classify(c, th->cb_callable, th->cb_ctx, &z->id, 0);
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
				classify(c, th->cb_callable, th->cb_ctx, &rs->ident, 1);
				bpf_ringbuf_submit(rs, 0);
			} else {
				__sync_fetch_and_add(&lost_events, 1);
			}
		}
		h = bpf_map_lookup_elem(&sites, &key);
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
		th->slowest.kind = z->id.kind;
		th->slowest.code = z->id.code;
		th->slowest.callable = th->cb_callable;
		th->slowest.type = z->id.type;
		th->slowest.task = z->id.task;
	}
	if (dur < c->threshold_ns)
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
	classify(c, th->cb_callable, th->cb_ctx, &r->ident, 1);
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

SEC("uprobe")
int BPF_KPROBE(lw_ctxrun_enter, void *ctxobj, void *args)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lw_thread *th = cb_thread(id >> 32, (__u32)id);

	if (th)
		cb_begin(th, rd_ptr((__u64)args), (__u64)ctxobj);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(lw_ctxrun_exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (th)
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
	struct lw_thread *th = cb_thread(tgid, (__u32)id);
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
	struct lw_thread *th = cb_thread(tgid, (__u32)id);
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

/* ---------------------------------------------------------------- asyncio's other mistakes */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lw_rec_asyncio);
} aio_scratch SEC(".maps");

/* the object at `obj` is of a type named like want (or derives from one) */
static __always_inline int type_named(const struct lw_pycfg *c, __u64 obj, const char *want,
				      __u32 len, char *buf)
{
	__u64 type = rd_ptr(obj + 8);

	if (!type)
		return 0;
	if (type_name_is(type, c, want, len, buf))
		return 1;
	type = rd_ptr(type + 256);	/* tp_base: a subclass */
	return type && type_name_is(type, c, want, len, buf);
}

static __always_inline int is_future_or_task(const struct lw_pycfg *c, __u64 obj, int *task)
{
	char buf[32];
	__u64 t;

	if (!obj || obj & 7)
		return 0;
	if (bpf_probe_read_user(&t, sizeof(t), (void *)(obj + 8)) || !t)
		return 0;
	/* prefix match: "_asyncio.Task" and "_asyncio.Future" */
	if (type_named(c, obj, "_asyncio.Task", 13, buf)) {
		*task = 1;
		return 1;
	}
	if (type_named(c, obj, "_asyncio.Future", 15, buf)) {
		*task = 0;
		return 1;
	}
	return 0;
}

#define Py_TPFLAGS_BASE_EXC_SUBCLASS (1ul << 30)

/* "ValueError" and "card declined": the first exception among the Future's fields */
static __always_inline void read_exception(const struct lw_pycfg *c, __u64 fut,
					   struct lw_rec_asyncio *r)
{
	__u32 i;

	for (i = 3; i < 20; i++) {
		__u64 o = rd_ptr(fut + i * 8), t, flags = 0, args, p;

		if (!o || (o & 7))
			continue;
		t = rd_ptr(o + 8);
		if (!t || rd(&flags, sizeof(flags), t + 168) || !(flags & Py_TPFLAGS_BASE_EXC_SUBCLASS))
			continue;
		p = rd_ptr(t + c->tp_name);
		if (p)
			bpf_probe_read_user_str(r->exc_type, sizeof(r->exc_type), (void *)p);
		args = rd_ptr(o + 24);	/* BaseException.args: a tuple */
		if (args && rd_ptr(args + 16) >= 1)
			rd_pystr(c, rd_ptr(args + 24), r->exc_msg, sizeof(r->exc_msg));
		return;
	}
}

static __always_inline int aio_hook(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, k = 0;
	struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	struct lw_rec_asyncio *r;
	__u64 obj = 0, v, regs[15];
	int i, task = 0;

	if (!c)
		return 0;
	r = bpf_map_lookup_elem(&aio_scratch, &k);
	if (!r)
		return 0;
	__builtin_memset(&r->ident, 0, sizeof(r->ident));
	r->exc_type[0] = 0;
	r->exc_msg[0] = 0;
	r->flags = 0;
	/* the object is somewhere in the registers: find it by its type */
	regs[0] = ctx->di;
	regs[1] = ctx->si;
	regs[2] = ctx->dx;
	regs[3] = ctx->cx;
	regs[4] = ctx->r8;
	regs[5] = ctx->r9;
	regs[6] = ctx->bx;
	regs[7] = ctx->bp;
	regs[8] = ctx->r12;
	regs[9] = ctx->r13;
	regs[10] = ctx->r14;
	regs[11] = ctx->r15;
	regs[12] = ctx->ax;
	regs[13] = ctx->r10;
	regs[14] = ctx->r11;
	for (i = 0; i < 15; i++) {
		v = regs[i];
		if (!v || (v & 7))
			continue;
		if (kind == LW_AIO_UNAWAITED) {
			if (c->type_coro && rd_ptr(v + 8) == c->type_coro) {
				obj = v;
				break;
			}
		} else if (is_future_or_task(c, v, &task)) {
			obj = v;
			break;
		}
	}
	if (obj) {
		r->flags |= LW_AIO_FOUND;
		if (kind == LW_AIO_UNAWAITED) {
			rd_pystr(c, rd_ptr(obj + c->coro_qualname), r->ident.qualname,
				 sizeof(r->ident.qualname));
			ident_from_code(c, coro_code(c, obj), &r->ident);
			r->ident.kind = LW_KIND_OTHER;
		} else {
			if (task) {
				r->flags |= LW_AIO_IS_TASK;
				r->ident.kind = LW_KIND_TASK;
				r->ident.task = obj;
				read_task_name(c, obj, r->ident.task_name, &r->ident.task_num,
					       &r->ident.flags);
				rd_pystr(c, rd_ptr(rd_ptr(obj + c->task_coro) + c->coro_qualname),
					 r->ident.qualname, sizeof(r->ident.qualname));
				ident_from_code(c, coro_code(c, rd_ptr(obj + c->task_coro)), &r->ident);
			}
			if (kind == LW_AIO_NEVER_RETRIEVED)
				read_exception(c, obj, r);
		}
	}
	hdr_fill(&r->hdr, LW_REC_ASYNCIO, sizeof(*r), tgid, tid, bpf_ktime_get_ns());
	r->kind = kind;
	walk_pystack(c, tid, &r->stack);
	r->stack.syscall = (__u32)-1;
	r->stack.nnative = 0;
	if (bpf_ringbuf_output(&events, r, sizeof(*r), 0))
		__sync_fetch_and_add(&lost_events, 1);
	return 0;
}

SEC("uprobe")
int lw_hook_unawaited(struct pt_regs *ctx)
{
	return aio_hook(ctx, LW_AIO_UNAWAITED);
}

SEC("uprobe")
int lw_hook_never_retrieved(struct pt_regs *ctx)
{
	return aio_hook(ctx, LW_AIO_NEVER_RETRIEVED);
}

SEC("uprobe")
int lw_hook_destroyed_pending(struct pt_regs *ctx)
{
	return aio_hook(ctx, LW_AIO_DESTROYED_PENDING);
}

/* ---------------------------------------------------------------- garbage collections */

SEC("uprobe")
int lw_gc_start(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	if (th && !th->gc_start_ns)
		th->gc_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("uprobe")
int lw_gc_done(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	__u64 d;

	if (!th || !th->gc_start_ns)
		return 0;
	d = bpf_ktime_get_ns() - th->gc_start_ns;
	th->gc_start_ns = 0;
	th->ls.gc_count++;
	th->ls.gc_ns += d;
	if (th->iter_start_ns) {
		th->iter.gc_ns += d;
		th->iter_dirty = 1;
	}
	if (th->cb_depth) {
		th->cb.gc_ns += d;
		th->cb_dirty = 1;
	}
	return 0;
}
