// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The asyncio Task reader against fake address spaces laid out like CPython 3.8-3.15
 * (fake_asyncio.h): the sets it walks, the chains it follows, the await graph it builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/pytasks.h"
#include "target/memread.h"
#include "fake_asyncio.h"

static struct fake_asyncio fa;

static struct lw_reader reader(struct lw_fakemem_region *reg, struct lw_fakemem *fm)
{
	struct lw_reader r = { lw_fakemem_read, fm };

	reg->addr = FA_BASE;
	reg->data = fa.mem;
	reg->len = sizeof(fa.mem);
	fm->regions = reg;
	fm->n = 1;
	return r;
}

static const struct lw_task *by_name(const struct lw_tasks *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

static void snapshot_minor(int minor)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	struct lw_tasks t;
	const struct lw_task *parent, *child, *gath, *leaf;
	char err[256] = "";

	assert_int_equal(fake_asyncio_build(&fa, minor), 0);
	rd = reader(&reg, &fm);
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	/* nine pending Tasks; the finished one counted, the dead reference and dummy skipped */
	assert_int_equal(t.n, 9);
	assert_int_equal(t.done, 1);
	parent = by_name(&t, "parent");
	child = by_name(&t, "child");
	gath = by_name(&t, "gatherer");
	leaf = by_name(&t, "leaf");
	assert_non_null(parent);
	assert_non_null(child);
	assert_non_null(gath);
	assert_non_null(leaf);
	assert_string_equal(child->coro, "child");
	assert_int_equal(child->nframes, 2);
	assert_string_equal(child->frames[0].qualname, "Event.wait");
	assert_int_equal(child->frames[0].line, fa.lines[1]);
	assert_string_equal(child->frames[1].qualname, "child");
	assert_string_equal(child->frames[1].file, "/srv/app.py");
	assert_int_equal(child->frames[1].line, fa.lines[0]);
	assert_string_equal(child->awaits_kind, "event");
	assert_string_equal(parent->awaits_kind, "task");
	assert_int_equal(parent->waiter, child->addr);
	assert_string_equal(gath->awaits_kind, "gather");
	/* the graph */
	assert_int_equal(child->nawaiters, 1);
	assert_int_equal(child->awaiters[0].task, parent->addr);
	assert_string_equal(child->awaiters[0].via, "await");
	assert_int_equal(leaf->nawaiters, 1);
	assert_int_equal(leaf->awaiters[0].task, gath->addr);
	assert_string_equal(leaf->awaiters[0].via, "gather");
	assert_int_equal(parent->nawaiters, 0);
	/* through callbacks: wait_for's partial, a TaskGroup's bound method, wait's closure */
	{
		const struct lw_task *wi = by_name(&t, "w-inner"), *wo = by_name(&t, "w-outer"),
				     *tk = by_name(&t, "tg-kid"), *wk = by_name(&t, "wait-kid"),
				     *wt = by_name(&t, "wait-outer");

		assert_int_equal(wi->nawaiters, 1);
		assert_int_equal(wi->awaiters[0].task, wo->addr);
		/* 3.14+: fut_awaited_by names w-outer, which waits on a plain Future */
		assert_string_equal(wi->awaiters[0].via, minor >= 14 ? "await" : "wait_for");
		assert_int_equal(tk->nawaiters, 1);
		assert_int_equal(tk->awaiters[0].task, parent->addr);
		assert_string_equal(tk->awaiters[0].via, "taskgroup");
		assert_int_equal(wk->nawaiters, 1);
		assert_int_equal(wk->awaiters[0].task, wt->addr);
		assert_string_equal(wk->awaiters[0].via, "wait");
		assert_int_equal(wo->nawaiters + wt->nawaiters, 0);
	}
	/* one Task's await chain without a snapshot: tg-kid's TaskGroup parent; 3.14+ also what
	 * fut_awaited_by says of w-inner */
	{
		struct lw_task_link links[4];

		assert_int_equal(lw_pytasks__await_chain(&fa.pi, NULL, &rd, fa.tasks[7], links, 4), 1);
		assert_int_equal(links[0].task, parent->addr);
		assert_string_equal(links[0].name, "parent");
		assert_string_equal(links[0].coro, "parent");
		assert_string_equal(links[0].via, "taskgroup");
		assert_int_equal(lw_pytasks__await_chain(&fa.pi, NULL, &rd, fa.tasks[5], links, 4),
				 minor >= 14 ? 1 : 0);
		if (minor >= 14)
			assert_string_equal(links[0].name, "w-outer");
	}
	/* states: leaf is the loop's current Task */
	assert_int_equal(leaf->state, LW_TASK_RUNNING);
	assert_int_equal(parent->state, LW_TASK_PENDING);
	assert_int_equal(t.nloops, 1);
	assert_string_equal(t.loops[0].type, "_UnixSelectorEventLoop");
	if (minor >= 14)	/* the thread state running it */
		assert_int_equal(t.loops[0].tid, 4242);
	assert_int_equal(lw_tasks__find(&t, leaf->addr), leaf - t.v);
	lw_pytasks__free(&t);
}

static void test_snapshot_every_layout(void **state)
{
	int m;

	(void)state;
	for (m = 8; m <= 15; m++)
		snapshot_minor(m);
}

/* 3.14+: _asyncio's AsyncioDebug section (3.14.10's bytes) taken; one that does not fit the
 * interpreter's own offsets, or is short, left out */
static void test_debug_offsets(void **state)
{
	uint64_t ad[13] = { 168, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880 };
	struct lw_tasklayout tl;
	char how[256];

	(void)state;
	assert_int_equal(fake_asyncio_build(&fa, 14), 0);
	tl = *lw_tasklayout_for(14);
	tl.task_node = tl.ts_tasks_head = tl.interp_tasks_head = 0;
	assert_int_equal(lw_pytasks__parse_debug(ad, sizeof(ad), &fa.pi, &tl, how, sizeof(how)), 0);
	assert_int_equal(tl.task_node, 152);
	assert_int_equal(tl.ts_tasks_head, 880);
	assert_int_equal(tl.ts_running_task, 872);
	assert_int_equal(tl.interp_tasks_head, 10880);
	assert_int_equal(tl.fut_awaited_by_is_set, 109);
	ad[5] = 120;	/* task_coro where pyoffsets does not have it */
	assert_int_equal(lw_pytasks__parse_debug(ad, sizeof(ad), &fa.pi, &tl, how, sizeof(how)),
			 -EINVAL);
	assert_non_null(strstr(how, "does not fit"));
	ad[5] = 128;
	ad[12] = 936;	/* a list head past the thread state */
	assert_int_equal(lw_pytasks__parse_debug(ad, sizeof(ad), &fa.pi, &tl, how, sizeof(how)),
			 -EINVAL);
	ad[12] = 880;
	assert_int_equal(lw_pytasks__parse_debug(ad, 96, &fa.pi, &tl, how, sizeof(how)), -EINVAL);
}

/* 3.14+: a thread's list that loops back on itself without reaching its head, or breaks off:
 * what was read is kept, the rest counted as skipped, nothing hangs */
static void test_task_list_damage(void **state)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	struct lw_tasks t;
	char err[256];
	uint64_t node;

	(void)state;
	assert_int_equal(fake_asyncio_build(&fa, 15), 0);
	rd = reader(&reg, &fm);
	node = fa.tasks[1] + fa.t->task_node;
	fa_put64(&fa, node, fa.tasks[0] + fa.t->task_node);	/* child -> parent: a cycle */
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_true(t.skipped >= 1);
	assert_non_null(by_name(&t, "parent"));
	assert_non_null(by_name(&t, "child"));
	assert_null(by_name(&t, "gatherer"));
	assert_non_null(by_name(&t, "wait-kid"));	/* the interpreter's list still read */
	lw_pytasks__free(&t);
	fa_put64(&fa, node, FA_BASE + FA_SIZE + 64);	/* child -> unreadable */
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_true(t.skipped >= 1);
	assert_non_null(by_name(&t, "child"));
	lw_pytasks__free(&t);
}

static void test_cancelling(void **state)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	struct lw_tasks t;
	char err[256];

	(void)state;
	/* 3.11: task_num_cancels_requested; 3.8: the future it waits on is cancelled */
	assert_int_equal(fake_asyncio_build(&fa, 11), 0);
	fa_put32(&fa, fa.tasks[0] + fa.t->num_cancels, 1);
	rd = reader(&reg, &fm);
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(by_name(&t, "parent")->state, LW_TASK_CANCELLING);
	assert_int_equal(by_name(&t, "gatherer")->state, LW_TASK_PENDING);
	lw_pytasks__free(&t);
	assert_int_equal(fake_asyncio_build(&fa, 8), 0);
	{
		uint64_t fut = 0;	/* child's future, cancelled by Task.cancel() */

		memcpy(&fut, &fa.mem[fa.tasks[1] + fa.t->task_waiter - FA_BASE], 8);
		fa_put32(&fa, fut + fa.t->fut_state, 1);
	}
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(by_name(&t, "child")->state, LW_TASK_CANCELLING);
	assert_int_equal(by_name(&t, "parent")->state, LW_TASK_PENDING);
	lw_pytasks__free(&t);
	/* 3.13: task_must_cancel is bit 2 of the byte after fut_state (bits 0-1 are the future's) */
	assert_int_equal(fake_asyncio_build(&fa, 13), 0);
	fa_put8(&fa, fa.tasks[2] + fa.t->must_cancel, 1u << 3 | 1u << 0);
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(by_name(&t, "gatherer")->state, LW_TASK_PENDING);
	lw_pytasks__free(&t);
	fa_put8(&fa, fa.tasks[2] + fa.t->must_cancel, 1u << 2);
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(by_name(&t, "gatherer")->state, LW_TASK_CANCELLING);
	lw_pytasks__free(&t);
}

static void test_not_imported_and_garbage(void **state)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	struct lw_tasks t;
	char err[256] = "";
	size_t i;

	(void)state;
	assert_int_equal(fake_asyncio_build(&fa, 12), 0);
	rd = reader(&reg, &fm);
	fa.pi.interp = FA_BASE + FA_SIZE + 4096;	/* unreadable */
	assert_true(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "sys.modules"));
	assert_int_equal(t.n, 0);
	/* 3.7: not known */
	assert_int_equal(fake_asyncio_build(&fa, 12), 0);
	fa.pi.minor = 7;
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), -ENOTSUP);
	/* a callbacks list claiming 2^40 entries, all unreadable: read no more than 64 of them
	 * (fuzz_pytasks found this spinning) */
	assert_int_equal(fake_asyncio_build(&fa, 11), 0);
	{
		uint64_t cbl = 0;

		memcpy(&cbl, &fa.mem[fa.tasks[7] + 40 - FA_BASE], 8);
		fa_put64(&fa, cbl + 16, 1ull << 40);
		fa_put64(&fa, cbl + 24, FA_BASE + FA_SIZE + 8192);
	}
	fm.n = 1;
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(by_name(&t, "tg-kid")->nawaiters, 0);
	lw_pytasks__free(&t);
	/* any byte of the image flipped: never a crash, never more Tasks than there are */
	for (i = 0; i < 4000; i++) {
		size_t off = (i * 7919u) % (fa.brk - FA_BASE);
		uint8_t save;

		assert_int_equal(fake_asyncio_build(&fa, 8 + (int)(i % 8)), 0);
		save = fa.mem[off];
		fa.mem[off] ^= (uint8_t)(1u << (i % 8));
		if (lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)) == 0) {
			assert_true(t.n <= 10);
			lw_pytasks__free(&t);
		}
		fa.mem[off] = save;
	}
}

/* Stuck Tasks over snapshots of the same image: reported once the threshold passes, once per
 * wait; a Task that moves to another await starts again; the running one never */
static void test_stuck(void **state)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	struct lw_tasks t;
	struct lw_stuck *st = NULL;
	struct lw_stuck_task out[16];
	char err[256];
	const uint64_t s = 1000000000ull;
	int n, i;

	(void)state;
	assert_int_equal(fake_asyncio_build(&fa, 12), 0);
	rd = reader(&reg, &fm);
	assert_int_equal(lw_stuck__new(&st), 0);
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(lw_stuck__update(st, &t, 0, 60 * s, out, 16), 0);
	assert_int_equal(lw_stuck__update(st, &t, 59 * s, 60 * s, out, 16), 0);
	n = lw_stuck__update(st, &t, 61 * s, 60 * s, out, 16);
	assert_int_equal(n, 8);		/* nine pending, less leaf (running) */
	for (i = 0; i < n; i++) {
		assert_string_not_equal(out[i].t->name, "leaf");
		assert_int_equal(out[i].pending_ns, 61 * s);
	}
	assert_int_equal(lw_stuck__update(st, &t, 200 * s, 60 * s, out, 16), 0);
	lw_pytasks__free(&t);
	/* child moves on to another line of Event.wait: its wait starts again */
	{
		uint64_t coro = 0, inner = 0, fr, ip = 0;

		memcpy(&coro, &fa.mem[fa.tasks[1] + fa.l->task_coro - FA_BASE], 8);
		/* the innermost coroutine: what child's frame awaits */
		fr = coro + fa.t->gen_frame;
		memcpy(&inner, &fa.mem[fr + fa.l->f_localsplus - FA_BASE], 8);
		fr = inner + fa.t->gen_frame;
		memcpy(&ip, &fa.mem[fr + fa.l->f_instr - FA_BASE], 8);
		fa_put64(&fa, fr + fa.l->f_instr, ip + 2 * 8);
	}
	assert_int_equal(lw_pytasks__snapshot(&fa.pi, &rd, &t, err, sizeof(err)), 0);
	assert_int_equal(lw_stuck__update(st, &t, 201 * s, 60 * s, out, 16), 0);
	n = lw_stuck__update(st, &t, 262 * s, 60 * s, out, 16);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].t->name, "child");
	assert_int_equal(out[0].pending_ns, 61 * s);
	lw_pytasks__free(&t);
	lw_stuck__free(st);
}

static int count_cb(void *arg, uint64_t k, uint64_t v)
{
	(void)k;
	(void)v;
	(*(int *)arg)++;
	return 0;
}

static int count_set(void *arg, uint64_t k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

static void test_dict_set_bounds(void **state)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm;
	struct lw_reader rd;
	uint64_t d, s, v = 0, k[3];
	int n = 0;
	int64_t lv = 0;

	(void)state;
	assert_int_equal(fake_asyncio_build(&fa, 10), 0);
	rd = reader(&reg, &fm);
	k[0] = fa_str(&fa, "a");
	k[1] = fa_str(&fa, "b");
	k[2] = fa_str(&fa, "c");
	d = fa_dict(&fa, 3, k, k);
	assert_int_equal(lw_pyobj__dict_get(&fa.pi, &rd, d, "b", &v), 0);
	assert_int_equal(v, k[1]);
	assert_int_equal(lw_pyobj__dict_get(&fa.pi, &rd, d, "z", &v), -ENOENT);
	assert_int_equal(lw_pyobj__dict_items(&fa.pi, &rd, d, 2, count_cb, &n), 2);
	/* an absurd entry count is refused, not walked */
	{
		uint64_t keys = 0;

		memcpy(&keys, &fa.mem[d + 32 - FA_BASE], 8);
		fa_put64(&fa, keys + 32, 1ull << 40);
		assert_true(lw_pyobj__dict_items(&fa.pi, &rd, d, 100, count_cb, &n) < 0);
	}
	/* a set whose mask is not 2^n-1, or huge: refused */
	s = fa_obj(&fa, fa.t_set, 64);
	fa_put64(&fa, s + 32, 6);
	fa_put64(&fa, s + 40, d);
	assert_true(lw_pyobj__set_items(&rd, s, 100, count_set, &n) < 0);
	fa_put64(&fa, s + 32, (1ull << 40) - 1);
	assert_true(lw_pyobj__set_items(&rd, s, 100, count_set, &n) < 0);
	/* ints: 3.10 (ob_size) and 3.12 (lv_tag) forms, two 30-bit digits */
	{
		uint64_t o = fa_obj(&fa, fa.t_long, 40);

		fa_put64(&fa, o + 16, 2);
		fa_put32(&fa, o + 24, 5);
		fa_put32(&fa, o + 28, 1);
		assert_int_equal(lw_pyobj__long(&fa.pi, &rd, o, &lv), 0);
		assert_int_equal(lv, (1ll << 30) + 5);
		fa.pi.minor = 12;
		fa_put64(&fa, o + 16, 2u << 3);
		assert_int_equal(lw_pyobj__long(&fa.pi, &rd, o, &lv), 0);
		assert_int_equal(lv, (1ll << 30) + 5);
		fa_put64(&fa, o + 16, 9u << 3);
		assert_int_equal(lw_pyobj__long(&fa.pi, &rd, o, &lv), -ERANGE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_every_layout),
		cmocka_unit_test(test_debug_offsets),
		cmocka_unit_test(test_task_list_damage),
		cmocka_unit_test(test_stuck),
		cmocka_unit_test(test_cancelling),
		cmocka_unit_test(test_not_imported_and_garbage),
		cmocka_unit_test(test_dict_set_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
