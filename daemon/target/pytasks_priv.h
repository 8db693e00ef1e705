// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Private to pytasks*.c: the snapshot's context and what its pieces share. */
#ifndef LW_PYTASKS_PRIV_H
#define LW_PYTASKS_PRIV_H

#include "target/pytasks.h"
#include "target/pycode.h"

struct pcslot {
	uint64_t page;		/* page address + 1 (0 = empty) */
	uint8_t *data;		/* NULL: the page is not readable whole */
};

struct pagecache {
	struct lw_reader *under;
	struct pcslot *slots;
	size_t nslots;		/* a power of two, at least twice npages */
	size_t npages;
	uint64_t reads;
};

struct tname {
	uint64_t type;
	char name[64];
	int is_task;		/* derives from _asyncio.Task */
};

struct ctx {
	const struct lw_pyinfo *pi;
	const struct lw_tasklayout *t;
	struct lw_tasklayout tl;	/* what t points to */
	struct lw_reader *mem;
	struct lw_tasks *out;
	struct lw_pycache *pc;
	struct tname types[128];
	size_t ntypes;
	uint64_t *current;	/* running Tasks */
	size_t ncurrent;
	struct pagecache pcache;
	struct lw_reader cached;
	struct { pid_t tid; uint64_t pthread; } threads[64];
	int64_t gather_budget;	/* gather children still to look at */
	size_t nthreads;
};

struct waiter_ix {
	uint64_t waiter, task;
};

/* pytasks_obj.c: the page cache */
void pt_pc_clear(struct pagecache *pc);
int pt_pc_read(void *ctx, uint64_t addr, void *buf, size_t len);

/* pytasks.c: object types */
const struct tname *pt_type_of(struct ctx *c, uint64_t obj);
int pt_is_type(struct ctx *c, uint64_t obj, const char *name);

/* pytasks_graph.c */
void pt_read_callbacks(struct ctx *c, struct lw_task *tk);
void pt_add_awaiter(struct lw_task *tk, uint64_t by, const char *via);
void pt_gather_children(struct ctx *c, uint64_t gfut, uint64_t by, int depth);
int pt_mark_cycles(struct lw_tasks *o);
size_t pt_await_chain(struct ctx *c, uint64_t task, struct lw_task_link *out, size_t max);
int pt_cmp_waiter(const void *a, const void *b);
int pt_cmp_addr(const void *a, const void *b);

#endif
