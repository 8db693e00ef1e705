// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Who awaits whom among a snapshot's Tasks: done callbacks (wait_for, wait, TaskGroup),
 * gather() children, and await cycles (see pytasks.c).
 */
#include "target/pytasks_priv.h"
#include "base/lw_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MAX_CALLBACKS 64
#define MAX_CHILDREN 4096

/* The Task's done callbacks: wait_for's partial(_release_waiter, waiter) (3.8-3.11) and a
 * TaskGroup's bound _on_task_done (its _parent_task awaits the group's Tasks) */
static void func_qualname(struct ctx *c, uint64_t fn, char *buf, size_t size)
{
	uint64_t q = 0;

	buf[0] = 0;
	if (lw_mem_read_u64(c->mem, fn + c->pi->lay.func_qualname, &q) == 0 && q)
		lw_py__read_str(&c->pi->lay, c->mem, q, buf, size);
}

static void add_cb_fut(struct lw_task *tk, uint64_t fut, const char *via)
{
	if (tk->ncb_futs < LW_ARRAY_SIZE(tk->cb_futs)) {
		tk->cb_via[tk->ncb_futs] = via;
		tk->cb_futs[tk->ncb_futs++] = fut;
	}
}

/* A Future's done callbacks: fut_callback0, then the (callback, context) tuples of
 * fut_callbacks. The first MAX_CALLBACKS only, readable or not: the count comes from the target. */
static size_t fut_callbacks(struct ctx *c, uint64_t fut, uint64_t *cbs)
{
	uint64_t lst = 0, items = 0, cb0 = 0;
	int64_t n = 0;
	size_t ncb = 0, i;

	if (lw_mem_read_u64(c->mem, fut + 24, &cb0) == 0 && cb0)
		cbs[ncb++] = cb0;
	if (lw_mem_read_u64(c->mem, fut + 40, &lst) == 0 && lst &&
	    pt_is_type(c, lst, "list") && lw_mem_read(c->mem, lst + 16, &n, 8) == 0 && n > 0 &&
	    lw_mem_read_u64(c->mem, lst + 24, &items) == 0 && items) {
		for (i = 0; i < (size_t)n && i < MAX_CALLBACKS && ncb < MAX_CALLBACKS; i++) {
			uint64_t tup = 0, cb = 0;

			/* (callback, context) tuples: items at +24 */
			if (lw_mem_read_u64(c->mem, items + i * 8, &tup) || !tup ||
			    lw_mem_read_u64(c->mem, tup + 24, &cb) || !cb)
				continue;
			cbs[ncb++] = cb;
		}
	}
	return ncb;
}

void pt_read_callbacks(struct ctx *c, struct lw_task *tk)
{
	uint64_t cbs[MAX_CALLBACKS];
	size_t ncb = fut_callbacks(c, tk->addr, cbs), i;

	for (i = 0; i < ncb; i++) {
		const struct tname *tn = pt_type_of(c, cbs[i]);

		if (!tn)
			continue;
		if (strcmp(tn->name, "functools.partial") == 0) {
			/* wait_for (3.8-3.11): partial(_release_waiter, waiter) */
			uint64_t args = 0, w = 0, fn = 0;
			int64_t na = 0;
			char q[64] = "";

			if (lw_mem_read_u64(c->mem, cbs[i] + 24, &args) || !args ||
			    lw_mem_read(c->mem, args + 16, &na, 8) || na < 1 || na > 8 ||
			    lw_mem_read_u64(c->mem, args + 24, &w) || !w)
				continue;
			if (lw_mem_read_u64(c->mem, cbs[i] + 16, &fn) == 0 && fn)
				func_qualname(c, fn, q, sizeof(q));
			add_cb_fut(tk, w, strcmp(q, "_release_waiter") == 0 ? "wait_for" : "callback");
		} else if (strcmp(tn->name, "function") == 0) {
			/* a closure over the future its caller awaits: asyncio.wait()'s _on_completion;
			 * gather's _done_callback is read from the gather side (_children) */
			uint64_t clo = 0, items2[8];
			int64_t nc = 0, k;
			char q[96] = "";

			func_qualname(c, cbs[i], q, sizeof(q));
			if (strstr(q, "gather.<locals>") ||
			    lw_mem_read_u64(c->mem, cbs[i] + c->pi->lay.func_code + c->t->func_closure_rel,
					    &clo) || !clo || clo == c->pi->cfg.none_obj ||
			    !pt_is_type(c, clo, "tuple") || lw_mem_read(c->mem, clo + 16, &nc, 8) ||
			    nc <= 0 || nc > 8 || lw_mem_read(c->mem, clo + 24, items2, (size_t)nc * 8))
				continue;
			for (k = 0; k < nc; k++) {
				uint64_t v = 0;

				/* cells: ob_ref at +16 */
				if (items2[k] && lw_mem_read_u64(c->mem, items2[k] + 16, &v) == 0 && v &&
				    v != c->pi->cfg.none_obj)
					add_cb_fut(tk, v, strstr(q, "_wait.<locals>") ? "wait" : "callback");
			}
		} else if (strcmp(tn->name, "method") == 0) {
			uint64_t self = 0, parent = 0;

			if (lw_mem_read_u64(c->mem, cbs[i] + 24, &self) || !self)
				continue;
			if (lw_pyobj__attr(c->pi, c->mem, self, "_parent_task", &parent) == 0 &&
			    parent && tk->ncb_parents < LW_ARRAY_SIZE(tk->cb_parents))
				tk->cb_parents[tk->ncb_parents++] = parent;
		}
	}
}

void pt_add_awaiter(struct lw_task *tk, uint64_t by, const char *via)
{
	unsigned i;

	if (by == tk->addr)
		return;
	for (i = 0; i < tk->nawaiters; i++)
		if (tk->awaiters[i].task == by)
			return;
	if (tk->nawaiters >= LW_TASK_MAX_AWAITERS)
		return;
	tk->awaiters[tk->nawaiters].task = by;
	lw_strlcpy(tk->awaiters[tk->nawaiters].via, via, sizeof(tk->awaiters[0].via));
	tk->nawaiters++;
}

/* gather(): the Tasks of a _GatheringFuture's _children (nested gathers followed) */
void pt_gather_children(struct ctx *c, uint64_t gfut, uint64_t by, int depth)
{
	uint64_t lst = 0, items = 0, *kids;
	int64_t n = 0, i;

	if (depth > 8 || c->gather_budget <= 0 ||
	    lw_pyobj__attr(c->pi, c->mem, gfut, "_children", &lst) || !lst ||
	    !pt_is_type(c, lst, "list") || lw_mem_read(c->mem, lst + 16, &n, 8) || n <= 0 ||
	    n > MAX_CHILDREN || lw_mem_read_u64(c->mem, lst + 24, &items) || !items)
		return;
	c->gather_budget -= n;	/* nested gathers: bounded work in all, not per level */
	kids = malloc((size_t)n * 8);
	if (!kids || lw_mem_read(c->mem, items, kids, (size_t)n * 8)) {
		free(kids);
		return;
	}
	for (i = 0; i < n; i++) {
		long k = lw_tasks__find(c->out, kids[i]);

		if (k >= 0)
			pt_add_awaiter(&c->out->v[k], by, "gather");
		else if (kids[i] && pt_is_type(c, kids[i], "_GatheringFuture"))
			pt_gather_children(c, kids[i], by, depth + 1);
	}
	free(kids);
}

/* Tasks awaiting each other in a cycle (A awaits B awaits A): a deadlock, whatever the
 * futures between them. Iterative DFS over the awaited-by edges (child -> its awaiters). */
int pt_mark_cycles(struct lw_tasks *o)
{
	struct frame { size_t node; unsigned edge; } *stack;
	uint8_t *color;		/* 0 new, 1 on the stack, 2 done */
	size_t *onstack_pos, i, sp;

	if (!o->n)
		return 0;
	stack = calloc(o->n, sizeof(*stack));
	color = calloc(o->n, 1);
	onstack_pos = calloc(o->n, sizeof(*onstack_pos));
	if (!stack || !color || !onstack_pos) {
		free(stack);
		free(color);
		free(onstack_pos);
		return -ENOMEM;
	}
	for (i = 0; i < o->n; i++) {
		if (color[i])
			continue;
		sp = 0;
		stack[sp].node = i;
		stack[sp].edge = 0;
		color[i] = 1;
		onstack_pos[i] = sp++;
		while (sp) {
			struct frame *f = &stack[sp - 1];
			struct lw_task *t = &o->v[f->node];
			long nx;

			if (f->edge >= t->nawaiters) {
				color[f->node] = 2;
				sp--;
				continue;
			}
			nx = lw_tasks__find(o, t->awaiters[f->edge++].task);
			if (nx < 0 || color[nx] == 2)
				continue;
			if (color[nx] == 1) {
				size_t k;

				/* the cycle: from nx's place on the stack to the top */
				for (k = onstack_pos[nx]; k < sp; k++)
					if (!o->v[stack[k].node].deadlock) {
						o->v[stack[k].node].deadlock = 1;
						o->deadlocked++;
					}
				continue;
			}
			color[nx] = 1;
			onstack_pos[nx] = sp;
			stack[sp].node = (size_t)nx;
			stack[sp].edge = 0;
			sp++;
		}
	}
	free(stack);
	free(color);
	free(onstack_pos);
	return 0;
}

int pt_cmp_waiter(const void *a, const void *b)
{
	const struct waiter_ix *x = a, *y = b;

	return x->waiter < y->waiter ? -1 : x->waiter > y->waiter;
}

int pt_cmp_addr(const void *a, const void *b)
{
	const struct lw_task *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}


/* ---- one Task's awaiters, without a snapshot (slow_callback records) ---- */

/* The Task a done callback wakes up: the C Task's wakeup (TaskWakeupMethWrapper, ww_task @16,
 * up to 3.11; a builtin method bound to the Task, m_self @24, from 3.12), or 0 */
static uint64_t wakeup_task(struct ctx *c, uint64_t cb)
{
	const struct tname *tn = pt_type_of(c, cb), *tt;
	uint64_t t = 0;

	if (!tn)
		return 0;
	if (strcmp(tn->name, "TaskWakeupMethWrapper") == 0)
		lw_mem_read_u64(c->mem, cb + 16, &t);
	else if (strcmp(tn->name, "builtin_function_or_method") == 0)
		lw_mem_read_u64(c->mem, cb + 24, &t);
	tt = t ? pt_type_of(c, t) : NULL;
	return tt && tt->is_task ? t : 0;
}

/* The value of the first closure cell of function fn whose object's type is named type (or any
 * Future-like object when type is NULL), or 0 */
static uint64_t closure_obj(struct ctx *c, uint64_t fn, const char *type)
{
	uint64_t clo = 0, items[8];
	int64_t nc = 0, k;

	if (lw_mem_read_u64(c->mem, fn + c->pi->lay.func_code + c->t->func_closure_rel, &clo) ||
	    !clo || !pt_is_type(c, clo, "tuple") || lw_mem_read(c->mem, clo + 16, &nc, 8) ||
	    nc <= 0 || nc > 8 || lw_mem_read(c->mem, clo + 24, items, (size_t)nc * 8))
		return 0;
	for (k = 0; k < nc; k++) {
		uint64_t v = 0;
		const struct tname *tn;

		if (!items[k] || lw_mem_read_u64(c->mem, items[k] + 16, &v) || !v ||
		    v == c->pi->cfg.none_obj || !(tn = pt_type_of(c, v)))
			continue;
		if (type ? strcmp(tn->name, type) == 0 : (strstr(tn->name, "Future") && !tn->is_task))
			return v;
	}
	return 0;
}

/* Who awaits fut (a Task or a future between Tasks): the Task its callbacks wake, through
 * gather's outer future, wait_for's and asyncio.wait's waiter future, a TaskGroup's parent.
 * via is set by the first link that names one (gather, wait_for, wait, taskgroup, await). */
static uint64_t awaiter_of(struct ctx *c, uint64_t fut, const char **via, int depth)
{
	uint64_t cbs[MAX_CALLBACKS];
	size_t ncb, i;

	if (depth > 6)
		return 0;
	ncb = fut_callbacks(c, fut, cbs);
	for (i = 0; i < ncb; i++) {
		uint64_t t = wakeup_task(c, cbs[i]), next = 0, fn = 0, self = 0;
		const struct tname *tn;
		const char *how = NULL;
		char q[96] = "";

		if (t) {
			if (!*via)
				*via = "await";
			return t;
		}
		tn = pt_type_of(c, cbs[i]);
		if (!tn)
			continue;
		if (strcmp(tn->name, "function") == 0) {
			func_qualname(c, cbs[i], q, sizeof(q));
			if (strstr(q, "gather.<locals>")) {
				next = closure_obj(c, cbs[i], "_GatheringFuture");
				how = "gather";
			} else if (strstr(q, "_wait.<locals>")) {
				next = closure_obj(c, cbs[i], NULL);
				how = "wait";
			}
		} else if (strcmp(tn->name, "functools.partial") == 0) {
			uint64_t args = 0;

			if (lw_mem_read_u64(c->mem, cbs[i] + 16, &fn) == 0 && fn)
				func_qualname(c, fn, q, sizeof(q));
			if (strcmp(q, "_release_waiter") == 0 &&
			    lw_mem_read_u64(c->mem, cbs[i] + 24, &args) == 0 && args)
				lw_mem_read_u64(c->mem, args + 24, &next);
			how = "wait_for";
		} else if (strcmp(tn->name, "method") == 0 &&
			   lw_mem_read_u64(c->mem, cbs[i] + 24, &self) == 0 && self &&
			   lw_pyobj__attr(c->pi, c->mem, self, "_parent_task", &t) == 0 && t &&
			   pt_type_of(c, t) && pt_type_of(c, t)->is_task) {
			if (!*via)
				*via = "taskgroup";
			return t;
		}
		if (next && next != fut) {
			const char *keep = *via;

			if (!*via)
				*via = how;
			t = awaiter_of(c, next, via, depth + 1);
			if (t)
				return t;
			*via = keep;
		}
	}
	/* 3.14+: the awaiter asyncio recorded (the first when a set) */
	if (c->t->fut_awaited_by && depth == 0) {
		uint64_t by = 0;
		uint8_t is_set = 0;
		const struct tname *tn;

		if (lw_mem_read_u64(c->mem, fut + c->t->fut_awaited_by, &by) == 0 && by &&
		    lw_mem_read(c->mem, fut + c->t->fut_awaited_by_is_set, &is_set, 1) == 0 &&
		    !is_set && (tn = pt_type_of(c, by)) && tn->is_task) {
			if (!*via)
				*via = "await";
			return by;
		}
	}
	return 0;
}

size_t pt_await_chain(struct ctx *c, uint64_t task, struct lw_task_link *out, size_t max)
{
	uint64_t cur = task;
	size_t n = 0, k;

	while (n < max) {
		const char *via = NULL;
		uint64_t aw = awaiter_of(c, cur, &via, 0), coro = 0, q = 0;

		if (!aw || aw == task)
			break;
		for (k = 0; k < n && out[k].task != aw; k++)
			;
		if (k < n)
			break;	/* a cycle: named once */
		memset(&out[n], 0, sizeof(out[n]));
		out[n].task = aw;
		lw_strlcpy(out[n].via, via ? via : "await", sizeof(out[n].via));
		lw_py__task_name(c->pi, c->mem, aw, out[n].name, sizeof(out[n].name));
		if (lw_mem_read_u64(c->mem, aw + c->pi->lay.task_coro, &coro) == 0 && coro &&
		    lw_mem_read_u64(c->mem, coro + c->pi->lay.coro_qualname, &q) == 0 && q)
			lw_py__read_str(&c->pi->lay, c->mem, q, out[n].coro, sizeof(out[n].coro));
		n++;
		cur = aw;
	}
	return n;
}
