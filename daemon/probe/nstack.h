/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A record's native stack made whole: where the BPF side copied the thread's registers and stack
 * top (bpf/lw_ustack.bpf.h), the frame-pointer addresses are replaced by the stack unwound with
 * the binaries' CFI (target/unwind.c); frame-pointer frames past where CFI stopped are kept
 * when they continue the same stack (JIT code without unwind tables).
 */
#ifndef LW_NSTACK_H
#define LW_NSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>
#include "loopwatch.h"
#include "target/memread.h"

/* lw_pystack.flags set by userspace once the native stack was unwound (never by BPF) */
#define LW_STACK_NATIVE_CFI	(1u << 16)	/* native[] unwound by CFI */
#define LW_STACK_NATIVE_NOINFO	(1u << 17)	/* ... stopped: a pc without unwind info */
#define LW_STACK_NATIVE_SHORT	(1u << 18)	/* ... stopped: the stack copy was too short */
#define LW_STACK_NATIVE_UNREAD	(1u << 19)	/* ... stopped: memory unreadable */
#define LW_STACK_NATIVE_TRUNC	(1u << 20)	/* ... more frames than LW_MAX_NATIVE */
#define LW_STACK_NATIVE_LOST	(1u << 21)	/* its stack copy was gone: frame pointers only */

struct lw_bpf;
struct lw_nstack;

int lw_nstack__new(struct lw_bpf *b, const char *proc_root, pid_t pid,
		   const struct lw_reader *live, struct lw_nstack **out);
void lw_nstack__free(struct lw_nstack *n);

/* Unwind st's copied stack (if the BPF side took one for tid at st->ts_ns) into st->native.
 * 1 when replaced, 0 when st keeps its frame-pointer addresses. */
int lw_nstack__refine(struct lw_nstack *n, uint32_t tid, struct lw_pystack *st);

/* A stack from its copy alone (tid's copy taken at ts_ns: a CPU sample the BPF side did not
 * keep): raw, the frame-pointer walk the BPF side does, over the copy; st, that stack unwound
 * as lw_nstack__refine unwinds a record's. 0, or -ENOENT when the copy is gone. */
int lw_nstack__from_copy(struct lw_nstack *n, uint32_t tid, uint64_t ts_ns, struct lw_pystack *raw,
			 struct lw_pystack *st);

/* Take tid's copies taken at ts[0..count) out of the LRU now, ahead of their unwinding: the
 * LRU is small and evicts in batches, and a busy thread's copies (one at each preemption, on a
 * loaded host over a thousand a second) can push out the rest of an iteration's in the time
 * the first few take to be named (the first time V8's code is symbolized: tens of ms).
 * lw_nstack__refine and lw_nstack__from_copy use the copies held until lw_nstack__release.
 * The copies held, but the one taken at keep_ts (the record's own, which other records may
 * share), are deleted from the LRU: a lookup marks an entry referenced, and the LRU evicts
 * unreferenced entries first, so the copies of a voted iteration outlived the next iteration's
 * fresh ones (Express, the first /hash after /busy: none of its samples' copies left, 175
 * older ones kept). Returns how many were still there. */
size_t lw_nstack__hold(struct lw_nstack *n, uint32_t tid, const uint64_t *ts, size_t count,
		       uint64_t keep_ts);
void lw_nstack__release(struct lw_nstack *n);

/* The stack copy st was unwound from (one of the last few unwound: the registers and the
 * bytes copied from regs[7], or from LW_USTACK_RED below it), or NULL */
const struct lw_ustack *lw_nstack__copy_of(const struct lw_nstack *n, const struct lw_pystack *st);

/* The same for every stack of a record (callback, tick, block; others untouched). The record
 * must be the caller's writable copy of size bytes. */
void lw_nstack__refine_record(struct lw_nstack *n, struct lw_rec_hdr *h, size_t size);

/* Why the native stack of st stopped early ("no unwind info", "stack copy too short",
 * "unreadable", "truncated"), NULL when it did not or was not unwound by CFI */
const char *lw_nstack_incomplete(const struct lw_pystack *st);

/* Stacks unwound, and of those stopped early (statistics) */
void lw_nstack__counts(const struct lw_nstack *n, uint64_t *unwound, uint64_t *incomplete);

#endif
