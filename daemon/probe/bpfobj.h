/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The loaded BPF object: load, attach, per-process configuration, map reads. The only module
 * that knows the skeleton. */
#ifndef LW_BPFOBJ_H
#define LW_BPFOBJ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>
#include "loopwatch.h"

struct lw_bpf;
struct ring_buffer;

struct lw_bpf_opts {
	int want_exec;		/* emit exec records (daemon discovery) */
	int sample_hz;		/* CPU stack samples per second per CPU; 0 = none */
	int no_precise;		/* no session will be precise: its programs are not loaded */
};

struct lw_bpf_counters {
	uint64_t lost_events;
	uint64_t read_errors;
	uint64_t depth_errors;
	uint64_t thread_map_full;
	uint64_t samples;
};

/* Open, load and attach the system-wide programs. On failure err says why and what to do. */
int lw_bpf__new(const struct lw_bpf_opts *opts, struct lw_bpf **out, char *err, size_t errlen);
void lw_bpf__free(struct lw_bpf *b);

/* The ring buffer of records; the caller polls it (ring_buffer__epoll_fd) */
int lw_bpf__events_fd(const struct lw_bpf *b);
int lw_bpf__sampling(const struct lw_bpf *b);	/* CPU samplers attached */
const char *lw_bpf__iter_probe(const struct lw_bpf *b);	/* how iterations are found */

/* Per-process configuration: presence in this map is what makes a process traced. */
int lw_bpf__set_proc(struct lw_bpf *b, pid_t pid, const struct lw_pycfg *cfg);
int lw_bpf__del_proc(struct lw_bpf *b, pid_t pid);

/* context_run entry/return probes for one process (precise mode). Returns a handle >= 0. */
int lw_bpf__attach_ctxrun(struct lw_bpf *b, pid_t pid, const char *path, uint64_t offset,
			  char *err, size_t errlen);
void lw_bpf__detach(struct lw_bpf *b, int handle);

/* Programs for hooks attached at sites found per process */
enum lw_hook_prog {
	LW_HOOK_UNAWAITED,		/* a coroutine is warned about as never awaited */
	LW_HOOK_NEVER_RETRIEVED,	/* a Future is finalized with an unretrieved exception */
	LW_HOOK_DESTROYED_PENDING,	/* a Task is finalized while pending */
	LW_HOOK_GC_START,
	LW_HOOK_GC_DONE,
	LW_HOOK_UV_HANDLE,		/* uvloop Handle._run entry */
	LW_HOOK_UV_TIMER,		/* uvloop TimerHandle._run entry */
	LW_HOOK_UV_EXIT,		/* both, on return */
	LW_HOOK_AIO,			/* internal: the three asyncio hooks, kind = cookie */
};

/* One uprobe (retprobe: a uretprobe) of program `which` for process pid at a file offset;
 * ref_ctr_offset (file offset of a USDT semaphore) or 0. Returns a handle >= 0. */
int lw_bpf__attach_hook(struct lw_bpf *b, enum lw_hook_prog which, pid_t pid, const char *path,
			uint64_t offset, uint64_t ref_ctr_offset, int retprobe, char *err,
			size_t errlen);
void lw_bpf__detach_hook(struct lw_bpf *b, int handle);

int lw_bpf__set_tstate(struct lw_bpf *b, pid_t tid, uint64_t tstate);
void lw_bpf__del_thread(struct lw_bpf *b, pid_t tid);

int lw_bpf__get_thread(struct lw_bpf *b, pid_t tid, struct lw_thread *out);
int lw_bpf__get_stacks(struct lw_bpf *b, pid_t tid, struct lw_tstacks *out);
int lw_bpf__get_loop_stats(struct lw_bpf *b, pid_t tid, struct lw_loop_stats *out);

/* Every site histogram of process pid. fn returns nonzero to stop. */
int lw_bpf__for_each_site(struct lw_bpf *b, pid_t pid,
			  int (*fn)(void *arg, uint64_t site, const struct lw_hist *h), void *arg);
/* Forget everything about a process in the maps */
void lw_bpf__forget_proc(struct lw_bpf *b, pid_t pid);

void lw_bpf__counters(const struct lw_bpf *b, struct lw_bpf_counters *out);

#endif
