/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * V8's jitdump records (node --perf-prof writes jit-PID.dump): per code object its address
 * range and, for code compiled with source positions, the line of each instruction. The file
 * is written by the target: every byte is hostile input (tests/fuzz/fuzz_jitdump.c).
 * Finding and reading the file is nativesym.c's; this parses what was read.
 */
#ifndef LW_JITDUMP_H
#define LW_JITDUMP_H

#include <stddef.h>
#include <stdint.h>

#define LW_JITDUMP_CODES 65536		/* code objects kept; past it the oldest half goes */
#define LW_JITDUMP_ENTS 8192		/* lines kept per code object (the first ones) */
#define LW_JITDUMP_CHUNK (8u << 20)	/* the most a read gives: a record larger is stepped over */
#define LW_JITDUMP_NAME_MAX 1024	/* a CODE_LOAD name this long or longer is not passed on */

struct lw_jitdump_code {
	uint64_t start, size;
	uint32_t n;
	uint32_t *off;			/* into the code, ascending */
	int32_t *line;
};

/* All zero is empty; lw_jitdump__clear() frees and empties it again. */
struct lw_jitdump {
	struct lw_jitdump_code *codes;	/* in the order written; n = 0: no line table */
	size_t n;
	struct lw_jitdump_code pending;	/* a DEBUG_INFO record waiting for its CODE_LOAD */
};

/* CODE_LOAD names as perf-map lines ("START SIZE name\n", hex), appended; free(text) after */
struct lw_jitdump_names {
	char *text;
	size_t len, cap;
};

void lw_jitdump__clear(struct lw_jitdump *jd);

/*
 * Parse the whole records at the start of buf (len bytes read from the file; at_start: buf is
 * the file's beginning, which must then be a valid header "JiTD", else nothing is consumed).
 * file_left: the bytes the file holds from buf's start on (>= len). A record of size < 16 stops
 * the parse there; one larger than LW_JITDUMP_CHUNK is stepped over once file_left holds it.
 * names: where CODE_LOAD names go (NULL: not wanted). Returns the bytes consumed: the next
 * feed starts there (it may exceed len when a record is stepped over).
 */
size_t lw_jitdump__feed(struct lw_jitdump *jd, const void *buf, size_t len, int at_start,
			uint64_t file_left, struct lw_jitdump_names *names);

/* dst (emptied first) continues where src's records end: src's DEBUG_INFO waiting for its
 * CODE_LOAD, copied (a tail of the stream parsed on its own). 0 or -ENOMEM. */
int lw_jitdump__continue(struct lw_jitdump *dst, const struct lw_jitdump *src);

/* The line at addr in the code written last that covers it (see lw_nativesym__jit_line for
 * first); 0 when unknown. */
int lw_jitdump__line(const struct lw_jitdump *jd, uint64_t addr, int first);
/* The same, of code that starts at start only (0: any): the code the perf map, always written
 * through, says is there now, when the jitdump's own record of it is not read yet. */
int lw_jitdump__line_at(const struct lw_jitdump *jd, uint64_t addr, uint64_t start, int first);

#endif
