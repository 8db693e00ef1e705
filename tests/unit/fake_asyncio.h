/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fake CPython 3.8-3.15 address space holding asyncio Tasks, for test_pytasks.c and
 * fuzz_pytasks.c: sys.modules -> asyncio.tasks -> _all_tasks / _scheduled_tasks (a WeakSet whose
 * `data` set holds weak references, one dead, one dummy slot) and _current_tasks, four Tasks
 * and a finished one:
 *
 *   parent  awaits Task child directly                   (chain: parent)
 *   child   awaits a Future inside Event.wait             (chain: Event.wait, child)
 *   gatherer awaits a _GatheringFuture whose _children = [leaf]
 *   leaf    the loop's current Task (running)
 *   w-inner awaited by w-outer through wait_for's partial(_release_waiter, waiter) callback
 *   tg-kid  awaited by parent through a TaskGroup's bound _on_task_done callback
 *   wait-kid awaited by wait-outer through asyncio.wait's _on_completion closure
 *
 * 3.14+: the C Tasks are on a thread state's linked list (the running Task and loop there) and
 * the interpreter's (threads gone) wait-kid and wait-outer, the WeakSet has only dead references,
 * and w-inner says it is awaited by w-outer in fut_awaited_by.
 *
 * Objects are laid out with the layout tables the reader uses (lw_pylayout_for,
 * lw_tasklayout_for): this checks the reading logic, not the offsets (the integration test
 * checks those against live interpreters).
 */
#ifndef LW_FAKE_ASYNCIO_H
#define LW_FAKE_ASYNCIO_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "target/pyproc.h"
#include "target/pytasks.h"

#define FA_BASE 0x100000ull
#define FA_SIZE (64 * 1024)

struct fake_asyncio {
	uint8_t mem[FA_SIZE];
	uint64_t brk;
	const struct lw_pylayout *l;
	const struct lw_tasklayout *t;
	int minor;
	struct lw_pyinfo pi;
	/* types */
	uint64_t t_str, t_dict, t_set, t_list, t_tuple, t_task, t_coro, t_iter, t_fut, t_gfut,
		 t_wref, t_wset, t_mod, t_none, t_loop, t_long, t_func, t_method, t_partial, t_cell,
		 t_tg;
	uint64_t none, loop;
	uint64_t tasks[10];	/* parent, child, gatherer, leaf, finished, w-inner, w-outer,
				 * tg-kid, wait-kid, wait-outer */
	int lines[2];		/* the line every frame shows: child's, Event.wait's */
};

static int fa_in(uint64_t a, size_t n)
{
	return a >= FA_BASE && a - FA_BASE + n <= FA_SIZE;
}

static void fa_put64(struct fake_asyncio *f, uint64_t a, uint64_t v)
{
	if (fa_in(a, 8))
		memcpy(&f->mem[a - FA_BASE], &v, 8);
}

static void fa_put32(struct fake_asyncio *f, uint64_t a, uint32_t v)
{
	if (fa_in(a, 4))
		memcpy(&f->mem[a - FA_BASE], &v, 4);
}

static void fa_put8(struct fake_asyncio *f, uint64_t a, uint8_t v)
{
	if (fa_in(a, 1))
		f->mem[a - FA_BASE] = v;
}

/* 32 bytes before each object: the managed-dict pre-header of 3.11+ */
static uint64_t fa_alloc(struct fake_asyncio *f, size_t size)
{
	uint64_t a = f->brk + 32;

	f->brk = (a + size + 15) & ~15ull;
	if (f->brk - FA_BASE > FA_SIZE)
		return 0;
	return a;
}

static uint64_t fa_obj(struct fake_asyncio *f, uint64_t type, size_t size)
{
	uint64_t a = fa_alloc(f, size);

	fa_put64(f, a, 1);
	fa_put64(f, a + 8, type);
	return a;
}

static uint64_t fa_cstr(struct fake_asyncio *f, const char *s)
{
	uint64_t a = fa_alloc(f, strlen(s) + 1);

	if (fa_in(a, strlen(s) + 1))
		memcpy(&f->mem[a - FA_BASE], s, strlen(s) + 1);
	return a;
}

static uint64_t fa_type(struct fake_asyncio *f, const char *name, uint64_t flags, uint64_t base,
			int64_t dictoffset)
{
	uint64_t a = fa_alloc(f, 1024);

	fa_put64(f, a + 24, fa_cstr(f, name));
	fa_put64(f, a + 32, 64);	/* tp_basicsize */
	fa_put64(f, a + 168, flags);
	fa_put64(f, a + 256, base);
	fa_put64(f, a + 288, (uint64_t)dictoffset);
	return a;
}

static uint64_t fa_str(struct fake_asyncio *f, const char *s)
{
	uint64_t a = fa_obj(f, f->t_str, f->l->str_ascii + strlen(s) + 1);

	fa_put64(f, a + 16, strlen(s));
	fa_put32(f, a + 32, (1u << 5) | (1u << 2) | (1u << 6));
	if (fa_in(a + f->l->str_ascii, strlen(s)))
		memcpy(&f->mem[a - FA_BASE + f->l->str_ascii], s, strlen(s));
	return a;
}

/* a dict with str (or any) keys, combined table */
static uint64_t fa_dict(struct fake_asyncio *f, int n, const uint64_t *keys, const uint64_t *vals)
{
	uint64_t d = fa_obj(f, f->t_dict, 48), k, e;
	int i;

	if (f->minor >= 11) {
		k = fa_alloc(f, 32 + 16 + 16 * 16);
		fa_put8(f, k + 8, 4);		/* log2 size */
		fa_put8(f, k + 9, 4);		/* log2 index bytes */
		fa_put8(f, k + 10, 1);		/* DICT_KEYS_UNICODE */
		fa_put64(f, k + 24, (uint64_t)n);
		e = k + 32 + 16;
		for (i = 0; i < n; i++) {
			fa_put64(f, e + (uint64_t)i * 16, keys[i]);
			fa_put64(f, e + (uint64_t)i * 16 + 8, vals[i]);
		}
	} else {
		k = fa_alloc(f, 40 + 16 + 24 * 16);
		fa_put64(f, k + 8, 16);		/* dk_size */
		fa_put64(f, k + 32, (uint64_t)n);
		e = k + 40 + 16;
		for (i = 0; i < n; i++) {
			fa_put64(f, e + (uint64_t)i * 24, 12345);
			fa_put64(f, e + (uint64_t)i * 24 + 8, keys[i]);
			fa_put64(f, e + (uint64_t)i * 24 + 16, vals[i]);
		}
	}
	fa_put64(f, d + 16, (uint64_t)n);
	fa_put64(f, d + 32, k);
	return d;
}

static uint64_t fa_dict1(struct fake_asyncio *f, const char *key, uint64_t v)
{
	uint64_t k = fa_str(f, key);

	return fa_dict(f, 1, &k, &v);
}

/* an instance of type with a __dict__: dict offset (<= 3.10) or managed (3.11+) */
static uint64_t fa_instance(struct fake_asyncio *f, uint64_t type, size_t size, uint64_t dict)
{
	uint64_t o = fa_obj(f, type, size);

	if (f->minor >= 11)
		fa_put64(f, o - 24, dict);
	else
		fa_put64(f, o + 16, dict);
	return o;
}

static uint64_t fa_list(struct fake_asyncio *f, int n, const uint64_t *items)
{
	uint64_t o = fa_obj(f, f->t_list, 40), it = fa_alloc(f, 8 * (size_t)(n + 1));
	int i;

	fa_put64(f, o + 16, (uint64_t)n);
	fa_put64(f, o + 24, it);
	for (i = 0; i < n; i++)
		fa_put64(f, it + 8 * (uint64_t)i, items[i]);
	return o;
}

static uint64_t fa_tuple(struct fake_asyncio *f, int n, const uint64_t *items)
{
	uint64_t o = fa_obj(f, f->t_tuple, 24 + 8 * (size_t)n);
	int i;

	fa_put64(f, o + 16, (uint64_t)n);
	for (i = 0; i < n; i++)
		fa_put64(f, o + 24 + 8 * (uint64_t)i, items[i]);
	return o;
}

/* a function with a qualname and, when cell_ref, a closure of one cell holding it */
static uint64_t fa_func(struct fake_asyncio *f, const char *qualname, uint64_t cell_ref)
{
	uint64_t o = fa_obj(f, f->t_func, 160);

	fa_put64(f, o + f->l->func_qualname, fa_str(f, qualname));
	if (cell_ref) {
		uint64_t cell = fa_obj(f, f->t_cell, 24);

		fa_put64(f, cell + 16, cell_ref);
		fa_put64(f, o + f->l->func_code + f->t->func_closure_rel, fa_tuple(f, 1, &cell));
	}
	return o;
}

static uint64_t fa_code(struct fake_asyncio *f, const char *name, int first)
{
	static const uint8_t loc311[] = { 0xef, 0x04 };		/* 8 units: line +2 */
	static const uint8_t lt310[] = { 100, 2 };		/* 100 bytes: line +2 */
	static const uint8_t lnotab[] = { 0, 2 };		/* from 0: line +2 */
	const uint8_t *tb = f->minor >= 11 ? loc311 : f->minor == 10 ? lt310 : lnotab;
	uint64_t c = fa_obj(f, 0, f->l->code_basicsize + 64), b = fa_obj(f, 0, 40);

	fa_put64(f, b + 16, 2);
	if (fa_in(b + 32, 2))
		memcpy(&f->mem[b + 32 - FA_BASE], tb, 2);
	fa_put64(f, c + f->l->co_filename, fa_str(f, "/srv/app.py"));
	fa_put64(f, c + f->l->co_name, fa_str(f, name));
	if (f->l->co_qualname != 0xffff)
		fa_put64(f, c + f->l->co_qualname, fa_str(f, name));
	fa_put32(f, c + f->l->co_firstlineno, (uint32_t)first);
	fa_put64(f, c + f->l->co_table, b);
	return c;
}

/* a suspended coroutine whose frame awaits yf */
static uint64_t fa_coro(struct fake_asyncio *f, const char *qualname, int first, uint64_t yf)
{
	uint64_t g = fa_obj(f, f->t_coro, 256), code = fa_code(f, qualname, first), fr;

	fa_put64(f, g + f->l->coro_qualname, fa_str(f, qualname));
	if (f->t->gen_frame_inline) {
		fr = g + f->t->gen_frame;
		fa_put8(f, g + f->t->gen_frame_state, (uint8_t)f->t->suspended_max);
		fa_put64(f, fr + f->l->f_instr, code + f->l->code_basicsize + 2 * 4);
		if (f->t->if_stackptr) {
			/* 3.14+: tagged stack refs; what it awaits yf_depth slots below the top */
			fa_put64(f, fr + f->l->f_code, code | 1);
			fa_put64(f, fr + f->t->if_stacktop,
				 fr + f->l->f_localsplus + 8ull * f->t->yf_depth);
			fa_put64(f, fr + f->l->f_localsplus, yf ? yf | 1 : 0);
			fa_put64(f, fr + f->l->f_localsplus + 8, 1);
		} else {
			fa_put64(f, fr + f->l->f_code, code);
			fa_put32(f, fr + f->t->if_stacktop, 1);
			fa_put64(f, fr + f->l->f_localsplus, yf);
		}
	} else {
		uint64_t vs = fa_alloc(f, 16);

		fr = fa_obj(f, 0, f->l->f_localsplus + 16);
		fa_put64(f, g + f->t->gen_frame, fr);
		fa_put64(f, fr + f->l->f_code, code);
		fa_put32(f, fr + f->l->f_instr, 4);
		fa_put64(f, vs, yf);
		if (f->minor <= 9) {
			fa_put64(f, fr + f->t->f_stacktop, vs + 8);
		} else {
			fa_put64(f, fr + f->t->f_valuestack, vs);
			fa_put32(f, fr + f->t->f_stackdepth, 1);
			fa_put8(f, fr + f->t->f_state, 0xff);
		}
	}
	return g;
}

static uint64_t fa_future(struct fake_asyncio *f, uint64_t type)
{
	uint64_t o = fa_obj(f, type, 256);

	fa_put64(f, o + 16, f->loop);
	return o;
}

static uint64_t fa_iter(struct fake_asyncio *f, uint64_t fut)
{
	uint64_t o = fa_obj(f, f->t_iter, 32);

	fa_put64(f, o + 16, fut);
	return o;
}

static uint64_t fa_task(struct fake_asyncio *f, const char *name, uint64_t coro, uint64_t waiter,
			int state)
{
	uint64_t o = fa_obj(f, f->t_task, 256);

	fa_put64(f, o + 16, f->loop);
	fa_put32(f, o + f->t->fut_state, (uint32_t)state);
	fa_put64(f, o + f->t->task_waiter, waiter ? waiter : f->none);
	fa_put64(f, o + f->l->task_coro, coro);
	fa_put64(f, o + f->l->task_name, fa_str(f, name));
	return o;
}

/* Builds the image for minor (8..15); 0 or -1 */
static int fake_asyncio_build(struct fake_asyncio *f, int minor)
{
	uint64_t fut, gfut, child, parent, gath, leaf, done, refs[11], set, tab, wset, md, mod, mods,
		 cur, interp, k;
	int i;

	memset(f, 0, sizeof(*f));
	f->minor = minor;
	f->l = lw_pylayout_for(minor);
	f->t = lw_tasklayout_for(minor);
	if (!f->l || !f->t)
		return -1;
	f->brk = FA_BASE;
	f->t_str = fa_type(f, "str", 0, 0, 0);
	f->t_dict = fa_type(f, "dict", 0, 0, 0);
	f->t_set = fa_type(f, "set", 0, 0, 0);
	f->t_list = fa_type(f, "list", 0, 0, 0);
	f->t_long = fa_type(f, "int", 0, 0, 0);
	f->t_none = fa_type(f, "NoneType", 0, 0, 0);
	f->t_mod = fa_type(f, "module", 0, 0, 0);
	f->t_coro = fa_type(f, "coroutine", 0, 0, 0);
	f->t_iter = fa_type(f, "_asyncio.FutureIter", 0, 0, 0);
	f->t_fut = fa_type(f, "_asyncio.Future", 0, 0, 0);
	f->t_task = fa_type(f, "_asyncio.Task", 0, 0, 0);
	f->t_wref = fa_type(f, "weakref.ReferenceType", 0, 0, 0);
	f->t_gfut = fa_type(f, "_GatheringFuture", minor >= 11 ? 1u << 4 : 0, f->t_fut,
			    minor >= 11 ? 0 : 200);
	f->t_wset = fa_type(f, "WeakSet", minor >= 11 ? 1u << 4 : 0, 0, minor >= 11 ? 0 : 16);
	f->t_loop = fa_type(f, "_UnixSelectorEventLoop", 0, 0, 0);
	f->t_tuple = fa_type(f, "tuple", 0, 0, 0);
	f->t_func = fa_type(f, "function", 0, 0, 0);
	f->t_method = fa_type(f, "method", 0, 0, 0);
	f->t_partial = fa_type(f, "functools.partial", 0, 0, 0);
	f->t_cell = fa_type(f, "cell", 0, 0, 0);
	f->t_tg = fa_type(f, "TaskGroup", minor >= 11 ? 1u << 4 : 0, 0, minor >= 11 ? 0 : 16);
	f->none = fa_obj(f, f->t_none, 16);
	f->loop = fa_obj(f, f->t_loop, 64);

	fut = fa_future(f, f->t_fut);
	child = fa_task(f, "child", fa_coro(f, "child", 10,
					   fa_coro(f, "Event.wait", 20, fa_iter(f, fut))), fut, 0);
	parent = fa_task(f, "parent", fa_coro(f, "parent", 30, fa_iter(f, child)), child, 0);
	leaf = fa_task(f, "leaf", fa_coro(f, "leaf", 40, 0), 0, 0);
	gfut = fa_future(f, f->t_gfut);
	k = fa_list(f, 1, &leaf);
	fa_put64(f, minor >= 11 ? gfut - 24 : gfut + 200, fa_dict1(f, "_children", k));
	gath = fa_task(f, "gatherer", fa_coro(f, "gatherer", 50, fa_iter(f, gfut)), gfut, 0);
	done = fa_task(f, "finished", fa_coro(f, "finished", 60, 0), 0, 2);
	f->tasks[0] = parent;
	f->tasks[1] = child;
	f->tasks[2] = gath;
	f->tasks[3] = leaf;
	f->tasks[4] = done;
	f->lines[0] = 12;
	f->lines[1] = 22;
	{
		uint64_t w1 = fa_future(f, f->t_fut), w2 = fa_future(f, f->t_fut), p, a, m, tg,
			 lst, tup[2];

		/* wait_for: partial(_release_waiter, w1) on w-inner; w-outer waits on w1 */
		f->tasks[5] = fa_task(f, "w-inner", fa_coro(f, "inner", 70, 0), 0, 0);
		f->tasks[6] = fa_task(f, "w-outer", fa_coro(f, "outer", 80, fa_iter(f, w1)), w1, 0);
		p = fa_obj(f, f->t_partial, 64);
		a = fa_tuple(f, 1, &w1);
		fa_put64(f, p + 16, fa_func(f, "_release_waiter", 0));
		fa_put64(f, p + 24, a);
		if (f->t->fut_awaited_by)	/* 3.12+ wait_for has no callback; 3.14 says who */
			fa_put64(f, f->tasks[5] + f->t->fut_awaited_by, f->tasks[6]);
		else
			fa_put64(f, f->tasks[5] + 24, p);
		/* TaskGroup: [(bound _on_task_done of a group whose _parent_task is parent, ctx)] */
		f->tasks[7] = fa_task(f, "tg-kid", fa_coro(f, "kid", 90, 0), 0, 0);
		tg = fa_instance(f, f->t_tg, 64, fa_dict1(f, "_parent_task", parent));
		m = fa_obj(f, f->t_method, 48);
		fa_put64(f, m + 16, fa_func(f, "TaskGroup._on_task_done", 0));
		fa_put64(f, m + 24, tg);
		tup[0] = m;
		tup[1] = f->none;
		tup[0] = fa_tuple(f, 2, tup);
		lst = fa_list(f, 1, tup);
		fa_put64(f, f->tasks[7] + 40, lst);
		/* asyncio.wait: a closure over w2 on wait-kid; wait-outer waits on w2 */
		f->tasks[8] = fa_task(f, "wait-kid", fa_coro(f, "kid2", 100, 0), 0, 0);
		f->tasks[9] = fa_task(f, "wait-outer", fa_coro(f, "outer2", 110, fa_iter(f, w2)), w2,
				      0);
		fa_put64(f, f->tasks[8] + 24, fa_func(f, "_wait.<locals>._on_completion", w2));
	}

	/* the WeakSet: its data set holds weak references (one dead) and a dummy slot */
	for (i = 0; i < 10; i++) {
		refs[i] = fa_obj(f, f->t_wref, 48);
		/* 3.14+: C Tasks are on the threads' lists, not in the WeakSet */
		fa_put64(f, refs[i] + 16, f->t->task_node ? f->none : f->tasks[i]);
	}
	refs[10] = fa_obj(f, f->t_wref, 48);
	fa_put64(f, refs[10] + 16, f->none);
	set = fa_obj(f, f->t_set, 200);
	tab = fa_alloc(f, 32 * 16);
	for (i = 0; i < 11; i++) {
		fa_put64(f, tab + 16 * (uint64_t)(i * 2), refs[i]);
		fa_put64(f, tab + 16 * (uint64_t)(i * 2) + 8, 1000 + (uint64_t)i);
	}
	fa_put64(f, tab + 16 * 25, f->none);	/* the dummy: hash -1 */
	fa_put64(f, tab + 16 * 25 + 8, UINT64_MAX);
	fa_put64(f, set + 24, 12);
	fa_put64(f, set + 32, 31);
	fa_put64(f, set + 40, tab);
	wset = fa_instance(f, f->t_wset, 64, fa_dict1(f, "data", set));

	cur = fa_dict(f, 1, &f->loop, f->t->task_node ? &f->none : &leaf);
	{
		uint64_t keys[2] = { fa_str(f, minor <= 11 ? "_all_tasks" : "_scheduled_tasks"),
				     fa_str(f, "_current_tasks") };
		uint64_t vals[2] = { wset, cur };

		md = fa_dict(f, 2, keys, vals);
	}
	mod = fa_obj(f, f->t_mod, 32);
	fa_put64(f, mod + 16, md);
	{
		uint64_t keys[2] = { fa_str(f, "sys"), fa_str(f, "asyncio.tasks") };
		uint64_t vals[2] = { f->none, mod };

		mods = fa_dict(f, 2, keys, vals);
	}
	interp = fa_alloc(f, (f->t->interp_tasks_head > f->t->interp_modules ?
			      f->t->interp_tasks_head : f->t->interp_modules) + 16);
	if (!interp)
		return -1;
	fa_put64(f, interp + f->t->interp_modules, mods);
	if (f->t->task_node) {
		/* 3.14+: one thread (tid 4242) running leaf on the loop, its list holding eight
		 * Tasks (finished included); the interpreter's list the last two */
		uint64_t ts = fa_alloc(f, f->t->ts_tasks_head + 16), rt = fa_alloc(f, 4096), h;

		if (!ts || !rt)
			return -1;
		fa_put64(f, rt + f->l->rt_interp_head, interp);
		fa_put64(f, interp + f->l->interp_threads_head, ts);
		fa_put64(f, ts + f->l->ts_native_id, 4242);
		fa_put64(f, ts + f->l->ts_thread_id, 0x7f0000001000ull);
		fa_put64(f, ts + f->t->ts_running_task, leaf);
		fa_put64(f, ts + f->t->ts_running_loop, f->loop);
		for (i = 0; i < 10; i++) {
			uint64_t head = i < 8 ? ts + f->t->ts_tasks_head :
					interp + f->t->interp_tasks_head;
			uint64_t node = f->tasks[i] + f->t->task_node, last = 0;

			memcpy(&last, &f->mem[head + 8 - FA_BASE], 8);
			if (!last)
				last = head;
			fa_put64(f, last, node);	/* last->next */
			fa_put64(f, node, head);
			fa_put64(f, node + 8, last);
			fa_put64(f, head + 8, node);	/* head->prev */
		}
		for (h = 0; h < 2; h++) {	/* an empty list points at itself */
			uint64_t head = h ? ts + f->t->ts_tasks_head : interp + f->t->interp_tasks_head;
			uint64_t next = 0;

			memcpy(&next, &f->mem[head - FA_BASE], 8);
			if (!next) {
				fa_put64(f, head, head);
				fa_put64(f, head + 8, head);
			}
		}
		f->pi.runtime = rt;
	}

	f->pi.major = 3;
	f->pi.minor = minor;
	f->pi.lay = *f->l;
	f->pi.interp = interp;
	f->pi.cfg.none_obj = f->none;
	f->pi.cfg.type_long = f->t_long;
	snprintf(f->pi.version, sizeof(f->pi.version), "3.%d.0", minor);
	return f->brk - FA_BASE <= FA_SIZE ? 0 : -1;
}

#endif
