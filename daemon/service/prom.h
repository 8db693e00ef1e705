/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus text format for node_exporter's textfile collector: the metrics of one loopwatchd
 * target, built from the records the engine emits (start, summary, end), written atomically
 * (temp file + rename) as DIR/NAME.prom.
 *
 * Counters and histograms are keyed by target and loop runtime, never by pid: they keep counting
 * across the exits and restarts of the target's processes for as long as loopwatchd runs, and
 * over a loopwatchd restart too (lw_prom__load reads the previous NAME.prom back; delete the
 * file to reset them). Per-process information is only in loopwatch_process_info, a gauge of
 * the processes traced now.
 *
 *   loopwatch_process_info{target,pid,comm,runtime,runtime_version,mode}   gauge 1 (live only)
 *   loopwatch_target_processes{target}                                       gauge
 *   loopwatch_processes_started_total{target,runtime}                        counter
 *   loopwatch_processes_exited_total{target,runtime}                         counter
 *   loopwatch_slow_callbacks_total{target,runtime,site,file_line}            counter
 *   loopwatch_slow_callback_seconds_total{target,runtime,site,file_line}     counter
 *   loopwatch_callback_duration_seconds{target,runtime,site,file_line}       histogram
 *   loopwatch_blocked_seconds_total{target,runtime,site,file_line}           counter
 *   loopwatch_blocking_calls_total{target,runtime,syscall}                   counter
 *   loopwatch_blocking_seconds_total{target,runtime,syscall}                 counter
 *   loopwatch_slow_ticks_total{target,runtime}                               counter
 *   loopwatch_loop_utilization{target,runtime}                               gauge 0..1
 *   loopwatch_report_write_errors_total{target}                              counter
 *
 * Sites: the top N (lw_prom__set_top_sites, default 20) by slow + blocked time get their own
 * series (site = the callback's qualname, file_line = "FILE:LINE" where it is defined; for
 * loopwatch_blocked_seconds_total, the function and line that made the blocking call); the
 * others are summed into site="other", file_line="". What a site gains while it is outside the
 * top N goes to "other", so every series only grows and their sum is exact.
 *
 * Histogram buckets are powers of two of microseconds (1.024 ms ... 33.55 s): the boundaries of
 * loopwatch's own log2 histograms, so every count lands in its true bucket. In the default mode
 * only slow callbacks are measured (a summary's "sites_scope": "slow"); in precise mode the
 * histogram has every callback and a site's slow count is what its histogram holds from the
 * threshold's bucket up.
 *
 * Host-wide counters (lost events, BPF read errors) are not per target: lw_prom_host_render.
 */
#ifndef LW_PROM_H
#define LW_PROM_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

struct json_object;
struct lw_prom;

#define LW_PROM_TOP_SITES 20

int lw_prom__new(const char *target, struct lw_prom **out);
void lw_prom__free(struct lw_prom *p);
/* How many sites get series of their own (>= 1) */
void lw_prom__set_top_sites(struct lw_prom *p, unsigned n);
/* Carry the counters of a previous NAME.prom over (loopwatchd restarted). Missing file: 0.
 * Returns how many series were taken back, or -errno. */
int lw_prom__load(struct lw_prom *p, const char *path);

/* Take in a record: start, summary and end change the metrics; others are ignored. */
void lw_prom__update(struct lw_prom *p, struct json_object *rec);
/* The daemon's own counter for this target's report files */
void lw_prom__set_write_errors(struct lw_prom *p, uint64_t n);

/* The text (malloc'd, NUL-terminated). 0 or -ENOMEM. Settles what sites gained since the last
 * render into their series (or "other"). */
int lw_prom__render(struct lw_prom *p, char **out, size_t *len);
/* Render and replace path atomically (a hidden temp file beside it, then rename). 0 or -errno,
 * with err. */
int lw_prom__write(struct lw_prom *p, const char *path, char *err, size_t errlen);
/* the file's group from now on (0: root's, the default) */
void lw_prom__set_group(struct lw_prom *p, gid_t gid);

/* processes traced now */
size_t lw_prom__nprocs(const struct lw_prom *p);

/* Host-wide counters of loopwatchd, once per host (DIR/loopwatchd.prom): malloc'd text. */
int lw_prom_host_render(uint64_t lost_events, uint64_t read_errors, uint64_t suppressed,
			char **out, size_t *len);

/* One counter family with one label (key), a sample per entry: malloc'd text */
struct lw_prom_count {
	const char *label;
	uint64_t value;
};
int lw_prom_counts_render(const char *name, const char *help, const char *key,
			  const struct lw_prom_count *v, size_t n, char **out, size_t *len);

/* Escape a label value ( \ " newline ) into buf */
const char *lw_prom_escape(const char *s, char *buf, size_t size);

#endif
