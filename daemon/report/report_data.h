/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `loopwatch report`: JSON Lines records read back, filtered and aggregated. Pure: no output, no
 * globals; everything comes from the files (or streams) handed to it.
 *
 * Records come from files: any field may be missing or of the wrong type, lines may be cut short
 * (the last one of a file still being written) or not be records at all. Such lines are counted
 * and skipped, never fatal.
 *
 * Aggregation, per process (pid), then per "run" of it (from a `start` record to the next one):
 *   - a run's final summary counts everything of the run (in precise mode every callback, in
 *     default mode every slow one, rate-limited records included): when it is there and inside
 *     the time range, its sites are the run's sites and the run's records add nothing more;
 *   - otherwise periodic summaries inside the time range count their intervals, and records
 *     (slow_callback, blocking_call, suppressed) outside those intervals are added to them;
 *   - live alerts (`in_progress: true`) are never counted.
 */
#ifndef LW_REPORT_DATA_H
#define LW_REPORT_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "record/hist.h"		/* struct lw_hist */

/* strings below are interned: owned by the report data, equal strings are the same pointer */
struct lw_rd_frame {
	const char *function;
	const char *file;
	int64_t line;			/* -1: unknown */
};

struct lw_rd_native {
	const char *symbol;
	const char *module;
	uint64_t offset;
};

struct lw_rd_callback {
	const char *kind;		/* "task", "function", "method", "other" or NULL */
	const char *task_name;
	const char *qualname;
	const char *file;
	int64_t line;			/* -1: unknown */
};

struct lw_rd_blocked {
	const char *syscall;
	double ms;
	int64_t count;
};

enum lw_rd_type {
	LW_RD_SLOW_CALLBACK = 1,
	LW_RD_BLOCKING_CALL,
};

struct lw_rd_event {
	enum lw_rd_type type;
	pid_t pid;
	pid_t tid;
	uint64_t end_ns;		/* the record's "ts": when it ended (wall clock, ns) */
	uint64_t start_ns;		/* end_ns - duration */
	double duration_ms;
	const char *comm;
	int has_callback;		/* blocking calls: 0 when "callback" is null */
	struct lw_rd_callback cb;
	/* slow callbacks: the site they count under ("site", a dispatcher's route), else cb */
	struct lw_rd_callback site;
	/* slow_callback */
	double cpu_ms, offcpu_ms, runq_ms, gil_ms, gc_ms;
	double blocked_ms;		/* sum of blocked[].ms */
	struct lw_rd_blocked *blocked;
	size_t nblocked;
	const char *stack_kind;		/* "blocked", "cpu" or NULL */
	const char *mode;		/* "default", "precise" or NULL */
	/* blocking_call */
	const char *syscall;
	const char *target;
	int64_t fd;			/* -1: none */
	/* both: innermost frame first */
	struct lw_rd_frame *stack;
	size_t nstack;
	struct lw_rd_native *native;
	size_t nnative;
	/* blocking calls: the slow callback whose span holds this call (same thread), or NULL */
	const struct lw_rd_event *parent;
	size_t run_id;			/* after lw_rd__finish(): its run (index + 1; 0: none) */
};

/* a callback site (qualname, file, line) or a blocking site (+ syscall, target) */
struct lw_rd_site {
	const char *qualname;
	const char *file;
	int64_t line;
	const char *syscall;		/* blocking sites only */
	const char *target;
	uint64_t count;
	double total_ms, max_ms, p50_ms, p99_ms;
	struct lw_hist hist;		/* hist.count == 0: no histogram known */
	unsigned sources;		/* summaries / record sets merged into it */
};

struct lw_rd_loop {
	pid_t tid;
	const char *comm;
	double utilization;		/* busy / wall over the summaries used */
	uint64_t iterations;
	double busy_ms, wall_ms;
	struct lw_hist lag;		/* iteration busy times */
};

enum lw_rd_scope {
	LW_RD_SCOPE_NONE = 0,
	LW_RD_SCOPE_SLOW = 1,		/* sites count slow callbacks (default mode, records) */
	LW_RD_SCOPE_ALL = 2,		/* sites count every callback (precise mode summaries) */
	LW_RD_SCOPE_MIXED = 3,
};

struct lw_rd_pid {
	pid_t pid;
	const char *comm;
	const char *runtime, *runtime_version;
	const char *target_name;
	unsigned runs;
	unsigned precise_runs, default_runs;
	uint64_t first_ns, last_ns;	/* records seen in range */
	uint64_t slow_callbacks;	/* counted (summaries, or records outside them) */
	uint64_t blocking_calls;
	uint64_t lost_events;
	uint64_t suppressed;
	unsigned summaries_used;	/* final + periodic summaries the sites came from */
	unsigned record_sets;		/* runs (or parts) counted from records */
	enum lw_rd_scope scope;
	struct lw_rd_site *sites;	/* by total_ms, descending */
	size_t nsites;
	struct lw_rd_site *bsites;	/* blocking sites, by total_ms, descending */
	size_t nbsites;
	struct lw_rd_loop *loops;	/* by tid */
	size_t nloops;
	size_t nevents;			/* events of this pid in lw_report_data.ev */
	unsigned nprocs;		/* roll-ups: the processes in it (pid 0 when more than 1) */
	/* by_run entries: one run of the pid (a `start` to its `end`: one loopwatch attach, or
	 * one loopwatchd life while the process lived); 0 in per-pid entries */
	size_t run_id;			/* the run's index + 1, as in lw_rd_event.run_id */
	unsigned run_seq;		/* the pid's 1st, 2nd... run in the files, in time order */
};

struct lw_rd_filter {
	uint64_t since_ns;		/* 0: no lower bound */
	uint64_t until_ns;		/* 0: no upper bound */
	pid_t pid;			/* 0: every pid */
	const char *site;		/* qualname, file:line, basename:line, a glob; NULL: all */
	int by_run;			/* one entry per run of a pid instead of one per pid */
};

/* why a line was skipped */
enum lw_rd_skip {
	LW_RD_SKIP_TOO_LONG,		/* longer than LW_RD_MAX_LINE: not read into memory */
	LW_RD_SKIP_BINARY,		/* NUL bytes in it */
	LW_RD_SKIP_NOT_JSON,		/* not a JSON object */
	LW_RD_SKIP_NOT_RECORD,		/* no type, pid or ts */
	LW_RD_SKIP_MALFORMED,		/* a record with a field of the wrong kind */
	LW_RD_SKIP_N
};
/* "too_long", "binary", "not_json", "not_record", "malformed" */
const char *lw_rd_skip_name(enum lw_rd_skip why);

#define LW_RD_MAX_LINE (64u << 20)	/* a longer line is skipped, never held in memory */
#define LW_RD_MAX_JUNK (4ull << 30)	/* skipped bytes in a row, no record: not a report */

struct lw_rd_file_stats {
	const char *path;
	size_t lines;
	size_t records;
	size_t skipped;			/* not JSON, not a record, malformed */
	int truncated_last;		/* the last line had no newline and did not parse */
	size_t skipped_by[LW_RD_SKIP_N];	/* skipped, by cause */
};

struct lw_report_data {
	/* after lw_rd__finish(): the events in range, sorted by start time (parents first) */
	const struct lw_rd_event **ev;
	size_t nev;
	struct lw_rd_pid *pids;		/* by pid */
	size_t npids;
	uint64_t first_ns, last_ns;	/* over the events and summaries in range */
	size_t lines, records, skipped;
	size_t truncated;		/* files whose last line was cut short */
	struct lw_rd_file_stats *files;
	size_t nfiles;
	size_t in_progress;		/* live alerts seen (not counted) */
	size_t skipped_by[LW_RD_SKIP_N];	/* skipped, by cause */
	struct lw_rd_priv *priv;
};

int lw_rd__new(struct lw_report_data **out);
void lw_rd__free(struct lw_report_data *d);

/*
 * Read one file of records. 0, or -errno when it cannot be opened or read (err says why): a
 * directory (-EISDIR), a device or socket (-ENODEV: only regular files and pipes are read; a
 * FIFO is opened without waiting for a writer), and whatever lw_rd__load_stream returns.
 */
int lw_rd__load_file(struct lw_report_data *d, const char *path, char *err, size_t errlen);
/*
 * Read records from an open stream; name labels it in the stats. Lines are read with a bounded
 * reader: a line longer than LW_RD_MAX_LINE is skipped (counted as too_long) without being held
 * in memory. 0, -ENOMEM (never taken for the end of the input), -EIO/-errno on a read error, or
 * -EFBIG after LW_RD_MAX_JUNK bytes in a row without a record (/dev/zero, a binary file).
 */
int lw_rd__load_stream(struct lw_report_data *d, FILE *f, const char *name);
/* The message for an error r of the two above, reading name: its cause and what to do. */
void lw_rd_load_error(char *err, size_t errlen, const char *name, int r);
/* Parse one line (no newline needed). 0 when it was a record, 1 when skipped (counted in
 * skipped and skipped_by), -ENOMEM. */
int lw_rd__load_line(struct lw_report_data *d, const char *line);

/* Sort, split into runs, filter and aggregate. Call once, after loading. 0 or -ENOMEM. */
int lw_rd__finish(struct lw_report_data *d, const struct lw_rd_filter *flt);

/*
 * Roll the per-pid results of a finished report up by target: one entry per target_name (pid 0
 * when it has several processes; counts, runs and sites added up; loops left out), and one per
 * pid without a target name. *out is malloc'd; free with lw_rd_rollup_free. 0 or -ENOMEM.
 */
int lw_rd_rollup_targets(const struct lw_report_data *d, struct lw_rd_pid **out, size_t *n);
void lw_rd_rollup_free(struct lw_rd_pid *v, size_t n);
/* Does event e belong to entry p (a pid, or a roll-up of a target's pids)? */
int lw_rd_entry_has(const struct lw_report_data *d, const struct lw_rd_pid *p,
		    const struct lw_rd_event *e);

/*
 * The files to read for FILE arguments: each as given, then its rotated siblings
 * (FILE.1, FILE.2, ... as the JSONL sink names them), oldest first; FILE.jsonl for a FILE that
 * does not exist while FILE.jsonl does. Duplicates (the same file twice) are dropped.
 * *out is a malloc'd array of malloc'd strings (free with lw_rd_free_paths).
 */
int lw_rd_expand_paths(char *const *args, size_t nargs, char ***out, size_t *n);
void lw_rd_free_paths(char **paths, size_t n);

/*
 * A point in time for --since/--until: RFC 3339 ("2026-11-25T04:14:14Z", fraction and a
 * "+02:00" offset allowed, a space for the "T", no zone = UTC, or just a date), "now",
 * "@EPOCH_SECONDS", or a time before now_ns: "10m", "1h ago", "-90s", "2d ago".
 * 0 or -EINVAL.
 */
int lw_rd_parse_time(const char *s, uint64_t now_ns, uint64_t *ns);

/* The site a callback is, for --site and grouping: does pattern match (lw_site_matches)? */
int lw_rd_site_matches(const char *pattern, const char *qualname, const char *file, int64_t line);

#endif
