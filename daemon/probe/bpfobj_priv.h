/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The BPF object's state, shared by bpfobj.c (load, attach, detach) and bpfobj_maps.c (the
 * maps userspace keeps: processes, threads, sites, counters). Not for other files. */
#ifndef LW_BPFOBJ_PRIV_H
#define LW_BPFOBJ_PRIV_H

#include <pthread.h>

#include "loopwatch.skel.h"
#include "base/u64map.h"

#define MAX_LINKS 4096

#define MAX_HOOKS 8192

/*
 * Closing a uprobe link makes the kernel unregister the probe and wait for a grace period:
 * about 80 ms each on this VM, whatever the process does. Detaching a process with a dozen
 * probes one after the other held loopwatchd's event loop for a second. Links to close go to
 * a few reaper threads instead: the closes overlap, and the caller does not wait for them.
 * lw_bpf__free waits until every link is closed: no probe outlives loopwatch.
 */
#define REAPERS 8

/* one thing to close: a libbpf link, or a raw link fd (the uprobe_multi links) */
struct reapee {
	struct bpf_link *l;
	int fd;
};

struct reaper {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* work queued / stopping */
	pthread_cond_t idle;		/* queue empty and nothing being closed */
	struct reapee *q;
	size_t n, cap;
	int busy, stop, nthreads;
	pthread_t threads[REAPERS];
};

struct lw_bpf {
	struct loopwatch_bpf *skel;
	struct reaper reap;
	struct bpf_link **hooks;	/* single-uprobe links of lw_bpf__attach_hook */
	int *hook_fds;			/* or, where hooks[h] is NULL, a uprobe_multi link fd (or -1) */
	int multi;			/* lw_poll_enter is loaded for uprobe_multi links */
	int wake_hook;			/* lw_sched_wakeup is loaded (no sched_info to use instead) */
	int entry_only;			/* precise: context_run's entry probe alone (sched mode, asked) */
	int no_precise;			/* precise-mode programs not loaded */
	int aio_cookie;			/* lw_hook_aio serves every asyncio hook */
	int nhooks;
	struct bpf_link **links;	/* per-process uprobe links, two per handle */
	int nlinks;
	struct bpf_link **perf_links;
	int *perf_fds;
	int nperf;
	int sampling;
	enum lw_iter_mode iter_mode;
	char iter_why[640];		/* lw_bpf__iter_why */
	/* the ring-buffer shares of groups of processes (lw_pycfg.share): pid -> its share, and
	 * share -> how many processes have it (its fair entry goes with the last) */
	struct lw_u64map *share_of, *share_refs;
	uint64_t tstate_drops;		/* lw_bpf__count_tstate_drop */
};

/* fair entries for shares of several processes, besides one per process */
#define MAX_SHARES 1024

#endif
