/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The engine: one BPF object, one epoll loop (ring buffer, signalfd, timerfd, pidfds), a session
 * per traced process, and sinks that receive every record as JSON.
 */
#ifndef LW_ENGINE_H
#define LW_ENGINE_H

#include <stdint.h>
#include <sys/types.h>

#include "record/noise.h"
#include "probe/session.h"

struct json_object;
struct lw_engine;

struct lw_engine_opts {
	uint64_t tick_ns;		/* live-alert check period; 0 = 20 ms */
	uint64_t summary_interval_ns;	/* periodic summaries; 0 = only the final one */
	int sample_hz;			/* CPU stack samples per second; 0 = 49 */
	int no_sampling;
	int want_exec;			/* deliver exec and fork events to on_exec / on_fork */
	int no_live_alerts;
	const char *iterations;		/* "syscall", "sched"; NULL: $LOOPWATCH_ITERATIONS, else
					 * syscall */
	int no_precise;			/* no attach will be precise: skip loading those programs */
	int max_procs;			/* processes traced at once (BPF procs map); 0 = 1,024 */
	struct lw_noise_opts noise;	/* rate limits, ignored sites, per-site thresholds */
};

enum lw_stop_reason {
	LW_STOP_NONE = 0,
	LW_STOP_SIGNAL,
	LW_STOP_DURATION,
	LW_STOP_TARGETS_EXITED,
};

int lw_engine__new(const struct lw_engine_opts *o, struct lw_engine **out, char *err,
		   size_t errlen);
void lw_engine__free(struct lw_engine *e);

/* Every record goes to every sink, in order. The record is freed after the last sink. */
int lw_engine__add_sink(struct lw_engine *e, lw_emit_fn fn, void *ctx);
/* Emit a record built outside (e.g. the daemon's own); takes ownership. */
void lw_engine__emit(struct lw_engine *e, struct json_object *rec);

/* Attach to pid; emits its start record. -errno with err filled. */
int lw_engine__attach(struct lw_engine *e, pid_t pid, const struct lw_session_opts *o, char *err,
		      size_t errlen);
/* Final summary + end record, then detach. */
void lw_engine__detach(struct lw_engine *e, pid_t pid, const char *reason);
int lw_engine__is_attached(const struct lw_engine *e, pid_t pid);
/* A traced process exec'd a program its caller does not want: do not attach its new image. */
void lw_engine__cancel_reattach(struct lw_engine *e, pid_t pid);
int lw_engine__count(const struct lw_engine *e);
struct lw_session *lw_engine__session(struct lw_engine *e, int i);

/* Hooks for the daemon */
void lw_engine__on_exec(struct lw_engine *e, void (*fn)(void *ctx, pid_t pid, pid_t ppid,
							   const char *comm), void *ctx);
/* a new process forked (not a thread); comm is the parent's, as the child starts with it */
void lw_engine__on_fork(struct lw_engine *e, void (*fn)(void *ctx, pid_t pid, pid_t ppid,
							   const char *comm), void *ctx);
void lw_engine__on_hup(struct lw_engine *e, void (*fn)(void *ctx), void *ctx);
void lw_engine__on_timer(struct lw_engine *e, void (*fn)(void *ctx, uint64_t now), void *ctx);
void lw_engine__on_fd(struct lw_engine *e, int fd, void (*fn)(void *ctx, int fd), void *ctx);

/* Run until a signal (SIGINT/SIGTERM), the deadline (CLOCK_MONOTONIC ns, 0 = none), or, with
 * stop_when_empty, until every target is gone. Returns why it stopped. */
enum lw_stop_reason lw_engine__run(struct lw_engine *e, uint64_t deadline, int stop_when_empty);
/* Ask run() to return (from a hook) */
void lw_engine__stop(struct lw_engine *e, enum lw_stop_reason why);

/* Final summaries and end records for every session, then detach all. */
void lw_engine__finish(struct lw_engine *e, const char *reason);

uint64_t lw_engine__lost_events(const struct lw_engine *e);
uint64_t lw_engine__suppressed(const struct lw_engine *e);
struct lw_bpf *lw_engine__bpf(struct lw_engine *e);

#endif
