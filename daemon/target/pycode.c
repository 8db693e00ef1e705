// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/pycode.h"
#include "target/pyline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_BUCKETS 4096
#define TABLE_MAX (256 * 1024)

/*
 * The budget (issue 19): a target makes as many code objects as it likes (exec() of generated
 * source, lambdas in a loop), each with a line table of up to TABLE_MAX bytes. Before, 65,536
 * entries were kept (up to 16 GiB of tables), then all dropped at once, uncounted. Now the least
 * recently used entries go, one by one, when either the entries or the bytes (tables and
 * entries together) pass their budget; each one evicted is counted (codes_evicted in the
 * summary).
 */
#define BUDGET_ENTRIES 16384
#define BUDGET_BYTES (32u << 20)
/* Callers keep pointers into entries while they look up the other frames of a stack (64 kept at
 * most): an entry used in the last PROTECT lookups is never evicted. The bytes can thus pass
 * the budget by at most PROTECT tables (64 MiB) while one stack holds that many huge ones. */
#define PROTECT 256

struct entry {
	struct entry *next;		/* bucket chain */
	struct entry *lru_prev, *lru_next;	/* most recently used first */
	uint64_t stamp;			/* c->clock when last looked up */
	struct lw_pycode code;
};

struct lw_pycache {
	struct lw_pylayout lay;
	int minor;
	size_t n;
	size_t bytes;			/* entries + their tables */
	size_t max_entries, max_bytes;
	uint64_t evicted;
	uint64_t clock;			/* lookups so far */
	uint64_t code_type, str_type;	/* 0: not checked */
	struct entry *lru_head, *lru_tail;
	struct entry *b[CACHE_BUCKETS];
};

int lw_pycache__new(const struct lw_pylayout *lay, int minor, struct lw_pycache **out)
{
	struct lw_pycache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->lay = *lay;
	c->minor = minor;
	c->max_entries = BUDGET_ENTRIES;
	c->max_bytes = BUDGET_BYTES;
	*out = c;
	return 0;
}

void lw_pycache__set_budget(struct lw_pycache *c, size_t max_entries, size_t max_bytes)
{
	c->max_entries = max_entries ? max_entries : BUDGET_ENTRIES;
	c->max_bytes = max_bytes ? max_bytes : BUDGET_BYTES;
}

uint64_t lw_pycache__evicted(const struct lw_pycache *c)
{
	return c ? c->evicted : 0;
}

void lw_pycache__set_types(struct lw_pycache *c, uint64_t code_type, uint64_t str_type)
{
	c->code_type = code_type;
	c->str_type = str_type;
}

/* obj's type (ob_type at +8) is want, or want is unknown */
static int type_is(struct lw_reader *mem, uint64_t obj, uint64_t want)
{
	uint64_t t = 0;

	return !want || (obj && lw_mem_read_u64(mem, obj + 8, &t) == 0 && t == want);
}

/* a str object's text; an object that is not a str gives none */
static int read_str(const struct lw_pycache *c, struct lw_reader *mem, uint64_t obj, char *buf,
		    size_t size)
{
	buf[0] = 0;
	if (!type_is(mem, obj, c->str_type))
		return -EINVAL;
	return lw_py__read_str(&c->lay, mem, obj, buf, size);
}

size_t lw_pycache__bytes(const struct lw_pycache *c)
{
	return c->bytes;
}

static void clear(struct lw_pycache *c)
{
	size_t i;

	for (i = 0; i < CACHE_BUCKETS; i++) {
		struct entry *e = c->b[i], *nx;

		for (; e; e = nx) {
			nx = e->next;
			free(e->code.table);
			free(e);
		}
		c->b[i] = NULL;
	}
	c->n = 0;
	c->bytes = 0;
	c->lru_head = c->lru_tail = NULL;
}

void lw_pycache__free(struct lw_pycache *c)
{
	if (!c)
		return;
	clear(c);
	free(c);
}

size_t lw_pycache__size(const struct lw_pycache *c)
{
	return c->n;
}

static size_t hash(uint64_t a)
{
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdull;
	a ^= a >> 33;
	return (size_t)(a % CACHE_BUCKETS);
}

static size_t entry_bytes(const struct entry *e)
{
	return sizeof(*e) + e->code.table_len;
}

static void lru_unlink(struct lw_pycache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct lw_pycache *c, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

/* drop least recently used entries until the budget holds (none of the last PROTECT used) */
static void evict(struct lw_pycache *c)
{
	while (c->lru_tail && (c->n > c->max_entries || c->bytes > c->max_bytes)) {
		struct entry *e = c->lru_tail, **pp;

		if (e->stamp + PROTECT > c->clock)
			return;
		for (pp = &c->b[hash(e->code.addr)]; *pp && *pp != e; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = e->next;
		lru_unlink(c, e);
		c->bytes -= entry_bytes(e);
		c->n--;
		c->evicted++;
		free(e->code.table);
		free(e);
	}
}

/* the three fields that tell whether an address still holds the same code object */
static int read_ident(const struct lw_pycache *c, struct lw_reader *mem, uint64_t addr,
		      uint64_t *fn, uint64_t *nm, int *first)
{
	int32_t fl = 0;

	if (lw_mem_read_u64(mem, addr + c->lay.co_filename, fn) ||
	    lw_mem_read_u64(mem, addr + c->lay.co_name, nm) ||
	    lw_mem_read(mem, addr + c->lay.co_firstlineno, &fl, sizeof(fl)))
		return -EFAULT;
	*first = fl;
	return 0;
}

static int fill(const struct lw_pycache *c, struct lw_reader *mem, uint64_t addr,
		struct lw_pycode *pc)
{
	uint64_t qn = 0, tbl = 0;
	int64_t tlen = 0;

	memset(pc, 0, sizeof(*pc));
	pc->addr = addr;
	/* not a code object: no name read from it (issue 20: a garbage frame name) */
	if (!type_is(mem, addr, c->code_type))
		return -EINVAL;
	if (read_ident(c, mem, addr, &pc->filename_obj, &pc->name_obj, &pc->firstlineno))
		return -EFAULT;
	if (c->lay.co_qualname != 0xffff && c->lay.co_qualname)
		lw_mem_read_u64(mem, addr + c->lay.co_qualname, &qn);
	if (!qn || read_str(c, mem, qn, pc->qualname, sizeof(pc->qualname)))
		read_str(c, mem, pc->name_obj, pc->qualname, sizeof(pc->qualname));
	read_str(c, mem, pc->filename_obj, pc->file, sizeof(pc->file));
	/* line table: a bytes object (ob_size @16, data @32) */
	if (lw_mem_read_u64(mem, addr + c->lay.co_table, &tbl) == 0 && tbl &&
	    lw_mem_read(mem, tbl + 16, &tlen, sizeof(tlen)) == 0 && tlen > 0 && tlen <= TABLE_MAX) {
		pc->table = malloc((size_t)tlen);
		if (pc->table && lw_mem_read(mem, tbl + 32, pc->table, (size_t)tlen) == 0) {
			pc->table_len = (size_t)tlen;
		} else {
			free(pc->table);
			pc->table = NULL;
		}
	}
	return 0;
}

/* Whether the code object at addr still has the cached line table. Name, file and first line
 * are not enough: a function compiled anew from the same source file (exec, templates, a
 * test's generated code) takes the freed one's address with the same three, and a body whose
 * lines moved; its lines would be read from the old table (issue 20 item 5: lines not the
 * frame's). The table's bytes are compared, not its address: it too was freed and reused. */
static int table_same(const struct lw_pycache *c, struct lw_reader *mem, uint64_t addr,
		      const struct lw_pycode *pc)
{
	uint8_t stackbuf[512], *buf;
	uint64_t tbl = 0;
	int64_t tlen = 0;
	int same;

	if (lw_mem_read_u64(mem, addr + c->lay.co_table, &tbl) || !tbl)
		return pc->table_len == 0;
	if (lw_mem_read(mem, tbl + 16, &tlen, sizeof(tlen)) || tlen <= 0 || tlen > TABLE_MAX)
		return pc->table_len == 0;
	if ((size_t)tlen != pc->table_len)
		return 0;
	buf = pc->table_len <= sizeof(stackbuf) ? stackbuf : malloc(pc->table_len);
	if (!buf)
		return 1;	/* no memory to check: keep what was read */
	same = lw_mem_read(mem, tbl + 32, buf, pc->table_len) == 0 &&
	       memcmp(buf, pc->table, pc->table_len) == 0;
	if (buf != stackbuf)
		free(buf);
	return same;
}

const struct lw_pycode *lw_pycache__get(struct lw_pycache *c, struct lw_reader *mem, uint64_t addr)
{
	size_t h = hash(addr);
	struct entry *e;
	uint64_t fn, nm;
	int first;

	if (!addr)
		return NULL;
	/* A cached entry is this code object while its identity (name and file objects, first
	 * line, line table) reads the same: it was known as a code object when it was filled.
	 * Its type is not read again: a code object freed since (a process finalizing after its
	 * last slow callback) has its type word overwritten by the allocator and the rest
	 * intact, and the frames of that callback keep their names. A new entry, or an address
	 * whose identity changed, must be a code object (fill). */
	if (read_ident(c, mem, addr, &fn, &nm, &first))
		return NULL;
	c->clock++;
	for (e = c->b[h]; e; e = e->next) {
		if (e->code.addr != addr)
			continue;
		lru_unlink(c, e);
		lru_push(c, e);
		e->stamp = c->clock;
		if (e->code.filename_obj == fn && e->code.name_obj == nm &&
		    e->code.firstlineno == first && table_same(c, mem, addr, &e->code))
			return &e->code;
		/* the address now holds another code object: refresh */
		c->bytes -= entry_bytes(e);
		free(e->code.table);
		if (fill(c, mem, addr, &e->code)) {
			e->code.table = NULL;
			e->code.table_len = 0;
			e->code.addr = 0;
			c->bytes += entry_bytes(e);
			return NULL;
		}
		c->bytes += entry_bytes(e);
		evict(c);
		return &e->code;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	if (fill(c, mem, addr, &e->code)) {
		free(e);
		return NULL;
	}
	e->next = c->b[h];
	c->b[h] = e;
	lru_push(c, e);
	e->stamp = c->clock;
	c->n++;
	c->bytes += entry_bytes(e);
	evict(c);
	return &e->code;
}

int lw_pycache__line(const struct lw_pycache *c, const struct lw_pycode *code, uint64_t instr_raw)
{
	int64_t units;

	if (!code)
		return -1;
	if (c->lay.instr_is_ptr) {
		uint64_t base = code->addr + c->lay.code_basicsize;

		if (instr_raw < base)
			return code->firstlineno;	/* frame not started yet */
		units = (int64_t)((instr_raw - base) / 2);
	} else {
		int32_t lasti = (int32_t)(uint32_t)instr_raw;

		if (lasti < 0)
			return code->firstlineno;
		units = c->minor <= 9 ? lasti / 2 : lasti;
	}
	if (units > (1 << 26))
		return -1;
	if (!code->table)
		return -1;
	return lw_pyline_lookup(c->minor, code->table, code->table_len, code->firstlineno,
				(uint32_t)units);
}
