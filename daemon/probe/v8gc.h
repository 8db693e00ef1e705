// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * V8's garbage collections on a Node.js target (issue 21): the time its loop thread spends
 * inside v8::internal::Heap::CollectGarbage, the one entry of every stop-the-world collection
 * (scavenge, mark-compact, the atomic pause that ends incremental marking), measured exactly
 * by a uprobe and a uretprobe there (and on StartIncrementalMarking), into the same gc_ns as CPython's collector (gc_ms).
 */
#ifndef LW_PROBE_V8GC_H
#define LW_PROBE_V8GC_H

#include <stdint.h>
#include <sys/types.h>

struct lw_bpf;

#define LW_V8GC_FUNCS 2	/* CollectGarbage, StartIncrementalMarking */

struct lw_v8gc {
	int handles[2 * LW_V8GC_FUNCS];	/* return probes, then entry probes; -1 none */
	char how[320];		/* the start record's hooks.gc: where, or why unavailable */
};

/* The ELF a Node.js process runs V8 from (a mapped libnode.so, else its executable) and the
 * file offsets of Heap::CollectGarbage and (when found) StartIncrementalMarking in it (off:
 * LW_V8GC_FUNCS entries, *noff set). 0, or -errno with the reason in why. */
int lw_v8gc_find(const char *proc_root, pid_t pid, char *host, size_t hostlen, uint64_t *off,
		 int *noff, char *why, size_t whylen);

/* No probes (handles -1): before attach, so that detach is always safe */
void lw_v8gc__init(struct lw_v8gc *g);
/* Attach the probes for pid (handles -1 and the reason in how when not). */
void lw_v8gc__attach(struct lw_bpf *b, const char *proc_root, pid_t pid, struct lw_v8gc *g);
void lw_v8gc__detach(struct lw_bpf *b, struct lw_v8gc *g);

#endif
