// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The line of an interpreted JS frame (target/v8frame.c), on a heap and a stack copy built by
 * hand with Node 20's layout (the offsets its v8dbg_* metadata gives): the frame's
 * BytecodeArray and bytecode offset, the source-position table (zig-zag VLQ pairs), the Script's
 * line ends or its source counted. Wrong types, offsets out of range and stale return
 * addresses give no line, never a wrong one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/v8frame.h"

#define HEAP 0x100000ull
#define HEAP_LEN 8192
#define STACK 0x7ff000ull
#define STACK_LEN 512
#define RET 0x5000123ull

/* types */
enum { T_BA = 191, T_BYTE = 190, T_FA = 175, T_SFI = 262, T_SCRIPT = 167, T_FN = 2100,
       T_STR1 = 8, T_ODD = 131 };
/* objects (untagged addresses) */
enum { M_BA = 0x000, M_BYTE = 0x020, M_FA = 0x040, M_SFI = 0x060, M_SCRIPT = 0x080, M_FN = 0x0a0,
       M_STR = 0x0c0, M_ODD = 0x0e0, O_BA = 0x200, O_SPT = 0x300, O_FN = 0x400, O_SFI = 0x440,
       O_SCRIPT = 0x480, O_ENDS = 0x500, O_SRC = 0x600, O_UNDEF = 0x700 };

static const char SRC[] = "function f() {\n  a();\n  b();\n}\n";

static uint8_t heap[HEAP_LEN];
static uint8_t stack[STACK_LEN];
static struct lw_v8meta M;

static void p64(uint64_t off, uint64_t v)
{
	memcpy(heap + off, &v, 8);
}

static uint64_t tagged(uint64_t off)
{
	return HEAP + off + 1;
}

static uint64_t smi(int64_t v)
{
	return (uint64_t)v << 32;
}

static size_t vlq(uint8_t *o, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;

	do {
		o[n] = (uint8_t)(u & 0x7f);
		u >>= 7;
		if (u)
			o[n] |= 0x80;
		n++;
	} while (u);
	return n;
}

/* (bytecode offset, script offset) pairs, all statements: the table V8 writes */
static size_t table(uint8_t *o, const int *code, const int *pos, int n)
{
	int64_t pc = -1, pp = 0;
	size_t len = 0;
	int i;

	for (i = 0; i < n; i++) {
		int64_t raw = (int64_t)(pos[i] + 1) << 1;

		len += vlq(o + len, code[i] - pc);
		len += vlq(o + len, raw - pp);
		pc = code[i];
		pp = raw;
	}
	return len;
}

static void map(uint64_t off, uint16_t type)
{
	memcpy(heap + off + M.map_type, &type, 2);
}

/* "a();" at offset 17 (line 2) from bytecode 0, "b();" at 24 (line 3) from bytecode 10 */
static void build(int with_ends)
{
	static const int code[] = { 0, 10 }, pos[] = { 17, 24 };
	uint8_t t[64];
	size_t tl = table(t, code, pos, 2), i;
	int32_t sl = (int32_t)strlen(SRC);
	uint64_t fp, ends[8];
	int nends = 0;

	memset(heap, 0, sizeof(heap));
	memset(stack, 0, sizeof(stack));
	map(M_BA, T_BA);
	map(M_BYTE, T_BYTE);
	map(M_FA, T_FA);
	map(M_SFI, T_SFI);
	map(M_SCRIPT, T_SCRIPT);
	map(M_FN, T_FN);
	map(M_STR, T_STR1);
	map(M_ODD, T_ODD);
	p64(O_BA, tagged(M_BA));
	p64(O_BA + 8, smi(40));
	p64(O_BA + M.ba_spt, tagged(O_SPT));
	p64(O_SPT, tagged(M_BYTE));
	p64(O_SPT + 8, smi((int64_t)tl));
	memcpy(heap + O_SPT + 16, t, tl);
	p64(O_FN, tagged(M_FN));
	p64(O_FN + M.jsf_shared, tagged(O_SFI));
	p64(O_SFI, tagged(M_SFI));
	p64(O_SFI + M.sfi_script, tagged(O_SCRIPT));
	p64(O_SCRIPT, tagged(M_SCRIPT));
	p64(O_SCRIPT + M.script_source, tagged(O_SRC));
	p64(O_SCRIPT + M.script_line_ends, tagged(with_ends ? O_ENDS : O_UNDEF));
	p64(O_UNDEF, tagged(M_ODD));
	for (i = 0; SRC[i]; i++)
		if (SRC[i] == '\n')
			ends[nends++] = smi((int64_t)i);
	p64(O_ENDS, tagged(M_FA));
	p64(O_ENDS + 8, smi(nends));
	memcpy(heap + O_ENDS + 16, ends, (size_t)nends * 8);
	p64(O_SRC, tagged(M_STR));
	memcpy(heap + O_SRC + M.str_length, &sl, 4);
	memcpy(heap + O_SRC + M.seq1_chars, SRC, strlen(SRC));
	/* the stack: the handler's frame (saved fp, return into the trampoline copy) at 0x40,
	 * the interpreter frame's pointer at 0x100 */
	fp = STACK + 0x100;
	memcpy(stack + 0x40, &fp, 8);
	{
		uint64_t r = RET, ba = tagged(O_BA), fn = tagged(O_FN);

		memcpy(stack + 0x48, &r, 8);
		memcpy(stack + 0x100 + M.fp_bytecode_array, &ba, 8);
		memcpy(stack + 0x100 + M.fp_function, &fn, 8);
	}
}

static void set_offset(int bytecode)
{
	uint64_t raw = smi(bytecode + M.ba_data - 1);

	memcpy(stack + 0x100 + M.fp_bytecode_offset, &raw, 8);
}

static int line(void)
{
	struct lw_fakemem_region r = { .addr = HEAP, .data = heap, .len = sizeof(heap) };
	struct lw_fakemem fm = { .regions = &r, .n = 1 };
	struct lw_reader rd = { .read = lw_fakemem_read, .ctx = &fm };
	uint64_t cursor = 0;

	return lw_v8__interp_line(&M, &rd, stack, STACK, sizeof(stack), RET, &cursor);
}

static int setup(void **state)
{
	(void)state;
	memset(&M, 0, sizeof(M));
	M.fp_bytecode_array = -32;
	M.fp_bytecode_offset = -40;
	M.fp_function = -16;
	M.map = 0;
	M.map_type = 12;
	M.fab_length = 8;
	M.fa_data = 16;
	M.ba_length = 8;
	M.ba_spt = 32;
	M.ba_data = 54;
	M.jsf_shared = 24;
	M.sfi_script = 32;
	M.script_source = 8;
	M.script_line_ends = 56;
	M.str_length = 12;
	M.seq1_chars = 16;
	M.seq2_chars = 16;
	M.thin_actual = 16;
	M.sliced_parent = 16;
	M.sliced_offset = 24;
	M.t_bytecode_array = T_BA;
	M.t_byte_array = T_BYTE;
	M.t_spt = T_BYTE;
	M.t_fixed_array = T_FA;
	M.t_sfi = T_SFI;
	M.t_script = T_SCRIPT;
	M.first_nonstring = 128;
	M.repr_mask = 7;
	M.enc_mask = 8;
	M.seq_tag = 0;
	M.thin_tag = 5;
	M.sliced_tag = 3;
	M.onebyte_tag = 8;
	return 0;
}

static void test_spt_lookup(void **state)
{
	static const int code[] = { 0, 10, 300 }, pos[] = { 17, 24, 100000 };
	uint8_t t[64];
	size_t n = table(t, code, pos, 3);

	(void)state;
	assert_int_equal(lw_v8__spt_lookup(t, n, 0), 17);
	assert_int_equal(lw_v8__spt_lookup(t, n, 9), 17);
	assert_int_equal(lw_v8__spt_lookup(t, n, 10), 24);
	assert_int_equal(lw_v8__spt_lookup(t, n, 299), 24);
	assert_int_equal(lw_v8__spt_lookup(t, n, 5000), 100000);
	/* cut in the middle of an entry: what was whole before it */
	assert_int_equal(lw_v8__spt_lookup(t, n - 1, 5000), 24);
	assert_int_equal(lw_v8__spt_lookup(t, 0, 5), -1);
	/* an endless continuation: no position */
	memset(t, 0xff, sizeof(t));
	assert_int_equal(lw_v8__spt_lookup(t, sizeof(t), 5), -1);
}

static void test_line_from_line_ends(void **state)
{
	(void)state;
	build(1);
	set_offset(3);
	assert_int_equal(line(), 2);
	set_offset(12);
	assert_int_equal(line(), 3);
}

static void test_line_from_source(void **state)
{
	(void)state;
	build(0);
	set_offset(3);
	assert_int_equal(line(), 2);
	set_offset(12);
	assert_int_equal(line(), 3);
}

static void test_no_wrong_line(void **state)
{
	uint64_t v;

	(void)state;
	build(1);
	/* past the bytecode's length, or before it */
	set_offset(40);
	assert_int_equal(line(), 0);
	set_offset(-1);
	assert_int_equal(line(), 0);
	/* the offset slot is no Smi */
	set_offset(3);
	stack[0x100 + M.fp_bytecode_offset] = 1;
	assert_int_equal(line(), 0);
	/* the frame's BytecodeArray is of another type */
	build(1);
	set_offset(3);
	map(M_BA, T_FA);
	assert_int_equal(line(), 0);
	/* no positions collected yet (undefined in the slot) */
	build(1);
	set_offset(3);
	p64(O_BA + M.ba_spt, tagged(O_UNDEF));
	assert_int_equal(line(), 0);
	/* a position past the script's last line end, and past its source's end */
	build(1);
	set_offset(3);
	p64(O_ENDS + 8, smi(1));
	{
		int32_t short_len = 10;

		memcpy(heap + O_SRC + M.str_length, &short_len, 4);
	}
	assert_int_equal(line(), 0);
	/* the return address nowhere in the copy */
	build(1);
	set_offset(3);
	v = 0;
	memcpy(stack + 0x48, &v, 8);
	assert_int_equal(line(), 0);
}

static void test_stale_return_address_skipped(void **state)
{
	uint64_t r = RET, junk = STACK + 0x80;

	(void)state;
	build(1);
	set_offset(12);
	/* a stale copy of the address lower down, its "frame" holding no BytecodeArray */
	memcpy(stack + 0x18, &r, 8);
	memcpy(stack + 0x10, &junk, 8);
	assert_int_equal(line(), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_spt_lookup, setup),
		cmocka_unit_test_setup(test_line_from_line_ends, setup),
		cmocka_unit_test_setup(test_line_from_source, setup),
		cmocka_unit_test_setup(test_no_wrong_line, setup),
		cmocka_unit_test_setup(test_stale_return_address_skipped, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
