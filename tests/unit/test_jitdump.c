// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * V8's jitdump records (target/jitdump.c), built by hand as node --perf-prof writes them: the
 * header, DEBUG_INFO (id 2: code_addr, nr_entry, {addr, line, column, name\0}...) before its
 * CODE_LOAD (id 0: pid, tid, vma, code_addr, code_size, code_index, name\0, code). The file is
 * the target's: cut records, absurd counts and garbage must give the documented results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "target/jitdump.h"
#include "target/memread.h"
#include "target/nativesym.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define ELF_HDR 0x40	/* V8 writes each line's address past an ELF header's size */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->cap - b->len < n) {
		b->cap = (b->cap + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put32(struct buf *b, uint32_t v) { put(b, &v, 4); }
static void put64(struct buf *b, uint64_t v) { put(b, &v, 8); }

static void header(struct buf *b)
{
	put32(b, 0x4A695444u);	/* "JiTD" */
	put32(b, 1);
	put32(b, 40);		/* its size */
	put32(b, 62);		/* EM_X86_64 */
	put32(b, 0);
	put32(b, 4242);
	put64(b, 1);
	put64(b, 0);
}

/* a record's start: returns where its size goes */
static size_t rec_begin(struct buf *b, uint32_t id)
{
	size_t at = b->len;

	put32(b, id);
	put32(b, 0);
	put64(b, 7);		/* time stamp */
	return at;
}

static void rec_end(struct buf *b, size_t at)
{
	uint32_t size;

	while (b->len % 8)	/* V8 pads records to 8 bytes */
		put(b, "", 1);
	size = (uint32_t)(b->len - at);
	memcpy(b->p + at + 4, &size, 4);
}

struct ent {
	uint32_t off;		/* into the code */
	int32_t line;
	const char *name;	/* NULL: "\xff" (the previous name) */
	size_t name_len;	/* 0: strlen */
};

static void debug_info(struct buf *b, uint64_t code, const struct ent *e, size_t n)
{
	size_t at = rec_begin(b, 2), i;

	put64(b, code);
	put64(b, n);
	for (i = 0; i < n; i++) {
		put64(b, code + ELF_HDR + e[i].off);
		put32(b, (uint32_t)e[i].line);
		put32(b, 5);	/* column */
		if (!e[i].name)
			put(b, "\xff", 2);
		else
			put(b, e[i].name, (e[i].name_len ? e[i].name_len : strlen(e[i].name)) + 1);
	}
	rec_end(b, at);
}

static void code_load(struct buf *b, uint64_t code, uint64_t size, const char *name)
{
	size_t at = rec_begin(b, 0);

	put32(b, 4242);
	put32(b, 4242);
	put64(b, code);
	put64(b, code);
	put64(b, size);
	put64(b, 1);
	put(b, name, strlen(name) + 1);
	put(b, "\xcc\xcc\xcc\xcc", 4);	/* code bytes */
	rec_end(b, at);
}

static const struct ent basic[] = {
	{ 0x00, 10, "/srv/app.js", 0 },
	{ 0x20, 12, NULL, 0 },
	{ 0x50, 15, NULL, 0 },
};

static void test_line(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct lw_jitdump_names names = { 0 };
	struct buf b = { 0 };

	(void)state;
	header(&b);
	debug_info(&b, 0x10000, basic, 3);
	code_load(&b, 0x10000, 0x100, "JS:*handler /srv/app.js:10:1");
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, &names), b.len);
	assert_int_equal(jd.n, 1);
	assert_int_equal(lw_jitdump__line(&jd, 0x10000, 10), 10);
	assert_int_equal(lw_jitdump__line(&jd, 0x1001f, 10), 10);
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 10), 12);	/* \xff: the previous name */
	assert_int_equal(lw_jitdump__line(&jd, 0x100ff, 10), 15);
	assert_int_equal(lw_jitdump__line(&jd, 0x10100, 10), 0);	/* past the code */
	assert_int_equal(lw_jitdump__line(&jd, 0xffff, 10), 0);
	/* lines before the function's first: inlined code, the function's own line before */
	assert_int_equal(lw_jitdump__line(&jd, 0x10060, 13), 15);
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 13), 0);
	assert_non_null(names.text);
	assert_int_equal(names.len, strlen("10000 100 JS:*handler /srv/app.js:10:1\n"));
	assert_memory_equal(names.text, "10000 100 JS:*handler /srv/app.js:10:1\n", names.len);
	/* nothing more: a later feed of nothing consumes nothing */
	assert_int_equal(lw_jitdump__feed(&jd, b.p + b.len, 0, 0, 0, NULL), 0);
	free(names.text);
	lw_jitdump__clear(&jd);
	assert_int_equal(jd.n, 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 10), 0);
	free(b.p);
}

/*
 * The code at an address, as the perf map has it now (its start), is not the code the jitdump's
 * newest record there describes: that record's lines are not this code's (issue 21: an
 * interpreter trampoline copy over a dropped function whose record, from another file, was
 * read; the copy's own record was still in V8's stdio buffer).
 */
static void test_line_of_code_at_start(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct buf b = { 0 };

	(void)state;
	header(&b);
	debug_info(&b, 0x10000, basic, 3);
	code_load(&b, 0x10000, 0x100, "JS:*dropped /srv/app.js:10:1");
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), b.len);
	/* the perf map says code starting at 0x10080 is there now: no line known for it */
	assert_int_equal(lw_jitdump__line(&jd, 0x10090, 1), 15);
	assert_int_equal(lw_jitdump__line_at(&jd, 0x10090, 0x10080, 1), 0);
	/* the same code as the record: its lines */
	assert_int_equal(lw_jitdump__line_at(&jd, 0x10090, 0x10000, 1), 15);
	assert_int_equal(lw_jitdump__line_at(&jd, 0x10025, 0x10000, 1), 12);
	/* start unknown (0): any record that covers it, as lw_jitdump__line */
	assert_int_equal(lw_jitdump__line_at(&jd, 0x10025, 0, 1), 12);
	lw_jitdump__clear(&jd);
	free(b.p);
}

/* Code without a line table (an interpreter trampoline copy) in the slot of dropped code that
 * had one: the dropped code's lines are not its own */
static void test_code_without_lines_hides_older(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct buf b = { 0 };

	(void)state;
	header(&b);
	debug_info(&b, 0x10000, basic, 3);
	code_load(&b, 0x10000, 0x100, "JS:~readFileSync node:fs:497:1");
	code_load(&b, 0x10000, 0x100, "JS:~fifoRoute /srv/app.js:56:19");
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), b.len);
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 1), 0);
	assert_int_equal(lw_jitdump__line_at(&jd, 0x10025, 0x10000, 1), 0);
	lw_jitdump__clear(&jd);
	free(b.p);
}

/* Node 18's and 20's V8 write paths from freed memory: garbage, with a 0 inside */
static void test_garbage_names(void **state)
{
	static const char g1[] = "/srv/\x01\x8f\0zz\x90\x91garbage-after-a-zero";
	static const char g2[] = "\x7f\0\0\0\0\0\0\0\0\0\0\0\x45";	/* 0s, then the end */
	const struct ent e[] = {
		{ 0x00, 3, g1, sizeof(g1) - 1 },
		{ 0x10, 4, NULL, 0 },
		{ 0x30, 9, g2, sizeof(g2) - 1 },
	};
	struct lw_jitdump jd = { 0 };
	struct buf b = { 0 };

	(void)state;
	header(&b);
	debug_info(&b, 0x40000, e, 3);
	code_load(&b, 0x40000, 0x80, "JS:*f /srv/x.js:3:1");
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), b.len);
	assert_int_equal(jd.n, 1);
	assert_int_equal(lw_jitdump__line(&jd, 0x40008, 1), 3);
	assert_int_equal(lw_jitdump__line(&jd, 0x40018, 1), 4);
	assert_int_equal(lw_jitdump__line(&jd, 0x4007f, 1), 9);
	lw_jitdump__clear(&jd);
	free(b.p);
}

/* the same bytes fed in two parts, cut anywhere: the same result as in one */
static void test_split(void **state)
{
	struct buf b = { 0 };
	size_t k;

	(void)state;
	header(&b);
	debug_info(&b, 0x10000, basic, 3);
	code_load(&b, 0x10000, 0x100, "JS:*handler /srv/app.js:10:1");
	debug_info(&b, 0x20000, basic, 2);
	code_load(&b, 0x20000, 0x40, "JS:*other /srv/app.js:10:1");
	for (k = 0; k <= b.len; k++) {
		struct lw_jitdump jd = { 0 };
		struct lw_jitdump_names names = { 0 };
		size_t first = lw_jitdump__feed(&jd, b.p, k, 1, k, &names), second;

		assert_true(first <= k);
		if (k < 40)
			assert_int_equal(first, 0);	/* no whole header yet */
		second = lw_jitdump__feed(&jd, b.p + first, b.len - first, first == 0,
					  b.len - first, &names);
		assert_int_equal(first + second, b.len);
		assert_int_equal(jd.n, 2);
		assert_int_equal(lw_jitdump__line(&jd, 0x10025, 10), 12);
		assert_int_equal(lw_jitdump__line(&jd, 0x20025, 10), 12);
		assert_int_equal(lw_jitdump__line(&jd, 0x20040, 10), 0);
		assert_non_null(names.text);
		assert_non_null(strstr(names.text, "20000 40 JS:*other"));
		free(names.text);
		lw_jitdump__clear(&jd);
	}
	free(b.p);
}

static void test_bad_records(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct lw_jitdump_names names = { 0 };
	struct buf b = { 0 };
	size_t at, good;
	uint32_t v;

	(void)state;
	/* not a jitdump, or a header larger than what was read: nothing consumed */
	header(&b);
	memcpy(b.p, "JITD", 4);
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), 0);
	memcpy(b.p, "DTiJ", 4);
	v = 41;
	memcpy(b.p + 8, &v, 4);
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), 0);
	v = 11;
	memcpy(b.p + 8, &v, 4);
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, NULL), 0);
	b.len = 0;

	/* n entries absurd: the DEBUG_INFO is dropped; its CODE_LOAD still names the code */
	header(&b);
	debug_info(&b, 0x10000, basic, 3);
	v = 0xffffffffu;
	memcpy(b.p + 40 + 16 + 8, &v, 4);
	memcpy(b.p + 40 + 16 + 12, &v, 4);
	code_load(&b, 0x10000, 0x100, "JS:*a /srv/app.js:10:1");
	/* n = 0 */
	at = b.len;
	debug_info(&b, 0x20000, basic, 3);
	memset(b.p + at + 16 + 8, 0, 8);
	code_load(&b, 0x20000, 0x100, "JS:*b /srv/app.js:10:1");
	/* one entry more than there are: the last is cut */
	at = b.len;
	debug_info(&b, 0x30000, basic, 3);
	b.p[at + 16 + 8] = 4;
	code_load(&b, 0x30000, 0x100, "JS:*c /srv/app.js:10:1");
	/* a DEBUG_INFO too short for its count */
	at = rec_begin(&b, 2);
	put64(&b, 0x50000);
	rec_end(&b, at);
	code_load(&b, 0x50000, 0x100, "JS:*e /srv/app.js:10:1");
	/* a CODE_LOAD for another address than its DEBUG_INFO: no lines */
	debug_info(&b, 0x60000, basic, 3);
	code_load(&b, 0x61000, 0x100, "JS:*f /srv/app.js:10:1");
	/* a CODE_LOAD without a name's end, then one of size 0: neither gives lines */
	debug_info(&b, 0x70000, basic, 3);
	at = rec_begin(&b, 0);
	put(&b, "\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1xy", 42);
	rec_end(&b, at);
	b.p[b.len - 1] = b.p[b.len - 2] = 'z';		/* padding that is not 0 */
	code_load(&b, 0x70000, 0x100, "JS:*g");
	debug_info(&b, 0x80000, basic, 3);
	code_load(&b, 0x80000, 0, "JS:*h");
	/* unknown record types are stepped over */
	at = rec_begin(&b, 9);
	put64(&b, 0);
	rec_end(&b, at);
	/* and then a good one */
	debug_info(&b, 0x90000, basic, 3);
	code_load(&b, 0x90000, 0x100, "JS:*i /srv/app.js:10:1");
	good = b.len;
	/* a record of size < 16: the parse stops there, for good */
	at = rec_begin(&b, 0);
	memset(b.p + at + 4, 0, 4);
	debug_info(&b, 0xa0000, basic, 3);
	code_load(&b, 0xa0000, 0x100, "JS:*j");

	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 1, b.len, &names), good);
	assert_int_equal(lw_jitdump__feed(&jd, b.p + good, b.len - good, 0, b.len - good, NULL), 0);
	/* one code object with lines; the others are kept without (they hide older code's) */
	{
		size_t i, with_lines = 0;

		for (i = 0; i < jd.n; i++)
			with_lines += jd.codes[i].n > 0;
		assert_int_equal(with_lines, 1);
	}
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x20025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x30025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x50025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x60025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x61025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x70025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x80025, 10), 0);
	assert_int_equal(lw_jitdump__line(&jd, 0x90025, 10), 12);
	assert_int_equal(lw_jitdump__line(&jd, 0xa0025, 10), 0);
	/* the names of every CODE_LOAD with a name's end and a size */
	assert_non_null(strstr(names.text, "10000 100 JS:*a "));
	assert_non_null(strstr(names.text, "30000 100 JS:*c "));
	assert_non_null(strstr(names.text, "61000 100 JS:*f "));
	assert_non_null(strstr(names.text, "70000 100 JS:*g\n"));
	assert_null(strstr(names.text, "JS:*h"));
	assert_null(strstr(names.text, "JS:*j"));
	free(names.text);
	lw_jitdump__clear(&jd);
	free(b.p);
}

/* a record larger than a read can hold: stepped over once the file holds all of it */
static void test_huge_record(void **state)
{
	struct lw_jitdump jd = { 0 };
	unsigned char r[32] = { 0 };
	uint32_t size = LW_JITDUMP_CHUNK + 8, small = 4096;

	(void)state;
	memcpy(r + 4, &size, 4);
	assert_int_equal(lw_jitdump__feed(&jd, r, sizeof(r), 0, size - 1, NULL), 0);
	assert_int_equal(lw_jitdump__feed(&jd, r, sizeof(r), 0, size, NULL), size);
	assert_int_equal(lw_jitdump__feed(&jd, r, sizeof(r), 0, 0, NULL), 0);	/* a caller's lie */
	/* one that a read can hold: waited for */
	memcpy(r + 4, &small, 4);
	assert_int_equal(lw_jitdump__feed(&jd, r, sizeof(r), 0, 1u << 30, NULL), 0);
	assert_int_equal(jd.n, 0);
}

/* past LW_JITDUMP_CODES codes the oldest half goes */
static void test_eviction(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct buf b = { 0 };
	const size_t total = LW_JITDUMP_CODES + 1;
	size_t i;

	(void)state;
	for (i = 0; i < total; i++) {
		struct ent e = { 0, (int32_t)(i % 1000000) + 1, "/a.js", 0 };

		debug_info(&b, 0x100000 + i * 0x100, &e, 1);
		code_load(&b, 0x100000 + i * 0x100, 0x100, "JS:*f");
	}
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 0, b.len, NULL), b.len);
	assert_int_equal(jd.n, LW_JITDUMP_CODES / 2 + 1);
	assert_int_equal(lw_jitdump__line(&jd, 0x100010, 1), 0);
	i = LW_JITDUMP_CODES / 2 - 1;
	assert_int_equal(lw_jitdump__line(&jd, 0x100010 + i * 0x100, 1), 0);
	i++;
	assert_int_equal(lw_jitdump__line(&jd, 0x100010 + i * 0x100, 1), (int)i + 1);
	i = total - 1;
	assert_int_equal(lw_jitdump__line(&jd, 0x100010 + i * 0x100, 1), (int)i + 1);
	lw_jitdump__clear(&jd);
	free(b.p);
}

/* more than LW_JITDUMP_ENTS lines: the first ones kept; code reused: the later code wins */
static void test_many_lines_and_reuse(void **state)
{
	struct lw_jitdump jd = { 0 };
	struct buf b = { 0 };
	struct ent *e = calloc(LW_JITDUMP_ENTS + 10, sizeof(*e));
	size_t i;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < LW_JITDUMP_ENTS + 10; i++)
		e[i] = (struct ent){ (uint32_t)i * 4, (int32_t)i + 1, "/a.js", 0 };
	debug_info(&b, 0x10000, e, LW_JITDUMP_ENTS + 10);
	code_load(&b, 0x10000, 0x100000, "JS:*big");
	debug_info(&b, 0x10000, basic, 3);
	code_load(&b, 0x10000, 0x40, "JS:*small");
	assert_int_equal(lw_jitdump__feed(&jd, b.p, b.len, 0, b.len, NULL), b.len);
	assert_int_equal(jd.n, 2);
	assert_int_equal(lw_jitdump__line(&jd, 0x10025, 1), 12);		/* the later code */
	assert_int_equal(lw_jitdump__line(&jd, 0x10000 + 100 * 4, 1), 101);
	assert_int_equal(lw_jitdump__line(&jd, 0x10000 + (LW_JITDUMP_ENTS + 5) * 4, 1),
			 LW_JITDUMP_ENTS);
	lw_jitdump__clear(&jd);
	free(e);
	free(b.p);
}

/*
 * The tail still in the writer's stdio buffer (lw_nativesym__jit_line with a reader): this
 * process writes a jitdump as V8 does (jit-PID.dump through a FILE with a big buffer, the file
 * mapped for perf to find) and reads it back as the target it is. Code written before the last
 * flush has its line from the file; code written after it, from the buffer only; a record cut
 * by the flush, from the file's end and the buffer together.
 */
static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_tail_in_stdio_buffer(void **state)
{
	char dir[] = "/tmp/lw-jdtail-XXXXXX", path[64];
	struct lw_nativesym *ns = NULL;
	struct lw_memread *mr = NULL;
	struct lw_reader rd;
	struct buf a = { 0 }, c = { 0 };
	size_t cut;
	void *map;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/jit-%d.dump", dir, (int)getpid());
	f = fopen(path, "w+");
	assert_non_null(f);
	assert_int_equal(setvbuf(f, NULL, _IOFBF, 1 << 20), 0);
	map = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fileno(f), 0);
	assert_true(map != MAP_FAILED);
	header(&a);
	debug_info(&a, 0x10000, basic, 3);
	code_load(&a, 0x10000, 0x100, "JS:*handler /srv/app.js:10:1");
	assert_int_equal(fwrite(a.p, 1, a.len, f), a.len);
	assert_int_equal(fflush(f), 0);
	/* the next: its first part flushed, the rest and one more record buffered */
	debug_info(&c, 0x20000, basic, 2);
	code_load(&c, 0x20000, 0x40, "JS:*other /srv/app.js:10:1");
	cut = c.len / 2;
	assert_int_equal(fwrite(c.p, 1, cut, f), cut);
	assert_int_equal(fflush(f), 0);
	assert_int_equal(fwrite(c.p + cut, 1, c.len - cut, f), c.len - cut);
	free(c.p);
	memset(&c, 0, sizeof(c));
	{
		const struct ent e[] = { { 0x00, 30, "/srv/app.js", 0 }, { 0x10, 33, NULL, 0 } };

		debug_info(&c, 0x30000, e, 2);
	}
	code_load(&c, 0x30000, 0x40, "JS:*osr /srv/app.js:30:1");
	assert_int_equal(fwrite(c.p, 1, c.len, f), c.len);

	assert_int_equal(lw_nativesym__new("/proc", getpid(), &ns), 0);
	assert_int_equal(lw_memread__open(getpid(), &mr), 0);
	rd = lw_memread__reader(mr);
	/* the file alone: the first code only */
	assert_int_equal(lw_nativesym__jit_line(ns, NULL, 0x10025, 10), 12);
	assert_int_equal(lw_nativesym__jit_line(ns, NULL, 0x20025, 10), 0);
	assert_int_equal(lw_nativesym__jit_line(ns, NULL, 0x30018, 30), 0);
	/* and the buffer: the cut record and the one written after it */
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x10025, 10), 12);
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x20025, 10), 12);
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x30018, 30), 33);
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x40000, 30), 0);
	/* flushed since (the reads are at most every 5 ms): from the file, the same */
	assert_int_equal(fflush(f), 0);
	sleep_ms(12);
	assert_int_equal(lw_nativesym__jit_line(ns, NULL, 0x30018, 30), 33);
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x30018, 30), 33);
	assert_int_equal(lw_nativesym__jit_line(ns, &rd, 0x20025, 10), 12);
	lw_nativesym__free(ns);
	lw_memread__close(mr);
	munmap(map, 4096);
	fclose(f);
	unlink(path);
	rmdir(dir);
	free(a.p);
	free(c.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_line_of_code_at_start),
		cmocka_unit_test(test_code_without_lines_hides_older),
		cmocka_unit_test(test_tail_in_stdio_buffer),
		cmocka_unit_test(test_garbage_names),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_huge_record),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_many_lines_and_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
