/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Private to report/report_*.c, the reader behind `loopwatch report`:
 * report_data.c   interned strings, the data's lifecycle;
 * report_load.c   loading and parsing lines (records, summaries, start/end);
 * report_inputs.c inputs: time expressions, path expansion, rotated files;
 * report_sites.c  site accumulation (merging summaries and records, quantiles);
 * report_finish.c finishing: runs, filters, aggregation (lw_rd__finish).
 */
#ifndef LW_REPORT_PRIV_H
#define LW_REPORT_PRIV_H

#include "report/report_data.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "record/noise.h"
#include "base/u64map.h"

#define RD_MAX_FRAMES 256
#define RD_MAX_MS 1e10			/* durations past ~115 days are nonsense */
#define RD_NEST_SLACK_NS 500000ull	/* a blocking call may end this much after its callback */
#define RD_START_SLACK_NS 2000000000ull	/* records may precede their run's `start` this much */

/* ---- interned strings */

struct rd_pool {
	char **slot;
	size_t cap, n;
};

/* ---- what the loader keeps until lw_rd__finish() */

struct rd_start {
	const char *comm, *runtime, *runtime_version, *mode, *target_name;
};

struct rd_end {
	uint64_t lost_events, suppressed;
};

struct rd_summary {
	int final;
	uint64_t span_ns;		/* interval_s */
	enum lw_rd_scope scope;
	const char *comm, *mode, *target_name;
	struct lw_rd_site *sites;
	size_t nsites;
	struct lw_rd_site *bsites;
	size_t nbsites;
	struct lw_rd_loop *loops;
	size_t nloops;
	uint64_t slow_callbacks, blocking_calls, lost_events;
	int used;
};

struct rd_supp {
	int blocking;
	const char *qualname, *file;
	int64_t line;
	uint64_t count;
	double total_ms, max_ms;
};

enum rd_kind { RD_K_START, RD_K_END, RD_K_EVENT, RD_K_SUMMARY, RD_K_SUPP };

struct rd_item {
	uint64_t ts;
	size_t seq;
	pid_t pid;
	enum rd_kind kind;
	size_t idx;
	size_t run;
};

struct rd_run {
	pid_t pid;
	uint64_t first_ts;
	long start, end, final;		/* indexes into starts, ends, sums; -1: none */
	int closed;
	int use_final;
};

struct lw_rd_priv {
	struct rd_pool pool;
	struct rd_item *items;
	size_t nitems, capitems;
	struct lw_rd_event *evs;
	size_t nevs, capevs;
	struct rd_start *starts;
	size_t nstarts, capstarts;
	struct rd_end *ends;
	size_t nends, capends;
	struct rd_summary *sums;
	size_t nsums, capsums;
	struct rd_supp *supps;
	size_t nsupps, capsupps;
	size_t capfiles;
	struct rd_run *runs;
	size_t nruns;
	int oom;
	int finished;
};


#define GROW(d, arr, n, cap) lw_rd_grow((void **)&(d)->arr, &(d)->cap, (d)->n + 1, sizeof(*(d)->arr))

/* ---- site accumulation (report_sites.c) */

struct dvec {
	double *v;
	size_t n, cap;
};

/*
 * What is known of a site's quantiles while merging its sources (summaries, the record set):
 * a quantile of the merged data lies between the smallest and the largest of the sources' own.
 */
struct site_x {
	int inexact;			/* some source lacks a histogram covering its count */
	double p50_lo, p50_hi, p99_lo, p99_hi;
};

/* a table of sites being built, with the record durations of each for exact quantiles */
struct site_acc {
	struct lw_rd_site *v;
	struct dvec *vals;
	struct site_x *xs;
	size_t n, cap;
	struct lw_u64map *map;		/* key hash -> index + 1 */
};

/* report_data.c */
const char *lw_rd_pool_get(struct rd_pool *p, const char *s, int *oom);
int lw_rd_grow(void **p, size_t *cap, size_t need, size_t elsz);

/* report_load.c */
uint64_t lw_rd_ms_to_ns(double ms);

/* report_sites.c */
void lw_rd_acc_free(struct site_acc *a);
int lw_rd_acc_add_row(struct site_acc *a, const struct lw_rd_site *row);
int lw_rd_acc_add_value(struct site_acc *a, const char *q, const char *f, int64_t line,
			const char *sc, const char *t, double ms);
int lw_rd_acc_add_supp(struct site_acc *a, const struct rd_supp *sp);
void lw_rd_acc_finish(struct site_acc *a, struct lw_rd_site **out, size_t *nout);

#endif
