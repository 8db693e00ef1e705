// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A process's CPython (see pyproc.h): probing it, its thread states, TSS and GIL, frames and
 * callables. Finding the runtime, its version and checking its layout: pyproc_find.c. */
#include "target/pyproc_priv.h"
#include "target/elfsym.h"
#include "base/lw_util.h"
#include "target/procmaps.h"
#include "base/lw_util.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NF 0xffff
#define GLIBC_PTHREAD_TID 0x2d0		/* struct pthread.tid, glibc 2.2x-2.3x x86_64 */
#define GLIBC_SPECIFIC_1STBLOCK 0x310	/* struct pthread.specific_1stblock */

int pp_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

void pp_addcheck(struct lw_pyinfo *pi, const char *fmt, ...)
{
	size_t n = strlen(pi->checks);
	va_list ap;

	if (n + 3 >= sizeof(pi->checks))
		return;
	if (n)
		n += (size_t)snprintf(pi->checks + n, sizeof(pi->checks) - n, ", ");
	va_start(ap, fmt);
	vsnprintf(pi->checks + n, sizeof(pi->checks) - n, fmt, ap);
	va_end(ap);
}

int lw_py__read_str(const struct lw_pylayout *lay, struct lw_reader *mem, uint64_t obj, char *buf,
		    size_t size)
{
	uint64_t len = 0;
	uint32_t state = 0;
	unsigned kind;
	size_t i, o = 0;
	uint8_t raw[1024];

	if (!size)
		return -EINVAL;
	buf[0] = 0;
	if (lw_mem_read(mem, obj + 16, &len, sizeof(len)) || lw_mem_read(mem, obj + 32, &state, sizeof(state)))
		return -EFAULT;
	if (!(state & (1u << 5)))
		return -ENOTSUP;	/* not compact: legacy string, never in code objects */
	kind = (state >> 2) & 7;
	if (kind != 1 && kind != 2 && kind != 4)
		return -EINVAL;
	if (len > sizeof(raw) / kind)
		len = sizeof(raw) / kind;
	if (len && lw_mem_read(mem, obj + ((state & (1u << 6)) ? lay->str_ascii : lay->str_compact), raw,
			 (size_t)len * kind))
		return -EFAULT;
	for (i = 0; i < len; i++) {
		uint32_t cp = kind == 1 ? raw[i] :
			      kind == 2 ? (uint32_t)(raw[2 * i] | raw[2 * i + 1] << 8) :
			      (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
				      (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
		char tmp[4];
		size_t n;

		if (cp < 0x80) {
			tmp[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			tmp[0] = (char)(0xc0 | cp >> 6);
			tmp[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			tmp[0] = (char)(0xe0 | cp >> 12);
			tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			tmp[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else if (cp < 0x110000) {
			tmp[0] = (char)(0xf0 | cp >> 18);
			tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			tmp[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		} else {
			tmp[0] = '?';
			n = 1;
		}
		if (o + n >= size)
			break;
		memcpy(buf + o, tmp, n);
		o += n;
	}
	buf[o] = 0;
	return 0;
}

struct tid_match {
	pid_t want;
	uint64_t tstate;
};

static int match_main(void *arg, pid_t tid, uint64_t tstate)
{
	struct tid_match *m = arg;

	if (tid == m->want)
		m->tstate = tstate;
	return 0;
}

int lw_py__threads(const struct lw_pyinfo *pi, struct lw_reader *mem,
		   int (*fn)(void *arg, pid_t tid, uint64_t tstate), void *arg)
{
	const struct lw_pylayout *l = &pi->lay;
	uint64_t interp = 0, ts = 0;
	int n = 0, r;

	if (lw_mem_read_u64(mem, pi->runtime + l->rt_interp_head, &interp) || !interp)
		return -EFAULT;
	if (lw_mem_read_u64(mem, interp + l->interp_threads_head, &ts))
		return -EFAULT;
	while (ts && n < LW_PY_MAX_THREADS) {
		uint64_t tid = 0;

		if (l->ts_native_id) {
			if (lw_mem_read_u64(mem, ts + l->ts_native_id, &tid))
				return -EFAULT;
		} else {
			uint64_t pt = 0;
			int32_t t = 0;

			if (lw_mem_read_u64(mem, ts + l->ts_thread_id, &pt))
				return -EFAULT;
			if (pt && pi->pthread_tid_off &&
			    lw_mem_read(mem, pt + pi->pthread_tid_off, &t, sizeof(t)) == 0)
				tid = (uint64_t)t;
		}
		if (tid && tid < (1u << 30)) {
			r = fn(arg, (pid_t)tid, ts);
			if (r)
				return r;
		}
		n++;
		if (lw_mem_read_u64(mem, ts + l->ts_next, &ts))
			return -EFAULT;
	}
	return n;
}

/*
 * No TSS key (3.15): PyGILState_GetThisThreadState reads a thread-local of the executable,
 * `mov rax, fs:[-disp]` within its first instructions. Verified on the main thread: its
 * pthread_t (tstate->thread_id) is its fs base, and the slot there holds its thread state. A
 * libpython build reaches its thread-locals through the GOT (no fixed offset): not taken.
 */
static void setup_tls(struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t main_tstate)
{
	uint8_t code[48];
	const uint8_t *p = code;
	size_t size = sizeof(code);
	uint64_t addr = pi->gilstate_fn, pt = 0, v = 0;
	int64_t disp = 0;
	cs_insn *in;
	csh cs;
	int n = 0;

	if (lw_mem_read(mem, pi->gilstate_fn, code, sizeof(code)))
		return;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	in = cs_malloc(cs);
	while (in && n++ < 8 && !disp && cs_disasm_iter(cs, &p, &size, &addr, in)) {
		const cs_x86 *x = &in->detail->x86;
		uint8_t i;

		for (i = 0; i < x->op_count; i++) {
			const cs_x86_op *o = &x->operands[i];

			if (in->id == X86_INS_MOV && o->type == X86_OP_MEM &&
			    o->mem.segment == X86_REG_FS && o->mem.base == X86_REG_INVALID &&
			    o->mem.index == X86_REG_INVALID && o->mem.disp < 0 &&
			    o->mem.disp > -(1 << 20))
				disp = o->mem.disp;
		}
		if (in->id == X86_INS_RET || in->id == X86_INS_JMP || in->id == X86_INS_CALL)
			break;
	}
	if (in)
		cs_free(in, 1);
	cs_close(&cs);
	if (!disp || lw_mem_read_u64(mem, main_tstate + pi->lay.ts_thread_id, &pt) || !pt ||
	    lw_mem_read_u64(mem, pt + (uint64_t)disp, &v) || v != main_tstate)
		return;
	pi->tls_off = disp;
	pp_addcheck(pi, "thread-local thread state verified");
}

/* thread-state lookup in BPF: the pthread TSD slot; verify it on the main thread */
static void setup_tss(struct lw_pyinfo *pi, struct lw_reader *mem)
{
	struct { int32_t init, key; } tss = { 0, -1 };
	struct tid_match mm = { pi->ns_pid ? pi->ns_pid : pi->pid, 0 };
	uint64_t pt = 0, v = 0;

	pi->tss_key = -1;
	pi->pthread_tid_off = GLIBC_PTHREAD_TID;
	if (pi->lay.rt_tss_key && lw_mem_read(mem, pi->runtime + pi->lay.rt_tss_key, &tss, sizeof(tss)) == 0 && tss.init == 1 &&
	    tss.key >= 0)
		pi->tss_key = tss.key;
	if (lw_py__threads(pi, mem, match_main, &mm) <= 0 || !mm.tstate) {
		pp_addcheck(pi, "main thread state not found");
		return;
	}
	pi->main_tstate = mm.tstate;
	if (pi->tss_key < 0 && pi->gilstate_fn)
		setup_tls(pi, mem, mm.tstate);
	if (pi->tss_key < 0 || pi->tss_key >= 32)
		return;
	if (lw_mem_read_u64(mem, mm.tstate + pi->lay.ts_thread_id, &pt) || !pt)
		return;
	if (lw_mem_read_u64(mem, pt + GLIBC_SPECIFIC_1STBLOCK + (uint64_t)pi->tss_key * 16 + 8, &v) == 0 &&
	    v == mm.tstate) {
		pi->tsd_base = GLIBC_SPECIFIC_1STBLOCK;
		pp_addcheck(pi, "pthread TSS slot verified");
	}
}

/* The GIL: in _PyRuntime (<= 3.11) or behind interp->ceval.gil (3.12+); check its fields look
 * like a GIL (interval in microseconds, locked 0 or 1) before trusting it. */
static void setup_gil(struct lw_pyinfo *pi, struct lw_reader *mem)
{
	const struct lw_pylayout *l = &pi->lay;
	uint64_t gil = 0, interval = 0;
	int32_t locked = -1;

	if (lw_mem_read_u64(mem, pi->runtime + l->rt_interp_head, &pi->interp) || !pi->interp)
		return;
	if (!l->gil_off)
		return;
	if (l->gil_from_interp) {
		if (lw_mem_read_u64(mem, pi->interp + l->gil_off, &gil) || !gil)
			return;
	} else {
		gil = pi->runtime + l->gil_off;
	}
	if (lw_mem_read_u64(mem, gil + l->gil_interval, &interval) ||
	    lw_mem_read(mem, gil + l->gil_locked, &locked, sizeof(locked)))
		return;
	if (interval == 0 || interval > 1000000000ull || (locked != 0 && locked != 1)) {
		pp_addcheck(pi, "GIL state did not validate (interval %llu)",
			 (unsigned long long)interval);
		return;
	}
	pi->gil = gil;
	pp_addcheck(pi, "GIL found (switch interval %llu us)", (unsigned long long)interval);
}

int lw_py__probe(const char *proc_root, pid_t pid, struct lw_reader *mem, struct lw_pyinfo *pi,
		 char *err, size_t errlen)
{
	struct lw_maps *maps = NULL;
	struct lw_elf *e = NULL;
	const struct lw_pylayout *lay;
	char path[PATH_MAX + 32];
	ssize_t n;
	int r;

	memset(pi, 0, sizeof(*pi));
	pi->pid = pid;
	pi->ns_pid = lw_ns_pid(proc_root, pid);
	pi->tss_key = -1;
	snprintf(path, sizeof(path), "%s/%d/exe", proc_root, (int)pid);
	n = readlink(path, pi->exe, sizeof(pi->exe) - 1);
	if (n < 0) {
		r = -errno;
		if (r == -ENOENT)
			return pp_fail(err, errlen, -ESRCH, "no process with pid %d", (int)pid);
		if (r == -EACCES || r == -EPERM)
			return pp_fail(err, errlen, -EPERM,
				    "cannot inspect pid %d: permission denied; run as root (or with "
				    "CAP_SYS_PTRACE, CAP_BPF and CAP_PERFMON)",
				    (int)pid);
		return pp_fail(err, errlen, -ESRCH,
			    "pid %d has no executable (a kernel thread or a zombie?): nothing to trace",
			    (int)pid);
	}
	pi->exe[n] = 0;
	if (n > 10 && strcmp(pi->exe + n - 10, " (deleted)") == 0)
		pi->exe[n - 10] = 0;
	lw_strlcpy(path, pi->exe, sizeof(path));	/* as maps shows it */
	lw_maps__target_path(proc_root, pid, path, pi->exe, sizeof(pi->exe));
	r = lw_maps__load(proc_root, pid, &maps);
	if (r)
		return pp_fail(err, errlen, r == -ENOENT ? -ESRCH : r,
			    "cannot read /proc/%d/maps: %s", (int)pid, strerror(-r));
	r = pp_find_python_elf(proc_root, pi, maps, path, &e, err, errlen);
	if (r)
		goto out;
	pi->elf_type = lw_elf__type(e);
	pi->has_symtab = lw_elf__has_symtab(e);
	if (pp_load_bias(e, maps, pi->elf_map, &pi->bias)) {
		r = pp_fail(err, errlen, -ENOEXEC, "cannot find where %s is mapped in pid %d", pi->elf,
			 (int)pid);
		goto out;
	}
	if (pp_sym_addr(e, pi->bias, "_PyRuntime", &pi->runtime)) {
		r = pp_fail(err, errlen, -ENOEXEC, "_PyRuntime not found in %s", pi->elf);
		goto out;
	}
	r = pp_detect_version(pi, e, mem, err, errlen);
	if (r)
		goto out;
	r = pp_refuse_builds(pi, e, err, errlen);
	if (r)
		goto out;
	lay = lw_pylayout_for(pi->minor);
	if (!lay) {
		r = pp_fail(err, errlen, -ENOTSUP, "no layout for CPython %s", pi->version);
		goto out;
	}
	pi->lay = *lay;
	if (pi->minor >= 13) {
		r = pp_check_debug_offsets(pi, mem, err, errlen);
		if (r)
			goto out;
	}
	r = pp_check_layout(pi, e, mem, err, errlen);
	if (r)
		goto out;
	r = pp_find_context_run(pi, e, mem, err, errlen);
	if (r == -ENOENT) {
		/* default mode does not need it: report, keep going */
		pi->ctxrun_addr = 0;
		r = 0;
	} else if (r) {
		goto out;
	}
	pp_sym_addr(e, pi->bias, "PyGILState_GetThisThreadState", &pi->gilstate_fn);
	setup_tss(pi, mem);
	setup_gil(pi, mem);
	lw_py__fill_cfg(pi);
	/* type objects the BPF side classifies callables with */
	{
		static const char *const names[] = { "PyFunction_Type", "PyMethod_Type",
						     "PyCFunction_Type", "PyLong_Type",
						     "PyUnicode_Type", "_Py_NoneStruct",
						     "PyCoro_Type" };
		__u64 *dst[] = { &pi->cfg.type_function, &pi->cfg.type_method,
				 &pi->cfg.type_cfunction, &pi->cfg.type_long,
				 &pi->cfg.type_unicode, &pi->cfg.none_obj,
				 &pi->cfg.type_coro };
		size_t i;

		for (i = 0; i < LW_ARRAY_SIZE(names); i++) {
			uint64_t a = 0;

			pp_sym_addr(e, pi->bias, names[i], &a);
			*dst[i] = a;
		}
	}
	if (!pi->cfg.type_function || !pi->cfg.type_method) {
		r = pp_fail(err, errlen, -ENOEXEC, "PyFunction_Type/PyMethod_Type not found in %s",
			 pi->elf);
		goto out;
	}
out:
	lw_elf__close(e);
	lw_maps__free(maps);
	return r;
}

void lw_py__fill_cfg(struct lw_pyinfo *pi)
{
	const struct lw_pylayout *l = &pi->lay;
	struct lw_pycfg *c = &pi->cfg;

	c->minor = (unsigned)pi->minor;
	c->flags |= LW_PROC_PYTHON;
	c->ts_frame = (__u16)l->ts_frame;
	c->cframe_cur = (__u16)l->cframe_cur;
	c->f_code = (__u16)l->f_code;
	c->f_back = (__u16)l->f_back;
	c->f_instr = (__u16)l->f_instr;
	c->f_owner = (__u16)l->f_owner;
	c->f_localsplus = (__u16)l->f_localsplus;
	c->instr_is_ptr = (__u16)l->instr_is_ptr;
	c->stackref_mask = (__u16)l->stackref_mask;
	/* PyTupleObject.ob_item (Include/cpython/tupleobject.h): 3.14 added ob_hash before it */
	c->tuple_item = pi->minor >= 14 ? 32 : 24;
	c->func_code = (__u16)l->func_code;
	c->func_qualname = (__u16)l->func_qualname;
	c->meth_func = 16;
	c->meth_self = 24;
	c->partial_fn = 16;
	c->cfunc_ml = 16;
	c->cfunc_self = 24;
	c->wrapper_task = 16;
	c->task_coro = (__u16)l->task_coro;
	c->task_name = (__u16)l->task_name;
	c->task_context = (__u16)l->task_context;
	c->coro_qualname = (__u16)l->coro_qualname;
	c->coro_code = (__u16)l->coro_code;
	c->co_filename = (__u16)l->co_filename;
	c->co_name = (__u16)l->co_name;
	c->co_qualname = (__u16)(l->co_qualname ? l->co_qualname : NF);
	c->co_firstlineno = (__u16)l->co_firstlineno;
	c->str_ascii = (__u16)l->str_ascii;
	c->str_compact = (__u16)l->str_compact;
	c->long_tag = (__u16)l->long_tag;
	c->tp_name = 24;
	c->tss_key = pi->tsd_base ? pi->tss_key : -1;
	if (!c->handle_cb_slot)
		c->handle_cb_slot = 24;	/* Handle.__slots__ sorted: _args, _callback, ... */
	/* uvloop 0.17's cbhandles.pxd (checked against the types' basicsize when attaching) */
	c->uv_cbtype = 56;
	c->uv_arg1 = 72;
	c->uv_ctx = 32;
	c->uv_timer_cb = 24;
	c->uv_timer_ctx = 64;
	c->gil = pi->gil;
	c->ts_native_id = (__u16)l->ts_native_id;
	c->ts_thread_id = (__u16)l->ts_thread_id;
	c->pthread_tid = (__u16)pi->pthread_tid_off;
	c->gil_size = pi->gil ? l->gil_size : 0;
	c->gil_last_holder = l->gil_last_holder;
	c->tsd_base = pi->tsd_base;
	if (!pi->tsd_base && pi->tls_off) {
		c->tss_key = LW_TSS_STATIC_TLS;
		c->tsd_base = (__u32)(int32_t)pi->tls_off;
	}
}

int lw_py__walk(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t tstate,
		struct lw_pystack *s)
{
	const struct lw_pylayout *l = &pi->lay;
	uint64_t f = 0, hframe = 0, prevf = 0;
	uint32_t i;

	memset(s, 0, sizeof(*s));
	s->flags = LW_STACK_VALID;
	s->syscall = (uint32_t)-1;
	s->ts_ns = lw_now_mono();
	if (!tstate) {
		s->flags |= LW_STACK_NO_TSTATE;
		return -ENOENT;
	}
	if (lw_mem_read_u64(mem, tstate + l->ts_frame, &f))
		return -EFAULT;
	if (l->cframe_cur != NF && f && lw_mem_read_u64(mem, f + l->cframe_cur, &f))
		return -EFAULT;
	for (i = 0; i < LW_MAX_PYFRAMES && f; i++) {
		uint64_t code = 0, instr = 0;
		uint8_t owner = 0;

		if (l->f_owner != NF)
			lw_mem_read(mem, f + l->f_owner, &owner, 1);
		if (lw_mem_read_u64(mem, f + l->f_code, &code)) {
			s->flags |= LW_STACK_READ_ERR;
			break;
		}
		lw_mem_read_u64(mem, f + l->f_instr, &instr);
		code &= ~(uint64_t)l->stackref_mask;	/* 3.14+: a tagged _PyStackRef */
		/* shims: owner 3 (3.12/3.13 C stack; 3.14+ interpreter), 4 (3.14+ C stack) */
		if (code == pi->cfg.none_obj || (owner >= 3 && pi->minor >= 12))
			code = 0;
		s->frames[i].code = code;
		s->frames[i].instr = instr;
		s->frames[i].frame = f;
		if (code && (code == pi->cfg.handle_run_code ||
			     (code == pi->cfg.run_once_code && !hframe)))
			hframe = code == pi->cfg.handle_run_code ? f : prevf;
		prevf = f;
		if (lw_mem_read_u64(mem, f + l->f_back, &f))
			f = 0;
	}
	if (f)
		s->flags |= LW_STACK_TRUNCATED;
	s->nframes = i;
	s->cb_kind = LW_KIND_UNKNOWN;
	if (hframe && pi->cfg.handle_cb_slot) {
		uint64_t self = 0, cb = 0;
		struct lw_ident id;

		if (lw_mem_read_u64(mem, hframe + l->f_localsplus, &self) == 0 &&
		    (self &= ~(uint64_t)l->stackref_mask) &&
		    lw_mem_read_u64(mem, self + pi->cfg.handle_cb_slot, &cb) == 0 &&
		    lw_py__classify(pi, mem, cb, &id) == 0) {
			s->cb_callable = cb;
			s->cb_kind = id.kind;
			s->task = id.task;
			s->task_flags = 0;
			lw_strlcpy(s->task_name, id.task_name, sizeof(s->task_name));
			lw_strlcpy(s->cb_qualname, id.qualname, sizeof(s->cb_qualname));
		}
	}
	return 0;
}

static int read_obj_str(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t ptr_addr,
			char *buf, size_t size)
{
	uint64_t obj = 0;

	if (lw_mem_read_u64(mem, ptr_addr, &obj) || !obj)
		return -EFAULT;
	return lw_py__read_str(&pi->lay, mem, obj, buf, size);
}

int lw_py__classify(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t callable,
		    struct lw_ident *id)
{
	const struct lw_pylayout *l = &pi->lay;
	uint64_t obj = callable, type = 0, fn = 0, task;
	char tname[64];

	memset(id, 0, sizeof(*id));
	id->kind = LW_KIND_UNKNOWN;
	id->callable = callable;
	if (!callable || lw_mem_read_u64(mem, obj + 8, &type) || !type)
		return -EFAULT;
	id->type = type;
	if (type != pi->cfg.type_function && type != pi->cfg.type_method &&
	    lw_py__type_name(mem, type, tname, sizeof(tname)) == 0 &&
	    strcmp(tname, "functools.partial") == 0) {
		if (lw_mem_read_u64(mem, obj + 16, &obj) || lw_mem_read_u64(mem, obj + 8, &type))
			return -EFAULT;
		id->flags |= LW_IDENT_PARTIAL;
	}
	if (type == pi->cfg.type_method) {
		uint64_t ft = 0;

		if (lw_mem_read_u64(mem, obj + 16, &fn) == 0 && lw_mem_read_u64(mem, fn + 8, &ft) == 0 &&
		    ft == pi->cfg.type_function)
			id->kind = LW_KIND_METHOD;
		else
			fn = 0;
	} else if (type == pi->cfg.type_function) {
		fn = obj;
		id->kind = LW_KIND_FUNCTION;
	}
	if (fn) {
		uint64_t code = 0;

		lw_mem_read_u64(mem, fn + l->func_code, &code);
		id->code = code;
		read_obj_str(pi, mem, fn + l->func_qualname, id->qualname, sizeof(id->qualname));
		return 0;
	}
	task = lw_py__callable_task(pi, mem, obj);
	if (task) {
		uint64_t coro = 0;

		id->kind = LW_KIND_TASK;
		id->task = task;
		lw_py__task_name(pi, mem, task, id->task_name, sizeof(id->task_name));
		if (lw_mem_read_u64(mem, task + l->task_coro, &coro) == 0 && coro) {
			uint64_t code = 0;

			lw_mem_read_u64(mem, coro + l->coro_code, &code);
			id->code = code & ~(uint64_t)l->stackref_mask;
			read_obj_str(pi, mem, coro + l->coro_qualname, id->qualname,
				     sizeof(id->qualname));
		}
		return 0;
	}
	id->kind = LW_KIND_OTHER;
	lw_py__type_name(mem, type, id->qualname, sizeof(id->qualname));
	return 0;
}

int lw_py__type_name(struct lw_reader *mem, uint64_t type, char *buf, size_t size)
{
	uint64_t p = 0;

	buf[0] = 0;
	if (lw_mem_read_u64(mem, type + 24, &p) || !p)
		return -EFAULT;
	return pp_rd_cstr(mem, p, buf, size);
}

uint64_t lw_py__callable_task(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t callable)
{
	uint64_t type = 0, task = 0;
	char name[40];

	if (lw_mem_read_u64(mem, callable + 8, &type) || !type)
		return 0;
	if (type == pi->cfg.type_cfunction) {
		uint64_t ml = 0, mlname = 0;

		if (lw_mem_read_u64(mem, callable + 16, &ml) || lw_mem_read_u64(mem, ml, &mlname) ||
		    pp_rd_cstr(mem, mlname, name, sizeof(name)) || strcmp(name, "task_wakeup"))
			return 0;
		lw_mem_read_u64(mem, callable + 24, &task);
		return task;
	}
	if (lw_py__type_name(mem, type, name, sizeof(name)))
		return 0;
	if (strcmp(name, "TaskStepMethWrapper") && strcmp(name, "_asyncio.TaskStepMethWrapper") &&
	    strcmp(name, "TaskWakeupMethWrapper"))
		return 0;
	lw_mem_read_u64(mem, callable + 16, &task);
	return task;
}

int lw_py__task_name(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t task, char *buf,
		     size_t size)
{
	uint64_t name = 0, type = 0;

	buf[0] = 0;
	if (lw_mem_read_u64(mem, task + pi->lay.task_name, &name) || !name ||
	    lw_mem_read_u64(mem, name + 8, &type))
		return -EFAULT;
	if (type == pi->cfg.type_long) {
		uint64_t tag = 0;
		uint32_t d[2] = { 0, 0 };
		int64_t nd, v;

		if (lw_mem_read_u64(mem, name + 16, &tag) || lw_mem_read(mem, name + 24, d, sizeof(d)))
			return -EFAULT;
		nd = pi->lay.long_tag ? (int64_t)(tag >> 3) : (int64_t)tag;
		v = d[0];
		if (nd > 1)
			v |= (int64_t)d[1] << 30;
		snprintf(buf, size, "Task-%lld", (long long)v);
		return 0;
	}
	return lw_py__read_str(&pi->lay, mem, name, buf, size);
}

int lw_py__learn_handle(struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t frame,
			uint64_t code)
{
	uint64_t self = 0, type = 0;
	unsigned off;
	char name[32];

	if (lw_mem_read_u64(mem, frame + pi->lay.f_localsplus, &self) ||
	    !(self &= ~(uint64_t)pi->lay.stackref_mask) ||
	    lw_mem_read_u64(mem, self + 8, &type) || !type)
		return -EFAULT;
	if (lw_py__type_name(mem, type, name, sizeof(name)) ||
	    (strcmp(name, "Handle") && strcmp(name, "TimerHandle")))
		return -ENOENT;
	/* TimerHandle subclasses Handle: its own tp_members hold only its new slots */
	if (pp_member_offset(mem, type, "_callback", &off)) {
		uint64_t base = 0;

		if (lw_mem_read_u64(mem, type + 256, &base) || !base ||	/* tp_base */
		    pp_member_offset(mem, base, "_callback", &off))
			return -ENOENT;
	}
	pi->cfg.handle_run_code = code;
	pi->cfg.handle_cb_slot = off;
	return 0;
}

int lw_py__refresh(struct lw_pyinfo *pi, struct lw_reader *mem)
{
	uint32_t tsd = pi->tsd_base;
	uint64_t gil = pi->gil;

	int64_t tls = pi->tls_off;

	if ((pi->tsd_base || pi->tls_off) && pi->gil)
		return 0;
	if (!pi->tsd_base && !pi->tls_off)
		setup_tss(pi, mem);
	if (!pi->gil)
		setup_gil(pi, mem);
	if (pi->tsd_base == tsd && pi->gil == gil && pi->tls_off == tls)
		return 0;
	lw_py__fill_cfg(pi);
	return 1;
}
