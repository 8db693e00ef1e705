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

/* How loop iterations are found (lw_iter.bpf.h) */
enum lw_iter_mode {
	LW_ITER_SCHED = 0,	/* scheduler + per-process poll-entry uprobes: no host-wide cost */
	LW_ITER_SYSCALL,	/* tp_btf/sys_exit: every syscall on the host pays the slow path */
	LW_ITER_FENTRY,		/* fexit on the kernel's poll functions (lw_fentry.bpf.h): the
				 * syscall path's records, only poll calls run a program */
	LW_ITER_AUTO,		/* not chosen: fentry where the kernel loads it, else sched where
				 * it has uprobe_multi links, else syscall
				 * (lw_bpf__resolve_iter_mode; never the mode of a loaded object) */
};

struct lw_bpf_opts {
	int want_exec;		/* emit exec records (daemon discovery) */
	enum lw_iter_mode iter_mode;
	int sample_hz;		/* CPU stack samples per second per CPU; 0 = none */
	int ustack_bytes;	/* user stack copied per native stack (CFI unwinding): 0 default
				 * (LW_USTACK_MAX), < 0 none (frame pointers only) */
	int no_precise;		/* no session will be precise: its programs are not loaded */
	int max_procs;		/* processes traced at once: the procs map's size (0: 1,024) */
};

struct lw_bpf_counters {
	uint64_t lost_events;
	uint64_t read_errors;
	uint64_t read_errors_by[LW_RD_NCAUSES];	/* read_errors by enum lw_rd_cause */
	uint64_t depth_errors;
	uint64_t thread_map_full;
	uint64_t samples;
	uint64_t sites_full;		/* precise callbacks not counted: the sites map was full */
	uint64_t fair_drops;		/* records of processes over their share of a filling ring */
	uint64_t thread_quota_drops;	/* threads not tracked: their process had its share of
					 * the threads map (each thread once) */
	uint64_t ustack_copies, ustack_cut, ustack_failed;	/* user stacks for CFI unwinding */
	uint64_t tstate_quota_drops;	/* threads refused a tstates entry: their process had its
					 * share of the map, or it was full (each thread once) */
};

/* Open, load and attach the system-wide programs. On failure err says why and what to do. */
int lw_bpf__new(const struct lw_bpf_opts *opts, struct lw_bpf **out, char *err, size_t errlen);
void lw_bpf__free(struct lw_bpf *b);

/* The ring buffer of records; the caller polls it (ring_buffer__epoll_fd) */
int lw_bpf__events_fd(const struct lw_bpf *b);
int lw_bpf__sampling(const struct lw_bpf *b);	/* CPU samplers attached */
const char *lw_bpf__iter_probe(const struct lw_bpf *b);	/* how iterations are found */
enum lw_iter_mode lw_bpf__iter_mode(const struct lw_bpf *b);
const char *lw_bpf__iter_mode_name(enum lw_iter_mode m);	/* "sched", "syscall", "fentry" */
/* Why this iteration probe: chosen explicitly, or fentry loaded, or why fentry was refused and
 * the fallback taken ("fentry refused by the kernel (...): using sched (...)", or "...; sched
 * not used by default: ...: using tp_btf/sys_exit") */
const char *lw_bpf__iter_why(const struct lw_bpf *b);
/* LW_ITER_AUTO -> LW_ITER_FENTRY where the kernel loads fexit programs on the poll functions,
 * else LW_ITER_SCHED where it has uprobe_multi links (a detach then waits for one grace period
 * per process; LOOPWATCH_NO_UPROBE_MULTI turns that off), else LW_ITER_SYSCALL; an explicit LW_ITER_FENTRY the kernel refuses is an
 * error (-ENOTSUP, err says why and what to use). why (may be NULL) says which and why. */
int lw_bpf__resolve_iter_mode(enum lw_iter_mode *m, char *why, size_t whylen, char *err,
			      size_t errlen);
/* Is the run-queue part of an off-CPU period timed from a tp_btf/sched_wakeup program (a
 * program on every wake-up on the host)? 0 where the kernel keeps sched_info (run_delay,
 * last_queued; CONFIG_SCHED_INFO) and BTF names the run queues: sched_switch reads them at the
 * switch-in. LOOPWATCH_WAKE_HOOK=1 forces the program. lw_bpf__wake_hook_of: what b loaded. */
int lw_bpf__wake_hook(void);
int lw_bpf__wake_hook_of(const struct lw_bpf *b);
/* What the iteration probes cost processes loopwatch does not trace, in words */
const char *lw_bpf__host_cost(const struct lw_bpf *b);
const char *lw_bpf__iter_probe_of(enum lw_iter_mode m);
const char *lw_bpf__host_cost_of(enum lw_iter_mode m);
/* ... and what they cost the traced process itself, in words */
const char *lw_bpf__target_cost_of(enum lw_iter_mode m);
/* "auto", "fentry", "syscall", "sched", or NULL: $LOOPWATCH_ITERATIONS, else auto.
 * -EINVAL with err set. */
int lw_bpf__parse_iter_mode(const char *s, enum lw_iter_mode *out, char *err, size_t errlen);
/* sched mode: a uprobe on a libc poll wrapper's entry (nr: the syscall it makes). A handle for
 * lw_bpf__detach_hook. */
int lw_bpf__attach_poll(struct lw_bpf *b, pid_t pid, const char *path, uint64_t offset,
			unsigned nr, char *err, size_t errlen);
/* sched mode where the kernel has uprobe_multi links (>= 6.6; lw_bpf__poll_multi): n (<= 16)
 * poll wrappers of one file in one link, one handle for lw_bpf__detach_hook; its detach waits
 * for one grace period instead of n. -ENOTSUP where the kernel lacks them. */
int lw_bpf__poll_multi(const struct lw_bpf *b);
/* precise mode's context_run probe is its entry alone (sched mode, unless
 * LOOPWATCH_PRECISE_ENTRY_ONLY=0), not entry + return */
int lw_bpf__ctxrun_entry_only(const struct lw_bpf *b);
int lw_bpf__attach_polls(struct lw_bpf *b, pid_t pid, const char *path, const uint64_t *offs,
			 const unsigned *nrs, unsigned n, char *err, size_t errlen);

/* Per-process configuration: presence in this map is what makes a process traced. */
int lw_bpf__set_proc(struct lw_bpf *b, pid_t pid, const struct lw_pycfg *cfg);
/* Records of pid dropped because it had taken more than its share of a filling ring buffer
 * (bpf/lw_maps.bpf.h, fair_ok) */
uint64_t lw_bpf__fair_drops(const struct lw_bpf *b, pid_t pid);
/* threads of process pid not tracked because it had its share of the threads map */
uint64_t lw_bpf__thread_quota_drops(const struct lw_bpf *b, pid_t pid);
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
void lw_bpf__del_tstate(struct lw_bpf *b, pid_t tid);
/* a thread refused a tstates entry (its process's quota, probe/session_priv.h, or the map full):
 * counted host-wide in lw_bpf_counters.tstate_quota_drops */
void lw_bpf__count_tstate_drop(struct lw_bpf *b);
void lw_bpf__del_thread(struct lw_bpf *b, pid_t tid);

int lw_bpf__get_thread(struct lw_bpf *b, pid_t tid, struct lw_thread *out);
/* The thread's busy-period word (loopwatch.h LW_BUSY_WORD), read from the BPF side's mapped
 * array without a syscall; it may be another thread's that shares the slot */
uint64_t lw_bpf__busy_word(const struct lw_bpf *b, pid_t tid);
int lw_bpf__get_stacks(struct lw_bpf *b, pid_t tid, struct lw_tstacks *out);
/* The registers and stack copy taken with the stack of thread tid captured at ts_ns
 * (lw_pystack.ts_ns); -ENOENT when none (not taken, or evicted since) */
int lw_bpf__get_ustack(struct lw_bpf *b, pid_t tid, uint64_t ts_ns, struct lw_ustack *out);
/* That copy out of the map (read and no longer needed there) */
void lw_bpf__del_ustack(struct lw_bpf *b, pid_t tid, uint64_t ts_ns);
/* The capture times of thread tid's stack copies still held, taken in [from, to]: up to max
 * into ts (in the map's order), their number. The map changes while it is walked: a bounded
 * walk, some may be missed. */
size_t lw_bpf__ustack_times(struct lw_bpf *b, pid_t tid, uint64_t from, uint64_t to, uint64_t *ts,
			    size_t max);
void lw_bpf__ustack_counters(const struct lw_bpf *b, uint64_t *copies, uint64_t *cut,
			     uint64_t *failed);
int lw_bpf__get_loop_stats(struct lw_bpf *b, pid_t tid, struct lw_loop_stats *out);

/* Every site histogram of process pid. fn returns nonzero to stop. */
int lw_bpf__for_each_site(struct lw_bpf *b, pid_t pid,
			  int (*fn)(void *arg, uint64_t site, const struct lw_hist *h), void *arg);
/* Forget everything about a process in the maps */
void lw_bpf__forget_proc(struct lw_bpf *b, pid_t pid);

void lw_bpf__counters(const struct lw_bpf *b, struct lw_bpf_counters *out);
/* Failed reads of process pid's memory by the BPF side, by cause (the instance-wide
 * read_errors sums every process's); the total */
uint64_t lw_bpf__proc_read_errors(const struct lw_bpf *b, pid_t pid, uint64_t by[LW_RD_NCAUSES]);

#endif
