// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/v8gc.h"
#include "probe/bpfobj.h"
#include "target/elfsym.h"
#include "target/procmaps.h"
#include "base/lw_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * v8::internal::Heap::CollectGarbage(AllocationSpace, GarbageCollectionReason, GCCallbackFlags):
 * the same mangled name from V8 7 to 12 (Node 12 to 22), exported by Node's executable and by
 * Debian's libnode.so.108 alike (the embedder API needs V8's symbols). Every collection that
 * stops the JS thread goes through it: scavenges (the allocation slow path calls it), full
 * mark-compacts, and the finalization of incremental marking; V8's own GC callbacks (which
 * perf_hooks' 'gc' entries time) run inside it. Heap::StartIncrementalMarking is the other
 * pause perf_hooks reports (its 'incremental' kind: marking the roots, a few ms), called from
 * the allocation path and from inside CollectGarbage too (the BPF side counts the outermost
 * entry and return only). Its signature grew a GarbageCollector in V8 11 (Node 20): both names.
 * Marking done concurrently on V8's worker threads is not the loop's time and not counted; the
 * small incremental-marking steps the JS thread takes while allocating are not counted either.
 */
static const char *const GC_FUNCS[] = {
	"_ZN2v88internal4Heap14CollectGarbageENS0_15AllocationSpaceENS0_23GarbageCollectionReasonENS_15GCCallbackFlagsE",
	"_ZN2v88internal4Heap23StartIncrementalMarkingEiNS0_23GarbageCollectionReasonENS_15GCCallbackFlagsENS0_16GarbageCollectorE",
	"_ZN2v88internal4Heap23StartIncrementalMarkingEiNS0_23GarbageCollectionReasonENS_15GCCallbackFlagsE",
};

int lw_v8gc_find(const char *proc_root, pid_t pid, char *host, size_t hostlen, uint64_t *off,
		 int *noff, char *why, size_t whylen)
{
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	uint64_t va;
	size_t i;
	int fd, r;

	*noff = 0;
	r = lw_maps__load(proc_root, pid, &maps);
	if (r) {
		snprintf(why, whylen, "cannot read the memory map of pid %d: %s", (int)pid,
			 strerror(-r));
		return r;
	}
	m = lw_maps__node_image(maps, proc_root, pid);
	if (!m) {
		lw_maps__free(maps);
		snprintf(why, whylen, "neither a libnode.so nor the executable is mapped in pid %d",
			 (int)pid);
		return -ENOENT;
	}
	fd = lw_maps__open_mapped(proc_root, pid, m, host, hostlen);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open %s as mapped by pid %d: %s", m->path, (int)pid,
			 strerror(-fd));
		lw_maps__free(maps);
		return fd;
	}
	r = lw_elf__open_fd(fd, host, &e);	/* the mapped inode, not what is at the path now */
	if (r) {
		snprintf(why, whylen, "%s: not a readable ELF file (%s)", m->path, strerror(-r));
		lw_maps__free(maps);
		return r;
	}
	/* CollectGarbage first: without it nothing is attached */
	for (i = 0; i < sizeof(GC_FUNCS) / sizeof(GC_FUNCS[0]) && *noff < LW_V8GC_FUNCS; i++) {
		if (lw_elf__find_symbol(e, GC_FUNCS[i], &va, NULL) == 0 &&
		    lw_elf__vaddr_to_offset(e, va, &off[*noff]) == 0)
			(*noff)++;
		else if (i == 0)
			break;
	}
	r = *noff ? 0 : -ENOENT;
	if (r)
		snprintf(why, whylen, "unavailable: %s exports no v8::internal::Heap::CollectGarbage "
			 "(a V8 whose symbols are hidden or renamed); GC time is not split out",
			 lw_basename(m->path));
	else
		snprintf(why, whylen, "uprobe+uretprobe on v8::internal::Heap::CollectGarbage%s in %s",
			 *noff > 1 ? " and StartIncrementalMarking" : "", lw_basename(m->path));
	lw_elf__close(e);
	lw_maps__free(maps);
	return r;
}

void lw_v8gc__init(struct lw_v8gc *g)
{
	int i;

	for (i = 0; i < 2 * LW_V8GC_FUNCS; i++)
		g->handles[i] = -1;
	g->how[0] = 0;
}

void lw_v8gc__attach(struct lw_bpf *b, const char *proc_root, pid_t pid, struct lw_v8gc *g)
{
	char host[4300], err[512];
	uint64_t off[LW_V8GC_FUNCS];
	int i, n, r = 0;

	lw_v8gc__init(g);
	if (lw_v8gc_find(proc_root, pid, host, sizeof(host), off, &n, g->how, sizeof(g->how)))
		return;
	/* the ends first: a collection opened while attaching never stays open */
	for (i = 0; i < 2 * n && r >= 0; i++) {
		int ret = i < n;

		r = lw_bpf__attach_hook(b, ret ? LW_HOOK_GC_DONE : LW_HOOK_GC_START, pid, host,
					off[i % n], 0, ret, err, sizeof(err));
		g->handles[i] = r;
	}
	if (r < 0) {
		lw_v8gc__detach(b, g);
		snprintf(g->how, sizeof(g->how), "unavailable: cannot attach to "
			 "v8::internal::Heap::CollectGarbage: %.200s", err);
	}
}

void lw_v8gc__detach(struct lw_bpf *b, struct lw_v8gc *g)
{
	int i;

	for (i = 0; i < 2 * LW_V8GC_FUNCS; i++) {
		if (g->handles[i] >= 0)
			lw_bpf__detach_hook(b, g->handles[i]);
		g->handles[i] = -1;
	}
}
