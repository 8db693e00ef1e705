/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus text format for node_exporter's textfile collector: the metrics of one loopwatchd
 * target, built from the records the engine emits (start, summary, end), written atomically
 * (temp file + rename) as DIR/NAME.prom.
 *
 *   loopwatch_process_info{target,pid,comm,runtime,runtime_version,mode}   gauge 1
 *   loopwatch_slow_callbacks_total{target,pid}                               counter
 *   loopwatch_slow_ticks_total{target,pid}                                   counter
 *   loopwatch_blocking_calls_total{target,pid,syscall}                       counter
 *   loopwatch_callback_duration_seconds{target,pid}                          histogram
 *   loopwatch_loop_utilization{target,pid,tid}                               gauge 0..1
 *   loopwatch_lost_events_total{target,pid}                                  counter
 *   loopwatch_read_errors_total{target,pid}                                  counter
 *   loopwatch_target_processes{target}                                       gauge
 *   loopwatch_report_write_errors_total{target}                              counter
 *
 * Histogram buckets are powers of two of microseconds (1.024 ms ... 33.55 s): the boundaries of
 * loopwatch's own log2 histograms, so every count lands in its true bucket. In the default mode
 * only slow callbacks are measured (a summary's "sites_scope": "slow"); precise mode measures all.
 */
#ifndef LW_PROM_H
#define LW_PROM_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

struct json_object;
struct lw_prom;

int lw_prom__new(const char *target, struct lw_prom **out);
void lw_prom__free(struct lw_prom *p);

/* Take in a record: start, summary and end change the metrics; others are ignored. */
void lw_prom__update(struct lw_prom *p, struct json_object *rec);
/* The daemon's own counter for this target's report files */
void lw_prom__set_write_errors(struct lw_prom *p, uint64_t n);

/* The text (malloc'd, NUL-terminated). 0 or -ENOMEM. */
int lw_prom__render(const struct lw_prom *p, char **out, size_t *len);
/* Render and replace path atomically (a hidden temp file beside it, then rename). Processes that
 * ended are dropped once a file with their final values was written. 0 or -errno, with err. */
int lw_prom__write(struct lw_prom *p, const char *path, char *err, size_t errlen);
/* the file's group from now on (0: root's, the default) */
void lw_prom__set_group(struct lw_prom *p, gid_t gid);

/* processes known (live and ended-but-not-yet-written) */
size_t lw_prom__nprocs(const struct lw_prom *p);

/* Escape a label value ( \ " newline ) into buf */
const char *lw_prom_escape(const char *s, char *buf, size_t size);

#endif
