// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * target/pycode.c's cache under a hostile target (issue 19): a process that makes ever new code
 * objects with big line tables. The cache keeps to its budget, evicting the least recently used
 * entry and counting it; before, it kept 65,536 entries with up to 256 KiB of table each.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "target/pycode.h"

/* Code object i lives at CODE + i * STEP; its line table (a bytes object) at TBL + i * STEP */
#define CODE 0x100000000ull
#define TBL 0x900000000000ull
#define STEP 0x1000ull
#define TABLE_LEN (16 * 1024)

static const struct lw_pylayout *layout(void)
{
	static struct lw_pylayout lay;

	lay.co_filename = 8;
	lay.co_name = 16;
	lay.co_firstlineno = 24;
	lay.co_table = 32;
	lay.co_qualname = 0xffff;
	return &lay;
}

static unsigned generation;	/* bumped: every address holds another code object */
static uint8_t table_byte;	/* the line tables' bytes (changed: same ident, other lines) */

/* synthesizes the target's memory: any number of distinct code objects */
static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0, len);
	if (addr >= TBL) {
		uint64_t off = (addr - TBL) % STEP;

		if (off == 16 && len == 8) {	/* ob_size */
			int64_t n = TABLE_LEN;

			memcpy(buf, &n, 8);
		} else if (off >= 32) {
			memset(buf, table_byte, len);
		}
		return 0;
	}
	if (addr >= CODE && addr < TBL) {
		uint64_t i = (addr - CODE) / STEP, off = (addr - CODE) % STEP, v = 0;

		if (off == 8 || off == 16)
			v = 0x7000000000ull + i * 64 + off + generation;	/* filename, name objects */
		else if (off == 24)
			v = (uint64_t)(i % 100000) + 1;
		else if (off == 32)
			v = TBL + i * STEP;
		else
			return 0;
		memcpy(buf, &v, len < 8 ? len : 8);
		return 0;
	}
	return -EFAULT;
}

/* AddressSanitizer: no quarantine of freed blocks (it would hold up to 256 MB of what the
 * budget evicted), and room for its shadow memory and redzones */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=0";
}
#define RSS_LIMIT_KIB (256 * 1024)
#else
#define RSS_LIMIT_KIB (128 * 1024)
#endif

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* 100,000 distinct code objects, 16 KiB of line table each (1.6 GB in all): the cache stays
 * within its default budget, memory does not grow with them, and every eviction is counted */
static void test_many_code_objects_bounded(void **state)
{
	struct lw_reader rd = { fake_read, NULL };
	struct lw_pycache *c = NULL;
	const struct lw_pycode *pc;
	long before;
	uint64_t i, n = 100000;

	(void)state;
	assert_int_equal(lw_pycache__new(layout(), 12, &c), 0);
	before = maxrss_kb();
	for (i = 0; i < n; i++) {
		pc = lw_pycache__get(c, &rd, CODE + i * STEP);
		assert_non_null(pc);
		assert_int_equal(pc->table_len, TABLE_LEN);
		assert_int_equal(pc->firstlineno, (int)(i % 100000) + 1);
	}
	assert_true(lw_pycache__bytes(c) <= 32u << 20);
	assert_true(lw_pycache__size(c) <= 16384);
	assert_int_equal(lw_pycache__evicted(c) + lw_pycache__size(c), n);
	/* 32 MiB of budget; before, 65,536 tables of 16 KiB: over 1 GiB */
	printf("100,000 code objects: peak RSS +%ld KiB\n", maxrss_kb() - before);
	assert_true(maxrss_kb() - before < RSS_LIMIT_KIB);
	lw_pycache__free(c);
}

/* least recently used goes first: an entry used all along stays (no re-read), the others go,
 * except the last 256 looked up (callers hold a stack's frames at once) */
static void test_lru_keeps_the_hot_entry(void **state)
{
	struct lw_reader rd = { fake_read, NULL };
	struct lw_pycache *c = NULL;
	const struct lw_pycode *hot, *pc, *held[255];
	uint64_t i;

	(void)state;
	assert_int_equal(lw_pycache__new(layout(), 12, &c), 0);
	lw_pycache__set_budget(c, 8, 0);
	hot = lw_pycache__get(c, &rd, CODE);
	assert_non_null(hot);
	for (i = 1; i <= 1000; i++) {
		assert_non_null(lw_pycache__get(c, &rd, CODE + i * STEP));
		pc = lw_pycache__get(c, &rd, CODE);
		assert_ptr_equal(pc, hot);	/* a hit: the same entry */
	}
	/* the budget, or the entries of the last 256 lookups (128 here, and the hot one) */
	assert_true(lw_pycache__size(c) <= 8 + 128 + 1);
	assert_int_equal(lw_pycache__evicted(c) + lw_pycache__size(c), 1001);
	/* pointers of the last 255 lookups stay valid however many were evicted since */
	for (i = 0; i < 255; i++) {
		held[i] = lw_pycache__get(c, &rd, CODE + (2000 + i) * STEP);
		assert_non_null(held[i]);
	}
	for (i = 0; i < 255; i++) {
		assert_int_equal(held[i]->addr, CODE + (2000 + i) * STEP);
		assert_int_equal(held[i]->table_len, TABLE_LEN);
	}
	/* a byte budget of three tables: past the protected lookups, bytes are back to it */
	lw_pycache__set_budget(c, 0, 3 * (TABLE_LEN + 1024));
	for (i = 3000; i < 3600; i++)
		assert_non_null(lw_pycache__get(c, &rd, CODE + i * STEP));
	assert_true(lw_pycache__size(c) <= 256);
	assert_true(lw_pycache__bytes(c) <= 256 * (TABLE_LEN + 1024));
	/* a reused address (other objects there now) is read again */
	generation++;
	pc = lw_pycache__get(c, &rd, CODE + 3599 * STEP);
	assert_non_null(pc);
	assert_int_equal(pc->table_len, TABLE_LEN);
	assert_int_not_equal(pc->name_obj, 0);
	lw_pycache__free(c);
}

/* issue 20 item 5: a code object compiled anew at a freed one's address, with the same name,
 * file and first line but other lines: its line table is read anew, not the old one's */
static void test_same_ident_new_table(void **state)
{
	struct lw_pycache *c;
	struct lw_reader rd = { .read = fake_read };
	const struct lw_pycode *pc;

	(void)state;
	assert_int_equal(lw_pycache__new(layout(), 11, &c), 0);
	table_byte = 1;
	pc = lw_pycache__get(c, &rd, CODE);
	assert_non_null(pc);
	assert_int_equal(pc->table[0], 1);
	pc = lw_pycache__get(c, &rd, CODE);
	assert_int_equal(pc->table[TABLE_LEN - 1], 1);
	table_byte = 2;
	pc = lw_pycache__get(c, &rd, CODE);
	assert_non_null(pc);
	assert_int_equal(pc->table[0], 2);
	assert_int_equal(pc->table[TABLE_LEN - 1], 2);
	table_byte = 0;
	lw_pycache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_code_objects_bounded),
		cmocka_unit_test(test_lru_keeps_the_hot_entry),
		cmocka_unit_test(test_same_ident_new_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
