/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * asyncio's other mistakes (unawaited coroutines, unretrieved exceptions, destroyed pending tasks) and GC time.
 * Part of loopwatch.bpf.c's one compilation unit: included there, in order, never alone.
 */
#ifndef LW_LW_AIOHOOKS_BPF_H
#define LW_LW_AIOHOOKS_BPF_H

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

/*
 * 2: obj is an asyncio Task, 1: a Future, 0: neither. A global function (scalars only), verified
 * once: inlined, its four name comparisons were unrolled for each of the 15 registers tried.
 */
__noinline int lw_future_kind(__u32 tgid, __u64 obj)
{
	const struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	char buf[32];
	__u64 t;

	if (!c || !obj || obj & 7)
		return 0;
	if (bpf_probe_read_user(&t, sizeof(t), (void *)(obj + 8)) || !t)
		return 0;
	/* prefix match: "_asyncio.Task" and "_asyncio.Future" */
	if (type_named(c, obj, "_asyncio.Task", 13, buf))
		return 2;
	if (type_named(c, obj, "_asyncio.Future", 15, buf))
		return 1;
	return 0;
}

#define Py_TPFLAGS_BASE_EXC_SUBCLASS (1ul << 30)

/* "ValueError" and "card declined": the first exception among the Future's fields, into the
 * record being built (aio_scratch). A global function (scalars only), verified once. */
__noinline int lw_read_exception(__u32 tgid, __u64 fut)
{
	const struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	__u32 i, k = 0;
	struct lw_rec_asyncio *r = bpf_map_lookup_elem(&aio_scratch, &k);

	if (!c || !r)
		return 0;
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
			rd_pystr(c, rd_ptr(args + c->tuple_item), r->exc_msg, sizeof(r->exc_msg));
		return 0;
	}
	return 0;
}

static __always_inline int aio_hook(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, k = 0;
	struct lw_pycfg *c = bpf_map_lookup_elem(&procs, &tgid);
	struct lw_rec_asyncio *r;
	__u64 obj = 0, v, regs[15];
	int i, task = 0;

	if (!c || !fair_ok(tgid, sizeof(*r)))
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
		} else if ((task = lw_future_kind(tgid, v))) {
			task = task == 2;
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
				lw_read_exception(tgid, obj);
		}
	}
	hdr_fill(&r->hdr, LW_REC_ASYNCIO, sizeof(*r), tgid, tid, bpf_ktime_get_ns());
	r->kind = kind;
	walk_pystack(c, tid, &r->stack, LW_WALK_UPROBE);
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

/* All three in one program, the kind being the attach cookie (Linux >= 5.15): the verifier then
 * checks the walk once instead of three times, a third of the attach time. The three programs
 * above stay for older kernels; the loader keeps only one set (lw_bpf__new). */
SEC("uprobe")
int lw_hook_aio(struct pt_regs *ctx)
{
	__u64 kind = bpf_get_attach_cookie(ctx);

	if (kind < LW_AIO_UNAWAITED || kind > LW_AIO_DESTROYED_PENDING)
		return 0;
	return aio_hook(ctx, (__u32)kind);
}

/* ---------------------------------------------------------------- garbage collections */

SEC("uprobe")
int lw_gc_start(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);

	/* collectors nest (V8 starts incremental marking from inside a scavenge; CPython's
	 * hooked functions may call one another): the outermost entry and return count */
	if (th && th->gc_depth++ == 0)
		th->gc_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("uprobe")
int lw_gc_done(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lw_thread *th = bpf_map_lookup_elem(&threads, &tid);
	__u64 d;

	/* a return whose entry was not seen (attached in between) is no collection */
	if (!th || !th->gc_depth || --th->gc_depth || !th->gc_start_ns)
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

#endif
