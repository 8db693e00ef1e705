/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Syscall classes, bounded reads of target memory, callback identity and Python stack walking.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_PYWALK_BPF_H
#define LW_LW_PYWALK_BPF_H

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

/* a failed read, counted for the process whose memory it was (the current one). A global
 * function: the verifier checks it once, not again at each of the reads' failure paths */
__noinline int lw_count_rderr(__u32 cause)
{
	struct lw_rderr_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .cause = cause };
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&rderr, &k);
	if (!n && bpf_map_update_elem(&rderr, &k, &one, BPF_NOEXIST) == 0)
		return 0;
	if (!n)
		n = bpf_map_lookup_elem(&rderr, &k);	/* another CPU made it meanwhile */
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* rd() and rd_ptr() count a failure under RD_CAUSE as defined where they are used */
static __always_inline int rd_c(void *dst, __u32 size, __u64 addr, __u32 cause)
{
	if (bpf_probe_read_user(dst, size, (const void *)addr)) {
		__sync_fetch_and_add(&read_errors, 1);
		if (cause < LW_RD_NCAUSES) {
			__sync_fetch_and_add(&read_errors_by[cause], 1);
			lw_count_rderr(cause);
		}
		return -1;
	}
	return 0;
}

static __always_inline __u64 rd_ptr_c(__u64 addr, __u32 cause)
{
	__u64 v = 0;

	if (!addr)
		return 0;
	rd_c(&v, sizeof(v), addr, cause);
	return v;
}

#define rd(dst, size, addr) rd_c(dst, size, addr, RD_CAUSE)
#define rd_ptr(addr) rd_ptr_c(addr, RD_CAUSE)
#define RD_CAUSE LW_RD_STRING

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

#undef RD_CAUSE
#define RD_CAUSE LW_RD_CALLBACK
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

#undef RD_CAUSE
#define RD_CAUSE LW_RD_CODE
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
	return rd_ptr(coro + c->coro_code) & ~(__u64)c->stackref_mask;
}

/*
 * Classify the callable run by Context.run and find its site key (a code object, or the type
 * for anything else). With full != 0 also read the strings (only for slow callbacks and new
 * sites: they cost a few hundred bytes of reads).
 */
#undef RD_CAUSE
#define RD_CAUSE LW_RD_CALLBACK
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
	/* anything else: its type name; but a builtin method (uvloop schedules fut.set_result,
	 * transport._read_ready...) is its PyMethodDef, named "<type of __self__>\x1f<method>"
	 * (userspace joins them), and a type called as a constructor is the type itself */
	id->kind = LW_KIND_OTHER;
	if (type == c->type_cfunction) {
		__u64 ml = rd_ptr(obj + c->cfunc_ml), self, p;
		long n;

		if (!ml)
			return type;
		if (full) {
			self = rd_ptr(obj + c->cfunc_self);
			p = self ? rd_ptr(rd_ptr(self + 8) + c->tp_name) : 0;
			n = p ? bpf_probe_read_user_str(id->qualname, 64, (const void *)p) : 0;
			if (n < 1 || n > 64)
				n = 1;
			else
				id->qualname[(n - 1) & 63] = 0x1f;
			p = rd_ptr(ml);
			if (p)
				bpf_probe_read_user_str(&id->qualname[n & 63], 64, (const void *)p);
		}
		return ml;
	}
	if (type_name_is(type, c, "type", 4, buf)) {
		if (full) {
			__u64 p = rd_ptr(obj + c->tp_name);

			if (p)
				bpf_probe_read_user_str(id->qualname, sizeof(id->qualname),
							(const void *)p);
		}
		return obj;
	}
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

#undef RD_CAUSE
#define RD_CAUSE LW_RD_TSTATE
static __always_inline __u64 thread_tstate(const struct lw_pycfg *c, __u32 tid)
{
	__u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
	struct task_struct *task;
	__u64 fsbase, v = 0;

	if (ts && *ts)
		return *ts;
	if (c->tss_key != LW_TSS_STATIC_TLS && (c->tss_key < 0 || c->tss_key >= 32))
		return 0;
	/* glibc: pthread_self() == fs base; TSD slot data at specific_1stblock[key].data */
	task = (struct task_struct *)bpf_get_current_task();
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return 0;
	if (c->tss_key == LW_TSS_STATIC_TLS)
		rd(&v, sizeof(v), fsbase + (__u64)(__s64)(__s32)c->tsd_base);
	else
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
#undef RD_CAUSE
#define RD_CAUSE LW_RD_CALLBACK
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
 * The frame walk's state, one per context that walks (LW_WALK_*: the scheduler program runs with
 * interrupts off, a CPU sample in an interrupt, a uprobe in task context: none reuses another's
 * slot while that one is in the middle of a walk on the same CPU).
 *
 * Each frame is read by a global function (lw_walk_frame, lw_walk_deep) that the verifier checks
 * once, on its own, instead of once per loop iteration per path of every program that walks: the
 * walk's two bounded loops (LW_MAX_PYFRAMES slots, LW_DEEP_SCAN frames past them) were most of
 * the verifier's time at attach, which is most of attach time. A global function takes scalars
 * only (pointer arguments need Linux 5.12), so the state lives here, with the configuration the
 * frames are read by.
 */
#define LW_WALK_SCHED 0
#define LW_WALK_SAMPLE 1
#define LW_WALK_UPROBE 2
#define LW_WALK_SLOTS 3

struct lw_walk {
	__u64 f;			/* the next frame to read, 0 at the end */
	__u64 cur, code, instr;		/* the frame read last (lw_walk_frame) */
	__u64 hframe, prevf;		/* Handle._run's frame when seen; the frame before cur */
	__u64 pcode, pinstr, pf;	/* lw_walk_deep: the last frame with code ... */
	__u64 ppcode, ppinstr, ppf;	/* ... and the one before it */
	__u64 hcode;			/* lw_walk_deep: Handle._run's code, when found */
	__u64 none, run_once, handle_run, tagmask;
	__u32 shim_min;			/* frame owners >= this are shims (no code of their own) */
	__u32 read_err;
	__u32 inloop;			/* _run_once or Handle._run seen among the frames read */
	__u16 f_owner, f_code, f_back, f_instr;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LW_WALK_SLOTS);
	__type(key, __u32);
	__type(value, struct lw_walk);
} walk_state SEC(".maps");

#undef RD_CAUSE
#define RD_CAUSE LW_RD_FRAME
/* Frame f's code object into *code (0 for a shim: 3.12/3.13 owner 3 (C stack), 3.14+ 3
 * (interpreter) and 4 (C stack)); -1 when it cannot be read */
static __always_inline int walk_code(const struct lw_walk *w, __u64 f, __u64 *code)
{
	__u8 owner = 0;

	*code = 0;
	if (w->f_owner != NO_FIELD)
		bpf_probe_read_user(&owner, 1, (void *)(f + w->f_owner));
	if (rd(code, sizeof(*code), f + w->f_code)) {
		*code = 0;
		return -1;
	}
	*code &= w->tagmask;	/* 3.14+: f_executable is a tagged ref */
	if (*code == w->none || owner >= w->shim_min)
		*code = 0;
	return 0;
}

/* Frame w->f into w->cur/code/instr, then on to its caller: 1 when there was none. */
__noinline int lw_walk_frame(__u32 slot)
{
	struct lw_walk *w = bpf_map_lookup_elem(&walk_state, &slot);
	__u64 f, code = 0, instr = 0;

	if (!w || !w->f)
		return 1;
	f = w->f;
	if (walk_code(w, f, &code))
		w->read_err = 1;
	bpf_probe_read_user(&instr, sizeof(instr), (void *)(f + w->f_instr));
	w->cur = f;
	w->code = code;
	w->instr = instr;
	/* Handle._run: known by its code, or as the frame _run_once called */
	if (code && (code == w->handle_run || (code == w->run_once && !w->hframe)))
		w->hframe = code == w->handle_run ? f : w->prevf;
	if (code && (code == w->handle_run || code == w->run_once))
		w->inloop = 1;
	w->prevf = f;
	w->f = rd_ptr(f + w->f_back);
	return 0;
}

/* One frame past the slots, looking for Handle._run only: 1 when the scan stops (found, no
 * frame, unreadable), w->hframe set when found. */
__noinline int lw_walk_deep(__u32 slot)
{
	struct lw_walk *w = bpf_map_lookup_elem(&walk_state, &slot);
	__u64 f, code = 0, instr, hframe = 0;

	if (!w || !w->f)
		return 1;
	f = w->f;
	if (walk_code(w, f, &code))
		return 1;
	if (code && code == w->run_once) {
		/* Handle._run is the frame with code just inside: shift one back */
		code = w->pcode;
		f = w->pf;
		w->pcode = w->ppcode;
		w->pinstr = w->ppinstr;
		w->pf = w->ppf;
		hframe = f;
	} else if (code && code == w->handle_run) {
		hframe = f;
	}
	if (hframe) {
		w->hframe = hframe;
		w->hcode = code;
		return 1;
	}
	if (code) {
		instr = 0;
		bpf_probe_read_user(&instr, sizeof(instr), (void *)(f + w->f_instr));
		w->ppcode = w->pcode;
		w->ppinstr = w->pinstr;
		w->ppf = w->pf;
		w->pcode = code;
		w->pinstr = instr;
		w->pf = f;
	}
	w->f = rd_ptr(f + w->f_back);
	return 0;
}

/*
 * Walk the current thread's Python frames into s, innermost first. Frame i goes to slot i;
 * frames without code (3.12+ C-stack shims, 3.13 entry frames) are stored with code 0 and
 * skipped by userspace. `slot` (LW_WALK_*): the walk state of the caller's context.
 */
static __noinline void walk_pystack(const struct lw_pycfg *c, __u32 tid, struct lw_pystack *s,
				    __u32 slot)
{
	struct lw_walk *w = bpf_map_lookup_elem(&walk_state, &slot);
	__u64 tstate, f, hframe = 0;
	__u32 i;

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
	if (!w)
		return;
	f = rd_ptr(tstate + c->ts_frame);
	if (c->cframe_cur != NO_FIELD)
		f = rd_ptr(f + c->cframe_cur);
	__builtin_memset(w, 0, sizeof(*w));
	w->f = f;
	w->none = c->none_obj;
	w->run_once = c->run_once_code;
	w->handle_run = c->handle_run_code;
	w->tagmask = ~(__u64)c->stackref_mask;
	w->shim_min = c->minor >= 12 ? 3 : 256;
	w->f_owner = c->f_owner;
	w->f_code = c->f_code;
	w->f_back = c->f_back;
	w->f_instr = c->f_instr;

	for (i = 0; i < LW_MAX_PYFRAMES; i++) {
		if (lw_walk_frame(slot))
			break;
		s->frames[i].code = w->code;
		s->frames[i].instr = w->instr;
		s->frames[i].frame = w->cur;
	}
	if (w->read_err)
		s->flags |= LW_STACK_READ_ERR;
	if (w->f)
		s->flags |= LW_STACK_TRUNCATED;
	s->nframes = i;
	if (!w->f && i && c->run_once_code && !w->inloop && !(s->flags & LW_STACK_READ_ERR))
		s->flags |= LW_STACK_NOLOOP;
	hframe = w->hframe;
	/* deeper than the slots (recursion, deep frameworks): keep looking for Handle._run, reading
	 * only what identifies it, so that a deep stack still names its callback. Handle._run is
	 * known by its code, or as the frame with code just inside _run_once; the callback's frame
	 * is the one with code just inside Handle._run (shims skipped, as userspace does). */
	if (w->f && !hframe && (c->handle_run_code || c->run_once_code)) {
		for (i = 0; i < LW_DEEP_SCAN; i++)
			if (lw_walk_deep(slot))
				break;
		hframe = w->hframe;
		if (hframe) {
			s->hrun.code = w->hcode;
			s->hrun.frame = hframe;
			s->cb_frame.code = w->pcode;
			s->cb_frame.instr = w->pinstr;
			s->cb_frame.frame = w->pf;
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
		__u64 self = rd_ptr(hframe + c->f_localsplus) & ~(__u64)c->stackref_mask;

		if (self)
			stack_task(c, s, rd_ptr(self + c->handle_cb_slot));
	}
}

#undef RD_CAUSE
#define RD_CAUSE LW_RD_OTHER
/* copy: also the stack's top for the unwind tables (a preempted thread's stack: only when the
 * CPU vote keeps it, lw_sched.bpf.h) */
static __always_inline void capture_native(void *ctx, struct lw_pystack *s, struct lw_pycfg *c,
					   int copy)
{
	long n;

	s->nnative = 0;
	s->flags &= ~LW_STACK_USTACK;
	if (!(c->flags & LW_PROC_NATIVE))
		return;
	n = bpf_get_stack(ctx, s->native, sizeof(s->native), BPF_F_USER_STACK);
	if (n > 0)
		s->nnative = (__u32)(n / sizeof(__u64));
	/* for unwinding by CFI where frame pointers fail; userspace must know a copy was made,
	 * to say so when it is gone by the time the record is unwound */
	if (copy && !lw_capture_ustack(s->ts_ns))
		s->flags |= LW_STACK_USTACK;
}

#endif
