// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON records -> the human text (asyncio's wording, plus where the time went). */
#include "record/render.h"
#include "record/jsonrec.h"
#include "record/rectype.h"
#include "base/lw_util.h"

#include <string.h>

/* array helpers that tolerate records from files: anything not an array is empty */
static size_t arr_len(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static struct json_object *arr_get(struct json_object *a, size_t i)
{
	return i < arr_len(a) ? json_object_array_get_idx(a, i) : NULL;
}

static double ms(struct json_object *o, const char *k)
{
	return lw_j_get_num(o, k, 0);
}

static const char *str(struct json_object *o, const char *k, const char *dflt)
{
	const char *s = lw_j_get_str(o, k);

	return s ? s : dflt;
}

static void fmt_secs(char *buf, size_t size, double msv)
{
	snprintf(buf, size, "%.3f s", msv / 1000.0);
}

/* "<Task name='x' coro=<f() defined at app.py:17>>" or "<Handle f() at app.py:3>" */
static void render_callback(struct json_object *cb, char *buf, size_t size)
{
	const char *kind = str(cb, "kind", "other"), *q = str(cb, "qualname", "?");
	const char *file = lw_j_get_str(cb, "file"), *tn = lw_j_get_str(cb, "task_name");
	int64_t line = lw_j_get_int(cb, "line", 0);
	char where[320] = "";

	if (!cb) {
		snprintf(buf, size, "<unknown callback>");
		return;
	}
	if (file)
		snprintf(where, sizeof(where), "%s:%lld", file, (long long)line);
	if (strcmp(kind, "task") == 0) {
		if (tn)
			snprintf(buf, size, "<Task name='%s' coro=<%s() defined at %s>>", tn, q,
				 where[0] ? where : "?");
		else
			snprintf(buf, size, "<Task coro=<%s() defined at %s>>", q, where[0] ? where : "?");
	} else if (strcmp(kind, "other") == 0) {
		snprintf(buf, size, "<Handle %s>", q);
	} else {
		snprintf(buf, size, "<Handle %s() at %s>", q, where[0] ? where : "?");
	}
}

/* Node.js in its own words: "busyHandler (app.js:23)" (no asyncio Handle) */
static int is_node(struct json_object *r)
{
	const char *rt = lw_j_get_str(r, "runtime");

	return rt && strcmp(rt, "node") == 0;
}

static void render_js_callback(struct json_object *cb, char *buf, size_t size)
{
	const char *file = lw_j_get_str(cb, "file");

	if (file)
		snprintf(buf, size, "%s (%s:%lld)", str(cb, "qualname", "(anonymous)"),
			 lw_basename(file), (long long)lw_j_get_int(cb, "line", 0));
	else
		snprintf(buf, size, "%s", str(cb, "qualname", "(anonymous)"));
}

/* the callback of record r as its runtime says it */
static void render_cb_of(struct json_object *r, struct json_object *cb, char *buf, size_t size)
{
	if (is_node(r) && cb)
		render_js_callback(cb, buf, size);
	else
		render_callback(cb, buf, size);
}

void lw_render_callback(struct json_object *cb, char *buf, size_t size)
{
	struct json_object *e = lw_j_escaped(cb);

	render_callback(e, buf, size);
	json_object_put(e);
}

/* asyncio's own frames under the callback: Handle._run and the loop that called it */
static int is_loop_frame(struct json_object *fr)
{
	const char *fn = lw_j_get_str(fr, "function"), *file = lw_j_get_str(fr, "file");
	size_t n;

	if (!fn || !file || (strcmp(fn, "Handle._run") && strcmp(fn, "_run")))
		return 0;
	n = strlen(file);
	return n >= 17 && strcmp(file + n - 17, "asyncio/events.py") == 0;
}

static void render_stack(FILE *f, struct json_object *stack, const char *label)
{
	size_t i, n = arr_len(stack), limit = n;

	for (i = 1; i < n; i++)
		if (is_loop_frame(arr_get(stack, i))) {
			limit = i;
			break;
		}
	for (i = 0; i < limit && i < 12; i++) {
		struct json_object *fr = arr_get(stack, i);
		const char *fn = str(fr, "function", "?"), *file = str(fr, "file", "?");
		int64_t line = lw_j_get_int(fr, "line", -1);

		if (line >= 0)
			fprintf(f, "        %-11s %s (%s:%lld)\n", i == 0 ? label : "", fn,
				lw_basename(file), (long long)line);
		else
			fprintf(f, "        %-11s %s (%s)\n", i == 0 ? label : "", fn, lw_basename(file));
	}
	if (limit > 12)
		fprintf(f, "        %-11s ... %zu more frames\n", "", limit - 12);
	if (limit < n)
		fprintf(f, "        %-11s (%zu event-loop frames below)\n", "", n - limit);
}

static void render_native(FILE *f, struct json_object *ns, int only_if_no_python)
{
	size_t i, n, shown = 0;

	n = arr_len(ns);
	for (i = 0; i < n && shown < 4; i++) {
		struct json_object *fr = arr_get(ns, i);
		const char *sym = lw_j_get_str(fr, "symbol"), *mod = lw_j_get_str(fr, "module");
		const char *addr = lw_j_get_str(fr, "address"), *label = shown ? "" : "native";

		if (sym && mod)
			fprintf(f, "        %-11s %s+0x%llx (%s)\n", label, sym,
				(unsigned long long)lw_j_get_int(fr, "offset", 0), mod);
		else if (sym)	/* a name without a mapping: no "(?)" */
			fprintf(f, "        %-11s %s+0x%llx\n", label, sym,
				(unsigned long long)lw_j_get_int(fr, "offset", 0));
		else if (mod)	/* no symbol: the module and the offset into it */
			fprintf(f, "        %-11s %s+0x%llx\n", label, mod,
				(unsigned long long)lw_j_get_int(fr, "offset", 0));
		else if (addr)	/* not even a mapping: its address */
			fprintf(f, "        %-11s %s\n", label, addr);
		else		/* nothing to show: dropped, never "??" */
			continue;
		shown++;
	}
	(void)only_if_no_python;
}

/*
 * Mixed stacks: under the innermost Python frame, the native frames down to the syscall (those
 * before the interpreter's eval loop in the native stack), the innermost few, the rest folded.
 * Nothing when the eval loop is not in the native stack (no native frames of the Python code).
 */
static void render_native_under(FILE *f, struct json_object *ns)
{
	size_t i, n = arr_len(ns), under = n;
	struct json_object *part;

	for (i = 0; i < n; i++) {
		const char *sym = lw_j_get_str(arr_get(ns, i), "symbol");

		if (sym && strncmp(sym, "_PyEval_EvalFrame", 17) == 0) {
			under = i;
			break;
		}
	}
	if (under == n || !under)
		return;
	part = json_object_new_array();
	for (i = 0; i < under && i < 4; i++)
		json_object_array_add(part, json_object_get(arr_get(ns, i)));
	render_native(f, part, 0);
	json_object_put(part);
	if (under > 4)
		fprintf(f, "        %-11s ... %zu more native frames\n", "", under - 4);
}

/* The time split: every part above 1 ms (issue 20), each blocking syscall with its share */
static void render_split(FILE *f, struct json_object *r)
{
	struct json_object *blocked = lw_j_get(r, "blocked"), *gh = lw_j_get(r, "gil_holder");
	char b[64];
	size_t i, n = blocked ? arr_len(blocked) : 0, shown = 0;
	double bl = 0;

	fmt_secs(b, sizeof(b), ms(r, "cpu_ms"));
	fprintf(f, "        on-cpu %s", b);
	for (i = 0; i < n; i++)
		bl += ms(arr_get(blocked, i), "ms");
	if (bl >= 1) {
		fmt_secs(b, sizeof(b), bl);
		fprintf(f, " · blocked %s in", b);
		for (i = 0; i < n; i++) {
			struct json_object *e = arr_get(blocked, i);
			int64_t c = lw_j_get_int(e, "count", 0);
			char p[64];

			if (ms(e, "ms") < 1 && shown)
				continue;
			fprintf(f, "%s %s", shown ? "," : "", str(e, "syscall", "?"));
			if (n > 1) {
				fmt_secs(p, sizeof(p), ms(e, "ms"));
				fprintf(f, " %s", p);
			}
			if (c)
				fprintf(f, " (%lld×)", (long long)c);
			shown++;
		}
	}
	if (ms(r, "gil_ms") >= 1) {
		fmt_secs(b, sizeof(b), ms(r, "gil_ms"));
		fprintf(f, " · waiting for the GIL %s", b);
		if (gh && lw_j_get_int(gh, "tid", 0))
			fprintf(f, " (held by tid %lld%s%s)", (long long)lw_j_get_int(gh, "tid", 0),
				lw_j_get_str(gh, "comm") ? " " : "", str(gh, "comm", ""));
	}
	if (ms(r, "gc_ms") >= 1) {
		fmt_secs(b, sizeof(b), ms(r, "gc_ms"));
		fprintf(f, " · gc %s", b);
	}
	fmt_secs(b, sizeof(b), ms(r, "runq_ms"));
	fprintf(f, " · run-queue %s\n", b);
	if (gh && ms(r, "gil_ms") >= 1 && lw_j_get(gh, "stack"))
		render_stack(f, lw_j_get(gh, "stack"), "GIL holder");
}

static void render_slow_callback(FILE *f, struct json_object *r)
{
	char cb[600], d[64];
	const char *kind = lw_j_get_str(r, "stack_kind");
	struct json_object *stack = lw_j_get(r, "stack");

	render_cb_of(r, lw_j_get(r, "callback"), cb, sizeof(cb));
	fmt_secs(d, sizeof(d), ms(r, "duration_ms"));
	if (!lw_j_get_bool(r, "in_progress") && is_node(r) &&
	    lw_j_get(lw_j_get(r, "callback"), "qualname"))
		fprintf(f, lw_j_get_bool(r, "alerted") ?
			"        … pid %lld tid %lld: slow callback %s held the loop %s%s%s%s\n" :
			"WARNING pid %lld tid %lld: slow callback %s held the loop %s%s%s%s\n",
			(long long)lw_j_get_int(r, "pid", 0), (long long)lw_j_get_int(r, "tid", 0), cb, d,
			lw_j_get_str(r, "phase") ? " (libuv " : "", str(r, "phase", ""),
			lw_j_get_str(r, "phase") ? " phase)" : "");
	else if (lw_j_get_bool(r, "in_progress") && !lw_j_get(lw_j_get(r, "callback"), "qualname"))
		fprintf(f, "WARNING pid %lld tid %lld: loop still blocked after %s (in progress)\n",
			(long long)lw_j_get_int(r, "pid", 0), (long long)lw_j_get_int(r, "tid", 0), d);
	else if (lw_j_get_bool(r, "in_progress"))
		fprintf(f, "WARNING pid %lld tid %lld: still executing %s after %s (loop blocked, in progress)\n",
			(long long)lw_j_get_int(r, "pid", 0), (long long)lw_j_get_int(r, "tid", 0), cb, d);
	else
		/* after its live alert: the end of the same event, not a second warning */
		fprintf(f, lw_j_get_bool(r, "alerted") ? "        … pid %lld tid %lld: Executing %s took %s%s%s%s\n"
			: "WARNING pid %lld tid %lld: Executing %s took %s%s%s%s\n",
			(long long)lw_j_get_int(r, "pid", 0), (long long)lw_j_get_int(r, "tid", 0),
			lw_j_get(lw_j_get(r, "callback"), "qualname") ? cb : "<unidentified callback>", d,
			lw_j_get_str(r, "phase") ? " (libuv " : "", str(r, "phase", ""),
			lw_j_get_str(r, "phase") ? " phase)" : "");
	render_split(f, r);
	if (lw_j_get_bool(r, "in_progress")) {
		/* a live alert: the innermost frame is enough, the final record has the rest */
		struct json_object *one = json_object_new_array();

		if (stack && arr_len(stack))
			json_object_array_add(one, json_object_get(arr_get(stack, 0)));
		render_stack(f, one, kind && strcmp(kind, "cpu") == 0 ? "now at" : "blocked at");
		json_object_put(one);
		return;
	}
	if (stack && arr_len(stack)) {
		render_native_under(f, lw_j_get(r, "native_stack"));
		render_stack(f, stack, kind && strcmp(kind, "cpu") == 0 ? "on cpu at" : "blocked at");
	} else
		render_native(f, lw_j_get(r, "native_stack"), 1);
}

static void render_slow_tick(FILE *f, struct json_object *r)
{
	char d[64], cb[600];
	struct json_object *slowest = lw_j_get(r, "slowest");
	struct json_object *cbs = lw_j_get(r, "callbacks");

	if (lw_j_get_bool(r, "has_slow_callback"))
		return;	/* its slow_callback line says it all */
	fmt_secs(d, sizeof(d), ms(r, "busy_ms"));
	fprintf(f, "WARNING pid %lld tid %lld: loop iteration busy %s", (long long)lw_j_get_int(r, "pid", 0),
		(long long)lw_j_get_int(r, "tid", 0), d);
	if (cbs)
		fprintf(f, " over %lld callbacks", (long long)json_object_get_int64(cbs));
	if (slowest) {
		render_cb_of(r, slowest, cb, sizeof(cb));
		if (lw_j_get(slowest, "duration_ms")) {
			fmt_secs(d, sizeof(d), ms(slowest, "duration_ms"));
			fprintf(f, "; slowest %s took %s", cb, d);
		} else {
			fprintf(f, "; mostly in %s", cb);
		}
	}
	if (cbs)
		fprintf(f, " (no single callback reached the threshold)");
	if (lw_j_get_str(r, "phase"))
		fprintf(f, " in libuv's %s phase", lw_j_get_str(r, "phase"));
	fprintf(f, "\n");
	render_split(f, r);
	if (arr_len(lw_j_get(r, "stack")))
		render_native_under(f, lw_j_get(r, "native_stack"));
	render_stack(f, lw_j_get(r, "stack"), "at");
	if (!lw_j_get(r, "stack") || !arr_len(lw_j_get(r, "stack")))
		render_native(f, lw_j_get(r, "native_stack"), 1);
}

static void render_blocking(FILE *f, struct json_object *r)
{
	char d[64], cb[600];
	const char *target = lw_j_get_str(r, "target");
	struct json_object *callback = lw_j_get(r, "callback");
	struct json_object *stack = lw_j_get(r, "stack");

	if (lw_j_get_str(r, "cause_of"))
		return;	/* it made its callback slow: that warning shows it (blocked ... in) */
	fmt_secs(d, sizeof(d), ms(r, "duration_ms"));
	fprintf(f, "WARNING pid %lld tid %lld: blocking %s()", (long long)lw_j_get_int(r, "pid", 0),
		(long long)lw_j_get_int(r, "tid", 0), str(r, "syscall", "?"));
	if (target)
		fprintf(f, " on %s", target);
	fprintf(f, " took %s", d);
	if (callback) {
		render_cb_of(r, callback, cb, sizeof(cb));
		fprintf(f, " in %s", cb);
	}
	fprintf(f, "\n");
	if (arr_len(stack)) {
		/* the line that blocked; the slow_callback record has the whole stack */
		struct json_object *one = json_object_new_array();

		json_object_array_add(one, json_object_get(arr_get(stack, 0)));
		render_native_under(f, lw_j_get(r, "native_stack"));
		render_stack(f, one, "at");
		json_object_put(one);
	} else {
		render_native(f, lw_j_get(r, "native_stack"), 1);
	}
}

static void render_start(FILE *f, struct json_object *r)
{
	const char *rv = lw_j_get_str(r, "runtime_version");

	fprintf(f, "loopwatch %s: tracing pid %lld (%s, %s%s%s), %s mode, threshold %.0f ms, "
		   "blocking calls >= %.0f ms. Ctrl-C to stop.\n",
		str(r, "tool_version", "?"), (long long)lw_j_get_int(r, "pid", 0), str(r, "comm", "?"),
		str(r, "runtime", "?"), rv ? " " : "", rv ? rv : "", str(r, "mode", "?"),
		ms(r, "threshold_ms"), ms(r, "block_threshold_ms"));
	/* Node.js started without the flags that name JS frames or give their lines: how to */
	if (lw_j_get_str(r, "js_names_fix"))
		fprintf(f, "  JS names (%s): %s\n", str(r, "js_names", "?"),
			lw_j_get_str(r, "js_names_fix"));
	if (lw_j_get_str(r, "js_lines_fix"))
		fprintf(f, "  JS lines of the work (%s): %s\n", str(r, "js_lines", "?"),
			lw_j_get_str(r, "js_lines_fix"));
}

static void fmt_ms_col(char *buf, size_t size, double v)
{
	if (v >= 1000)
		snprintf(buf, size, "%.3f s", v / 1000);
	else
		snprintf(buf, size, "%.3f ms", v);
}

static void row_site(struct json_object *r, char *site, size_t size)
{
	const char *file = lw_j_get_str(r, "file");

	if (file)
		snprintf(site, size, "%s (%s:%lld)", str(r, "qualname", "?"), lw_basename(file),
			 (long long)lw_j_get_int(r, "line", 0));
	else
		snprintf(site, size, "%s", str(r, "qualname", "?"));
}

/* columns as wide as their longest cell (lw_col_width); longer cells are cut from the left, so a
 * file name and its line number stay whole */
static void render_rows(FILE *f, struct json_object *rows, int blocking, size_t max)
{
	size_t i, n = rows ? arr_len(rows) : 0, wt = 0, ws = 0;
	char site[400], cut[2][LW_COL_MAX + 8];
	int tw, sw;

	if (!n) {
		fprintf(f, "    (none)\n");
		return;
	}
	for (i = 0; i < n && i < max; i++) {
		struct json_object *r = arr_get(rows, i);
		size_t l = strlen(str(r, "target", "-"));

		row_site(r, site, sizeof(site));
		wt = l > wt ? l : wt;
		ws = strlen(site) > ws ? strlen(site) : ws;
	}
	tw = lw_col_width(wt, 6);
	sw = lw_col_width(ws, blocking ? 2 : 48);
	if (blocking)
		fprintf(f, "    %-16s %-*s %-*s %7s %11s %11s\n", "syscall", tw, "target", sw, "at",
			"count", "total", "max");
	else
		fprintf(f, "    %-*s %7s %11s %11s %11s %11s\n", sw, "site", "count", "total", "p50",
			"p99", "max");
	for (i = 0; i < n && i < max; i++) {
		struct json_object *r = arr_get(rows, i);
		char tot[32], p50[32], p99[32], mx[32];

		row_site(r, site, sizeof(site));
		fmt_ms_col(tot, sizeof(tot), ms(r, "total_ms"));
		fmt_ms_col(p50, sizeof(p50), ms(r, "p50_ms"));
		fmt_ms_col(p99, sizeof(p99), ms(r, "p99_ms"));
		fmt_ms_col(mx, sizeof(mx), ms(r, "max_ms"));
		if (blocking)
			fprintf(f, "    %-16.16s %-*s %-*s %7lld %11s %11s\n",
				str(r, "syscall", "?"),
				tw, lw_tail(str(r, "target", "-"), (size_t)tw, cut[0], sizeof(cut[0])),
				sw, lw_tail(site, (size_t)sw, cut[1], sizeof(cut[1])),
				(long long)lw_j_get_int(r, "count", 0), tot, mx);
		else
			fprintf(f, "    %-*s %7lld %11s %11s %11s %11s\n",
				sw, lw_tail(site, (size_t)sw, cut[1], sizeof(cut[1])),
				(long long)lw_j_get_int(r, "count", 0), tot, p50, p99, mx);
	}
	if (n > max)
		fprintf(f, "    ... %zu more\n", n - max);
}

static void render_hist(FILE *f, struct json_object *hist)
{
	size_t i, n = hist ? arr_len(hist) : 0;
	int64_t maxc = 0;

	for (i = 0; i < n; i++) {
		int64_t c = json_object_get_int64(arr_get(arr_get(hist, i), 1));


		if (c > maxc)
			maxc = c;
	}
	for (i = 0; i < n; i++) {
		struct json_object *pair = arr_get(hist, i);
		double lo = json_object_get_double(arr_get(pair, 0));
		int64_t c = json_object_get_int64(arr_get(pair, 1));
		int w = maxc ? (int)(c * 30 / maxc) : 0;
		char bar[31], lob[32];

		if (c && !w)
			w = 1;
		memset(bar, '*', (size_t)w);
		bar[w] = 0;
		fmt_ms_col(lob, sizeof(lob), lo);
		fprintf(f, "        >= %-11s %8lld |%-30s|\n", lob, (long long)c, bar);
	}
}

static void render_summary(FILE *f, struct json_object *r)
{
	struct json_object *loops = lw_j_get(r, "loops"), *sites = lw_j_get(r, "sites");
	size_t i, n = loops ? arr_len(loops) : 0;
	const char *scope = str(r, "sites_scope", "slow");

	fprintf(f, "\nloopwatch %s summary for pid %lld (%s)%s%s, %.1f s:\n",
		lw_j_get_bool(r, "final") ? "final" : "periodic", (long long)lw_j_get_int(r, "pid", 0),
		str(r, "comm", "?"), lw_j_get_str(r, "target_name") ? ", target " : "",
		str(r, "target_name", ""), lw_j_get_num(r, "interval_s", 0));
	fprintf(f, "  slow callbacks %lld · slow iterations %lld · blocking calls %lld · lost events %lld\n",
		(long long)lw_j_get_int(r, "slow_callbacks", 0), (long long)lw_j_get_int(r, "slow_ticks", 0),
		(long long)lw_j_get_int(r, "blocking_calls", 0), (long long)lw_j_get_int(r, "lost_events", 0));
	if (lw_j_get_int(r, "read_errors", 0)) {
		/* failed reads of target memory, by what they were for (issue 20: the count alone
		 * was only in the JSON, and said nothing of what failed) */
		struct json_object *by = lw_j_get(r, "read_errors_by");
		const char *sep = " (";

		fprintf(f, "  read errors %lld", (long long)lw_j_get_int(r, "read_errors", 0));
		if (by && json_object_is_type(by, json_type_object)) {
			json_object_object_foreach(by, k, v) {
				fprintf(f, "%s%s %lld", sep, k, (long long)json_object_get_int64(v));
				sep = ", ";
			}
		}
		fprintf(f, "%s: memory that changed or was unmapped while it was read; names or "
			   "frames may be missing\n", sep[0] == ',' ? ")" : "");
	}
	if (lw_j_get(r, "asyncio")) {
		struct json_object *a = lw_j_get(r, "asyncio");

		fprintf(f, "  asyncio: %lld coroutines never awaited · %lld exceptions never retrieved · "
			   "%lld tasks destroyed pending\n",
			(long long)lw_j_get_int(a, "unawaited_coroutines", 0),
			(long long)lw_j_get_int(a, "exceptions_never_retrieved", 0),
			(long long)lw_j_get_int(a, "tasks_destroyed_pending", 0));
	}
	if (lw_j_get_int(r, "stuck_tasks", 0))
		fprintf(f, "  asyncio: %lld tasks stuck at one await (stuck_task records)\n",
			(long long)lw_j_get_int(r, "stuck_tasks", 0));
	for (i = 0; i < n; i++) {
		struct json_object *l = arr_get(loops, i);

		fprintf(f, "  loop thread %lld (%s): utilization %.1f%%, %lld iterations, lag p50 %.3f ms p99 %.3f ms",
			(long long)lw_j_get_int(l, "tid", 0), str(l, "comm", "?"),
			100 * lw_j_get_num(l, "utilization", 0), (long long)lw_j_get_int(l, "iterations", 0),
			ms(l, "lag_p50_ms"), ms(l, "lag_p99_ms"));
		if (lw_j_get(l, "callbacks_per_iteration"))
			fprintf(f, ", %.2f callbacks/iteration", lw_j_get_num(l, "callbacks_per_iteration", 0));
		if (lw_j_get_int(l, "gc_collections", 0))
			fprintf(f, ", %lld GCs %.3f ms", (long long)lw_j_get_int(l, "gc_collections", 0),
				ms(l, "gc_ms"));
		fprintf(f, "\n");
	}
	fprintf(f, "  %s by total time:\n", strcmp(scope, "all") == 0 ? "callback sites (every callback)" :
						   "slow callback sites");
	render_rows(f, sites, 0, 20);
	if (sites && arr_len(sites)) {
		size_t k, m = arr_len(sites);

		for (k = 0; k < m && k < 3; k++) {
			struct json_object *s = arr_get(sites, k);

			fprintf(f, "    histogram of %s:\n", str(s, "qualname", "?"));
			render_hist(f, lw_j_get(s, "hist"));
		}
	}
	fprintf(f, "  blocking call sites by total time:\n");
	render_rows(f, lw_j_get(r, "blocking_sites"), 1, 10);
}

static void render_end(FILE *f, struct json_object *r)
{
	fprintf(f, "loopwatch: stopped (%s) after %.1f s; lost events: %lld", str(r, "reason", "?"),
		lw_j_get_num(r, "duration_s", 0), (long long)lw_j_get_int(r, "lost_events", 0));
	if (lw_j_get_int(r, "suppressed", 0))
		fprintf(f, "; records suppressed by the rate limit: %lld (all counted in the summary)",
			(long long)lw_j_get_int(r, "suppressed", 0));
	fprintf(f, "\n");
}

/* asyncio's own wording, then what loopwatch adds (where it was defined, dropped, by whom) */
static void render_asyncio(FILE *f, struct json_object *r, enum lw_rec_kind k)
{
	const char *q = str(r, "qualname", "?"), *file = lw_j_get_str(r, "file");
	const char *tn = lw_j_get_str(r, "task_name");
	int64_t line = lw_j_get_int(r, "line", 0);
	char where[320] = "?";

	if (file)
		snprintf(where, sizeof(where), "%s:%lld", file, (long long)line);
	if (k == LW_RK_UNAWAITED_COROUTINE) {
		fprintf(f, "WARNING pid %lld tid %lld: RuntimeWarning: coroutine '%s' was never awaited "
			   "(defined at %s)\n",
			(long long)lw_j_get_int(r, "pid", 0), (long long)lw_j_get_int(r, "tid", 0), q,
			where);
		render_stack(f, lw_j_get(r, "stack"), "dropped at");
	} else if (k == LW_RK_EXCEPTION_NEVER_RETRIEVED) {
		int task = strcmp(str(r, "future_kind", "task"), "task") == 0;

		fprintf(f, "ERROR pid %lld: %s exception was never retrieved\n",
			(long long)lw_j_get_int(r, "pid", 0), task ? "Task" : "Future");
		const char *exc = str(r, "exception", "?"), *colon = strstr(exc, ": ");
		char erepr[300];

		/* asyncio shows the exception's repr: ValueError('card declined') */
		if (colon)
			snprintf(erepr, sizeof(erepr), "%.*s('%s')", (int)(colon - exc), exc, colon + 2);
		else
			snprintf(erepr, sizeof(erepr), "%s()", exc);
		if (task)
			fprintf(f, "        future: <Task finished name='%s' coro=<%s() done, defined at %s> "
				   "exception=%s>\n",
				tn ? tn : "?", q, where, erepr);
		else
			fprintf(f, "        future: <Future finished exception=%s>\n", erepr);
		render_stack(f, lw_j_get(r, "stack"), "lost at");
	} else {
		fprintf(f, "ERROR pid %lld: Task was destroyed but it is pending!\n"
			   "        task: <Task pending name='%s' coro=<%s() defined at %s>>\n",
			(long long)lw_j_get_int(r, "pid", 0), tn ? tn : "?", q, where);
		render_stack(f, lw_j_get(r, "stack"), "freed at");
	}
}

/* "… Sensor.poll slow 312 more times in the last 60 s, p99 140 ms, max 180 ms" */
static void render_suppressed(FILE *f, struct json_object *r)
{
	struct json_object *site = lw_j_get(r, "site");
	const char *file = lw_j_get_str(site, "file"), *rt = str(r, "record_type", "slow_callback");

	/* one line per site: the slow callbacks; their blocking calls and iterations were
	 * suppressed alike (the JSON Lines file has a record for each) */
	enum lw_rec_kind k = lw_rec_kind_of(rt);

	if (k == LW_RK_STUCK_TASK) {
		/* "… pid 7: 40 more Tasks of handle stuck at Lock.acquire (locks.py:114) ..." */
		fprintf(f, "… pid %lld: %lld more Tasks of %s stuck at %s", (long long)lw_j_get_int(r, "pid", 0),
			(long long)lw_j_get_int(r, "count", 0), str(site, "frame", "?"),
			str(site, "qualname", "?"));
		if (file)
			fprintf(f, " (%s:%lld)", lw_basename(file), (long long)lw_j_get_int(site, "line", 0));
		fprintf(f, " in the last %.0f s, the longest there %.0f s\n", lw_j_get_num(r, "window_s", 0),
			ms(r, "max_ms") / 1000.0);
		return;
	}
	if (k != LW_RK_SLOW_CALLBACK && !(k == LW_RK_SLOW_TICK && !lw_j_get_str(site, "qualname")))
		return;
	fprintf(f, "… pid %lld: %s", (long long)lw_j_get_int(r, "pid", 0),
		lw_j_get_str(site, "qualname") ? lw_j_get_str(site, "qualname") : "loop iterations");
	if (file)
		fprintf(f, " (%s:%lld)", lw_basename(file), (long long)lw_j_get_int(site, "line", 0));
	fprintf(f, " slow %lld more times in the last %.0f s, p99 %.0f ms, max %.0f ms\n",
		(long long)lw_j_get_int(r, "count", 0), lw_j_get_num(r, "window_s", 0),
		ms(r, "p99_ms"), ms(r, "max_ms"));
}

/* "WARNING pid 7 tid 7: Task 'req-3' (handle) stuck 62 s at the same await, awaiting Lock 0x..
 *  (Lock.acquire); awaited by Task 'main' (gather)" and where it waits, innermost first. A Task
 * on a cycle of Tasks awaiting each other is named a deadlock. */
static void render_stuck(FILE *f, struct json_object *r)
{
	struct json_object *task = lw_j_get(r, "task"), *aw = lw_j_get(r, "awaits");
	struct json_object *by = lw_j_get(r, "awaited_by"), *stack = lw_j_get(r, "stack");
	int dl = lw_j_get_bool(r, "deadlock");
	size_t i, n = arr_len(stack), nb = arr_len(by);
	char d[64];

	fmt_secs(d, sizeof(d), ms(r, "pending_ms"));
	fprintf(f, "%s pid %lld tid %lld: %sTask '%s' (%s) stuck %s at the same await",
		dl ? "ERROR" : "WARNING", (long long)lw_j_get_int(r, "pid", 0),
		(long long)lw_j_get_int(r, "tid", 0), dl ? "deadlock: " : "",
		str(task, "name", "?"), str(task, "coro", "?"), d);
	if (aw)
		fprintf(f, ", awaiting %s", str(aw, "what", str(aw, "kind", "?")));
	for (i = 0; i < nb && i < 4; i++) {
		struct json_object *a = arr_get(by, i);

		fprintf(f, "%s Task '%s' (%s)", i ? "," : "; awaited by",
			str(a, "name", str(a, "id", "?")), str(a, "via", "await"));
	}
	if (nb > 4)
		fprintf(f, " and %zu more", nb - 4);
	if (dl)
		fprintf(f, " (Tasks awaiting each other)");
	fprintf(f, "\n");
	for (i = 0; i < n && i < 12; i++) {
		struct json_object *fr = arr_get(stack, i);
		int64_t line = lw_j_get_int(fr, "line", -1);

		if (line >= 0)
			fprintf(f, "        %-11s %s (%s:%lld)\n", i == 0 ? "waiting at" : "",
				str(fr, "qualname", "?"), lw_basename(str(fr, "file", "?")),
				(long long)line);
		else
			fprintf(f, "        %-11s %s (%s)\n", i == 0 ? "waiting at" : "",
				str(fr, "qualname", "?"), lw_basename(str(fr, "file", "?")));
	}
	if (n > 12)
		fprintf(f, "        %-11s ... %zu more frames\n", "", n - 12);
}

static void render_text(FILE *f, struct json_object *r)
{
	const char *type = lw_j_get_str(r, "type");

	if (!type)
		return;
	switch (lw_rec_kind_of(type)) {
	case LW_RK_SLOW_CALLBACK:
		render_slow_callback(f, r);
		break;
	case LW_RK_SLOW_TICK:
		render_slow_tick(f, r);
		break;
	case LW_RK_BLOCKING_CALL:
		render_blocking(f, r);
		break;
	case LW_RK_START:
		render_start(f, r);
		break;
	case LW_RK_SUMMARY:
		render_summary(f, r);
		break;
	case LW_RK_END:
		render_end(f, r);
		break;
	case LW_RK_SUPPRESSED:
		render_suppressed(f, r);
		break;
	case LW_RK_UNAWAITED_COROUTINE:
	case LW_RK_EXCEPTION_NEVER_RETRIEVED:
	case LW_RK_TASK_DESTROYED_PENDING:
		render_asyncio(f, r, lw_rec_kind_of(type));
		break;
	case LW_RK_STUCK_TASK:
		render_stuck(f, r);
		break;
	default:
		break;
	}
}

/* Every string of a record may come from the target (names, files, comm) or from a file read
 * back: the text is rendered from a copy with each of them escaped (base/textesc.h), so no
 * control character, newline or invalid UTF-8 reaches the terminal or the log. */
void lw_render_text(FILE *f, struct json_object *rec)
{
	struct json_object *r = lw_j_escaped(rec);

	render_text(f, r);
	json_object_put(r);
	fflush(f);
}
