// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * V8's jitdump (--perf-prof: jit-PID.dump in node's working directory, mmapped so that perf
 * finds it): per code object its address range and, for code compiled with source positions
 * (Sparkplug, Maglev, TurboFan; not the interpreter), the line of each instruction run. That
 * is the line of the work in a JS frame; the perf map only has the function's first line.
 * V8 writes the file through a 2 MB buffer: code is in it once that much was written after
 * it (or at exit), so a function compiled moments ago has no line yet.
 * Bounded: LW_JITDUMP_CODES code objects with line tables (the oldest half dropped past it), at
 * most LW_JITDUMP_ENTS lines each.
 */
#include "target/jitdump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JD_CODES LW_JITDUMP_CODES
#define JD_ENTS LW_JITDUMP_ENTS
#define JD_ELF_HDR 0x40		/* V8 writes each line's address past an ELF header's size */

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void jd_code_free(struct lw_jitdump_code *c)
{
	free(c->off);
	free(c->line);
	c->off = NULL;
	c->line = NULL;
	c->n = 0;
}

void lw_jitdump__clear(struct lw_jitdump *jd)
{
	for (size_t i = 0; i < jd->n; i++)
		jd_code_free(&jd->codes[i]);
	free(jd->codes);
	jd->codes = NULL;
	jd->n = 0;
	jd_code_free(&jd->pending);
}

/*
 * DEBUG_INFO (id 2): code_addr, nr_entry, then {addr, line, column, name\0} each, kept until
 * its CODE_LOAD comes. A name is the source file's path, or "\xff" for the previous one. Node
 * 18's and 20's V8 write paths from memory already freed: the bytes are not to be trusted and
 * may hold a 0. So a name's end is the first 0 that is followed by a well-formed entry (its
 * address inside the code, not below the previous one, a line > 0, a small column) or, for
 * the last, by the record's padding, and the names are not used. (Node 20's V8 gives code
 * inlined from another function its own line under the outer function's path: see
 * lw_nativesym__jit_line.)
 */
static int jd_entry_ok(const unsigned char *p, size_t len, size_t at, uint64_t code, uint64_t min)
{
	uint64_t a;
	int32_t l, col;

	if (len < at || len - at < 17)
		return 0;
	a = rd64(p + at);
	memcpy(&l, p + at + 8, 4);
	memcpy(&col, p + at + 12, 4);
	return a >= code + JD_ELF_HDR && a - code - JD_ELF_HDR <= UINT32_MAX &&
	       a - code - JD_ELF_HDR >= min && l > 0 && l < (1 << 26) && col >= 0 &&
	       col < (1 << 24);
}

static int jd_parse_debug(struct lw_jitdump_code *c, const unsigned char *p, size_t len,
			  uint64_t n)
{
	uint64_t code = rd64(p), i;
	size_t at = 16;

	c->n = 0;
	c->start = code;
	for (i = 0; i < n; i++) {
		uint64_t a, min = c->n ? c->off[c->n - 1] : 0;
		size_t q, e;
		int32_t l;

		if (!jd_entry_ok(p, len, at, code, min))
			return -1;
		a = rd64(p + at);
		memcpy(&l, p + at + 8, 4);
		q = at + 16;
		if (p[q] == 0xff && q + 1 < len && p[q + 1] == 0) {
			e = q + 1;
		} else {
			for (e = q; e < len; e++)
				if (!p[e] && (i + 1 < n ? jd_entry_ok(p, len, e + 1, code,
								      a - code - JD_ELF_HDR) :
							  len - (e + 1) < 8))
					break;
			if (e >= len)
				return -1;
		}
		at = e + 1;
		if (c->n < JD_ENTS) {
			c->off[c->n] = (uint32_t)(a - code - JD_ELF_HDR);
			c->line[c->n] = l;
			c->n++;
		}
	}
	return 0;
}

static void jd_debug_info(struct lw_jitdump *jd, const unsigned char *p, size_t len)
{
	struct lw_jitdump_code *c = &jd->pending;
	uint64_t n;

	jd_code_free(c);
	if (len < 16)
		return;
	n = rd64(p + 8);
	if (!n || n > (len - 16) / 17)
		return;
	c->off = malloc((n < JD_ENTS ? n : JD_ENTS) * sizeof(*c->off));
	c->line = malloc((n < JD_ENTS ? n : JD_ENTS) * sizeof(*c->line));
	if (!c->off || !c->line || jd_parse_debug(c, p, len, n))
		jd_code_free(c);
}

/* CODE_LOAD (id 0): pid, tid, vma, code_addr, code_size, code_index, name\0, code bytes.
 * Its name goes to names as a perf-map line (all merged at once: one sort per read) */
static void jd_code_load(struct lw_jitdump *jd, const unsigned char *p, size_t len,
			 struct lw_jitdump_names *names)
{
	struct lw_jitdump_code *c = &jd->pending;
	uint64_t addr, size;
	const unsigned char *nul;

	if (len < 41 || !(nul = memchr(p + 40, 0, len - 40))) {
		jd_code_free(c);
		return;
	}
	addr = rd64(p + 16);
	size = rd64(p + 24);
	/* the name, as the perf map would have it: for a process run with --perf-prof alone
	 * (with a perf map too, that map has the names) */
	if (names && size && nul - (p + 40) < LW_JITDUMP_NAME_MAX) {
		if (names->cap - names->len < LW_JITDUMP_NAME_MAX + 48) {
			size_t nc = names->cap ? names->cap * 2 : 65536;
			char *nt = realloc(names->text, nc);

			if (nt) {
				names->text = nt;
				names->cap = nc;
			}
		}
		if (names->cap - names->len >= LW_JITDUMP_NAME_MAX + 48)
			names->len += (size_t)snprintf(names->text + names->len,
						       names->cap - names->len, "%llx %llx %s\n",
						       (unsigned long long)addr,
						       (unsigned long long)size,
						       (const char *)(p + 40));
	}
	if (!size) {
		jd_code_free(c);
		return;
	}
	/* code without a line table (an interpreter trampoline copy, a stub) is kept too, with
	 * no lines: laid over dropped code that had lines, it is the code there now, and the
	 * lines of the dropped code are not its own (issue 21: fifoRoute's trampoline copy in
	 * the slot of another function's, given lines of node's fs.js) */
	if (!c->n || c->start != addr) {
		jd_code_free(c);
		c->start = addr;
	}
	if (jd->n == JD_CODES) {
		/* the oldest half goes: code written since is what runs now */
		size_t half = JD_CODES / 2, i;

		for (i = 0; i < half; i++)
			jd_code_free(&jd->codes[i]);
		memmove(jd->codes, jd->codes + half, (jd->n - half) * sizeof(*jd->codes));
		jd->n -= half;
	}
	if (!jd->codes) {
		jd->codes = calloc(JD_CODES, sizeof(*jd->codes));
		if (!jd->codes) {
			jd_code_free(c);
			return;
		}
	}
	c->size = size;
	jd->codes[jd->n++] = *c;
	memset(c, 0, sizeof(*c));
}

size_t lw_jitdump__feed(struct lw_jitdump *jd, const void *buf, size_t len, int at_start,
			uint64_t file_left, struct lw_jitdump_names *names)
{
	const unsigned char *b = buf;
	size_t at = 0;

	if (at_start) {
		/* the header: magic "JiTD" (0x4A695444), version, its own size */
		if (len < 12 || rd32(b) != 0x4A695444u || rd32(b + 8) < 12 || rd32(b + 8) > len)
			return 0;
		at = rd32(b + 8);
	}
	while (len - at >= 16) {
		uint32_t id = rd32(b + at), size = rd32(b + at + 4);

		if (size < 16)
			break;			/* not a jitdump record: stop here */
		if (size > len - at) {
			/* bigger than the rest of the read: step over it once it is all there */
			if (size > LW_JITDUMP_CHUNK && file_left >= at && size <= file_left - at)
				at += size;
			break;
		}
		if (id == 2)
			jd_debug_info(jd, b + at + 16, size - 16);
		else if (id == 0)
			jd_code_load(jd, b + at + 16, size - 16, names);
		at += size;
	}
	return at;
}

int lw_jitdump__continue(struct lw_jitdump *dst, const struct lw_jitdump *src)
{
	const struct lw_jitdump_code *p = &src->pending;
	struct lw_jitdump_code *c = &dst->pending;

	lw_jitdump__clear(dst);
	if (!p->n)
		return 0;
	c->off = malloc(p->n * sizeof(*c->off));
	c->line = malloc(p->n * sizeof(*c->line));
	if (!c->off || !c->line) {
		jd_code_free(c);
		return -ENOMEM;
	}
	memcpy(c->off, p->off, p->n * sizeof(*c->off));
	memcpy(c->line, p->line, p->n * sizeof(*c->line));
	c->n = p->n;
	c->start = p->start;
	return 0;
}

int lw_jitdump__line(const struct lw_jitdump *jd, uint64_t addr, int first)
{
	return lw_jitdump__line_at(jd, addr, 0, first);
}

int lw_jitdump__line_at(const struct lw_jitdump *jd, uint64_t addr, uint64_t start, int first)
{
	size_t i;

	/* the code written last among those that cover addr (and start at start) is the code
	 * there now */
	for (i = jd->n; i > 0; i--) {
		const struct lw_jitdump_code *c = &jd->codes[i - 1];
		uint32_t lo = 0, hi, off;

		if (addr < c->start || addr - c->start >= c->size || (start && c->start != start))
			continue;
		off = (uint32_t)(addr - c->start);
		hi = c->n;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (c->off[mid] <= off)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* a line before the function's first is code inlined from another function:
		 * the function's own line before it (the call that was inlined, as a rule) */
		while (lo > 0 && c->line[lo - 1] < first)
			lo--;
		return lo ? c->line[lo - 1] : 0;
	}
	return 0;
}
