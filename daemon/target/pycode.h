/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Code objects of a target, symbolized on demand and cached: qualname, file, lines. */
#ifndef LW_PYCODE_H
#define LW_PYCODE_H

#include <stddef.h>
#include <stdint.h>

#include "target/pyproc.h"
#include "target/memread.h"

struct lw_pycode {
	uint64_t addr;
	uint64_t filename_obj;	/* validation: a reused address shows other objects */
	uint64_t name_obj;
	int firstlineno;
	char qualname[128];
	char file[256];
	uint8_t *table;		/* line table bytes */
	size_t table_len;
};

struct lw_pycache;

int lw_pycache__new(const struct lw_pylayout *lay, int minor, struct lw_pycache **out);
void lw_pycache__free(struct lw_pycache *c);

/* The code object at addr, read (or re-read if it changed) from mem; NULL if unreadable.
 * The pointer stays valid for the next 255 lookups at least (a stack's frames held at once):
 * the least recently used entries are evicted, never one of the last 256 used. */
const struct lw_pycode *lw_pycache__get(struct lw_pycache *c, struct lw_reader *mem, uint64_t addr);

/* Line being executed, from the raw instruction field the BPF side copied (f_lasti or an
 * instruction pointer); -1 when unknown. */
int lw_pycache__line(const struct lw_pycache *c, const struct lw_pycode *code, uint64_t instr_raw);

size_t lw_pycache__size(const struct lw_pycache *c);

/* The target's PyCode_Type and PyUnicode_Type (0: unknown, not checked): an address whose
 * object is not a code object, or whose name or file is not a str (garbage at a freed and
 * reused address, a pointer read from a stale frame), is no code object: no made-up name. */
void lw_pycache__set_types(struct lw_pycache *c, uint64_t code_type, uint64_t str_type);

/* The cache's budget (entries, and bytes of entries plus line tables; 0: the default, 16,384
 * entries and 32 MiB): past either, the least recently used entries are evicted and counted
 * (but not one of the last 256 used: up to 256 line tables more while a stack holds them). */
void lw_pycache__set_budget(struct lw_pycache *c, size_t max_entries, size_t max_bytes);
size_t lw_pycache__bytes(const struct lw_pycache *c);
uint64_t lw_pycache__evicted(const struct lw_pycache *c);	/* 0 for NULL */

#endif
