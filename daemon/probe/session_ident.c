// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/session_priv.h"

/* ------------------------------------------------------------------ stacks */

int lw_sess_frame_info(struct lw_session *s, const struct lw_pyframe *f, struct frame_info *fi)
{
	const struct lw_pycode *pc;

	memset(fi, 0, sizeof(*fi));
	if (!f->code || !s->codes)
		return -ENOENT;
	pc = lw_pycache__get(s->codes, &s->rd, f->code);
	if (!pc)
		return -EFAULT;
	fi->qualname = pc->qualname;
	fi->file = pc->file;
	fi->firstlineno = pc->firstlineno;
	fi->line = lw_pycache__line(s->codes, pc, f->instr);
	return 0;
}

/* asyncio's dispatch frames (<= 3.10 code objects carry no qualname: "_run", "_run_once") */
static int is_handle_run(const struct frame_info *fi)
{
	return fi->qualname && (strcmp(fi->qualname, "Handle._run") == 0 ||
				strcmp(fi->qualname, "_run") == 0) &&
	       lw_sess_ends_with(fi->file, "asyncio/events.py");
}

static int is_run_once(const struct frame_info *fi)
{
	return fi->qualname && (strcmp(fi->qualname, "BaseEventLoop._run_once") == 0 ||
				strcmp(fi->qualname, "_run_once") == 0) &&
	       lw_sess_ends_with(fi->file, "asyncio/base_events.py");
}

void lw_sess_push_cfg(struct lw_session *s)
{
	s->py.cfg.threshold_ns = s->o.threshold_ns;
	s->py.cfg.block_threshold_ns = s->o.block_threshold_ns;
	lw_bpf__set_proc(s->bpf, s->pid, &s->py.cfg);
}

/*
 * asyncio's dispatch frames, so that stacks name the Task being run: BaseEventLoop._run_once
 * (always on the loop thread's stack, idle or not) and Handle._run with its Handle's
 * _callback slot (checked against the live Handle type when a frame allows).
 */
void lw_sess_maybe_learn_handle(struct lw_session *s, const struct lw_pyframe *f,
				const struct frame_info *fi)
{
	if (!fi->qualname)
		return;
	if (!s->py.cfg.run_once_code && is_run_once(fi)) {
		s->py.cfg.run_once_code = f->code;
		lw_sess_push_cfg(s);
		lw_dbg("pid %d: BaseEventLoop._run_once is code 0x%llx", (int)s->pid,
		       (unsigned long long)f->code);
		return;
	}
	if (s->handle_learned || !is_handle_run(fi))
		return;
	if (lw_py__learn_handle(&s->py, &s->rd, f->frame, f->code) == 0) {
		s->handle_learned = 1;
		lw_sess_push_cfg(s);
		lw_dbg("pid %d: Handle._callback is at +%u", (int)s->pid, s->py.cfg.handle_cb_slot);
	}
}

/*
 * A frame is reported only as far as it is right: a code object that cannot be read, or reads
 * as no name or no file (garbage at a reused address), drops the frame; a line outside what the
 * code object's first line and line table allow (not before the first line; not further past it
 * than 64 K lines plus 64 per line-table byte: a gap a real function does not have) is left out
 * of the frame. Either makes the stack "unreadable".
 */
static int line_plausible(struct lw_session *s, const struct lw_pyframe *f,
			  const struct frame_info *fi)
{
	const struct lw_pycode *pc;
	int64_t span;

	if (fi->line < fi->firstlineno || fi->line <= 0)
		return 0;
	pc = s->codes ? lw_pycache__get(s->codes, &s->rd, f->code) : NULL;
	span = 65536 + (pc ? 64 * (int64_t)pc->table_len : 0);
	return (int64_t)fi->line - fi->firstlineno <= span;
}

struct json_object *lw_sess_stack_json_ex(struct lw_session *s, const struct lw_pystack *st,
					  int *dropped)
{
	struct json_object *a = json_object_new_array();
	uint32_t i, n = st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES;

	*dropped = 0;
	for (i = 0; i < n; i++) {
		const struct lw_pyframe *f = &st->frames[i];
		struct json_object *o;
		struct frame_info fi;

		if (!f->code)
			continue;
		if (lw_sess_frame_info(s, f, &fi) || !fi.qualname || !fi.qualname[0] || !fi.file ||
		    !fi.file[0]) {
			*dropped = 1;
			continue;
		}
		lw_sess_maybe_learn_handle(s, f, &fi);
		o = json_object_new_object();
		json_object_object_add(o, "function", json_object_new_string(fi.qualname));
		json_object_object_add(o, "file", json_object_new_string(fi.file));
		if (line_plausible(s, f, &fi))
			json_object_object_add(o, "line", json_object_new_int(fi.line));
		else
			*dropped = 1;
		json_object_array_add(a, o);
	}
	return a;
}

/* Whether any frame of st would be reported (lw_sess_stack_json_ex keeps at least one) */
int lw_sess_stack_shows(struct lw_session *s, const struct lw_pystack *st)
{
	uint32_t i, n = st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES;
	struct frame_info fi;

	for (i = 0; i < n; i++)
		if (st->frames[i].code && lw_sess_frame_info(s, &st->frames[i], &fi) == 0 &&
		    fi.qualname && fi.qualname[0] && fi.file && fi.file[0])
			return 1;
	return 0;
}

struct json_object *lw_sess_stack_json(struct lw_session *s, const struct lw_pystack *st)
{
	int dropped;

	return lw_sess_stack_json_ex(s, st, &dropped);
}

static int same_frames(const struct lw_pystack *a, const struct lw_pystack *b)
{
	uint32_t i;

	if (a->nframes != b->nframes || a->nframes > LW_MAX_PYFRAMES)
		return 0;
	for (i = 0; i < a->nframes; i++)
		if (a->frames[i].code != b->frames[i].code ||
		    a->frames[i].instr != b->frames[i].instr ||
		    a->frames[i].frame != b->frames[i].frame)
			return 0;
	return 1;
}

/*
 * "stack" and, when it is not whole, "stack_incomplete". An empty one always says why (issue 20
 * item 11: "stack": [] alone read as a stack with nothing on it): "not sampled" when no stack
 * was taken in the stretch (it never slept, and no CPU sample or preemption caught it), "no
 * frames" when one was taken with no Python frame on it (the thread ran no Python code then).
 */
void lw_sess_add_stack(struct lw_session *s, struct json_object *o, const struct lw_pystack *st)
{
	const struct lw_sthread *m = s->memo;
	struct json_object *a = NULL;
	int dropped = 0;

	/* the same frames its live look named while they ran (the record comes after the
	 * iteration ended: a code object freed since reads as another one, or none) */
	if (st && m && m->alert_js && m->alert_stack && same_frames(st, m->alert_stack) &&
	    json_object_deep_copy(m->alert_js, &a, NULL) == 0)
		dropped = m->alert_js_dropped;
	else
		a = st ? lw_sess_stack_json_ex(s, st, &dropped) : json_object_new_array();
	json_object_object_add(o, "stack", a);
	lw_sess_mark_stack(o, st);
	if (dropped && st && (st->flags & LW_STACK_VALID) && !(st->flags & LW_STACK_READ_ERR))
		json_object_object_add(o, "stack_incomplete", json_object_new_string("unreadable"));
	if (!json_object_array_length(a) && !json_object_object_get_ex(o, "stack_incomplete", NULL))
		json_object_object_add(o, "stack_incomplete",
				       json_object_new_string(st && (st->flags & LW_STACK_VALID) ?
							      "no frames" : "not sampled"));
}

/* A stack that is not whole says so: "truncated" (deeper than the frames kept: the innermost are
 * there) or "unreadable" (a frame could not be read: the target changed it under the read) */
void lw_sess_mark_stack(struct json_object *o, const struct lw_pystack *st)
{
	if (!st || !(st->flags & LW_STACK_VALID))
		return;
	if (st->flags & LW_STACK_READ_ERR)
		json_object_object_add(o, "stack_incomplete", json_object_new_string("unreadable"));
	else if (st->flags & LW_STACK_TRUNCATED)
		json_object_object_add(o, "stack_incomplete", json_object_new_string("truncated"));
}

struct json_object *lw_sess_native_json(struct lw_session *s, const struct lw_pystack *st)
{
	struct json_object *a = json_object_new_array();
	uint32_t i, n = st->nnative < LW_MAX_NATIVE ? st->nnative : LW_MAX_NATIVE;

	for (i = 0; i < n; i++) {
		struct lw_native_frame nf;
		struct json_object *o;

		if (!st->native[i])
			break;
		o = json_object_new_object();
		if (s->nsym && lw_nativesym__resolve(s->nsym, st->native[i], &nf) == 0) {
			json_object_object_add(o, "symbol", lw_j_str_or_null(nf.symbol));
			json_object_object_add(o, "module", lw_j_str_or_null(nf.module));
			json_object_object_add(o, "offset", json_object_new_int64((int64_t)nf.offset));
		} else {
			char addr[32];

			snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)st->native[i]);
			json_object_object_add(o, "symbol", NULL);
			json_object_object_add(o, "module", NULL);
			json_object_object_add(o, "address", json_object_new_string(addr));
		}
		json_object_array_add(a, o);
	}
	return a;
}

/*
 * Mixed stacks (Python + C, as py-spy --native shows them): where the native stack runs into the
 * interpreter's eval loop (_PyEval_EvalFrameDefault, which Debian's and pyenv's interpreters
 * export), the native frames inner to its innermost activation are the C code the innermost
 * Python frame called (a C extension down to the syscall). "mixed_stack" is those native frames,
 * each a copy of its native_stack entry marked "native": true, followed by the Python frames of
 * "stack" as they are; innermost first. Only where both stacks are there and at least one native
 * frame lies under the Python code (a sample inside the eval loop itself has none).
 */
static int is_eval_loop(const char *sym)
{
	return sym && strncmp(sym, "_PyEval_EvalFrame", 17) == 0;
}

void lw_sess_add_mixed(struct json_object *o)
{
	struct json_object *py = lw_j_get(o, "stack"), *ns = lw_j_get(o, "native_stack"), *m;
	size_t i, n, under;

	if (!py || !ns || !json_object_is_type(py, json_type_array) ||
	    !json_object_is_type(ns, json_type_array) || !json_object_array_length(py))
		return;
	n = json_object_array_length(ns);
	for (under = 0; under < n; under++)
		if (is_eval_loop(lw_j_get_str(json_object_array_get_idx(ns, under), "symbol")))
			break;
	if (under == n || under == 0)
		return;
	m = json_object_new_array();
	for (i = 0; i < under; i++) {
		struct json_object *fr = json_object_array_get_idx(ns, i), *c = json_object_new_object();

		json_object_object_add(c, "native", json_object_new_boolean(1));
		json_object_object_foreach(fr, k, v)
			json_object_object_add(c, k, json_object_get(v));
		json_object_array_add(m, c);
	}
	for (i = 0; i < json_object_array_length(py); i++)
		json_object_array_add(m, json_object_get(json_object_array_get_idx(py, i)));
	json_object_object_add(o, "mixed_stack", m);
}

/* ------------------------------------------------------------------ callback identity */

struct json_object *lw_sess_ident_json(const struct cb_ident *id)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(lw_sess_kind_name(id->kind)));
	json_object_object_add(o, "task_name", lw_j_str_or_null(id->task_name));
	json_object_object_add(o, "qualname", lw_j_str_or_null(id->qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(id->file));
	json_object_object_add(o, "line", id->line > 0 ? json_object_new_int(id->line) : NULL);
	return o;
}

/* from an identity the BPF side read while the callback ran */
/* BPF names a builtin method "<type of __self__>\x1f<method>": "Type.method", the type without
 * its module ("_asyncio.Future" -> "Future.set_result"); a module's function is its own name */
static void builtin_method_name(char *q, size_t size)
{
	char *sep = strchr(q, 0x1f), *dot, out[2 * LW_STR_QUAL + 2];

	if (!sep)
		return;
	*sep = 0;
	if (!sep[1]) {
		lw_strlcpy(out, q, sizeof(out));	/* no method name: the type's */
	} else if (!q[0] || strcmp(q, "module") == 0) {
		lw_strlcpy(out, sep + 1, sizeof(out));
	} else {
		dot = strrchr(q, '.');
		snprintf(out, sizeof(out), "%s.%s", dot ? dot + 1 : q, sep + 1);
	}
	lw_strlcpy(q, out, size);
}

void lw_sess_ident_from_bpf(struct lw_session *s, const struct lw_ident *bi, struct cb_ident *id)
{
	memset(id, 0, sizeof(*id));
	id->found = 1;
	id->kind = bi->kind == LW_KIND_UNKNOWN ? LW_KIND_OTHER : (int)bi->kind;
	if (bi->flags & LW_IDENT_TASK_NUM)
		snprintf(id->task_name, sizeof(id->task_name), "Task-%lld", (long long)bi->task_num);
	else
		lw_strlcpy(id->task_name, bi->task_name, sizeof(id->task_name));
	id->task = bi->task;
	lw_strlcpy(id->qualname, bi->qualname, sizeof(id->qualname));
	builtin_method_name(id->qualname, sizeof(id->qualname));
	lw_strlcpy(id->file, bi->file, sizeof(id->file));
	id->line = bi->firstlineno;
	/* a long path was cut at LW_STR_FILE: the code object, if still there, has it whole */
	if (bi->code && s->codes && strlen(bi->file) >= LW_STR_FILE - 1) {
		const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, bi->code);

		if (pc && pc->firstlineno == bi->firstlineno)
			lw_strlcpy(id->file, pc->file, sizeof(id->file));
	}
}

#define CO_COROUTINE 0x80
#define CO_ITERABLE_COROUTINE 0x100

/*
 * Default mode: name the callback from a stack. asyncio runs every callback from Handle._run
 * (asyncio/events.py); the frame just inside it is the callback (for a Task step: the Task's
 * coroutine). Without Handle._run (uvloop, plain threads) the outermost frame that is not the
 * loop's own machinery is used.
 */
/* A frame's qualname names the callable BPF read (a coroutine's qualname, a function's, or the
 * bare name when the frame has no qualname before 3.11) */
static int same_callable(const char *frame_q, const char *cb_q)
{
	const char *dot;

	if (!frame_q || !cb_q || !cb_q[0])
		return 0;
	if (strcmp(frame_q, cb_q) == 0)
		return 1;
	dot = strrchr(cb_q, '.');
	return dot && strcmp(frame_q, dot + 1) == 0;
}

void lw_sess_ident_from_stack(struct lw_session *s, const struct lw_pystack *st, struct cb_ident *id)
{
	uint32_t i, n = st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES;
	const struct lw_pyframe *inner_f = NULL;
	int inner = -1, hrun = -1;
	struct frame_info fi;

	memset(id, 0, sizeof(*id));
	if (!(st->flags & LW_STACK_VALID))
		return;
	for (i = 0; i < n; i++) {
		const struct lw_pyframe *f = &st->frames[i];

		if (!f->code || lw_sess_frame_info(s, f, &fi))
			continue;
		lw_sess_maybe_learn_handle(s, f, &fi);
		if (is_handle_run(&fi)) {
			hrun = (int)i;
			break;
		}
		inner = (int)i;
	}
	/* no Handle._run (uvloop: its loop is C): the callback sits right on the Python frame
	 * that called into the loop (Runner.run, run_until_complete, run_forever). Only then: a
	 * callback of asyncio's own loop that calls into base_events.py (loop.subprocess_exec)
	 * is not such an entry (issue 20: <…get_command_stdout() defined at unix_events.py:195>) */
	if (hrun < 0 && !st->cb_frame.code) {
		inner = -1;
		for (i = 0; i < n; i++) {
			const struct lw_pyframe *f = &st->frames[i];
			int entry;

			if (!f->code || lw_sess_frame_info(s, f, &fi))
				continue;
			/* asyncio's own Python loop (uvloop has no _run_once): its callbacks run
			 * under Handle._run, which is not here, so no callback is running: the
			 * loop's own code is never named as one (issue 20: an iteration named
			 * _run_once after 40 ms in the run queue) */
			if ((s->py.cfg.run_once_code && f->code == s->py.cfg.run_once_code) ||
			    is_run_once(&fi)) {
				inner = -1;
				break;
			}
			entry = lw_sess_ends_with(fi.file, "asyncio/runners.py") ||
				lw_sess_ends_with(fi.file, "asyncio/base_events.py");
			if (entry && inner >= 0) {
				hrun = (int)i;
				break;
			}
			/* the loop's entry itself innermost (run_forever, Runner.run): no callback
			 * inside it */
			if (!entry)
				inner = (int)i;
		}
	}
	if (hrun < 0 && st->cb_frame.code) {
		/* deeper than the stack's slots: BPF found Handle._run and the callback's frame
		 * past them */
		if (!s->handle_learned && st->hrun.code &&
		    lw_py__learn_handle(&s->py, &s->rd, st->hrun.frame, st->hrun.code) == 0) {
			s->handle_learned = 1;
			lw_sess_push_cfg(s);
		}
		inner_f = &st->cb_frame;
	} else if (hrun < 0) {
		return;
	} else if (inner >= 0) {
		inner_f = &st->frames[inner];
	}
	/* what Handle._run's self._callback was: read with the stack, authoritative */
	if (st->cb_kind != LW_KIND_UNKNOWN && st->cb_qualname[0]) {
		id->found = 1;
		id->kind = (int)st->cb_kind;
		lw_strlcpy(id->qualname, st->cb_qualname, sizeof(id->qualname));
		if (st->task_flags & LW_IDENT_TASK_NUM)
			snprintf(id->task_name, sizeof(id->task_name), "Task-%lld",
				 (long long)st->task_num);
		else
			lw_strlcpy(id->task_name, st->task_name, sizeof(id->task_name));
		id->task = st->task;
		/* "defined at": the frame of that callable, which is the one just inside
		 * Handle._run unless a Task's coroutine is not its outermost frame there; look for
		 * the frame with the same name, and leave file and line out rather than name
		 * another function's (issue 20: <…get_command_stdout() defined at
		 * unix_events.py:195>, _make_subprocess_transport's line) */
		if (inner_f && lw_sess_frame_info(s, inner_f, &fi) == 0 &&
		    (st->cb_kind != LW_KIND_TASK || same_callable(fi.qualname, id->qualname))) {
			lw_strlcpy(id->file, fi.file, sizeof(id->file));
			id->line = fi.firstlineno;
		} else {
			for (i = 0; i < n && (hrun < 0 || i < (uint32_t)hrun); i++) {
				const struct lw_pyframe *f = &st->frames[i];

				if (f->code && lw_sess_frame_info(s, f, &fi) == 0 &&
				    same_callable(fi.qualname, id->qualname)) {
					lw_strlcpy(id->file, fi.file, sizeof(id->file));
					id->line = fi.firstlineno;
					break;
				}
			}
		}
		return;
	}
	if (!inner_f)
		return;
	if (lw_sess_frame_info(s, inner_f, &fi))
		return;
	id->found = 1;
	lw_strlcpy(id->qualname, fi.qualname, sizeof(id->qualname));
	lw_strlcpy(id->file, fi.file, sizeof(id->file));
	id->line = fi.firstlineno;
	id->kind = LW_KIND_FUNCTION;
	{
		int32_t flags = 0;

		/* co_flags sits right after co_argcount's neighbours: read it via its member
		 * offset when known (3.11+: 48, <= 3.10: 36) */
		uint64_t off = s->py.minor >= 11 ? 48 : 36;

		if (lw_mem_read(&s->rd, inner_f->code + off, &flags, sizeof(flags)) == 0 &&
		    (flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE)))
			id->kind = LW_KIND_TASK;
	}
	if (!st->task && hrun >= 0 && s->py.cfg.handle_cb_slot && inner_f) {
		/* BPF walked before Handle._callback's slot was learnt (a process that exits soon
		 * after its first slow callback): read the Handle now, while the process exists,
		 * and trust it only when its callback is the frame found above (issue 20) */
		uint64_t self = 0, cb = 0;
		struct lw_ident li;

		memset(&li, 0, sizeof(li));
		if (lw_mem_read_u64(&s->rd, st->frames[hrun].frame + s->py.lay.f_localsplus,
				    &self) == 0 && self &&
		    lw_mem_read_u64(&s->rd, self + s->py.cfg.handle_cb_slot, &cb) == 0 && cb &&
		    lw_py__classify(&s->py, &s->rd, cb, &li) == 0 && li.code == inner_f->code &&
		    li.task) {
			id->kind = LW_KIND_TASK;
			id->task = li.task;
			if (li.flags & LW_IDENT_TASK_NUM)
				snprintf(id->task_name, sizeof(id->task_name), "Task-%lld",
					 (long long)li.task_num);
			else
				lw_strlcpy(id->task_name, li.task_name, sizeof(id->task_name));
			return;
		}
	}
	if (st->task) {
		id->kind = LW_KIND_TASK;
		id->task = st->task;
		if (st->task_flags & LW_IDENT_TASK_NUM)
			snprintf(id->task_name, sizeof(id->task_name), "Task-%lld",
				 (long long)st->task_num);
		else
			lw_strlcpy(id->task_name, st->task_name, sizeof(id->task_name));
	} else if (id->kind == LW_KIND_FUNCTION && strchr(id->qualname, '.') &&
		   !strstr(id->qualname, "<locals>")) {
		id->kind = LW_KIND_METHOD;
	}
}

/* ------------------------------------------------------------------ native runtimes */


static const struct {
	const char *sym, *phase;
} UV_PHASES[] = {
	{ "uv__run_timers", "timers" },	  { "uv__io_poll", "poll" },
	{ "uv__run_check", "check" },	  { "uv__run_idle", "idle" },
	{ "uv__run_prepare", "prepare" }, { "uv__run_pending", "pending" },
	{ "uv__run_closing_handles", "close" },
};

/* Is [p, end) a non-empty run of digits? */
static int all_digits(const char *p, const char *end)
{
	if (p >= end)
		return 0;
	for (; p < end; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

/*
 * A V8 perf map name -> function, file, line: "JS:~handler /app/x.js:10:5" (Node 20: file,
 * line, column) or "LazyCompile:~handler /app/x.js:10" (Node 18's V8: file and line only).
 */
int lw_sess_parse_js(const char *sym, char *name, size_t nsize, char *file, size_t fsize,
		     int *line)
{
	static const char *const kinds[] = { "JS:", "LazyCompile:", "Function:", "Script:" };
	const char *p = NULL, *sp, *c2, *c1, *end;
	size_t i, n;

	for (i = 0; i < LW_ARRAY_SIZE(kinds) && !p; i++)
		if (strncmp(sym, kinds[i], strlen(kinds[i])) == 0)
			p = sym + strlen(kinds[i]);
	if (!p)
		return 0;
	while (*p == '*' || *p == '~' || *p == '^' || *p == '+')
		p++;
	sp = strchr(p, ' ');
	n = sp ? (size_t)(sp - p) : strlen(p);
	snprintf(name, nsize, "%.*s", (int)n, n ? p : "(anonymous)");
	if (!n)
		lw_strlcpy(name, "(anonymous)", nsize);
	file[0] = 0;
	*line = 0;
	if (!sp)
		return 1;
	sp++;
	end = sp + strlen(sp);
	/* the file may hold colons: only trailing ":N" or ":N:N" are the position */
	c2 = strrchr(sp, ':');
	if (!c2 || !all_digits(c2 + 1, end)) {
		lw_strlcpy(file, sp, fsize);
		return 1;
	}
	for (c1 = c2 - 1; c1 > sp && *c1 != ':'; c1--)
		;
	if (c1 > sp && *c1 == ':' && all_digits(c1 + 1, c2)) {
		snprintf(file, fsize, "%.*s", (int)(c1 - sp), sp);	/* file:line:column */
		*line = atoi(c1 + 1);
	} else {
		snprintf(file, fsize, "%.*s", (int)(c2 - sp), sp);	/* file:line */
		*line = atoi(c2 + 1);
	}
	return 1;
}

/*
 * How far a JS frame is from the application's own code: 0 the program's own file, 1 a package
 * under node_modules/ (framework plumbing: express's router and friends), 2 Node's own modules
 * ("node:internal/timers", "node:fs"; "internal/..." before Node 16) or a frame with no file.
 */
static int js_frame_rank(const char *file)
{
	if (!file[0] || strncmp(file, "node:", 5) == 0 || strncmp(file, "internal/", 9) == 0 ||
	    !strchr(file, '/'))
		return 2;
	if (strstr(file, "/node_modules/") || strncmp(file, "node_modules/", 13) == 0)
		return 1;
	return 0;
}

/* a perf-map name of code V8 interprets: "JS:~f file:1:2" (Node 20), "LazyCompile:~f ..." */
static int js_interpreted(const char *sym)
{
	const char *c = strchr(sym, ':');

	return c && c[1] == '~';
}

/*
 * A native stack (innermost first) of an event-loop thread: which libuv phase it is in (when
 * libuv's internal symbols are known), and for Node, the JS function that holds the loop: the
 * innermost frame of the application's own code (names from V8's perf map); failing that the
 * innermost frame of a package (node_modules/), failing that the innermost of Node's own JS.
 * The innermost native symbol is kept too (what an unnamed stack is running).
 */
void lw_sess_native_ident(struct lw_session *s, const struct lw_pystack *st, struct native_info *ni,
			  struct json_object **js_stack)
{
	uint32_t i, n = st->nnative < LW_MAX_NATIVE ? st->nnative : LW_MAX_NATIVE;
	const struct lw_ustack *cp = lw_nstack__copy_of(s->nstk, st);
	uint64_t cursor = 0, base = 0;
	int best = 3;

	memset(ni, 0, sizeof(*ni));
	if (js_stack)
		*js_stack = json_object_new_array();
	if (!s->nsym)
		return;
	if (cp)
		base = cp->regs[7] - ((cp->flags & LW_USTACK_REDZONE) ? LW_USTACK_RED : 0);
	lw_nativesym__sync(s->nsym);
	for (i = 0; i < n; i++) {
		struct lw_native_frame nf;
		char name[LW_STR_QUAL], file[LW_STR_FILE];
		int line, rank, work;
		size_t k;

		if (!st->native[i] || lw_nativesym__resolve(s->nsym, st->native[i], &nf))
			continue;
		if (!ni->leaf[0] && (nf.symbol || nf.module))
			snprintf(ni->leaf, sizeof(ni->leaf), "%s (%s)", nf.symbol ? nf.symbol : "?",
				 nf.module ? nf.module : "?");
		if (!nf.symbol)
			continue;
		for (k = 0; k < LW_ARRAY_SIZE(UV_PHASES); k++)
			if (strcmp(nf.symbol, UV_PHASES[k].sym) == 0 ||
			    (strncmp(nf.symbol, UV_PHASES[k].sym, strlen(UV_PHASES[k].sym)) == 0 &&
			     nf.symbol[strlen(UV_PHASES[k].sym)] == '.'))
				ni->phase = UV_PHASES[k].phase;
		/* V8's interpreter running a function the perf map cannot name (no
		 * --interpreted-frames-native-stack): the program's frame may be this one, so
		 * neither Node's nor a package's frame inside it nor one outside names the stack;
		 * only a frame of the program's own further out does (its caller) */
		if (strcmp(nf.symbol, "Builtins_InterpreterEntryTrampoline") == 0) {
			ni->unnamed_js++;
			if (best > 0) {
				ni->js_found = 0;
				best = 1;
			}
		}
		if (!lw_sess_parse_js(nf.symbol, name, sizeof(name), file, sizeof(file), &line))
			continue;
		/* the line of the work, where V8's jitdump has the code's line table (compiled
		 * code; node --perf-prof): the instruction sampled, or the call a return address
		 * follows; else the function's first line, as the perf map has it */
		work = lw_nativesym__jit_line(s->nsym, &s->rd, i ? st->native[i] - 1 :
					      st->native[i], line);
		/* code V8 interprets has no line table: its interpreter frame says which bytecode
		 * runs (a return address into its trampoline copy, found in the stack copy) */
		if (work <= 0 && i && cp && js_interpreted(nf.symbol))
			work = lw_nativesym__interp_line(s->nsym, &s->rd, cp->data, base, cp->len,
							 st->native[i], &cursor);
		/* JS frames, innermost first, into the Python-shaped stack */
		if (js_stack) {
			struct json_object *o = json_object_new_object();
			int l = work > 0 ? work : line;

			json_object_object_add(o, "function", json_object_new_string(name));
			json_object_object_add(o, "file", lw_j_str_or_null(file));
			json_object_object_add(o, "line", l > 0 ? json_object_new_int(l) : NULL);
			json_object_array_add(*js_stack, o);
		}
		rank = js_frame_rank(file);
		if (rank >= best)
			continue;
		best = rank;
		ni->js_found = 1;
		lw_strlcpy(ni->js_name, name, sizeof(ni->js_name));
		lw_strlcpy(ni->js_file, file, sizeof(ni->js_file));
		ni->js_line = line;
	}
}

/*
 * Node: the CPU sample that names a slow iteration. The BPF side keeps one sample of a
 * native-only stack (bpf/lw_precise.bpf.h cpu_vote_key): the first of its majority vote's
 * candidate, the 64 KiB block of code the sample ran in. Work spread over several blocks has no
 * majority there (V8's JSON parser with its allocations and scavenges; OpenSSL's SHA-512 with
 * the HMAC code around it, or across a block's edge), and the sample kept may then be one taken
 * before the slow function was called or after it returned (Node's socket teardown). The copies
 * of the iteration's other samples are in the LRU still (most of them): each is unwound and
 * named as the record is, the JS function most of them name (the innermost of the application's
 * own code, as lw_sess_native_ident picks) wins, and the stack kept becomes that function's
 * sample nearest the middle of its samples, unless the kept one names it already.
 * At most JS_VOTE_MAX samples, spread evenly over the iteration.
 */
#define JS_VOTE_MAX 48

struct js_vote {
	char name[LW_STR_QUAL], file[LW_STR_FILE];
	uint32_t votes, rank;
	uint64_t ts[JS_VOTE_MAX];	/* its samples' times, ascending */
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void lw_sess_js_vote(struct lw_session *s, uint32_t tid, uint64_t from, uint64_t to,
		     struct lw_pystack *cpu)
{
	struct js_vote *v;
	uint64_t all[256], pick[JS_VOTE_MAX], kept_ts = cpu->ts_ns;
	struct lw_pystack raw, st;
	struct native_info ni;
	size_t n, m = 0, i, nv = 0, best = SIZE_MAX, kept = SIZE_MAX, held;

	if (!s->nstk || !s->bpf || !(cpu->flags & LW_STACK_VALID) || !(cpu->flags & LW_STACK_USTACK))
		return;
	n = lw_bpf__ustack_times(s->bpf, (pid_t)tid, from, to, all, LW_ARRAY_SIZE(all));
	if (n < 2) {
		lw_dbg("pid %d tid %u: JS vote: %zu sample copies left in the iteration", (int)s->pid,
		       tid, n);
		return;
	}
	qsort(all, n, sizeof(all[0]), u64_cmp);
	for (i = 0; i < n; i++)		/* unique (a walk restarted under deletion repeats) */
		if (!m || all[i] != all[m - 1])
			all[m++] = all[i];
	n = m;
	for (i = 0, m = 0; i < JS_VOTE_MAX && i < n; i++)
		pick[m++] = all[n <= JS_VOTE_MAX ? i : i * n / JS_VOTE_MAX];
	/* the sample kept among them, in the place of its nearest */
	for (i = 0; i < m && pick[i] != kept_ts; i++)
		;
	if (i == m) {
		size_t near = 0;

		for (i = 1; i < m; i++)
			if ((pick[i] > kept_ts ? pick[i] - kept_ts : kept_ts - pick[i]) <
			    (pick[near] > kept_ts ? pick[near] - kept_ts : kept_ts - pick[near]))
				near = i;
		pick[near] = kept_ts;
	}
	v = calloc(JS_VOTE_MAX, sizeof(*v));
	if (!v)
		return;
	/* all of them out of the LRU first (held until the record is done: lw_session__handle),
	 * the record's own sample among them */
	held = lw_nstack__hold(s->nstk, tid, pick, m, kept_ts);
	for (i = 0; i < m; i++) {
		size_t k;

		if (lw_nstack__from_copy(s->nstk, tid, pick[i], &raw, &st))
			continue;
		lw_sess_native_ident(s, &st, &ni, NULL);
		if (!ni.js_found)
			continue;
		for (k = 0; k < nv; k++)
			if (!strcmp(v[k].name, ni.js_name) && !strcmp(v[k].file, ni.js_file))
				break;
		if (k == nv) {
			lw_strlcpy(v[k].name, ni.js_name, sizeof(v[k].name));
			lw_strlcpy(v[k].file, ni.js_file, sizeof(v[k].file));
			v[k].votes = 0;
			v[k].rank = (uint32_t)js_frame_rank(ni.js_file);
			nv++;
		}
		v[k].ts[v[k].votes++] = pick[i];
		if (pick[i] == kept_ts)
			kept = k;
	}
	/* most votes; between as many, the one nearer the application's own code, then the
	 * sample kept's */
	for (i = 0; i < nv; i++)
		if (best == SIZE_MAX || v[i].votes > v[best].votes ||
		    (v[i].votes == v[best].votes &&
		     (v[i].rank < v[best].rank || (v[i].rank == v[best].rank && i == kept))))
			best = i;
	if (best == SIZE_MAX || best == kept ||
	    lw_nstack__from_copy(s->nstk, tid, v[best].ts[v[best].votes / 2], &raw, &st)) {
		lw_dbg("pid %d tid %u: JS vote: %s (%zu samples, %zu copies gone, %zu names)",
		       (int)s->pid, tid, best == SIZE_MAX ? "no JS function" : "the sample kept's",
		       m, m - held, nv);
		free(v);
		return;
	}
	lw_dbg("pid %d tid %u: JS vote: %s (%u of %zu samples, %zu copies gone) over the sample kept",
	       (int)s->pid, tid, v[best].name, v[best].votes, m, m - held);
	free(v);
	/* the sample's native stack and time in place of the kept one's; the rest of the record's
	 * stack (its flags but the native ones) stays */
	cpu->flags = (cpu->flags & ~(LW_STACK_NATIVE_CFI | LW_STACK_NATIVE_NOINFO |
				     LW_STACK_NATIVE_SHORT | LW_STACK_NATIVE_UNREAD |
				     LW_STACK_NATIVE_TRUNC | LW_STACK_NATIVE_LOST)) |
		     LW_STACK_USTACK;
	cpu->ts_ns = raw.ts_ns;
	cpu->nnative = raw.nnative;
	memcpy(cpu->native, raw.native, sizeof(cpu->native));
}

/*
 * Python code that is not the application's: the standard library (".../lib/python3.N/"),
 * installed packages (site-packages, dist-packages, Debian's /usr/lib/python3/) and frozen
 * modules ("<frozen ...>").
 */
static int py_library_file(const char *f)
{
	const char *p;

	if (!f[0] || f[0] == '<' || strstr(f, "/site-packages/") || strstr(f, "/dist-packages/") ||
	    strstr(f, "/lib/python3/"))
		return 1;
	for (p = strstr(f, "/lib/python"); p; p = strstr(p + 1, "/lib/python")) {
		const char *q = p + 11;

		while (*q >= '0' && *q <= '9')
			q++;
		if (*q == '.')
			for (q++; *q >= '0' && *q <= '9'; q++)
				;
		if (*q == '/' || (q[0] == 't' && q[1] == '/'))	/* python3.13t/: free-threaded */
			return 1;
	}
	return 0;
}

/*
 * The site a default-mode Python slow callback is counted under (summaries, the rate limit,
 * Prometheus, `report`): the callback itself, unless it is library code (a framework's
 * dispatcher: aiohttp's RequestHandler.start, uvicorn's run_asgi) and the stack holds a frame
 * of the application's own code: then the innermost such frame (the route function), as Node's
 * slow callbacks are named (lw_sess_native_ident). The record keeps the callback as it is.
 */
void lw_sess_py_site(struct lw_session *s, const struct lw_pystack *st, const struct cb_ident *id,
		     struct cb_ident *site)
{
	uint32_t i, n = st && (st->flags & LW_STACK_VALID) ?
			(st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES) : 0;
	struct frame_info fi;

	*site = *id;
	if (!id->found || !id->file[0] || !py_library_file(id->file))
		return;
	for (i = 0; i < n; i++) {
		if (!st->frames[i].code || lw_sess_frame_info(s, &st->frames[i], &fi) || !fi.file)
			continue;
		/* the loop running the callback: what is further out is not the callback's */
		if (is_handle_run(&fi) || lw_sess_ends_with(fi.file, "asyncio/runners.py") ||
		    lw_sess_ends_with(fi.file, "asyncio/base_events.py"))
			return;
		if (py_library_file(fi.file))
			continue;
		memset(site, 0, sizeof(*site));
		site->found = 1;
		site->kind = LW_KIND_FUNCTION;
		lw_strlcpy(site->qualname, fi.qualname ? fi.qualname : "?", sizeof(site->qualname));
		lw_strlcpy(site->file, fi.file, sizeof(site->file));
		site->line = fi.firstlineno;
		return;
	}
}
