/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One traced process: what was found in it, its probes, and everything it has produced. Turns
 * the BPF records of that process into JSON records (the one representation every output uses),
 * aggregates per-site statistics and writes summaries.
 */
#ifndef LW_SESSION_H
#define LW_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>
#include "loopwatch.h"

struct json_object;
struct lw_bpf;
struct lw_session;

enum lw_runtime {
	LW_RT_AUTO = 0,
	LW_RT_PYTHON,
	LW_RT_NODE,
	LW_RT_LIBUV,
	LW_RT_GENERIC,
};

/* the runtime as records name it: "cpython", "node", "libuv", "generic" */
const char *lw_runtime_name(enum lw_runtime rt);

struct lw_session_opts {
	uint64_t threshold_ns;
	uint64_t block_threshold_ns;
	int precise;
	enum lw_runtime runtime;
	const char *proc_root;		/* "/proc" */
	const char *target_name;	/* daemon: the [target NAME]; NULL for the CLI */
	unsigned share;			/* daemon: its target's ring-buffer share (index + 1);
					 * 0: the process's own alone (lw_pycfg.share) */
	int no_hooks;			/* no asyncio-mistake / GC hooks */
	/* asyncio: every stuck_every_ns (0 = 10 s) an inventory of the Tasks; one pending at the
	 * same await for stuck_after_ns (0 = 60 s) is a stuck_task record */
	uint64_t stuck_every_ns, stuck_after_ns;
};

typedef void (*lw_emit_fn)(void *ctx, struct json_object *rec);

/* Probe and attach. On failure err says why and what to do; the return is -errno. */
int lw_session__new(struct lw_bpf *b, pid_t pid, const struct lw_session_opts *o,
		    struct lw_session **out, char *err, size_t errlen);
/* Detach and forget the process in the maps. */
void lw_session__free(struct lw_session *s);

pid_t lw_session__pid(const struct lw_session *s);
/* The options it was created with (strings point into the session) */
const struct lw_session_opts *lw_session__opts(const struct lw_session *s);
const char *lw_session__comm(const struct lw_session *s);
const char *lw_session__target(const struct lw_session *s);

/* A BPF record of this process (size already checked >= the header and its type's size). */
void lw_session__handle(struct lw_session *s, const struct lw_rec_hdr *h, size_t size,
			lw_emit_fn emit, void *ctx);
/* Periodic work (live alerts); now = CLOCK_MONOTONIC ns */
void lw_session__tick(struct lw_session *s, uint64_t now, lw_emit_fn emit, void *ctx);

/* Records built by the session (caller owns the result) */
struct json_object *lw_session__start_record(struct lw_session *s);
struct json_object *lw_session__summary(struct lw_session *s, int final, uint64_t now);
/* lost events to report: BPF-wide drops are passed in by the engine */
struct json_object *lw_session__end_record(struct lw_session *s, const char *reason,
					   uint64_t lost_events);

/* What `check` prints: runtime, version, binary, how context_run was found, probes. */
struct json_object *lw_session__describe(struct lw_session *s);

/* Counters for status / Prometheus */
struct lw_session_counts {
	uint64_t slow_callbacks;
	uint64_t slow_ticks;
	uint64_t blocking_calls;
	uint64_t read_errors;
	uint64_t stuck_tasks;
	uint64_t not_iterations;	/* slow stretches dropped: no loop iteration (issue 20) */
};
void lw_session__counts(const struct lw_session *s, struct lw_session_counts *out);

/* Dry run: probe only (no BPF), for `loopwatch check`. Same errors as lw_session__new. */
int lw_session__probe(pid_t pid, const struct lw_session_opts *o, struct json_object **out,
		      char *err, size_t errlen);

#endif
