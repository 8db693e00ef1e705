// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Private to loopwatchd*.c: the daemon's state and what its pieces share. */
#ifndef LW_LOOPWATCHD_PRIV_H
#define LW_LOOPWATCHD_PRIV_H

#include "service/config.h"
#include "record/rectype.h"
#include "service/control.h"
#include "service/router.h"
#include "probe/engine.h"
#include "probe/bpfobj.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "service/matcher.h"
#include "base/u64map.h"
#include "base/safefile.h"

#define EXIT_TRACE 1		/* cannot run: BPF, another daemon */
#define EXIT_CONFIG 2		/* bad usage or an invalid config (systemd: no restart) */

#define MS 1000000ull
#define S 1000000000ull
#define EXEC_SETTLE_NS (100 * MS)	/* a new image needs a moment before it can be probed */
#define RETRY_STEP_NS (100 * MS)	/* attempt n waits n steps */
#define MAX_TRIES 12			/* ~6.6 s in all, as the engine does after an exec */
#define ATTACH_BUDGET_NS (50 * MS)	/* per tick: keep the loop responsive when many start */
#define EXEC_GRACE_NS (15 * S)		/* the engine's own re-attach after an exec */
#define FRESH_NS (3 * S)		/* an exec this recent may not have initialised yet */
#define EXTEND_USEC 20000000ull		/* a long start or stop in progress: 20 s more */
#define PIDFILE_EVERY_NS (1 * S)
#define RESCAN_GAP_NS (5 * S)		/* after lost events (exec events may be among them) */
#define STATUS_EVERY_NS (5 * S)
/* processes traced (or pending) at once; the BPF procs map is sized to it at load, so the two
 * agree (issue 19: the map held 1,024). LW_MAX_PROCS (tests) lowers it. */
#define MAX_PROCS 65536
#define FORK_SETTLE_NS (250 * MS)	/* a forked worker renames itself (setproctitle) first */
#define FORKQ 4096			/* forks waiting to be matched */
#define NERRORS 16

enum pstate {
	P_PENDING,	/* matched; attach when due */
	P_ATTACHED,
	P_EXEC,		/* traced, then exec'd: the engine re-attaches it (same target) */
};

struct proc {
	pid_t pid;
	int ti;			/* target index */
	enum pstate state;
	int tries;
	uint64_t next_try;	/* P_PENDING */
	uint64_t exec_at;	/* when it exec'd, if we saw it (CLOCK_MONOTONIC); 0 = earlier */
	uint64_t since;		/* entered this state (CLOCK_MONOTONIC) */
	int want_ti;		/* P_EXEC: the target its new image matches, -1 none */
	int mismatch;		/* re-attached by the engine, no longer its target's */
	int pidfd;		/* opened when it matched: readable once that process exits */
	unsigned long long start;	/* its start time (/proc/PID/stat field 22) */
	char err[256];		/* why the last attempt failed */
	int last_r;		/* ... and its -errno */
};

/* why a process that matched a target was not attached (status, loopwatchd.prom) */
enum ld_na {
	NA_EXITED,		/* exited (or its pid was reused) before it could be attached */
	NA_STOPPED_MATCHING,	/* exec'd or renamed into something the target does not name */
	NA_NOT_READY,		/* the interpreter never got ready within the attempts */
	NA_PERMISSION,		/* EPERM/EACCES: capabilities, a LSM, another namespace */
	NA_LIMIT,		/* a limit: MAX_PROCS, BPF map entries, memory, file descriptors */
	NA_REFUSED,		/* the runtime refused: not the one asked for, unsupported */
	NA_ERROR,		/* anything else: the message says */
	NA_N
};
#define NA_LAST 8		/* the last ones kept per target, with their reasons */

struct ld_na_entry {
	pid_t pid;
	enum ld_na cause;
	uint64_t real_ns;
	char why[200];
};

struct ld_tstats {
	uint64_t not_attached[NA_N];
	struct ld_na_entry last[NA_LAST];
	unsigned nlast;		/* total; the ring holds the last NA_LAST */
};

struct derror {
	uint64_t real_ns;
	char msg[320];
};

struct daemon {
	struct lw_config *cfg;
	struct lw_engine *e;
	struct lw_router *router;
	struct lw_control *ctl;
	struct lw_u64map *procs;	/* pid -> struct proc */
	unsigned max_procs;		/* MAX_PROCS, or LW_MAX_PROCS lower */
	uint64_t started_real, started_mono;
	uint64_t execs, forks, matched, attaches, gave_up;
	uint64_t reused;		/* matched, then exited before (or while) being attached */
	/* new processes from fork (pre-fork servers' workers never exec), matched once settled */
	struct {
		pid_t pid;
		uint64_t due;
	} forkq[FORKQ];
	unsigned fq_head, fq_len;
	int fq_overflow;		/* some were dropped: rescan /proc */
	struct lw_site_rule *rules;	/* noise rules from [defaults] */
	size_t nrules;
	uint64_t next_pidfiles, next_status, next_watchdog, watchdog_ns;
	uint64_t last_lost, next_rescan;
	int has_pidfiles;
	int busy_phase;			/* the first attach pass, or the final detaches */
	uint64_t next_extend;
	struct ld_tstats *tstats;	/* per target (cfg->ntargets) */
	uint64_t not_attached[NA_N];	/* all targets */
	struct derror errors[NERRORS];
	unsigned nerrors;		/* total; the ring holds the last NERRORS */
};

int ld_same_process(const struct proc *p);
struct proc *ld_add_pending(struct daemon *d, pid_t pid, int ti, uint64_t when);
void ld_attach_due(struct daemon *d, uint64_t now, uint64_t budget_ns);
void ld_consider(struct daemon *d, pid_t pid, uint64_t when);
void ld_error(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ld_forget(struct daemon *d, pid_t pid);
void ld_match_forks(struct daemon *d, uint64_t now);
void ld_on_exec(void *ctx, pid_t pid, pid_t ppid, const char *comm);
void ld_on_fork(void *ctx, pid_t pid, pid_t ppid, const char *comm);
void ld_proc_free(void *v);
void ld_scan_proc(struct daemon *d, uint64_t when);
/* a process that matched target ti was not attached, for this cause; why: the details */
void ld_not_attached(struct daemon *d, pid_t pid, int ti, enum ld_na cause, const char *why);
const char *ld_na_name(enum ld_na cause);

#endif
