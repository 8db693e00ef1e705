/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `loopwatch report` exports of the events in range (report_data.h):
 *   - trace: Chrome Trace Event JSON (Perfetto UI, chrome://tracing): a track per pid/tid, slow
 *     callbacks as complete events, the blocking calls they made nested inside them;
 *   - folded: folded stacks ("outer;inner;leaf VALUE", VALUE in microseconds) for flamegraph.pl,
 *     speedscope and inferno;
 *   - html: one self-contained page (no external resources): summary, sites with histograms, an
 *     SVG flame graph, a timeline.
 * Each returns 0, or -EIO when writing failed (-ENOMEM when memory ran out).
 */
#ifndef LW_EXPORT_H
#define LW_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/report_data.h"

/* what a folded stack's value measures */
enum lw_weight {
	LW_WEIGHT_WALL = 0,	/* duration_ms: nested blocking calls split out of their callback */
	LW_WEIGHT_BLOCKED,	/* slow callbacks' blocked_ms + gil_ms, blocking calls' durations */
	LW_WEIGHT_CPU,		/* cpu_ms of slow callbacks */
};

/* "wall", "blocked", "cpu": 0, or -EINVAL */
int lw_weight_parse(const char *s, enum lw_weight *w);
const char *lw_weight_name(enum lw_weight w);

struct lw_export_opts {
	enum lw_weight weight;
	const char *title;		/* html: the page title (e.g. the files read) */
	size_t max_sites;		/* html: rows of the sites tables (0 = 25) */
};

int lw_export_trace(FILE *f, const struct lw_report_data *d);
int lw_export_folded(FILE *f, const struct lw_report_data *d, enum lw_weight w);
int lw_export_html(FILE *f, const struct lw_report_data *d, const struct lw_export_opts *o);

/* ---- shared by the exports (export_folded.c, export_trace.c) */

/* one folded stack: frames outermost first, joined by ';'; value in microseconds */
struct lw_folded {
	char *stack;
	uint64_t value_us;
};

/* The folded stacks of d's events under weight w, identical stacks merged, sorted by stack. */
int lw_folded_build(const struct lw_report_data *d, enum lw_weight w, struct lw_folded **out,
		    size_t *n);
void lw_folded_free(struct lw_folded *v, size_t n);

/* "function (file.py:12)": basename only; ';' and control characters replaced */
void lw_ex_frame_name(const struct lw_rd_frame *fr, char *buf, size_t size);
/* "charge [payment-2]", "build_report", "<unidentified callback>" */
void lw_ex_callback_name(const struct lw_rd_callback *cb, int has, char *buf, size_t size);
/* a native frame's name: "symbol (module)" (with_offset: "symbol+0xOFF (module)"), "symbol" when
 * the module is unknown, "module+0xOFF" when the symbol is; 0 when it has neither (drop it: an
 * export never prints "?" for a frame) */
int lw_ex_native_name(const struct lw_rd_native *n, int with_offset, char *buf, size_t size);
/* "<Task name='x' coro=<f() defined at app.py:17>>", as asyncio and the live text say it */
void lw_ex_callback_repr(const struct lw_rd_callback *cb, int has, char *buf, size_t size);
/* "clock_nanosleep" or "openat /tmp/x.fifo" */
void lw_ex_blocking_name(const struct lw_rd_event *e, char *buf, size_t size);
/* "2026-11-25T04:14:14.123456Z" */
char *lw_ex_ts(uint64_t ns, char *buf, size_t size);

/* a JSON string literal, quotes included */
void lw_ex_json_str(FILE *f, const char *s);
/* text with &, <, >, ", ' escaped for HTML */
void lw_ex_html_str(FILE *f, const char *s);

#endif
