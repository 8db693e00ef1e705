// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* prom_priv.h — what prom.c (taking records in), prom_render.c (writing the textfile) and
 * prom_load.c (reading a textfile back after a restart) share. Not for other rooms. */
#ifndef LW_PROM_PRIV_H
#define LW_PROM_PRIV_H

#include "service/prom.h"

#include <stdint.h>
#include <sys/types.h>

/* bucket upper bounds: 2^10 .. 2^25 microseconds; the last slot: above them all */
#define BUCKET_FIRST_LOG2 10
#define NBUCKETS 16
#define NB (NBUCKETS + 1)
#define MAX_SITES 4096		/* per target; beyond: straight into "other" */
#define MAX_RUNTIMES 8
#define MAX_SYSCALLS 64

/* what a site (or "other") counts */
struct sval {
	uint64_t slow;
	double slow_s;
	uint64_t b[NB];		/* not cumulative */
	double hsum_s;
	double blocked_s;
};

struct psite {
	char runtime[16];
	char site[128];
	char file_line[300];
	int other;		/* the "other" series of its runtime */
	int named;		/* has a series of its own now */
	int has_slow;		/* a callback site (file_line: where it is defined) */
	int has_blocked;	/* a place where callbacks blocked (file_line: the call) */
	double rank;		/* slow + blocked seconds since loopwatchd started (or restored) */
	struct sval pend;	/* gained since the last render */
	struct sval out;	/* its own series' values */
};

struct psys {
	char runtime[16];
	char name[32];
	uint64_t count;
	double seconds;
};

struct prt {			/* per runtime */
	char runtime[16];
	uint64_t slow_ticks, started, exited;
	uint64_t stuck_tasks, deadlocked_tasks;	/* stuck_task records (deadlock: true) */
};

struct pproc {
	int pid;
	char comm[32];
	char runtime[16];
	char version[32];
	char mode[16];
	double threshold_ms;
	uint64_t slow_ticks;	/* the session's cumulative count, last seen */
	double util;		/* busiest loop thread, last interval */
};

/* what the periodic summaries of one pid gave for one row so far (for its final summary) */
struct acc {
	int pid;
	uint64_t count;		/* slow callbacks (blocking calls) */
	double total_ms;	/* their time */
	double all_ms;		/* the time of all in the histogram (precise mode: every callback) */
	uint64_t b[NB];
};

struct lw_prom {
	char target[64];
	unsigned top;
	struct lw_u64map *sites;	/* hash(runtime, site, file_line) -> psite */
	size_t nsites;
	struct lw_u64map *accs;		/* hash(pid, kind, row) -> acc */
	struct pproc *p;
	size_t n, cap;
	struct psys sys[MAX_SYSCALLS];
	int nsys;
	struct prt rt[MAX_RUNTIMES];
	int nrt;
	uint64_t write_errors;
	gid_t gid;
};

/* the series of (runtime, site, file_line), created if there is room; NULL if not */
struct psite *lw_prom_site_get(struct lw_prom *p, const char *runtime, const char *site,
			       const char *file_line, int other);
/* the per-syscall and per-runtime counters, created if there is room */
struct psys *lw_prom_sys_get(struct lw_prom *p, const char *runtime, const char *name);
struct prt *lw_prom_rt_get(struct lw_prom *p, const char *runtime);

#endif
