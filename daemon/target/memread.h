/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading another process's memory: read-only, bounded, allowed to fail. */
#ifndef LW_MEMREAD_H
#define LW_MEMREAD_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>

/* A source of target memory. Tests and fuzzers supply their own. 0 or -errno (-EFAULT). */
struct lw_reader {
	int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
};

static inline int lw_mem_read(const struct lw_reader *r, uint64_t addr, void *buf, size_t len)
{
	if (!addr)
		return -EFAULT;
	return r->read(r->ctx, addr, buf, len);
}

static inline int lw_mem_read_u64(const struct lw_reader *r, uint64_t addr, uint64_t *v)
{
	return lw_mem_read(r, addr, v, sizeof(*v));
}

/* The live process: process_vm_readv, falling back to /proc/PID/mem. Never writes. */
struct lw_memread;
int lw_memread__open(pid_t pid, struct lw_memread **out);
void lw_memread__close(struct lw_memread *m);
int lw_memread__read(struct lw_memread *m, uint64_t addr, void *buf, size_t len);
struct lw_reader lw_memread__reader(struct lw_memread *m);
uint64_t lw_memread__errors(const struct lw_memread *m);

/* A fake memory made of regions (tests, fuzzing) */
struct lw_fakemem_region {
	uint64_t addr;
	const void *data;
	size_t len;
};
struct lw_fakemem {
	const struct lw_fakemem_region *regions;
	size_t n;
};
int lw_fakemem_read(void *ctx, uint64_t addr, void *buf, size_t len);

#endif
