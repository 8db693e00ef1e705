// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch tasks --pid PID: every asyncio Task of a running CPython process, read from outside
 * (target/pytasks.h) without stopping it. Text: a table like ps, then the await tree like pstree
 * (a Task under the Tasks that await it). --format json: one `tasks` record.
 */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "target/memread.h"
#include "target/pyproc.h"
#include "target/pytasks.h"

#define EXIT_NOTRACE 1

static void frame_str(const struct lw_task_frame *f, char *buf, size_t size)
{
	if (f->line >= 0)
		snprintf(buf, size, "%s %s:%d", f->qualname[0] ? f->qualname : "?",
			 f->file[0] ? f->file : "?", f->line);
	else
		snprintf(buf, size, "%s %s", f->qualname[0] ? f->qualname : "?",
			 f->file[0] ? f->file : "?");
}

static struct json_object *task_json(const struct lw_tasks *ts, const struct lw_task *t)
{
	struct json_object *o = json_object_new_object(), *st = json_object_new_array(),
			   *by = json_object_new_array();
	char id[32];
	unsigned i;

	snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->addr);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "coro", json_object_new_string(t->coro));
	json_object_object_add(o, "state", json_object_new_string(lw_task_state_name(t->state)));
	snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->loop);
	json_object_object_add(o, "loop", json_object_new_string(id));
	json_object_object_add(o, "tid", t->tid ? json_object_new_int(t->tid) : NULL);
	if (t->eager)
		json_object_object_add(o, "eager", json_object_new_boolean(1));
	for (i = 0; i < t->nframes; i++) {
		struct json_object *f = json_object_new_object();

		json_object_object_add(f, "qualname", json_object_new_string(t->frames[i].qualname));
		json_object_object_add(f, "file", json_object_new_string(t->frames[i].file));
		json_object_object_add(f, "line", t->frames[i].line >= 0 ?
					  json_object_new_int(t->frames[i].line) : NULL);
		json_object_array_add(st, f);
	}
	json_object_object_add(o, "stack", st);
	if (t->truncated)
		json_object_object_add(o, "stack_incomplete", json_object_new_string("truncated"));
	if (t->deadlock)
		json_object_object_add(o, "deadlock", json_object_new_boolean(1));
	if (t->awaits_kind[0]) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "kind", json_object_new_string(t->awaits_kind));
		json_object_object_add(a, "what", json_object_new_string(t->awaits));
		if (lw_tasks__find(ts, t->waiter) >= 0) {
			snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->waiter);
			json_object_object_add(a, "task", json_object_new_string(id));
		}
		json_object_object_add(o, "awaits", a);
	} else {
		json_object_object_add(o, "awaits", NULL);
	}
	for (i = 0; i < t->nawaiters; i++) {
		struct json_object *a = json_object_new_object();

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->awaiters[i].task);
		json_object_object_add(a, "id", json_object_new_string(id));
		json_object_object_add(a, "via", json_object_new_string(t->awaiters[i].via));
		json_object_array_add(by, a);
	}
	json_object_object_add(o, "awaited_by", by);
	return o;
}

static void print_json(const struct lw_pyinfo *pi, const struct lw_tasks *ts, double ms)
{
	struct json_object *r = lw_j_record("tasks", pi->pid, lw_now_real()), *loops;
	const char *head;
	size_t i, hl;

	json_object_object_add(r, "python", json_object_new_string(pi->version));
	json_object_object_add(r, "source", json_object_new_string(ts->source));
	json_object_object_add(r, "stopped", json_object_new_boolean(0));
	json_object_object_add(r, "read_ms", lw_j_num(ms, 3));
	json_object_object_add(r, "count", json_object_new_int64((int64_t)ts->n));
	json_object_object_add(r, "skipped", json_object_new_int64((int64_t)ts->skipped));
	json_object_object_add(r, "done", json_object_new_int64((int64_t)ts->done));
	json_object_object_add(r, "deadlocked", json_object_new_int64((int64_t)ts->deadlocked));
	if (ts->not_c_tasks)
		json_object_object_add(r, "unsupported", json_object_new_int64((int64_t)ts->not_c_tasks));
	loops = json_object_new_array();
	for (i = 0; i < ts->nloops; i++) {
		struct json_object *l = json_object_new_object();
		char id[32];

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)ts->loops[i].addr);
		json_object_object_add(l, "id", json_object_new_string(id));
		json_object_object_add(l, "type", json_object_new_string(ts->loops[i].type));
		json_object_object_add(l, "tid", ts->loops[i].tid ?
					  json_object_new_int(ts->loops[i].tid) : NULL);
		json_object_array_add(loops, l);
	}
	json_object_object_add(r, "loops", loops);
	/* the Tasks last, each built, written and freed in turn: one tree of 10,000 Tasks (some
	 * 300,000 json-c objects) cost more CPU in malloc and free than reading them did */
	head = lw_j_line(r);
	hl = strlen(head);
	if (hl && head[hl - 1] == '}')
		hl--;
	fwrite(head, 1, hl, stdout);
	fputs(hl > 1 ? ",\"tasks\":[" : "\"tasks\":[", stdout);
	for (i = 0; i < ts->n; i++) {
		struct json_object *t = task_json(ts, &ts->v[i]);

		if (i)
			putchar(',');
		fputs(lw_j_line(t), stdout);
		json_object_put(t);
	}
	fputs("]}\n", stdout);
	json_object_put(r);
}

/* who each Task awaits: the awaited-by edges turned around, as index ranges (CSR) */
struct kids {
	size_t *start;		/* n + 1 */
	size_t *idx;
	const char **via;
};

static int kids_build(const struct lw_tasks *ts, struct kids *k)
{
	size_t i, e = 0, *fill;
	unsigned a;

	k->start = calloc(ts->n + 1, sizeof(*k->start));
	fill = calloc(ts->n + 1, sizeof(*fill));
	for (i = 0; k->start && fill && i < ts->n; i++)
		for (a = 0; a < ts->v[i].nawaiters; a++) {
			long p = lw_tasks__find(ts, ts->v[i].awaiters[a].task);

			if (p >= 0)
				k->start[p + 1]++;
		}
	for (i = 0; k->start && i < ts->n; i++)
		k->start[i + 1] += k->start[i];
	e = k->start ? k->start[ts->n] : 0;
	k->idx = calloc(e + 1, sizeof(*k->idx));
	k->via = calloc(e + 1, sizeof(*k->via));
	if (!k->start || !fill || !k->idx || !k->via) {
		free(fill);
		return -ENOMEM;
	}
	for (i = 0; i < ts->n; i++)
		for (a = 0; a < ts->v[i].nawaiters; a++) {
			long p = lw_tasks__find(ts, ts->v[i].awaiters[a].task);

			if (p < 0)
				continue;
			k->idx[k->start[p] + fill[p]] = i;
			k->via[k->start[p] + fill[p]] = ts->v[i].awaiters[a].via;
			fill[p]++;
		}
	free(fill);
	return 0;
}

static void kids_free(struct kids *k)
{
	free(k->start);
	free(k->idx);
	free(k->via);
}

static long tree_budget;	/* lines left: a DAG can make a tree far larger than the Tasks */

static void print_tree(const struct lw_tasks *ts, const struct kids *kd, size_t i, int depth,
		       const char *via, size_t *path, int npath)
{
	const struct lw_task *t = &ts->v[i];
	char fr[400] = "";
	size_t j;
	int k;

	if (tree_budget-- <= 0) {
		if (tree_budget == -1)
			printf("... (the tree is cut here: it repeats Tasks awaited from many places)\n");
		return;
	}
	for (k = 0; k < npath; k++)
		if (path[k] == i) {
			printf("%*s└── (cycle) %s\n", depth * 4, "", t->name);
			return;
		}
	if (t->nframes)
		frame_str(&t->frames[0], fr, sizeof(fr));
	printf("%*s%s%s%s%s%s %s [%s] %s\n", depth * 4, "", depth ? "└── " : "", via ? "(" : "",
	       via ? via : "", via ? ") " : "", t->name, t->coro, lw_task_state_name(t->state), fr);
	if (npath >= 32)
		return;
	path[npath] = i;
	/* children: the Tasks that this one awaits */
	for (j = kd->start[i]; j < kd->start[i + 1]; j++)
		print_tree(ts, kd, kd->idx[j], depth + 1, kd->via[j], path, npath + 1);
}

static void print_text(const struct lw_pyinfo *pi, const struct lw_tasks *ts, double ms)
{
	size_t i, path[33];
	struct kids kd = { 0 };

	tree_budget = 4 * (long)ts->n + 1000;

	printf("pid %d, Python %s: %zu Tasks in %zu loops (read in %.1f ms without stopping the "
	       "process", (int)pi->pid, pi->version, ts->n, ts->nloops, ms);
	if (ts->skipped)
		printf("; %zu changed during the read and were skipped", ts->skipped);
	if (ts->not_c_tasks)
		printf("; %zu pure-Python Tasks not read", ts->not_c_tasks);
	printf(")\n");
	if (ts->deadlocked)
		printf("DEADLOCK: %zu Tasks await each other in a cycle (see the await tree)\n",
		       ts->deadlocked);
	printf("\n");
	printf("%-14s %-7s %-24s %-30s %-10s %-28s %s\n", "ID", "TID", "NAME", "COROUTINE", "STATE",
	       "AWAITS", "AWAITED BY");
	for (i = 0; i < ts->n; i++) {
		const struct lw_task *t = &ts->v[i];
		char id[32], tid[16] = "-", by[256] = "";
		unsigned a;
		size_t o = 0;

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)t->addr);
		if (t->tid)
			snprintf(tid, sizeof(tid), "%d", (int)t->tid);
		for (a = 0; a < t->nawaiters && o + 1 < sizeof(by); a++) {
			long k = lw_tasks__find(ts, t->awaiters[a].task);

			o += (size_t)snprintf(by + o, sizeof(by) - o, "%s%s (%s)", a ? ", " : "",
					      k >= 0 ? ts->v[k].name : "?", t->awaiters[a].via);
		}
		printf("%-14s %-7s %-24s %-30s %-10s %-28s %s\n", id, tid, t->name, t->coro,
		       lw_task_state_name(t->state), t->awaits_kind[0] ? t->awaits_kind : "-",
		       by[0] ? by : "-");
	}
	printf("\nAwait tree (a Task under the Tasks that await it, with the frame it waits in):\n");
	for (i = 0; i < ts->n; i++) {
		const struct lw_task *t = &ts->v[i];

		if (t->nawaiters)
			continue;
		if (!kd.start && kids_build(ts, &kd)) {
			printf("(out of memory for the tree)\n");
			break;
		}
		print_tree(ts, &kd, i, 0, NULL, path, 0);
	}
	kids_free(&kd);
	/* Tasks on a cycle have awaiters but no root above them: print each cycle once */
	for (i = 0; i < ts->n; i++) {
		const struct lw_task *t = &ts->v[i];
		size_t j;
		int first = 1;

		if (!t->deadlock)
			continue;
		for (j = 0; j < i; j++)
			if (ts->v[j].deadlock)
				first = 0;
		if (first)
			printf("DEADLOCK: Tasks that await each other:\n");
		printf("%s %s [%s] awaited by", t->name, t->coro, lw_task_state_name(t->state));
		for (j = 0; j < t->nawaiters; j++) {
			long k = lw_tasks__find(ts, t->awaiters[j].task);

			printf(" %s (%s)", k >= 0 ? ts->v[k].name : "?", t->awaiters[j].via);
		}
		printf("\n");
	}
	printf("\nStacks (innermost first):\n");
	for (i = 0; i < ts->n; i++) {
		const struct lw_task *t = &ts->v[i];
		unsigned f;

		printf("%s (%s)%s%s\n", t->name, t->coro, t->awaits_kind[0] ? " awaits " : "",
		       t->awaits);
		for (f = 0; f < t->nframes; f++) {
			char fr[400];

			frame_str(&t->frames[f], fr, sizeof(fr));
			printf("    %s\n", fr);
		}
		if (t->truncated)
			printf("    ... (deeper frames not shown)\n");
	}
}

int lw_cli_tasks(const struct lw_cli_opts *o)
{
	struct lw_memread *m = NULL;
	struct lw_reader rd;
	struct lw_pyinfo *pi;
	struct lw_tasks ts;
	struct lw_tasklayout tl;
	char err[1024] = "", how[512] = "";
	uint64_t t0;
	double ms;
	int r;

	if (!o->pid)
		return lw_cli_usage_error("tasks needs --pid PID");
	pi = calloc(1, sizeof(*pi));
	if (!pi || lw_memread__open(o->pid, &m)) {
		free(pi);
		fprintf(stderr, "loopwatch: out of memory\n");
		return EXIT_NOTRACE;
	}
	rd = lw_memread__reader(m);
	r = lw_py__probe("/proc", o->pid, &rd, pi, err, sizeof(err));
	if (r) {
		char *tail = strstr(err, "; use --runtime");

		/* the tracer's hint about other runtimes does not apply to Tasks */
		if (tail)
			*tail = 0;
		fprintf(stderr, "loopwatch: %s%s\n", err[0] ? err : strerror(-r),
			r == -ENOEXEC ? " (loopwatch tasks reads CPython's asyncio Tasks)" : "");
		goto out;
	}
	t0 = lw_now_mono();
	/* 3.14+: the Task lists' offsets as this build's _asyncio exports them */
	r = lw_pytasks__debug_offsets("/proc", pi, &tl, how, sizeof(how));
	if (r == -EINVAL)
		fprintf(stderr, "loopwatch: pid %d: %s; using the offsets of CPython %s builds "
			"loopwatch knows\n", (int)o->pid, how, pi->version);
	r = lw_pytasks__snapshot_lay(pi, r == 0 ? &tl : NULL, &rd, &ts, err, sizeof(err));
	ms = (double)(lw_now_mono() - t0) / 1e6;
	if (r) {
		fprintf(stderr, "loopwatch: pid %d: %s\n", (int)o->pid, err[0] ? err : strerror(-r));
		goto out;
	}
	if (strcmp(o->format, "json") == 0)
		print_json(pi, &ts, ms);
	else
		print_text(pi, &ts, ms);
	lw_pytasks__free(&ts);
out:
	lw_memread__close(m);
	free(pi);
	return r ? EXIT_NOTRACE : 0;
}
