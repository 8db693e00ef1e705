// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * asyncio Tasks read from outside (see pytasks.h).
 *
 * Where the Tasks are: asyncio.tasks (found in sys.modules, interp->modules) binds _all_tasks
 * (3.8-3.11) or _scheduled_tasks and _eager_tasks (3.12, 3.13) to the sets _asyncio registers
 * its C Tasks in (Modules/_asynciomodule.c exports them; Lib/asyncio/tasks.py imports them).
 * _all_tasks/_scheduled_tasks are weakref.WeakSet objects: their `data` attribute is a set of
 * weak references. _current_tasks maps each loop to the Task it is running.
 *
 * Layouts (x86_64): TaskObj/FutureObj from Modules/_asynciomodule.c of each version (the
 * FutureObj_HEAD fields, then task_fut_waiter, task_coro, task_name, task_context); coroutine
 * objects and frames from Include/cpython/genobject.h, frameobject.h and
 * Include/internal/pycore_frame.h. The offsets below were checked on the pyenv builds with
 * ctypes (field addresses of live objects) and are verified again by the integration test,
 * which compares names, coroutines and await file:line with what the target says of itself.
 *
 * This file: the snapshot (finding the Tasks, their await chains and loops). The layouts, generic
 * object readers and page cache are in pytasks_obj.c; who awaits whom in pytasks_graph.c.
 */
#include "target/pytasks_priv.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE 0
#define MAX_CHAIN 64		/* coroutine await chain */

/* ---- the snapshot ---- */

const struct tname *pt_type_of(struct ctx *c, uint64_t obj)
{
	uint64_t type = 0, b;
	struct tname *tn;
	int depth;

	if (!obj || lw_mem_read_u64(c->mem, obj + 8, &type) || !type)
		return NULL;
	for (size_t i = 0; i < c->ntypes; i++)
		if (c->types[i].type == type)
			return &c->types[i];
	if (c->ntypes >= LW_ARRAY_SIZE(c->types))
		c->ntypes = 0;	/* a bounded cache: start again */
	tn = &c->types[c->ntypes];
	memset(tn, 0, sizeof(*tn));
	if (lw_py__type_name(c->mem, type, tn->name, sizeof(tn->name)))
		return NULL;
	tn->type = type;
	for (b = type, depth = 0; b && depth < 16; depth++) {
		char nm[64];

		if (lw_py__type_name(c->mem, b, nm, sizeof(nm)))
			break;
		if (strcmp(nm, "_asyncio.Task") == 0) {
			tn->is_task = 1;
			break;
		}
		if (lw_mem_read_u64(c->mem, b + 256, &b))	/* tp_base */
			break;
	}
	c->ntypes++;
	return tn;
}

int pt_is_type(struct ctx *c, uint64_t obj, const char *name)
{
	const struct tname *tn = pt_type_of(c, obj);

	return tn && strcmp(tn->name, name) == 0;
}

static int is_task(struct ctx *c, uint64_t obj)
{
	const struct tname *tn = pt_type_of(c, obj);

	return tn && tn->is_task;
}

static int add_task(struct ctx *c, uint64_t addr, int eager)
{
	struct lw_tasks *o = c->out;
	size_t i;

	/* duplicates (a Task in both sets) are dropped once sorted */
	if (o->n >= LW_TASKS_MAX)
		return 1;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		struct lw_task *v = realloc(o->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	i = o->n++;
	memset(&o->v[i], 0, sizeof(o->v[i]));
	o->v[i].addr = addr;
	o->v[i].eager = eager;
	return 0;
}

long lw_tasks__find(const struct lw_tasks *t, uint64_t addr)
{
	size_t i, lo = 0, hi = t->n;

	if (t->sorted) {
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (t->v[mid].addr == addr)
				return (long)mid;
			if (t->v[mid].addr < addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		return -1;
	}
	for (i = 0; i < t->n; i++)
		if (t->v[i].addr == addr)
			return (long)i;
	return -1;
}

static int on_weakref(void *arg, uint64_t ref)
{
	struct ctx *c = arg;
	uint64_t obj = 0;
	const struct tname *tn;

	if (lw_mem_read_u64(c->mem, ref + 16, &obj) || !obj || obj == c->pi->cfg.none_obj) {
		c->out->skipped += obj != c->pi->cfg.none_obj;
		return 0;
	}
	tn = pt_type_of(c, obj);
	if (!tn) {
		c->out->skipped++;
		return 0;
	}
	if (!tn->is_task) {
		c->out->not_c_tasks++;
		return 0;
	}
	return add_task(c, obj, 0);
}

static int on_eager(void *arg, uint64_t obj)
{
	struct ctx *c = arg;

	if (!is_task(c, obj)) {
		c->out->skipped++;
		return 0;
	}
	return add_task(c, obj, 1);
}

static int on_current(void *arg, uint64_t loop, uint64_t task)
{
	struct ctx *c = arg;

	(void)loop;
	if (c->ncurrent < 64)
		c->current[c->ncurrent++] = task;
	return 0;
}

static int read_weakset(struct ctx *c, uint64_t ws)
{
	uint64_t data = 0;

	if (lw_pyobj__attr(c->pi, c->mem, ws, "data", &data) || !data)
		return -EFAULT;
	return lw_pyobj__set_items(c->mem, data, LW_TASKS_MAX, on_weakref, c);
}

/* The value on top of a suspended frame's stack: what a `yield from`/`await` delegates to */
static uint64_t frame_yf(struct ctx *c, uint64_t gen, uint64_t frame)
{
	const struct lw_tasklayout *t = c->t;
	uint64_t yf = 0;

	if (c->pi->minor <= 9) {
		uint64_t top = 0;

		if (lw_mem_read_u64(c->mem, frame + t->f_stacktop, &top) || !top ||
		    lw_mem_read_u64(c->mem, top - 8, &yf))
			return 0;
	} else if (c->pi->minor == 10) {
		int8_t st = 0;
		int32_t depth = 0;
		uint64_t vs = 0;

		if (lw_mem_read(c->mem, frame + t->f_state, &st, 1) || st != -1 ||
		    lw_mem_read(c->mem, frame + t->f_stackdepth, &depth, 4) || depth <= 0 ||
		    depth > 4096 || lw_mem_read_u64(c->mem, frame + t->f_valuestack, &vs) ||
		    lw_mem_read_u64(c->mem, vs + (uint64_t)(depth - 1) * 8, &yf))
			return 0;
	} else if (t->if_stackptr) {
		int8_t st = 0;
		uint64_t sp = 0, lp = frame + c->pi->lay.f_localsplus;

		/* the stack pointer points into this frame's own slots, past its locals */
		if (lw_mem_read(c->mem, gen + t->gen_frame_state, &st, 1) || st < t->suspended_min ||
		    st > t->suspended_max || lw_mem_read_u64(c->mem, frame + t->if_stacktop, &sp) ||
		    sp < lp + 8ull * t->yf_depth || sp > lp + 65536ull * 8 || (sp & 7) ||
		    lw_mem_read_u64(c->mem, sp - 8ull * t->yf_depth, &yf))
			return 0;
		yf &= ~(uint64_t)c->pi->lay.stackref_mask;
	} else {
		int8_t st = 0;
		int32_t top = 0;

		if (lw_mem_read(c->mem, gen + t->gen_frame_state, &st, 1) || st < t->suspended_min ||
		    st > t->suspended_max ||
		    lw_mem_read(c->mem, frame + t->if_stacktop, &top, 4) || top <= 0 || top > 65536 ||
		    lw_mem_read_u64(c->mem, frame + c->pi->lay.f_localsplus + (uint64_t)(top - 1) * 8,
				    &yf))
			return 0;
	}
	return yf;
}

static int gen_like(const char *n)
{
	return strcmp(n, "coroutine") == 0 || strcmp(n, "generator") == 0 ||
	       strcmp(n, "async_generator") == 0;
}

/* One copy of each string for the whole snapshot (qualnames and file names repeat) */
static const char *intern(struct lw_tasks *o, const char *str)
{
	uint64_t h = lw_hash_str(str);
	int k;

	if (!o->strings && lw_u64map__new(sizeof(char *), &o->strings))
		return "";
	for (k = 0; k < 16; k++, h++) {
		int created = 0;
		char **slot = lw_u64map__put(o->strings, h, &created);

		if (!slot)
			return "";
		if (created) {
			*slot = strdup(str);
			return *slot ? *slot : "";
		}
		if (*slot && strcmp(*slot, str) == 0)
			return *slot;
	}
	return "";
}

static void free_str(void *v)
{
	free(*(char **)v);
}

/* Follow the await chain from the Task's coroutine: frames outermost first into tk->frames,
 * reversed at the end; returns the future the innermost frame awaits (or 0) and its `self`. */
static uint64_t read_chain(struct ctx *c, struct lw_task *tk, uint64_t coro, uint64_t *inner_self)
{
	const struct lw_pylayout *l = &c->pi->lay;
	uint64_t obj = coro, fut = 0;
	struct { char qualname[128]; char file[256]; int line; } fr[LW_TASK_MAX_FRAMES];
	unsigned depth, i, n = 0;

	*inner_self = 0;
	for (depth = 0; obj && depth < MAX_CHAIN; depth++) {
		const struct tname *tn = pt_type_of(c, obj);
		uint64_t frame = 0, code = 0, instr = 0, next = 0;
		const struct lw_pycode *pc;

		if (!tn)
			break;
		if (strcmp(tn->name, "_asyncio.FutureIter") == 0) {
			lw_mem_read_u64(c->mem, obj + 16, &fut);
			break;
		}
		if (strcmp(tn->name, "async_generator_asend") == 0 ||
		    strcmp(tn->name, "coroutine_wrapper") == 0) {
			if (lw_mem_read_u64(c->mem, obj + 16, &obj))
				break;
			continue;
		}
		if (!gen_like(tn->name)) {
			/* a Future awaited through a Python-level __await__, or anything else */
			if (pt_type_of(c, obj) && (is_task(c, obj) || strstr(tn->name, "Future")))
				fut = obj;
			break;
		}
		if (c->t->gen_frame_inline)
			frame = obj + c->t->gen_frame;
		else if (lw_mem_read_u64(c->mem, obj + c->t->gen_frame, &frame) || !frame)
			break;
		if (lw_mem_read_u64(c->mem, frame + l->f_code, &code))
			break;
		code &= ~(uint64_t)l->stackref_mask;	/* 3.14+: a tagged _PyStackRef */
		if (l->instr_is_ptr) {
			lw_mem_read_u64(c->mem, frame + l->f_instr, &instr);
		} else {
			uint32_t lasti = 0;

			lw_mem_read(c->mem, frame + l->f_instr, &lasti, 4);
			instr = lasti;
		}
		pc = lw_pycache__get(c->pc, c->mem, code);
		if (n < LW_TASK_MAX_FRAMES) {
			typeof(&fr[0]) f = &fr[n++];

			f->qualname[0] = f->file[0] = 0;
			f->line = -1;
			if (pc) {
				uint64_t q = 0;

				/* the coroutine's own qualname: code objects have one only from 3.11 */
				if (lw_mem_read_u64(c->mem, obj + l->coro_qualname, &q) || !q ||
				    lw_py__read_str(l, c->mem, q, f->qualname, sizeof(f->qualname)))
					lw_strlcpy(f->qualname, pc->qualname, sizeof(f->qualname));
				lw_strlcpy(f->file, pc->file, sizeof(f->file));
				f->line = lw_pycache__line(c->pc, pc, instr);
			}
		} else {
			tk->truncated = 1;
		}
		if (lw_mem_read_u64(c->mem, frame + l->f_localsplus, inner_self) == 0)
			*inner_self &= ~(uint64_t)l->stackref_mask;
		next = frame_yf(c, obj, frame);
		obj = next;
	}
	/* innermost first */
	tk->frames = n ? calloc(n, sizeof(*tk->frames)) : NULL;
	tk->nframes = tk->frames ? n : 0;
	for (i = 0; i < tk->nframes; i++) {
		tk->frames[i].qualname = intern(c->out, fr[n - 1 - i].qualname);
		tk->frames[i].file = intern(c->out, fr[n - 1 - i].file);
		tk->frames[i].line = fr[n - 1 - i].line;
	}
	return fut;
}

/* What the innermost frame says about the future: the asyncio primitive it waits in */
static void describe_wait(struct ctx *c, struct lw_task *tk, uint64_t self)
{
	static const struct { const char *qual; const char *kind; int has_self; } known[] = {
		{ "sleep", "sleep", 0 },
		{ "Lock.acquire", "lock", 1 },
		{ "Event.wait", "event", 1 },
		{ "Condition.wait", "condition", 1 },
		{ "Semaphore.acquire", "semaphore", 1 },
		{ "BoundedSemaphore.acquire", "semaphore", 1 },
		{ "Queue.get", "queue", 1 },
		{ "Queue.put", "queue", 1 },
		{ "Queue.join", "queue", 1 },
		{ "Barrier.wait", "barrier", 1 },
		{ "Barrier._block", "barrier", 1 },
		{ "Barrier._wait", "barrier", 1 },
		{ "TaskGroup.__aexit__", "taskgroup", 1 },
		{ "TaskGroup._aexit", "taskgroup", 1 },
		{ "wait_for", "wait_for", 0 },
		{ "wait", "wait", 0 },
		{ "_wait", "wait", 0 },
		{ "as_completed", "wait", 0 },
		{ "shield", "shield", 0 },
	};
	const char *q = tk->nframes ? tk->frames[0].qualname : "";
	size_t i;

	if (!tk->waiter) {
		tk->awaits_kind[0] = 0;
		return;
	}
	if (is_task(c, tk->waiter)) {
		char nm[128] = "";

		lw_py__task_name(c->pi, c->mem, tk->waiter, nm, sizeof(nm));
		lw_strlcpy(tk->awaits_kind, "task", sizeof(tk->awaits_kind));
		snprintf(tk->awaits, sizeof(tk->awaits), "Task %.120s", nm);
		return;
	}
	if (pt_is_type(c, tk->waiter, "_GatheringFuture")) {
		lw_strlcpy(tk->awaits_kind, "gather", sizeof(tk->awaits_kind));
		snprintf(tk->awaits, sizeof(tk->awaits), "gather() 0x%llx",
			 (unsigned long long)tk->waiter);
		return;
	}
	for (i = 0; i < LW_ARRAY_SIZE(known); i++) {
		const struct tname *tn;

		if (strcmp(q, known[i].qual))
			continue;
		lw_strlcpy(tk->awaits_kind, known[i].kind, sizeof(tk->awaits_kind));
		tn = known[i].has_self && self ? pt_type_of(c, self) : NULL;
		if (tn)
			snprintf(tk->awaits, sizeof(tk->awaits), "%.60s 0x%llx (%.60s)", tn->name,
				 (unsigned long long)self, q);
		else
			snprintf(tk->awaits, sizeof(tk->awaits), "%.120s", q);
		return;
	}
	lw_strlcpy(tk->awaits_kind, "future", sizeof(tk->awaits_kind));
	{
		const struct tname *tn = pt_type_of(c, tk->waiter);

		snprintf(tk->awaits, sizeof(tk->awaits), "%s 0x%llx", tn ? tn->name : "Future",
			 (unsigned long long)tk->waiter);
	}
}

struct thr {
	struct ctx *c;
	uint64_t pthread;
	pid_t tid;
};

static int on_thread(void *arg, pid_t tid, uint64_t tstate)
{
	struct thr *th = arg;
	uint64_t pt = 0;

	if (lw_mem_read_u64(th->c->mem, tstate + th->c->pi->lay.ts_thread_id, &pt) == 0 &&
	    pt == th->pthread) {
		th->tid = tid;
		return 1;
	}
	return 0;
}

static int on_any_thread(void *arg, pid_t tid, uint64_t tstate)
{
	struct ctx *c = arg;
	uint64_t pt = 0;

	if (c->nthreads < LW_ARRAY_SIZE(c->threads) &&
	    lw_mem_read_u64(c->mem, tstate + c->pi->lay.ts_thread_id, &pt) == 0 && pt) {
		c->threads[c->nthreads].tid = tid;
		c->threads[c->nthreads].pthread = pt;
		c->nthreads++;
	}
	return 0;
}

static void read_loop(struct ctx *c, struct lw_task *tk)
{
	struct lw_tasks *o = c->out;
	struct lw_task_loop *lp;
	uint64_t tidobj = 0;
	int64_t pt = 0;
	size_t i;

	if (lw_mem_read_u64(c->mem, tk->addr + 16, &tk->loop) || !tk->loop)
		return;
	for (i = 0; i < o->nloops; i++)
		if (o->loops[i].addr == tk->loop) {
			tk->tid = o->loops[i].tid;
			return;
		}
	if (o->nloops >= LW_ARRAY_SIZE(o->loops))
		return;
	lp = &o->loops[o->nloops++];
	memset(lp, 0, sizeof(*lp));
	lp->addr = tk->loop;
	{
		const struct tname *tn = pt_type_of(c, tk->loop);

		lw_strlcpy(lp->type, tn ? tn->name : "?", sizeof(lp->type));
	}
	/* BaseEventLoop._thread_id: threading.get_ident() of the thread in run_forever() */
	if (lw_pyobj__attr(c->pi, c->mem, tk->loop, "_thread_id", &tidobj) == 0 && tidobj &&
	    tidobj != c->pi->cfg.none_obj && lw_pyobj__long(c->pi, c->mem, tidobj, &pt) == 0 && pt) {
		struct thr th = { c, (uint64_t)pt, 0 };

		lw_py__threads(c->pi, c->mem, on_thread, &th);
		lp->tid = th.tid;
	} else if ((c->nthreads = 0, lw_py__threads(c->pi, c->mem, on_any_thread, c)) > 0) {
		/* uvloop keeps the thread id in a C field of its Loop: the one word of the object
		 * (bounded by its basicsize) that equals a Python thread's pthread_t */
		uint64_t type = 0, words[128];
		int64_t bs = 0;
		size_t w, k, n;
		pid_t found = 0;
		int hits = 0;

		if (lw_mem_read_u64(c->mem, tk->loop + 8, &type) == 0 &&
		    lw_mem_read(c->mem, type + 32, &bs, 8) == 0 && bs > 16) {
			n = (size_t)bs / 8 < LW_ARRAY_SIZE(words) ? (size_t)bs / 8 : LW_ARRAY_SIZE(words);
			if (lw_mem_read(c->mem, tk->loop, words, n * 8) == 0)
				for (w = 2; w < n; w++)
					for (k = 0; k < c->nthreads; k++)
						if (words[w] && words[w] == c->threads[k].pthread &&
						    found != c->threads[k].tid) {
							found = c->threads[k].tid;
							hits++;
						}
		}
		if (hits == 1)
			lp->tid = found;
	}
	tk->tid = lp->tid;
}

/* Read one Task's fields; -1 when it no longer looks like a Task (changed under the read) */
static int read_task(struct ctx *c, struct lw_task *tk)
{
	const struct lw_pylayout *l = &c->pi->lay;
	uint64_t coro = 0, self = 0, fut;
	int32_t state = 0;
	size_t i;

	if (!is_task(c, tk->addr) || lw_mem_read(c->mem, tk->addr + c->t->fut_state, &state, 4) ||
	    state < 0 || state > 2)
		return -1;
	if (state != 0) {
		tk->state = LW_TASK_DONE;
		return 0;
	}
	lw_py__task_name(c->pi, c->mem, tk->addr, tk->name, sizeof(tk->name));
	if (lw_mem_read_u64(c->mem, tk->addr + l->task_coro, &coro) || !coro)
		return -1;
	{
		uint64_t q = 0;

		if (lw_mem_read_u64(c->mem, coro + l->coro_qualname, &q) == 0 && q)
			lw_py__read_str(l, c->mem, q, tk->coro, sizeof(tk->coro));
	}
	lw_mem_read_u64(c->mem, tk->addr + c->t->task_waiter, &tk->waiter);
	if (tk->waiter == c->pi->cfg.none_obj)
		tk->waiter = 0;
	fut = read_chain(c, tk, coro, &self);
	if (!tk->waiter && fut && fut != tk->addr)
		tk->waiter = fut;
	tk->state = LW_TASK_PENDING;
	for (i = 0; i < c->ncurrent; i++)
		if (c->current[i] == tk->addr)
			tk->state = LW_TASK_RUNNING;
	if (tk->state == LW_TASK_PENDING) {
		int32_t n = 0, ws = 0;
		uint8_t b = 0;

		if (c->t->num_cancels && lw_mem_read(c->mem, tk->addr + c->t->num_cancels, &n, 4) == 0 &&
		    n > 0)
			tk->state = LW_TASK_CANCELLING;
		if (c->t->must_cancel_bit < 0) {
			if (lw_mem_read(c->mem, tk->addr + c->t->must_cancel, &n, 4) == 0 && n)
				tk->state = LW_TASK_CANCELLING;
		} else if (lw_mem_read(c->mem, tk->addr + c->t->must_cancel, &b, 1) == 0 &&
			   (b >> c->t->must_cancel_bit) & 1) {
			tk->state = LW_TASK_CANCELLING;
		}
		/* 3.8-3.10: cancel() cancels the future the Task waits on */
		if (tk->waiter && pt_type_of(c, tk->waiter) &&
		    lw_mem_read(c->mem, tk->waiter + c->t->fut_state, &ws, 4) == 0 && ws == 1)
			tk->state = LW_TASK_CANCELLING;
	}
	describe_wait(c, tk, self);
	pt_read_callbacks(c, tk);
	read_loop(c, tk);
	return 0;
}

const char *lw_task_state_name(int state)
{
	switch (state) {
	case LW_TASK_PENDING: return "pending";
	case LW_TASK_RUNNING: return "running";
	case LW_TASK_CANCELLING: return "cancelling";
	case LW_TASK_DONE: return "done";
	}
	return "?";
}

void lw_pytasks__free(struct lw_tasks *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		free(t->v[i].frames);
	if (t->strings)
		lw_u64map__free(t->strings, free_str);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* 3.14+: the C Tasks on one llist (a thread's, or the interpreter's for threads gone): a ring
 * of task_node links {next, prev} through the head. Each link is checked against the way back
 * (node->prev is where we came from): a list changed under the read, or a loop that never
 * returns to the head, ends the walk with what was read so far. */
static int walk_task_list(struct ctx *c, uint64_t head)
{
	uint64_t node = 0, from = head, back = 0;
	size_t n = 0;
	int r;

	if (lw_mem_read_u64(c->mem, head, &node))
		return -EFAULT;
	while (node && node != head) {
		if (++n > LW_TASKS_MAX || node < c->t->task_node ||
		    lw_mem_read_u64(c->mem, node + 8, &back) || back != from) {
			c->out->skipped++;
			return 0;
		}
		r = add_task(c, node - c->t->task_node, 0);
		if (r)
			return r < 0 ? r : 0;
		from = node;
		if (lw_mem_read_u64(c->mem, node, &node)) {
			c->out->skipped++;
			return 0;
		}
	}
	return 0;
}

/* 3.14+: each thread's running Task and loop, and its list of Tasks */
static int on_tstate(void *arg, pid_t tid, uint64_t tstate)
{
	struct ctx *c = arg;
	struct lw_tasks *o = c->out;
	uint64_t loop = 0, task = 0;
	size_t i;
	int r;

	if (lw_mem_read_u64(c->mem, tstate + c->t->ts_running_task, &task) == 0 && task &&
	    c->ncurrent < 64)
		c->current[c->ncurrent++] = task;
	if (lw_mem_read_u64(c->mem, tstate + c->t->ts_running_loop, &loop) == 0 && loop &&
	    o->nloops < LW_ARRAY_SIZE(o->loops)) {
		const struct tname *tn = pt_type_of(c, loop);

		for (i = 0; i < o->nloops && o->loops[i].addr != loop; i++)
			;
		if (i == o->nloops) {
			memset(&o->loops[i], 0, sizeof(o->loops[i]));
			o->loops[i].addr = loop;
			o->loops[i].tid = tid;
			lw_strlcpy(o->loops[i].type, tn ? tn->name : "?", sizeof(o->loops[i].type));
			o->nloops++;
		}
	}
	r = walk_task_list(c, tstate + c->t->ts_tasks_head);
	return r < 0 ? r : 0;
}

static int read_task_lists(struct ctx *c)
{
	int r;

	r = lw_py__threads(c->pi, c->mem, on_tstate, c);
	if (r < 0)
		return r;
	return walk_task_list(c, c->pi->interp + c->t->interp_tasks_head);
}

/* 3.14+: fut_awaited_by, the awaiters asyncio itself records (a Task awaiting a Future or Task,
 * gather, TaskGroup, wait, as_completed): edges the other readers did not find, named by what
 * the awaiter waits in */
struct awby {
	struct ctx *c;
	struct lw_task *tk;
};

static int on_awaited_by(void *arg, uint64_t by)
{
	struct awby *a = arg;
	struct lw_tasks *o = a->c->out;
	long i = lw_tasks__find(o, by);
	const struct lw_task *w;
	const char *via = "await";

	if (i < 0)
		return 0;
	w = &o->v[i];
	if (w->waiter != a->tk->addr) {
		static const char *const kinds[] = { "gather", "taskgroup", "wait", "wait_for" };
		size_t k;

		for (k = 0; k < LW_ARRAY_SIZE(kinds); k++)
			if (strcmp(w->awaits_kind, kinds[k]) == 0)
				via = kinds[k];
	}
	pt_add_awaiter(a->tk, by, via);
	return 0;
}

static void read_awaited_by(struct ctx *c, struct lw_task *tk)
{
	struct awby a = { c, tk };
	uint64_t by = 0;
	uint8_t is_set = 0;

	if (lw_mem_read_u64(c->mem, tk->addr + c->t->fut_awaited_by, &by) || !by ||
	    by == c->pi->cfg.none_obj ||
	    lw_mem_read(c->mem, tk->addr + c->t->fut_awaited_by_is_set, &is_set, 1))
		return;
	if (!is_set)
		on_awaited_by(&a, by);
	else if (pt_is_type(c, by, "set"))
		lw_pyobj__set_items(c->mem, by, 256, on_awaited_by, &a);
}

static int find_module_dict(struct ctx *c, const char *name, uint64_t *md, char *err, size_t errlen)
{
	uint64_t modules = 0, mod = 0;
	char tn[16];
	int r;

	if (!c->pi->interp || lw_mem_read_u64(c->mem, c->pi->interp + c->t->interp_modules, &modules) ||
	    !modules) {
		snprintf(err, errlen, "sys.modules not readable in the interpreter state (CPython 3.%d)",
			 c->pi->minor);
		return -EFAULT;
	}
	{
		uint64_t type = 0;

		if (lw_mem_read_u64(c->mem, modules + 8, &type) ||
		    lw_py__type_name(c->mem, type, tn, sizeof(tn)) || strcmp(tn, "dict")) {
			snprintf(err, errlen, "interp->modules is not a dict on this CPython 3.%d build: "
				 "its layout differs from the one loopwatch knows", c->pi->minor);
			return -ENOTSUP;
		}
	}
	r = lw_pyobj__dict_get(c->pi, c->mem, modules, name, &mod);
	if (r == -ENOENT) {
		snprintf(err, errlen, "the process has not imported %s: no asyncio Tasks", name);
		return -ENOENT;
	}
	if (r || lw_mem_read_u64(c->mem, mod + 16, md) || !*md) {	/* PyModuleObject.md_dict */
		snprintf(err, errlen, "sys.modules['%s'] not readable", name);
		return -EFAULT;
	}
	return 0;
}

size_t lw_pytasks__await_chain(const struct lw_pyinfo *pi, const struct lw_tasklayout *lay,
			       struct lw_reader *mem, uint64_t task, struct lw_task_link *out,
			       size_t max)
{
	const struct lw_tasklayout *t = lay && lay->minor == pi->minor ? lay :
					lw_tasklayout_for(pi->minor);
	struct lw_tasks none;
	struct ctx *c;
	size_t n;

	if (!t || !task || !max)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	memset(&none, 0, sizeof(none));
	c->pi = pi;
	c->tl = *t;
	c->t = &c->tl;
	c->mem = mem;
	c->out = &none;
	n = pt_await_chain(c, task, out, max);
	free(c);
	return n;
}

int lw_pytasks__snapshot(const struct lw_pyinfo *pi, struct lw_reader *mem, struct lw_tasks *out,
			 char *err, size_t errlen)
{
	return lw_pytasks__snapshot_lay(pi, NULL, mem, out, err, errlen);
}

int lw_pytasks__snapshot_lay(const struct lw_pyinfo *pi, const struct lw_tasklayout *lay,
			     struct lw_reader *mem, struct lw_tasks *out, char *err, size_t errlen)
{
	struct ctx *c;
	uint64_t md = 0, set = 0, cur = 0, current[64];
	struct waiter_ix *waiters = NULL;
	size_t i, j, k;
	int r;

	memset(out, 0, sizeof(*out));
	if (!lw_tasklayout_for(pi->minor)) {
		snprintf(err, errlen, "asyncio Task layouts are known for CPython 3.8-3.15, not %d.%d",
			 pi->major, pi->minor);
		return -ENOTSUP;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pi = pi;
	c->tl = lay && lay->minor == pi->minor ? *lay : *lw_tasklayout_for(pi->minor);
	c->t = &c->tl;
	c->pcache.under = mem;
	c->gather_budget = 4 * LW_TASKS_MAX;
	c->cached.read = pt_pc_read;
	c->cached.ctx = &c->pcache;
	c->mem = &c->cached;
	mem = &c->cached;
	c->out = out;
	c->current = current;
	r = lw_pycache__new(&pi->lay, pi->minor, &c->pc);
	if (r)
		goto out;
	lw_pycache__set_types(c->pc, pi->code_type, pi->cfg.type_unicode);
	r = find_module_dict(c, "asyncio.tasks", &md, err, errlen);
	if (r)
		goto out;
	if (lw_pyobj__dict_get(pi, mem, md, "_current_tasks", &cur) == 0 && cur &&
	    pt_is_type(c, cur, "dict"))
		lw_pyobj__dict_items(pi, mem, cur, 64, on_current, c);
	if (c->t->task_node) {
		/* 3.14+: C Tasks on the threads' lists; _scheduled_tasks holds only the others */
		r = read_task_lists(c);
		if (r >= 0 && lw_pyobj__dict_get(pi, mem, md, "_scheduled_tasks", &set) == 0 && set)
			read_weakset(c, set);
		lw_strlcpy(out->source, "the threads' Task lists (_asyncio, 3.14+)",
			   sizeof(out->source));
	} else if (pi->minor <= 11) {
		r = lw_pyobj__dict_get(pi, mem, md, "_all_tasks", &set);
		if (r == 0)
			r = read_weakset(c, set);
		lw_strlcpy(out->source, "asyncio.tasks._all_tasks", sizeof(out->source));
	} else {
		r = lw_pyobj__dict_get(pi, mem, md, "_scheduled_tasks", &set);
		if (r == 0)
			r = read_weakset(c, set);
		if (r >= 0 && lw_pyobj__dict_get(pi, mem, md, "_eager_tasks", &set) == 0 && set)
			lw_pyobj__set_items(mem, set, LW_TASKS_MAX, on_eager, c);
		lw_strlcpy(out->source, "asyncio.tasks._scheduled_tasks, _eager_tasks",
			   sizeof(out->source));
	}
	if (r < 0) {
		snprintf(err, errlen, "the set of Tasks (%s) is not readable: it may have changed "
			 "during the read; try again", out->source);
		goto out;
	}
	r = 0;
	if (out->n)
		qsort(out->v, out->n, sizeof(out->v[0]), pt_cmp_addr);
	for (i = 0, j = 0; i < out->n; i++)
		if (!j || out->v[j - 1].addr != out->v[i].addr)
			out->v[j++] = out->v[i];
	out->n = j;
	out->sorted = 1;
	/* read each Task; drop the done and the unreadable */
	for (i = 0, j = 0; i < out->n; i++) {
		struct lw_task *tk = &out->v[i];

		if (read_task(c, tk) || tk->state == LW_TASK_DONE) {
			if (tk->state == LW_TASK_DONE)
				out->done++;
			else
				out->skipped++;
			free(tk->frames);
			tk->frames = NULL;
			continue;
		}
		if (j != i)
			out->v[j] = *tk;
		j++;
	}
	out->n = j;
	/* the await graph */
	for (i = 0; i < out->n; i++) {
		struct lw_task *a = &out->v[i];
		long t;

		if (!a->waiter)
			continue;
		t = lw_tasks__find(out, a->waiter);
		if (t >= 0)
			pt_add_awaiter(&out->v[t], a->addr, "await");
		else if (strcmp(a->awaits_kind, "gather") == 0)
			pt_gather_children(c, a->waiter, a->addr, 0);
	}
	/* wait_for (3.8-3.11): the Task whose fut_waiter is the future the callback releases */
	waiters = calloc(out->n ? out->n : 1, sizeof(*waiters));
	if (!waiters) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < out->n; i++) {
		waiters[i].waiter = out->v[i].waiter;
		waiters[i].task = out->v[i].addr;
	}
	if (out->n)
		qsort(waiters, out->n, sizeof(*waiters), pt_cmp_waiter);
	for (i = 0; i < out->n; i++) {
		struct lw_task *tk = &out->v[i];

		for (k = 0; k < tk->ncb_parents; k++)
			if (lw_tasks__find(out, tk->cb_parents[k]) >= 0)
				pt_add_awaiter(tk, tk->cb_parents[k], "taskgroup");
		for (k = 0; k < tk->ncb_futs; k++) {
			size_t lo = 0, hi = out->n;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (waiters[mid].waiter < tk->cb_futs[k])
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < out->n && waiters[lo].waiter == tk->cb_futs[k] &&
			       tk->nawaiters < LW_TASK_MAX_AWAITERS; lo++)
				pt_add_awaiter(tk, waiters[lo].task, tk->cb_via[k]);
		}
	}
	free(waiters);
	if (c->t->fut_awaited_by)
		for (i = 0; i < out->n; i++)
			read_awaited_by(c, &out->v[i]);
	r = pt_mark_cycles(out);
out:
	lw_pycache__free(c->pc);
	pt_pc_clear(&c->pcache);
	free(c);
	if (r)
		lw_pytasks__free(out);
	return r;
}
