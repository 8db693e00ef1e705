// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "service/router.h"
#include "record/rectype.h"
#include "report/export.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "service/prom.h"
#include "report/report_data.h"
#include "record/sinks.h"
#include "base/u64map.h"
#include "base/safefile.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPEN_RETRY_NS 1000000000ull		/* a report file that cannot be opened */
#define PROM_MIN_GAP_NS 1000000000ull /* changed .prom files, at most once a second */
#define ERROR_LOG_GAP_NS 30000000000ull /* repeated write errors: one line per 30 s */

/*
 * formats = trace / folded: DIR/NAME.trace.json (Chrome/Perfetto trace) and DIR/NAME.folded
 * (folded stacks, wall time in microseconds), rebuilt every summary interval, when records came
 * in, from the JSONL file itself (the current one and the last rotated one), by the same code as
 * `loopwatch report --format trace|folded`: one implementation, files that always agree with
 * the JSONL, and no memory that grows with the run.
 */
static const struct {
	unsigned format;
	const char *suffix;
} export_formats[] = {
	{ LW_FMT_TRACE, ".trace.json" },
	{ LW_FMT_FOLDED, ".folded" },
};
#define NEXPORT LW_ARRAY_SIZE(export_formats)

#define MAX_EXITED 64
#define EXITED_KEEP_NS 3600000000000ull	/* an hour */

/* a process of the target that ended: its final summary's counts */
struct exited {
	pid_t pid;
	int ended;			/* its end record came (else: final summary only) */
	uint64_t at;			/* CLOCK_MONOTONIC */
	char comm[32];
	char reason[24];
	uint64_t slow_callbacks, slow_ticks, blocking_calls;
};

struct route {
	const struct lw_target_conf *t;
	char *jsonl_path;
	char *prom_path;
	struct lw_jsonl *j;
	uint64_t next_open;		/* when to try opening the JSONL file again */
	uint64_t dropped; /* records not written because the file could not be opened */
	struct lw_prom *prom;
	int prom_dirty;
	uint64_t prom_last;		/* last attempt */
	uint64_t prom_errors;
	uint64_t prom_writes;
	char *export_path[NEXPORT];	/* NULL: format not asked for */
	uint64_t exported_at;		/* records when the exports were last built */
	uint64_t export_last;		/* last attempt (CLOCK_MONOTONIC) */
	uint64_t export_errors, export_writes;
	uint64_t records, slow_callbacks, blocking_calls, slow_ticks, live_alerts;
	struct exited exited[MAX_EXITED];	/* a ring: the processes that ended last */
	size_t nexited;
	uint64_t errors_logged;		/* write_errors when last logged */
	uint64_t next_log;
	char last_error[320];
	gid_t gid;		/* [report] report_group (0: root's) */
};

struct lw_router {
	const struct lw_config *c;
	char *host_path;		/* DIR/loopwatchd.prom: host-wide counters (NULL: no prom) */
	uint64_t host_lost, host_read_errors, host_suppressed;
	uint64_t host_last;
	int host_dirty;
	char *host_extra;		/* more families (loopwatchd's losses), appended */
	size_t host_extra_len;
	struct route *r;
	size_t n;
	struct lw_u64map *pids;		/* pid -> int (route index) */
	uint64_t records, unrouted;
	lw_router_error_fn on_error;
	void *ctx;
};

static char *join_path(const char *dir, const char *name, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix) < 0)
		return NULL;
	return p;
}

static void route_error(struct route *rt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* remember the cause; logging is done (rate-limited) by tick */
static void route_error(struct route *rt, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rt->last_error, sizeof(rt->last_error), fmt, ap);
	va_end(ap);
}

static uint64_t route_errors(const struct route *rt)
{
	return rt->dropped + rt->prom_errors + rt->export_errors +
	       (rt->j ? lw_jsonl__errors(rt->j) : 0);
}

static void open_jsonl(struct lw_router *r, struct route *rt, uint64_t now)
{
	struct lw_jsonl_opts jo = { r->c->rotate_size, r->c->rotate_keep, r->c->report_gid };
	int e;

	if (rt->j || now < rt->next_open)
		return;
	e = lw_jsonl__open(rt->jsonl_path, &jo, &rt->j, NULL, 0);
	if (e) {
		rt->j = NULL;
		rt->next_open = now + OPEN_RETRY_NS;
		route_error(rt, "cannot open %s: %s%s", rt->jsonl_path, strerror(-e),
			    e == -EACCES || e == -EROFS || e == -ENOENT ? " (check that the report "
									  "directory exists and is "
									  "writable; under "
									  "systemd, that it is in "
									  "ReadWritePaths=)"
			    : e == -ELOOP ? " (a symbolic link: loopwatchd does not follow them)"
					  : "");
	}
}

int lw_router__new(const struct lw_config *c, lw_router_error_fn on_error, void *ctx,
		   struct lw_router **out)
{
	struct lw_router *r = calloc(1, sizeof(*r));
	uint64_t now = lw_now_mono();
	size_t i, k;
	int e = -ENOMEM;

	if (!r)
		return -ENOMEM;
	r->c = c;
	r->on_error = on_error;
	r->ctx = ctx;
	if (lw_u64map__new(sizeof(int), &r->pids))
		goto fail;
	r->r = calloc(c->ntargets ? c->ntargets : 1, sizeof(*r->r));
	if (!r->r)
		goto fail;
	r->n = c->ntargets;
	for (i = 0; i < r->n; i++) {
		struct route *rt = &r->r[i];

		rt->t = &c->targets[i];
		rt->gid = c->report_gid;
		if (c->formats & LW_FMT_JSONL) {
			rt->jsonl_path = join_path(c->report_dir, rt->t->name, ".jsonl");
			if (!rt->jsonl_path)
				goto fail;
			open_jsonl(r, rt, now);
		}
		if (c->formats & LW_FMT_PROM) {
			rt->prom_path = join_path(c->report_dir, rt->t->name, ".prom");
			if (!rt->prom_path || lw_prom__new(rt->t->name, &rt->prom))
				goto fail;
			lw_prom__set_group(rt->prom, rt->gid);
			lw_prom__set_top_sites(rt->prom, c->top_sites ? c->top_sites
								       : LW_PROM_TOP_SITES);
			/* counters carry over a loopwatchd restart: the previous file's values */
			e = lw_prom__load(rt->prom, rt->prom_path);
			if (e > 0)
				lw_info("target %s: %d series of %s carried over", rt->t->name, e,
					rt->prom_path);
			else if (e < 0)
				lw_warn("target %s: cannot read %s back (%s): its counters start "
					"from 0", rt->t->name, rt->prom_path, strerror(-e));
			e = -ENOMEM;
			rt->prom_dirty = 1;
		}
		for (k = 0; k < NEXPORT; k++) {
			if (!(c->formats & export_formats[k].format) || !rt->jsonl_path)
				continue;
			rt->export_path[k] = join_path(c->report_dir, rt->t->name,
						       export_formats[k].suffix);
			if (!rt->export_path[k])
				goto fail;
		}
	}
	if (c->formats & LW_FMT_PROM) {
		r->host_path = join_path(c->report_dir, LW_HOST_PROM_NAME, ".prom");
		if (!r->host_path)
			goto fail;
		r->host_dirty = 1;
	}
	*out = r;
	return 0;
fail:
	lw_router__free(r);
	return e;
}

void lw_router__free(struct lw_router *r)
{
	size_t i, k;

	if (!r)
		return;
	for (i = 0; r->r && i < r->n; i++) {
		struct route *rt = &r->r[i];

		lw_jsonl__close(rt->j);
		lw_prom__free(rt->prom);
		for (k = 0; k < NEXPORT; k++)
			free(rt->export_path[k]);
		free(rt->jsonl_path);
		free(rt->prom_path);
	}
	free(r->r);
	free(r->host_path);
	free(r->host_extra);
	lw_u64map__free(r->pids, NULL);
	free(r);
}

void lw_router__assign(struct lw_router *r, pid_t pid, int ti)
{
	int created, *v;

	if (ti < 0 || (size_t)ti >= r->n)
		return;
	v = lw_u64map__put(r->pids, (uint64_t)pid, &created);
	if (v)
		*v = ti;
}

static int route_of(struct lw_router *r, struct json_object *rec, pid_t pid)
{
	const char *name = lw_j_get_str(rec, "target_name");
	int *v;

	if (name) {
		int ti = lw_config__target(r->c, name);

		if (ti >= 0)
			return ti;
	}
	v = lw_u64map__get(r->pids, (uint64_t)pid);
	return v ? *v : -1;
}

/* records the rate limit held back: counted all the same */
static void count_suppressed(struct route *rt, struct json_object *rec)
{
	const char *of = lw_j_get_str(rec, "record_type");
	int64_t n = lw_j_get_int(rec, "count", 0);

	if (!of || n <= 0)
		return;
	switch (lw_rec_kind_of(of)) {
	case LW_RK_SLOW_CALLBACK:
		rt->slow_callbacks += (uint64_t)n;
		break;
	case LW_RK_BLOCKING_CALL:
		rt->blocking_calls += (uint64_t)n;
		break;
	case LW_RK_SLOW_TICK:
		rt->slow_ticks += (uint64_t)n;
		break;
	default:
		break;
	}
}

/* a final summary (its counts) and then the end record (why, when) of a process */
static void exited_from(struct route *rt, struct json_object *rec, pid_t pid, int end)
{
	struct exited *x = NULL;
	size_t i, n = rt->nexited < MAX_EXITED ? rt->nexited : MAX_EXITED;

	for (i = 0; i < n; i++)
		if (rt->exited[i].pid == pid && !rt->exited[i].ended) {
			x = &rt->exited[i];
			break;
		}
	if (!x) {
		x = &rt->exited[rt->nexited++ % MAX_EXITED];
		memset(x, 0, sizeof(*x));
		x->pid = pid;
	}
	x->at = lw_now_mono();
	if (end) {
		x->ended = 1;
		lw_strlcpy(x->reason, lw_j_get_str(rec, "reason") ?: "?", sizeof(x->reason));
		return;
	}
	lw_strlcpy(x->comm, lw_j_get_str(rec, "comm") ?: "?", sizeof(x->comm));
	x->slow_callbacks = (uint64_t)lw_j_get_int(rec, "slow_callbacks", 0);
	x->slow_ticks = (uint64_t)lw_j_get_int(rec, "slow_ticks", 0);
	x->blocking_calls = (uint64_t)lw_j_get_int(rec, "blocking_calls", 0);
}

struct json_object *lw_router__exited(const struct lw_router *r, int ti, uint64_t now)
{
	struct json_object *a = json_object_new_array();
	const struct route *rt;
	size_t n, k;

	if (!a || ti < 0 || (size_t)ti >= r->n)
		return a;
	rt = &r->r[ti];
	n = rt->nexited < MAX_EXITED ? rt->nexited : MAX_EXITED;
	/* newest first */
	for (k = 0; k < n; k++) {
		const struct exited *x = &rt->exited[(rt->nexited - 1 - k) % MAX_EXITED];
		struct json_object *o;

		if (!x->ended || now - x->at > EXITED_KEEP_NS)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "pid", json_object_new_int(x->pid));
		json_object_object_add(o, "comm", json_object_new_string(x->comm));
		json_object_object_add(o, "ended_s_ago", lw_j_num((double)(now - x->at) / 1e9, 1));
		json_object_object_add(o, "reason", json_object_new_string(x->reason));
		json_object_object_add(o, "slow_callbacks",
				       json_object_new_int64((int64_t)x->slow_callbacks));
		json_object_object_add(o, "slow_ticks", json_object_new_int64((int64_t)x->slow_ticks));
		json_object_object_add(o, "blocking_calls",
				       json_object_new_int64((int64_t)x->blocking_calls));
		json_object_array_add(a, o);
	}
	return a;
}

void lw_router__sink(void *ctx, struct json_object *rec)
{
	struct lw_router *r = ctx;
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind kind = lw_rec_kind_of(type);
	pid_t pid = (pid_t)lw_j_get_int(rec, "pid", 0);
	struct route *rt;
	int ti;

	if (!type)
		return;
	ti = route_of(r, rec, pid);
	if (ti < 0) {
		r->unrouted++;
		lw_dbg("a %s record of pid %d belongs to no target: not written", type, (int)pid);
		return;
	}
	rt = &r->r[ti];
	r->records++;
	rt->records++;
	if (kind == LW_RK_SLOW_CALLBACK && lw_j_get_bool(rec, "in_progress"))
		rt->live_alerts++;	/* an alert about a stall, not a slow callback */
	else if (kind == LW_RK_SLOW_CALLBACK)
		rt->slow_callbacks++;
	else if (kind == LW_RK_SUPPRESSED)
		count_suppressed(rt, rec);
	else if (kind == LW_RK_SUMMARY && lw_j_get_bool(rec, "final"))
		exited_from(rt, rec, pid, 0);
	else if (kind == LW_RK_END)
		exited_from(rt, rec, pid, 1);
	else if (kind == LW_RK_BLOCKING_CALL)
		rt->blocking_calls++;
	else if (kind == LW_RK_SLOW_TICK)
		rt->slow_ticks++;
	else if (kind == LW_RK_START)
		lw_router__assign(r, pid, ti);
	if (rt->jsonl_path) {
		open_jsonl(r, rt, lw_now_mono());
		if (rt->j)
			lw_jsonl__write(rt->j, rec);
		else
			rt->dropped++;
	}
	if (rt->prom) {
		lw_prom__update(rt->prom, rec);
		if (kind == LW_RK_START || kind == LW_RK_SUMMARY || kind == LW_RK_END ||
		    kind == LW_RK_STUCK_TASK || kind == LW_RK_SUPPRESSED)
			rt->prom_dirty = 1;
	}
	/* nothing of a process follows its end record (the engine flushes suppressed counts
	 * before it) */
	if (kind == LW_RK_END)
		lw_u64map__del(r->pids, (uint64_t)pid, NULL);
}

void lw_router__reopen(struct lw_router *r)
{
	uint64_t now = lw_now_mono();
	size_t i;

	for (i = 0; i < r->n; i++) {
		struct route *rt = &r->r[i];

		if (rt->j) {
			int e = lw_jsonl__reopen(rt->j);

			if (e)
				route_error(rt, "%s", lw_jsonl__last_error(rt->j));
		} else if (rt->jsonl_path) {
			rt->next_open = 0;
			open_jsonl(r, rt, now);
		}
		rt->prom_dirty = 1;
	}
}

static void write_prom(struct lw_router *r, struct route *rt, uint64_t now)
{
	char err[512];
	int e;

	rt->prom_last = now;
	lw_prom__set_write_errors(rt->prom, route_errors(rt));
	e = lw_prom__write(rt->prom, rt->prom_path, err, sizeof(err));
	if (e) {
		rt->prom_errors++;
		route_error(rt, "%s", err);
		return;
	}
	rt->prom_writes++;
	rt->prom_dirty = 0;
}

/* read one JSONL file into rd (missing is fine: not rotated yet), with the checks of the files
 * written (base/safefile.h): a link, a FIFO or someone else's file at NAME.jsonl.1 is refused */
static int load_jsonl(struct lw_report_data *rd, const char *path, char *err, size_t errlen)
{
	int fd = lw_safe_read(path, LW_NO_UID, err, errlen), e;
	FILE *f;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	f = fdopen(fd, "r");
	if (!f) {
		e = -errno;
		close(fd);
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-e));
		return e;
	}
	e = lw_rd__load_stream(rd, f, path);
	fclose(f);
	if (e)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-e));
	return e;
}

static void write_exports(struct route *rt, uint64_t now)
{
	struct lw_report_data *rd = NULL;
	char rotated[4200], err[512], rerr[512] = "";
	size_t k;
	int e;

	rt->export_last = now;
	snprintf(rotated, sizeof(rotated), "%s.1", rt->jsonl_path);
	e = lw_rd__new(&rd);
	if (!e)
		e = load_jsonl(rd, rotated, rerr, sizeof(rerr));
	if (!e)
		e = load_jsonl(rd, rt->jsonl_path, rerr, sizeof(rerr));
	if (!e)
		e = lw_rd__finish(rd, NULL);
	if (e) {
		rt->export_errors++;
		route_error(rt, "cannot read %s back for the trace/folded files: %s",
			    rt->jsonl_path, rerr[0] ? rerr : strerror(-e));
		lw_rd__free(rd);
		return;
	}
	for (k = 0; k < NEXPORT; k++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m;

		if (!rt->export_path[k])
			continue;
		m = open_memstream(&buf, &len);
		if (!m) {
			rt->export_errors++;
			continue;
		}
		if (export_formats[k].format == LW_FMT_TRACE)
			e = lw_export_trace(m, rd);
		else
			e = lw_export_folded(m, rd, LW_WEIGHT_WALL);
		if (fclose(m) || e) {
			rt->export_errors++;
			route_error(rt, "cannot render %s", rt->export_path[k]);
		} else if (lw_write_file_atomic_gid(rt->export_path[k], buf, len, rt->gid, err,
						    sizeof(err))) {
			rt->export_errors++;
			route_error(rt, "%s", err);
		} else {
			rt->export_writes++;
		}
		free(buf);
	}
	lw_rd__free(rd);
}

void lw_router__set_host(struct lw_router *r, uint64_t lost_events, uint64_t read_errors,
			 uint64_t suppressed)
{
	if (lost_events != r->host_lost || read_errors != r->host_read_errors ||
	    suppressed != r->host_suppressed)
		r->host_dirty = 1;
	r->host_lost = lost_events;
	r->host_read_errors = read_errors;
	r->host_suppressed = suppressed;
}

void lw_router__set_host_extra(struct lw_router *r, char *text, size_t len)
{
	if (!text)
		return;
	if (r->host_extra && len == r->host_extra_len && memcmp(text, r->host_extra, len) == 0) {
		free(text);
		return;
	}
	free(r->host_extra);
	r->host_extra = text;
	r->host_extra_len = len;
	r->host_dirty = 1;
}

static void write_host(struct lw_router *r, uint64_t now)
{
	char *buf = NULL, err[512];
	size_t len = 0;

	r->host_last = now;
	if (lw_prom_host_render(r->host_lost, r->host_read_errors, r->host_suppressed, &buf,
				&len))
		return;
	if (r->host_extra_len) {
		char *all = realloc(buf, len + r->host_extra_len);

		if (!all) {
			free(buf);
			return;
		}
		memcpy(all + len, r->host_extra, r->host_extra_len);
		buf = all;
		len += r->host_extra_len;
	}
	if (lw_write_file_atomic_gid(r->host_path, buf, len, r->c->report_gid, err, sizeof(err)))
		lw_dbg("%s", err);	/* the targets' files report the same directory's errors */
	else
		r->host_dirty = 0;
	free(buf);
}

void lw_router__tick(struct lw_router *r, uint64_t now, int force)
{
	uint64_t every = r->c->summary_interval_ns;
	size_t i;

	if (r->host_path && (force || !r->host_last || now - r->host_last >= every ||
			     (r->host_dirty && now - r->host_last >= PROM_MIN_GAP_NS)))
		write_host(r, now);
	for (i = 0; i < r->n; i++) {
		struct route *rt = &r->r[i];
		uint64_t errs;

		if (rt->prom && (force || !rt->prom_last || now - rt->prom_last >= every ||
				 (rt->prom_dirty && now - rt->prom_last >= PROM_MIN_GAP_NS)))
			write_prom(r, rt, now);
		if ((rt->export_path[0] || rt->export_path[1]) && rt->records != rt->exported_at &&
		    (force || now - rt->export_last >= every)) {
			rt->exported_at = rt->records;
			write_exports(rt, now);
		}
		if (rt->jsonl_path && !rt->j)
			open_jsonl(r, rt, now);
		if (rt->j && lw_jsonl__errors(rt->j) && lw_jsonl__last_error(rt->j)[0])
			lw_strlcpy(rt->last_error, lw_jsonl__last_error(rt->j),
				   sizeof(rt->last_error));
		errs = route_errors(rt);
		if (errs > rt->errors_logged && (now >= rt->next_log || force)) {
			char msg[512];

			snprintf(msg, sizeof(msg),
				 "target %s: %llu report writes failed so far (%s); "
				 "the counts in memory are kept and the writes retried",
				 rt->t->name, (unsigned long long)errs,
				 rt->last_error[0] ? rt->last_error : "unknown cause");
			lw_warn("%s", msg);
			if (r->on_error)
				r->on_error(r->ctx, msg);
			rt->errors_logged = errs;
			rt->next_log = now + ERROR_LOG_GAP_NS;
		}
	}
}

void lw_router__stats(const struct lw_router *r, int ti, struct lw_route_stats *out)
{
	const struct route *rt;

	memset(out, 0, sizeof(*out));
	out->last_error = "";
	if (ti < 0 || (size_t)ti >= r->n)
		return;
	rt = &r->r[ti];
	out->records = rt->records;
	out->slow_callbacks = rt->slow_callbacks;
	out->live_alerts = rt->live_alerts;
	out->blocking_calls = rt->blocking_calls;
	out->slow_ticks = rt->slow_ticks;
	out->write_errors = route_errors(rt);
	out->prom_writes = rt->prom_writes;
	out->last_error = rt->last_error;
	out->jsonl_path = rt->jsonl_path;
	out->prom_path = rt->prom_path;
}

uint64_t lw_router__records(const struct lw_router *r)
{
	return r->records;
}

uint64_t lw_router__unrouted(const struct lw_router *r)
{
	return r->unrouted;
}
