// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch --pid PID --top: a live view that redraws once a second, plain ANSI so that it works
 * over ssh and in tmux: loop utilization per thread, and the sites that held the loop longest
 * (blocked time first, then total time), with what they blocked in; and the asyncio Tasks
 * found stuck at one await (stuck_task records), the latest first.
 */
#include "top.h"
#include "record/rectype.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#define MAX_ROWS 64

struct top_site {
	char qualname[128];
	char file[256];
	long line;
	uint64_t count;
	double total_ms, blocked_ms, cpu_ms, max_ms;
	char top_syscall[32];
	double top_syscall_ms;
};

struct top_loop {
	long tid;
	char comm[32];
	double util;
	double lag_p99_ms;
	long iterations;
};

#define MAX_STUCK 8

struct top_stuck {
	char task[300];		/* "'req-3' (handle)" */
	char where[300];	/* the innermost frame: "Lock.acquire (locks.py:114)" */
	char awaits[160];
	double pending_ms;
	int deadlock;
};

struct lw_top {
	FILE *out;
	struct lw_u64map *sites;
	struct top_loop loops[16];
	int nloops;
	pid_t pid;
	char comm[32];
	char runtime[64];
	uint64_t started;
	uint64_t lost, suppressed, slow, blocking;
	uint64_t stuck_total;			/* stuck Tasks, suppressed ones too */
	uint64_t nstuck;			/* stuck_task records */
	struct top_stuck stuck[MAX_STUCK];	/* a ring: the latest MAX_STUCK records */
	uint64_t last_draw;
};

int lw_top__new(FILE *out, struct lw_top **t)
{
	struct lw_top *x = calloc(1, sizeof(*x));

	if (!x || lw_u64map__new(sizeof(struct top_site), &x->sites)) {
		free(x);
		return -1;
	}
	x->out = out;
	x->started = lw_now_mono();
	*t = x;
	return 0;
}

void lw_top__free(struct lw_top *t)
{
	if (!t)
		return;
	lw_u64map__free(t->sites, NULL);
	free(t);
}

static struct top_site *site_of(struct lw_top *t, struct json_object *cb)
{
	char key[512];
	const char *q = lw_j_get_str(cb, "qualname"), *f = lw_j_get_str(cb, "file");
	long line = (long)lw_j_get_int(cb, "line", 0);
	struct top_site *s;
	int created;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%ld", q ? q : "?", f ? f : "", line);
	s = lw_u64map__put(t->sites, lw_hash_str(key), &created);
	if (s && created) {
		lw_strlcpy(s->qualname, q ? q : "(unidentified)", sizeof(s->qualname));
		lw_strlcpy(s->file, f ? f : "", sizeof(s->file));
		s->line = line;
	}
	return s;
}

static void top_sink(void *ctx, struct json_object *rec)
{
	struct lw_top *t = ctx;
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind kind = lw_rec_kind_of(type);

	if (!type)
		return;
	if (kind == LW_RK_START) {
		t->pid = (pid_t)lw_j_get_int(rec, "pid", 0);
		lw_strlcpy(t->comm, lw_j_get_str(rec, "comm") ?: "?", sizeof(t->comm));
		snprintf(t->runtime, sizeof(t->runtime), "%s %s", lw_j_get_str(rec, "runtime") ?: "",
			 lw_j_get_str(rec, "runtime_version") ?: "");
	} else if (kind == LW_RK_SLOW_CALLBACK && !lw_j_get_bool(rec, "in_progress")) {
		struct top_site *s = site_of(t, lw_j_get(rec, "callback"));
		struct json_object *bl = lw_j_get(rec, "blocked");
		double d = lw_j_get_num(rec, "duration_ms", 0), b = lw_j_get_num(rec, "gil_ms", 0);
		size_t i, n = bl && json_object_is_type(bl, json_type_array) ?
					  json_object_array_length(bl) : 0;

		t->slow++;
		if (!s)
			return;
		for (i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(bl, i);
			double ms = lw_j_get_num(e, "ms", 0);

			b += ms;
			if (ms > s->top_syscall_ms && lw_j_get_str(e, "syscall")) {
				s->top_syscall_ms = ms;
				lw_strlcpy(s->top_syscall, lw_j_get_str(e, "syscall"), sizeof(s->top_syscall));
			}
		}
		s->count++;
		s->total_ms += d;
		s->blocked_ms += b;
		s->cpu_ms += lw_j_get_num(rec, "cpu_ms", 0);
		if (d > s->max_ms)
			s->max_ms = d;
	} else if (kind == LW_RK_BLOCKING_CALL) {
		t->blocking++;
	} else if (kind == LW_RK_SUPPRESSED) {
		const char *of = lw_j_get_str(rec, "record_type");
		int64_t n = lw_j_get_int(rec, "count", 0);

		t->suppressed += (uint64_t)(n > 0 ? n : 0);
		/* held back by the rate limit, counted all the same in the header's totals (the
		 * site rows are from records: their blocked/cpu split is not in a suppressed one) */
		if (n > 0 && of && strcmp(of, "stuck_task") == 0)
			t->stuck_total += (uint64_t)n;
		else if (n > 0 && of && strcmp(of, "slow_callback") == 0)
			t->slow += (uint64_t)n;
		else if (n > 0 && of && strcmp(of, "blocking_call") == 0) {
			t->blocking += (uint64_t)n;
		}
	} else if (kind == LW_RK_STUCK_TASK) {
		struct top_stuck *st = &t->stuck[t->nstuck++ % MAX_STUCK];
		struct json_object *task = lw_j_get(rec, "task"), *stack = lw_j_get(rec, "stack");
		struct json_object *fr = stack && json_object_is_type(stack, json_type_array) &&
					 json_object_array_length(stack) ?
					 json_object_array_get_idx(stack, 0) : NULL;
		const char *file = lw_j_get_str(fr, "file");

		snprintf(st->task, sizeof(st->task), "'%s' (%s)", lw_j_get_str(task, "name") ?: "?",
			 lw_j_get_str(task, "coro") ?: "?");
		if (fr && lw_j_get_int(fr, "line", -1) > 0)
			snprintf(st->where, sizeof(st->where), "%s (%s:%lld)",
				 lw_j_get_str(fr, "qualname") ?: "?", lw_basename(file ?: "?"),
				 (long long)lw_j_get_int(fr, "line", 0));
		else
			snprintf(st->where, sizeof(st->where), "%s",
				 lw_j_get_str(fr, "qualname") ?: "?");
		lw_strlcpy(st->awaits, lw_j_get_str(lw_j_get(rec, "awaits"), "what") ?: "",
			   sizeof(st->awaits));
		st->pending_ms = lw_j_get_num(rec, "pending_ms", 0);
		st->deadlock = lw_j_get_bool(rec, "deadlock");
		t->stuck_total++;
	} else if (kind == LW_RK_SUMMARY) {
		struct json_object *loops = lw_j_get(rec, "loops");
		size_t i, n = loops && json_object_is_type(loops, json_type_array) ?
				      json_object_array_length(loops) : 0;

		t->lost = (uint64_t)lw_j_get_int(rec, "lost_events", 0);
		t->nloops = 0;
		for (i = 0; i < n && t->nloops < 16; i++) {
			struct json_object *l = json_object_array_get_idx(loops, i);
			struct top_loop *tl = &t->loops[t->nloops++];

			tl->tid = (long)lw_j_get_int(l, "tid", 0);
			lw_strlcpy(tl->comm, lw_j_get_str(l, "comm") ?: "?", sizeof(tl->comm));
			tl->util = lw_j_get_num(l, "utilization", 0);
			tl->lag_p99_ms = lw_j_get_num(l, "lag_p99_ms", 0);
			tl->iterations = (long)lw_j_get_int(l, "iterations", 0);
		}
	}
}

/* names, files, comm come from the target: kept escaped (base/textesc.h) for the terminal */
void lw_top_sink(void *ctx, struct json_object *rec)
{
	struct json_object *e = lw_j_escaped(rec);

	top_sink(ctx, e);
	json_object_put(e);
}

static int by_blocked(const void *a, const void *b)
{
	const struct top_site *x = *(struct top_site *const *)a, *y = *(struct top_site *const *)b;

	if (x->blocked_ms != y->blocked_ms)
		return x->blocked_ms < y->blocked_ms ? 1 : -1;
	return x->total_ms < y->total_ms ? 1 : x->total_ms > y->total_ms ? -1 : 0;
}

void lw_top__draw(struct lw_top *t)
{
	struct top_site *rows[MAX_ROWS], *s;
	struct winsize ws = { 0 };
	size_t it = 0, n = 0, i;
	int width = 100, height = 30;
	char bar[21];

	if (ioctl(fileno(t->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col) {
		width = ws.ws_col;
		height = ws.ws_row;
	}
	while ((s = lw_u64map__next(t->sites, &it, NULL)) && n < MAX_ROWS)
		rows[n++] = s;
	qsort(rows, n, sizeof(rows[0]), by_blocked);
	/* home, clear: redraw in place */
	fprintf(t->out, "\033[H\033[2J");
	fprintf(t->out, "loopwatch --top  pid %d (%s, %s)  %.0f s  slow callbacks %llu  blocking calls %llu"
			"  suppressed %llu  lost %llu\n\n",
		(int)t->pid, t->comm, t->runtime, (double)(lw_now_mono() - t->started) / 1e9,
		(unsigned long long)t->slow, (unsigned long long)t->blocking,
		(unsigned long long)t->suppressed, (unsigned long long)t->lost);
	fprintf(t->out, "LOOP THREAD            UTILIZATION                  LAG p99   ITERATIONS/s\n");
	for (i = 0; i < (size_t)t->nloops; i++) {
		int w = (int)(t->loops[i].util * 20 + 0.5);

		memset(bar, '#', (size_t)w);
		memset(bar + w, '.', (size_t)(20 - w));
		bar[20] = 0;
		fprintf(t->out, "%-8ld %-12.12s [%s] %5.1f%% %9.1f ms %12ld\n", t->loops[i].tid,
			t->loops[i].comm, bar, 100 * t->loops[i].util, t->loops[i].lag_p99_ms,
			t->loops[i].iterations);
	}
	if (!t->nloops)
		fprintf(t->out, "(waiting for the first second of data)\n");
	fprintf(t->out, "\nSITES BY BLOCKED TIME  %-*s %6s %10s %10s %10s %10s  %s\n",
		width > 120 ? 40 : 24, "", "COUNT", "BLOCKED", "CPU", "TOTAL", "MAX", "BLOCKED IN");
	/* the stuck Tasks' lines are kept on the screen */
	if (t->nstuck)
		height -= 2 + (int)(t->nstuck < MAX_STUCK ? t->nstuck : MAX_STUCK);
	for (i = 0; i < n && (int)i < height - 10; i++) {
		char site[512];

		s = rows[i];
		if (s->file[0])
			snprintf(site, sizeof(site), "%s (%s:%ld)", s->qualname, lw_basename(s->file),
				 s->line);
		else
			snprintf(site, sizeof(site), "%s", s->qualname);
		fprintf(t->out, "%-*.*s %6llu %8.0fms %8.0fms %8.0fms %8.0fms  %s\n",
			(width > 120 ? 40 : 24) + 22, (width > 120 ? 40 : 24) + 22, site,
			(unsigned long long)s->count, s->blocked_ms, s->cpu_ms, s->total_ms, s->max_ms,
			s->top_syscall);
	}
	if (!n)
		fprintf(t->out, "(no slow callback yet)\n");
	if (t->nstuck) {
		uint64_t k, m = t->nstuck < MAX_STUCK ? t->nstuck : MAX_STUCK;

		fprintf(t->out, "\nSTUCK TASKS (%llu found, the latest first)\n",
			(unsigned long long)t->stuck_total);
		for (k = 0; k < m; k++) {
			const struct top_stuck *st = &t->stuck[(t->nstuck - 1 - k) % MAX_STUCK];

			fprintf(t->out, "%s%s %.0f s at %s%s%s\n", st->deadlock ? "DEADLOCK " : "",
				st->task, st->pending_ms / 1000.0, st->where,
				st->awaits[0] ? ", awaiting " : "", st->awaits);
		}
	}
	fprintf(t->out, "\nCtrl-C to quit\n");
	fflush(t->out);
}

void lw_top__maybe_draw(struct lw_top *t, uint64_t now)
{
	if (now - t->last_draw < 1000000000ull)
		return;
	t->last_draw = now;
	lw_top__draw(t);
}
