// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Chrome Trace Event JSON (the format Perfetto UI and chrome://tracing open): one process track
 * per pid and one thread track per tid, named by comm through metadata events; each slow callback
 * a complete event ("ph": "X") named by its callback, each blocking call a complete event on the
 * same thread, nested inside the slow callback it was made in. A record's "ts" is when it ended:
 * an event starts at ts - duration. Times are microseconds since the epoch.
 *
 * Viewers nest complete events of a thread by time alone, so slices are kept strictly nested:
 * a blocking call is clipped to its callback's span, a slice that would start inside an earlier
 * sibling on its thread starts where that one ends.
 */
#include "report/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"
#include "base/u64map.h"

void lw_ex_json_str(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

/* microseconds with the nanoseconds as decimals: exact, unlike a double */
static void put_us(FILE *f, uint64_t ns)
{
	fprintf(f, "%llu.%03llu", (unsigned long long)(ns / 1000), (unsigned long long)(ns % 1000));
}

static void put_ms(FILE *f, const char *key, double v, int *first)
{
	fprintf(f, "%s\"%s\":%.3f", *first ? "" : ",", key, v);
	*first = 0;
}

static void put_key(FILE *f, const char *key, int *first)
{
	fprintf(f, "%s\"%s\":", *first ? "" : ",", key);
	*first = 0;
}

static void put_frames(FILE *f, const struct lw_rd_event *e)
{
	char buf[1200];
	size_t i;

	fputc('[', f);
	for (i = 0; i < e->nstack; i++) {
		const struct lw_rd_frame *fr = &e->stack[i];

		if (fr->file && fr->line >= 0)
			snprintf(buf, sizeof(buf), "%s (%s:%lld)",
				 fr->function ? fr->function : "?", fr->file, (long long)fr->line);
		else
			snprintf(buf, sizeof(buf), "%s (%s)", fr->function ? fr->function : "?",
				 fr->file ? fr->file : "?");
		if (i)
			fputc(',', f);
		lw_ex_json_str(f, buf);
	}
	fputc(']', f);
}

static void put_native(FILE *f, const struct lw_rd_event *e)
{
	char buf[1200];
	size_t i;
	int first = 1;

	fputc('[', f);
	for (i = 0; i < e->nnative; i++) {
		if (!lw_ex_native_name(&e->native[i], 1, buf, sizeof(buf)))
			continue;
		if (!first)
			fputc(',', f);
		first = 0;
		lw_ex_json_str(f, buf);
	}
	fputc(']', f);
}

/* "file:line" of the innermost frame, or of the callback */
static void put_at(FILE *f, const struct lw_rd_event *e, int *first)
{
	char buf[1200];

	if (e->nstack && e->stack[0].file) {
		snprintf(buf, sizeof(buf), "%s:%lld", e->stack[0].file,
			 (long long)e->stack[0].line);
		put_key(f, "at", first);
		lw_ex_json_str(f, buf);
	}
	if (e->has_callback && e->cb.file) {
		snprintf(buf, sizeof(buf), "%s:%lld", e->cb.file, (long long)e->cb.line);
		put_key(f, "defined_at", first);
		lw_ex_json_str(f, buf);
	}
}

static void put_event(FILE *f, const struct lw_rd_event *e, uint64_t start, uint64_t end, int *any)
{
	char name[1200], repr[1600], ts[40];
	int first = 1;
	size_t i;

	if (e->type == LW_RD_SLOW_CALLBACK)
		lw_ex_callback_name(&e->cb, e->has_callback, name, sizeof(name));
	else
		lw_ex_blocking_name(e, name, sizeof(name));
	fputs(*any ? ",\n{\"ph\":\"X\",\"name\":" : "{\"ph\":\"X\",\"name\":", f);
	*any = 1;
	lw_ex_json_str(f, name);
	fprintf(f, ",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":",
		e->type == LW_RD_SLOW_CALLBACK ? "slow_callback" : "blocking_call", (int)e->pid,
		(int)(e->tid ? e->tid : e->pid));
	put_us(f, start);
	fputs(",\"dur\":", f);
	put_us(f, end - start);
	fputs(",\"args\":{", f);
	put_ms(f, "duration_ms", e->duration_ms, &first);
	put_key(f, "ended", &first);
	lw_ex_json_str(f, lw_ex_ts(e->end_ns, ts, sizeof(ts)));
	if (e->has_callback) {
		lw_ex_callback_repr(&e->cb, 1, repr, sizeof(repr));
		put_key(f, "callback", &first);
		lw_ex_json_str(f, repr);
		if (e->cb.task_name) {
			put_key(f, "task", &first);
			lw_ex_json_str(f, e->cb.task_name);
		}
	}
	put_at(f, e, &first);
	if (e->type == LW_RD_SLOW_CALLBACK) {
		put_ms(f, "cpu_ms", e->cpu_ms, &first);
		put_ms(f, "offcpu_ms", e->offcpu_ms, &first);
		put_ms(f, "runq_ms", e->runq_ms, &first);
		put_ms(f, "gil_ms", e->gil_ms, &first);
		put_ms(f, "blocked_ms", e->blocked_ms, &first);
		if (e->gc_ms > 0)
			put_ms(f, "gc_ms", e->gc_ms, &first);
		put_key(f, "blocked", &first);
		fputc('[', f);
		for (i = 0; i < e->nblocked; i++) {
			const struct lw_rd_blocked *b = &e->blocked[i];

			snprintf(repr, sizeof(repr), "%s %.3f ms (%lld×)",
				 b->syscall ? b->syscall : "?", b->ms, (long long)b->count);
			if (i)
				fputc(',', f);
			lw_ex_json_str(f, repr);
		}
		fputc(']', f);
		if (e->stack_kind) {
			put_key(f, "stack_kind", &first);
			lw_ex_json_str(f, e->stack_kind);
		}
	} else {
		put_key(f, "syscall", &first);
		lw_ex_json_str(f, e->syscall ? e->syscall : "?");
		if (e->target) {
			put_key(f, "target", &first);
			lw_ex_json_str(f, e->target);
		}
		if (e->fd >= 0) {
			put_key(f, "fd", &first);
			fprintf(f, "%lld", (long long)e->fd);
		}
	}
	put_key(f, "stack", &first);
	put_frames(f, e);
	if (e->nnative) {
		put_key(f, "native_stack", &first);
		put_native(f, e);
	}
	fputs("}}", f);
}

/* per thread: where the last top-level slice and the last child slice ended */
struct lane {
	uint64_t top_end;
	uint64_t child_end;
	const struct lw_rd_event *parent;
	uint64_t parent_start, parent_end;
	int named;
};

static uint64_t lane_key(pid_t pid, pid_t tid)
{
	return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid;
}

static const char *pid_comm(const struct lw_report_data *d, pid_t pid)
{
	size_t i;

	for (i = 0; i < d->npids; i++)
		if (d->pids[i].pid == pid)
			return d->pids[i].comm;
	return NULL;
}

static const char *thread_comm(const struct lw_report_data *d, const struct lw_rd_event *e)
{
	size_t i, j;

	for (i = 0; i < d->npids; i++) {
		if (d->pids[i].pid != e->pid)
			continue;
		for (j = 0; j < d->pids[i].nloops; j++)
			if (d->pids[i].loops[j].tid == e->tid && d->pids[i].loops[j].comm)
				return d->pids[i].loops[j].comm;
	}
	return e->comm ? e->comm : pid_comm(d, e->pid);
}

static void put_meta(FILE *f, const char *what, pid_t pid, pid_t tid, const char *name, int *any)
{
	fprintf(f, "%s{", *any ? ",\n" : "");
	*any = 1;
	fprintf(f, "\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", what,
		(int)pid, (int)tid);
	lw_ex_json_str(f, name);
	fputs("}}", f);
}

int lw_export_trace(FILE *f, const struct lw_report_data *d)
{
	struct lw_u64map *lanes = NULL;
	size_t i;
	char name[512];
	int any = 0;

	if (lw_u64map__new(sizeof(struct lane), &lanes))
		return -ENOMEM;
	fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"loopwatch " LW_VERSION
	      "\"},\n\"traceEvents\":[\n", f);
	for (i = 0; i < d->npids; i++) {
		const struct lw_rd_pid *p = &d->pids[i];

		snprintf(name, sizeof(name), "%s (pid %d)%s%s", p->comm ? p->comm : "?",
			 (int)p->pid, p->target_name ? " target " : "",
			 p->target_name ? p->target_name : "");
		put_meta(f, "process_name", p->pid, p->pid, name, &any);
	}
	for (i = 0; i < d->nev; i++) {
		const struct lw_rd_event *e = d->ev[i];
		pid_t tid = e->tid ? e->tid : e->pid;
		uint64_t start = e->start_ns, end = e->end_ns;
		struct lane *l;
		int created;

		l = lw_u64map__put(lanes, lane_key(e->pid, tid), &created);
		if (!l) {
			lw_u64map__free(lanes, NULL);
			return -ENOMEM;
		}
		if (!l->named) {
			const char *c = thread_comm(d, e);

			put_meta(f, "thread_name", e->pid, tid, c ? c : "thread", &any);
			l->named = 1;
		}
		if (e->type == LW_RD_BLOCKING_CALL && e->parent && e->parent == l->parent) {
			/* inside its callback, after the calls before it */
			if (start < l->parent_start)
				start = l->parent_start;
			if (start < l->child_end)
				start = l->child_end;
			if (end > l->parent_end)
				end = l->parent_end;
			if (end < start)
				end = start;
			l->child_end = end;
		} else {
			/* a top-level slice: after the previous one on the thread */
			if (start < l->top_end)
				start = l->top_end;
			if (end < start)
				end = start;
			l->top_end = end;
			if (e->type == LW_RD_SLOW_CALLBACK) {
				l->parent = e;
				l->parent_start = start;
				l->parent_end = end;
				l->child_end = start;
			}
		}
		put_event(f, e, start, end, &any);
	}
	fputs("\n]}\n", f);
	lw_u64map__free(lanes, NULL);
	return ferror(f) ? -EIO : 0;
}
