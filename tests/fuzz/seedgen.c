// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Seeds for fuzz_pymem: for each CPython 3.8-3.13 layout, an address-space image that holds a
 * thread state, a three-frame chain with real-looking code objects (file, name, qualname, line
 * table), a Task with a str name and a str object, in the input format fuzz_pymem.c describes.
 * Built against the engine (make -f tests/fuzz/Makefile seeds), run once, output committed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "target/pyproc.h"

#define BASE 0x1000ull
static uint8_t img[4096];

static void put64(uint64_t a, uint64_t v) { memcpy(&img[a - BASE], &v, 8); }
static void put32(uint64_t a, uint32_t v) { memcpy(&img[a - BASE], &v, 4); }
static void put16(unsigned off, uint16_t v) { memcpy(&img[off], &v, 2); }

static void put_str(const struct lw_pylayout *l, uint64_t a, const char *s)
{
	put64(a + 16, strlen(s));
	put32(a + 32, (1u << 5) | (1u << 2) | (1u << 6));
	memcpy(&img[a - BASE + l->str_ascii], s, strlen(s));
}

static void put_code(const struct lw_pylayout *l, uint64_t a, uint64_t strs, const char *name,
		     int line)
{
	static const uint8_t table311[] = { 0x80, 0x00, 0xd8, 0x04, 0x08, 0x80, 0x45 };
	static const uint8_t lnotab[] = { 0x00, 0x01, 0x08, 0x01, 0x0a, 0x02 };

	put_str(l, strs, "/srv/app/handlers.py");
	put_str(l, strs + 0x60, name);
	put64(a + l->co_filename, strs);
	put64(a + l->co_name, strs + 0x60);
	if (l->co_qualname != 0xffff)
		put64(a + l->co_qualname, strs + 0x60);
	put32(a + l->co_firstlineno, (uint32_t)line);
	put64(a + l->co_table, strs + 0xc0);
	if (l->minor >= 11) {
		put64(strs + 0xc0 + 16, sizeof(table311));
		memcpy(&img[strs + 0xc0 + 32 - BASE], table311, sizeof(table311));
	} else {
		put64(strs + 0xc0 + 16, sizeof(lnotab));
		memcpy(&img[strs + 0xc0 + 32 - BASE], lnotab, sizeof(lnotab));
	}
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	int minor, variant;

	for (minor = 8; minor <= 13; minor++) {
		const struct lw_pylayout *l = lw_pylayout_for(minor);

		if (!l)
			continue;
		for (variant = 0; variant < 2; variant++) {
			uint64_t ts = BASE + 0x40, cf = BASE + 0x100, f1 = BASE + 0x180,
				 f2 = BASE + 0x300, code = BASE + 0x480, task = BASE + 0x600,
				 strs = BASE + 0x800, name = BASE + 0xb00;
			char path[512];
			FILE *f;

			memset(img, 0, sizeof(img));
			img[0] = (uint8_t)(minor - 8);
			put16(1, 0x20);				/* runtime */
			put16(3, (uint16_t)(ts - BASE));	/* tstate */
			put16(5, (uint16_t)(task - BASE));	/* callable */
			put16(7, (uint16_t)(task - BASE));	/* task */
			put16(9, (uint16_t)(name - BASE));	/* dict (a str here) */
			put16(11, (uint16_t)(code - BASE));	/* code */
			if (l->cframe_cur != 0xffff) {
				put64(ts + l->ts_frame, cf);
				put64(cf + l->cframe_cur, f1);
			} else {
				put64(ts + l->ts_frame, f1);
			}
			put64(f1 + l->f_code, code);
			put64(f1 + l->f_instr, l->instr_is_ptr ? code + l->code_basicsize + 4 : 2);
			put64(f1 + l->f_back, variant ? f1 : f2);	/* variant 1: a cycle */
			put64(f2 + l->f_code, code);
			put64(f2 + l->f_back, 0);
			put_code(l, code, strs, "handle_request", 40);
			put64(task + 8, BASE + 0xf00);
			put64(task + l->task_name, name);
			put64(task + l->task_coro, BASE + 0xe00);
			put64(BASE + 0xe00 + l->coro_code, code);
			put_str(l, name, variant ? "Task-7" : "payment-42");
			snprintf(path, sizeof(path), "%s/py3%d-%d", dir, minor, variant);
			f = fopen(path, "wb");
			if (!f || fwrite(img, 1, sizeof(img), f) != sizeof(img)) {
				perror(path);
				return 1;
			}
			fclose(f);
		}
	}
	return 0;
}
