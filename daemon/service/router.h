/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * loopwatchd's report files: a router that sends each record to its target's files, by the
 * "target_name" the session puts in it (or, for the few records without one, by pid):
 *   DIR/NAME.jsonl   every record (struct lw_jsonl: rotated by size, reopened on SIGHUP)
 *   DIR/NAME.prom    Prometheus text, atomically replaced (prom.h); its counters are read
 *                    back at start (they carry over a loopwatchd restart)
 *   DIR/loopwatchd.prom  host-wide counters (lost events, BPF read errors), once per host
 *   DIR/NAME.trace.json, DIR/NAME.folded   (formats = trace, folded) rebuilt every summary
 *                    interval from the JSONL files, as `loopwatch report` would
 * A file that cannot be opened or written is counted, logged (rate-limited) and retried; the
 * in-memory aggregates are never touched by a write failure.
 */
#ifndef LW_ROUTER_H
#define LW_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "service/config.h"

struct json_object;
struct lw_router;


/* errors the router meets go to this callback too (the daemon keeps the last ones for status) */
typedef void (*lw_router_error_fn)(void *ctx, const char *msg);

int lw_router__new(const struct lw_config *c, lw_router_error_fn on_error, void *ctx,
		   struct lw_router **out);
/* Close every file (call lw_router__tick(r, now, 1) first to write the last .prom files) */
void lw_router__free(struct lw_router *r);

/* lw_emit_fn: one record of the engine */
void lw_router__sink(void *ctx, struct json_object *rec);

/* Records of pid belong to target index ti (set before attaching; the start record sets it too) */
void lw_router__assign(struct lw_router *r, pid_t pid, int ti);
/* SIGHUP: reopen every file (logrotate moved them) */
void lw_router__reopen(struct lw_router *r);
/* Host-wide counters for DIR/loopwatchd.prom (the engine's, not any target's) */
void lw_router__set_host(struct lw_router *r, uint64_t lost_events, uint64_t read_errors,
			 uint64_t suppressed);
/* More host-wide counter families for the same file (Prometheus text, taken over: freed by
 * the router); written when they change */
void lw_router__set_host_extra(struct lw_router *r, char *text, size_t len);
/* Periodic work (now = CLOCK_MONOTONIC ns): .prom files due or changed, retries, error logs.
 * force writes every .prom file now (at exit). */
void lw_router__tick(struct lw_router *r, uint64_t now, int force);

struct lw_route_stats {
	uint64_t records;		/* routed to this target */
	uint64_t slow_callbacks;	/* events of each kind: records + suppressed counts */
	uint64_t blocking_calls;
	uint64_t slow_ticks;
	uint64_t live_alerts;		/* in_progress slow_callback records (not slow callbacks) */
	uint64_t write_errors;		/* records not written + .prom files not written */
	uint64_t prom_writes;
	const char *last_error;		/* "" when none */
	const char *jsonl_path;		/* NULL when the format is off */
	const char *prom_path;
};
void lw_router__stats(const struct lw_router *r, int ti, struct lw_route_stats *out);
/* The target's processes that ended in the last hour (newest first, at most 64), with their
 * final summary's counts: a JSON array (the caller owns it). */
struct json_object *lw_router__exited(const struct lw_router *r, int ti, uint64_t now);
uint64_t lw_router__records(const struct lw_router *r);
uint64_t lw_router__unrouted(const struct lw_router *r);

#endif
