// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* CPython object readers against a fake address space laid out like 3.11 / 3.12. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/pyproc.h"
#include "target/memread.h"

#define BASE 0x10000ull

static uint8_t mem[8192];
static struct lw_fakemem_region region = { BASE, mem, sizeof(mem) };
static struct lw_fakemem fm = { &region, 1 };
static struct lw_reader rd = { lw_fakemem_read, &fm };

static void put64(uint64_t addr, uint64_t v)
{
	memcpy(&mem[addr - BASE], &v, 8);
}

static void put32(uint64_t addr, uint32_t v)
{
	memcpy(&mem[addr - BASE], &v, 4);
}

/* a compact str: kind 1/2/4, ascii flag */
static void put_str(const struct lw_pylayout *l, uint64_t addr, const void *data, size_t nchars,
		    unsigned kind, int ascii)
{
	uint32_t state = (1u << 5) | (kind << 2) | (ascii ? 1u << 6 : 0);

	put64(addr + 16, nchars);
	put32(addr + 32, state);
	memcpy(&mem[addr - BASE + (ascii ? l->str_ascii : l->str_compact)], data, nchars * kind);
}

static void test_strings(void **state)
{
	const struct lw_pylayout *l11 = lw_pylayout_for(11), *l12 = lw_pylayout_for(12);
	static const uint16_t kanji[] = { 0x6f22, 0x5b57 };
	static const uint8_t cafe[] = { 'c', 'a', 'f', 0xe9 };
	char buf[64];

	(void)state;
	memset(mem, 0, sizeof(mem));
	put_str(l11, BASE + 0x100, "handler", 7, 1, 1);
	assert_int_equal(lw_py__read_str(l11, &rd, BASE + 0x100, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "handler");
	put_str(l12, BASE + 0x200, "req-42", 6, 1, 1);
	assert_int_equal(lw_py__read_str(l12, &rd, BASE + 0x200, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "req-42");
	put_str(l11, BASE + 0x300, cafe, 4, 1, 0);
	assert_int_equal(lw_py__read_str(l11, &rd, BASE + 0x300, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "caf\xc3\xa9");
	put_str(l12, BASE + 0x400, kanji, 2, 2, 0);
	assert_int_equal(lw_py__read_str(l12, &rd, BASE + 0x400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\xe6\xbc\xa2\xe5\xad\x97");
	/* truncated output stays NUL-terminated and whole characters only */
	assert_int_equal(lw_py__read_str(l12, &rd, BASE + 0x400, buf, 5), 0);
	assert_string_equal(buf, "\xe6\xbc\xa2");
	/* unreadable object, bad kind */
	assert_int_not_equal(lw_py__read_str(l11, &rd, 0x99999999, buf, sizeof(buf)), 0);
	put32(BASE + 0x500 + 32, (1u << 5) | (3u << 2));
	assert_int_not_equal(lw_py__read_str(l11, &rd, BASE + 0x500, buf, sizeof(buf)), 0);
}

static void test_task_names(void **state)
{
	struct lw_pyinfo *pi = calloc(1, sizeof(*pi));
	uint64_t task = BASE + 0x600, name = BASE + 0x700, type_long = BASE + 0x800;
	char buf[64];

	(void)state;
	memset(mem, 0, sizeof(mem));
	/* 3.12: unnamed task keeps an int (lv_tag = ndigits << 3) */
	pi->lay = *lw_pylayout_for(12);
	pi->minor = 12;
	pi->cfg.type_long = type_long;
	put64(task + pi->lay.task_name, name);
	put64(name + 8, type_long);
	put64(name + 16, 1u << 3);
	put32(name + 24, 42);
	assert_int_equal(lw_py__task_name(pi, &rd, task, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "Task-42");
	/* two 30-bit digits */
	put64(name + 16, 2u << 3);
	put32(name + 24, 5);
	put32(name + 28, 1);
	assert_int_equal(lw_py__task_name(pi, &rd, task, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "Task-1073741829");
	/* 3.11: a str name */
	pi->lay = *lw_pylayout_for(11);
	pi->minor = 11;
	put64(task + pi->lay.task_name, BASE + 0x900);
	put64(BASE + 0x900 + 8, BASE + 0xa00);
	put_str(&pi->lay, BASE + 0x900, "payment-worker", 14, 1, 1);
	assert_int_equal(lw_py__task_name(pi, &rd, task, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "payment-worker");
	free(pi);
}

static void test_walk(void **state)
{
	struct lw_pyinfo *pi = calloc(1, sizeof(*pi));
	struct lw_pystack *s = calloc(1, sizeof(*s));
	uint64_t ts = BASE + 0x100, cf = BASE + 0x200, f1 = BASE + 0x300, f2 = BASE + 0x400,
		 f3 = BASE + 0x500;

	(void)state;
	memset(mem, 0, sizeof(mem));
	/* 3.12: tstate->cframe->current_frame, a shim (owner 3) in the middle */
	pi->lay = *lw_pylayout_for(12);
	pi->minor = 12;
	pi->cfg.none_obj = BASE + 0xf00;
	put64(ts + pi->lay.ts_frame, cf);
	put64(cf + pi->lay.cframe_cur, f1);
	put64(f1 + pi->lay.f_code, 0xc0de1);
	put64(f1 + pi->lay.f_instr, 0x1234);
	put64(f1 + pi->lay.f_back, f2);
	mem[f2 - BASE + pi->lay.f_owner] = 3;
	put64(f2 + pi->lay.f_code, 0xdead);
	put64(f2 + pi->lay.f_back, f3);
	put64(f3 + pi->lay.f_code, 0xc0de3);
	put64(f3 + pi->lay.f_back, 0);
	assert_int_equal(lw_py__walk(pi, &rd, ts, s), 0);
	assert_int_equal(s->nframes, 3);
	assert_int_equal(s->frames[0].code, 0xc0de1);
	assert_int_equal(s->frames[0].instr, 0x1234);
	assert_int_equal(s->frames[0].frame, f1);
	assert_int_equal(s->frames[1].code, 0);	/* the shim, skipped */
	assert_int_equal(s->frames[2].code, 0xc0de3);
	assert_false(s->flags & LW_STACK_TRUNCATED);
	/* a loop in the frame chain is cut at LW_MAX_PYFRAMES */
	put64(f3 + pi->lay.f_back, f1);
	assert_int_equal(lw_py__walk(pi, &rd, ts, s), 0);
	assert_int_equal(s->nframes, LW_MAX_PYFRAMES);
	assert_true(s->flags & LW_STACK_TRUNCATED);
	/* no thread state */
	assert_int_not_equal(lw_py__walk(pi, &rd, 0, s), 0);
	assert_true(s->flags & LW_STACK_NO_TSTATE);
	free(s);
	free(pi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_task_names),
		cmocka_unit_test(test_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
