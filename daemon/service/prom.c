// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "service/prom.h"
#include "record/rectype.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* bucket upper bounds: 2^10 .. 2^25 microseconds */
#define BUCKET_FIRST_LOG2 10
#define NBUCKETS 16
#define MAX_LOOPS 8
#define MAX_SYSCALLS 32
#define MAX_ENDED 256

struct syscall_count {
	char name[32];
	uint64_t count;
};

struct pproc {
	int pid;
	int ended;
	char comm[32];
	char runtime[16];
	char version[32];
	char mode[16];
	uint64_t slow_callbacks;
	uint64_t slow_ticks;
	uint64_t blocking_calls;
	uint64_t lost_events;
	uint64_t read_errors;
	struct syscall_count sys[MAX_SYSCALLS];
	int nsys;
	uint64_t buckets[NBUCKETS + 1];	/* not cumulative; the last: above them all */
	uint64_t hcount;
	double hsum_s;
	struct {
		int tid;
		double util;
	} loops[MAX_LOOPS];
	int nloops;
};

struct lw_prom {
	char target[64];
	struct pproc *p;
	size_t n, cap;
	uint64_t write_errors;
	gid_t gid;
};

void lw_prom__set_group(struct lw_prom *p, gid_t gid)
{
	p->gid = gid;
}

int lw_prom__new(const char *target, struct lw_prom **out)
{
	struct lw_prom *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	lw_strlcpy(p->target, target, sizeof(p->target));
	*out = p;
	return 0;
}

void lw_prom__free(struct lw_prom *p)
{
	if (!p)
		return;
	free(p->p);
	free(p);
}

size_t lw_prom__nprocs(const struct lw_prom *p)
{
	return p->n;
}

void lw_prom__set_write_errors(struct lw_prom *p, uint64_t n)
{
	p->write_errors = n;
}

static struct pproc *find(struct lw_prom *p, int pid)
{
	size_t i;

	/* the newest entry for a pid (a reused pid may have an ended one before it) */
	for (i = p->n; i-- > 0;)
		if (p->p[i].pid == pid)
			return &p->p[i];
	return NULL;
}

static void drop(struct lw_prom *p, size_t i)
{
	memmove(&p->p[i], &p->p[i + 1], (p->n - i - 1) * sizeof(p->p[0]));
	p->n--;
}

static struct pproc *add(struct lw_prom *p, int pid)
{
	struct pproc *pp;
	size_t i, ended = 0;

	/* bound what ended processes keep while the file cannot be written */
	for (i = 0; i < p->n; i++)
		ended += p->p[i].ended;
	for (i = 0; ended >= MAX_ENDED && i < p->n;) {
		if (p->p[i].ended) {
			drop(p, i);
			ended--;
		} else {
			i++;
		}
	}
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		struct pproc *np = realloc(p->p, nc * sizeof(*np));

		if (!np)
			return NULL;
		p->p = np;
		p->cap = nc;
	}
	pp = &p->p[p->n++];
	memset(pp, 0, sizeof(*pp));
	pp->pid = pid;
	return pp;
}

static void copy_str(char *dst, size_t size, struct json_object *rec, const char *key)
{
	const char *s = lw_j_get_str(rec, key);

	if (s)
		lw_strlcpy(dst, s, size);
}

static uint64_t get_u64(struct json_object *rec, const char *key, uint64_t dflt)
{
	int64_t v = lw_j_get_int(rec, key, -1);

	return v < 0 ? dflt : (uint64_t)v;
}

/* the bucket of a histogram slot starting at low_ns (slots never straddle a power of two) */
static int bucket_of(uint64_t low_ns)
{
	int b;

	for (b = 0; b < NBUCKETS; b++)
		if (low_ns < (1000ull << (BUCKET_FIRST_LOG2 + b)))
			return b;
	return NBUCKETS;
}

static int is_number(struct json_object *o)
{
	return o &&
	       (json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double));
}

struct hist_acc {
	uint64_t buckets[NBUCKETS + 1];
	uint64_t count;
	double sum_s;
};

static void hist_from_sites(struct json_object *sites, struct hist_acc *h)
{
	size_t i, n;

	memset(h, 0, sizeof(*h));
	if (!sites || !json_object_is_type(sites, json_type_array))
		return;
	n = json_object_array_length(sites);
	for (i = 0; i < n; i++) {
		struct json_object *site = json_object_array_get_idx(sites, i);
		struct json_object *hist = lw_j_get(site, "hist");
		size_t j, m;

		h->sum_s += lw_j_get_num(site, "total_ms", 0) / 1000.0;
		if (!hist || !json_object_is_type(hist, json_type_array))
			continue;
		m = json_object_array_length(hist);
		for (j = 0; j < m; j++) {
			struct json_object *pair = json_object_array_get_idx(hist, j), *lo, *cnt;
			double low_ms;
			int64_t c;

			if (!pair || !json_object_is_type(pair, json_type_array) ||
			    json_object_array_length(pair) < 2)
				continue;
			lo = json_object_array_get_idx(pair, 0);
			cnt = json_object_array_get_idx(pair, 1);
			if (!is_number(lo) || !is_number(cnt))
				continue;
			low_ms = json_object_get_double(lo);
			c = json_object_get_int64(cnt);
			if (c <= 0 || !(low_ms >= 0) || low_ms > 1e12)
				continue;
			h->buckets[bucket_of((uint64_t)llround(low_ms * 1e6))] += (uint64_t)c;
			h->count += (uint64_t)c;
		}
	}
}

static struct syscall_count *sys_slot(struct pproc *pp, const char *name)
{
	int i;

	for (i = 0; i < pp->nsys; i++)
		if (strcmp(pp->sys[i].name, name) == 0)
			return &pp->sys[i];
	if (pp->nsys == MAX_SYSCALLS)
		return NULL;
	lw_strlcpy(pp->sys[pp->nsys].name, name, sizeof(pp->sys[0].name));
	pp->sys[pp->nsys].count = 0;
	return &pp->sys[pp->nsys++];
}

static void take_summary(struct pproc *pp, struct json_object *rec)
{
	int final = lw_j_get_bool(rec, "final");
	struct json_object *bs = lw_j_get(rec, "blocking_sites"), *loops = lw_j_get(rec, "loops");
	struct syscall_count sys[MAX_SYSCALLS];
	struct hist_acc h;
	int nsys = 0, i;
	size_t k, n;

	copy_str(pp->comm, sizeof(pp->comm), rec, "comm");
	copy_str(pp->mode, sizeof(pp->mode), rec, "mode");
	/* counters the session keeps for the whole run */
	pp->slow_callbacks = get_u64(rec, "slow_callbacks", pp->slow_callbacks);
	pp->slow_ticks = get_u64(rec, "slow_ticks", pp->slow_ticks);
	pp->blocking_calls = get_u64(rec, "blocking_calls", pp->blocking_calls);
	pp->lost_events = get_u64(rec, "lost_events", pp->lost_events);
	pp->read_errors = get_u64(rec, "read_errors", pp->read_errors);
	/* per-syscall counts of this summary: the interval's, or the whole run's for the final */
	n = bs && json_object_is_type(bs, json_type_array) ? json_object_array_length(bs) : 0;
	for (k = 0; k < n; k++) {
		struct json_object *row = json_object_array_get_idx(bs, k);
		const char *name = lw_j_get_str(row, "syscall");
		int64_t c = lw_j_get_int(row, "count", 0);

		if (!name || c <= 0)
			continue;
		for (i = 0; i < nsys; i++)
			if (strcmp(sys[i].name, name) == 0)
				break;
		if (i == nsys) {
			if (nsys == MAX_SYSCALLS)
				continue;
			lw_strlcpy(sys[nsys].name, name, sizeof(sys[0].name));
			sys[nsys++].count = 0;
		}
		sys[i].count += (uint64_t)c;
	}
	hist_from_sites(lw_j_get(rec, "sites"), &h);
	for (i = 0; i < nsys; i++) {
		struct syscall_count *sc = sys_slot(pp, sys[i].name);

		if (!sc)
			continue;
		if (!final)
			sc->count += sys[i].count;
		else if (sys[i].count > sc->count)
			sc->count = sys[i].count;	/* the whole run, never below the sum */
	}
	if (!final) {
		for (i = 0; i <= NBUCKETS; i++)
			pp->buckets[i] += h.buckets[i];
		pp->hcount += h.count;
		pp->hsum_s += h.sum_s;
	} else if (h.count >= pp->hcount) {
		memcpy(pp->buckets, h.buckets, sizeof(pp->buckets));
		pp->hcount = h.count;
		pp->hsum_s = h.sum_s;
	}
	/* utilization of the interval (or the whole run) per loop thread */
	n = 0;
	if (loops && json_object_is_type(loops, json_type_array))
		n = json_object_array_length(loops);
	pp->nloops = 0;
	for (k = 0; k < n && pp->nloops < MAX_LOOPS; k++) {
		struct json_object *l = json_object_array_get_idx(loops, k);
		double u = lw_j_get_num(l, "utilization", -1);

		if (u < 0)
			continue;
		pp->loops[pp->nloops].tid = (int)lw_j_get_int(l, "tid", 0);
		pp->loops[pp->nloops].util = u > 1 ? 1 : u;
		pp->nloops++;
	}
}

void lw_prom__update(struct lw_prom *p, struct json_object *rec)
{
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind kind = lw_rec_kind_of(type);
	int pid = (int)lw_j_get_int(rec, "pid", 0);
	struct pproc *pp;

	if (!type || pid <= 0)
		return;
	if (kind == LW_RK_START) {
		pp = find(p, pid);
		if (!pp || pp->ended)
			pp = add(p, pid);
		if (!pp)
			return;
		pp->ended = 0;
		copy_str(pp->comm, sizeof(pp->comm), rec, "comm");
		copy_str(pp->runtime, sizeof(pp->runtime), rec, "runtime");
		copy_str(pp->version, sizeof(pp->version), rec, "runtime_version");
		copy_str(pp->mode, sizeof(pp->mode), rec, "mode");
	} else if (kind == LW_RK_SUMMARY) {
		pp = find(p, pid);
		if (!pp)
			pp = add(p, pid);
		if (pp)
			take_summary(pp, rec);
	} else if (kind == LW_RK_END) {
		pp = find(p, pid);
		if (pp) {
			pp->ended = 1;
			pp->lost_events = get_u64(rec, "lost_events", pp->lost_events);
		}
	}
}

const char *lw_prom_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (!size)
		return buf;
	for (; s && *s && o + 2 < size; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render(const struct lw_prom *p, FILE *f)
{
	char t[160], a[96], b[96], c[96];
	size_t i;
	int k;

	lw_prom_escape(p->target, t, sizeof(t));
	family(f, "loopwatch_process_info", "gauge",
	       "A process loopwatchd traces for this target (value 1).");
	for (i = 0; i < p->n; i++) {
		const struct pproc *pp = &p->p[i];

		fprintf(f,
			"loopwatch_process_info{target=\"%s\",pid=\"%d\",comm=\"%s\","
			"runtime=\"%s\",runtime_version=\"%s\",mode=\"%s\"} 1\n",
			t, pp->pid, lw_prom_escape(pp->comm, a, sizeof(a)),
			lw_prom_escape(pp->runtime, b, sizeof(b)),
			lw_prom_escape(pp->version, c, sizeof(c)),
			pp->mode[0] ? pp->mode : "default");
	}
	family(f, "loopwatch_slow_callbacks_total", "counter",
	       "Callbacks that held the event loop at least the slow threshold.");
	for (i = 0; i < p->n; i++)
		fprintf(f, "loopwatch_slow_callbacks_total{target=\"%s\",pid=\"%d\"} %llu\n", t,
			p->p[i].pid, (unsigned long long)p->p[i].slow_callbacks);
	family(f, "loopwatch_slow_ticks_total", "counter",
	       "Loop iterations busy at least the slow threshold.");
	for (i = 0; i < p->n; i++)
		fprintf(f, "loopwatch_slow_ticks_total{target=\"%s\",pid=\"%d\"} %llu\n", t,
			p->p[i].pid, (unsigned long long)p->p[i].slow_ticks);
	family(f, "loopwatch_blocking_calls_total", "counter",
	       "Syscalls made inside a callback that blocked at least the block threshold.");
	for (i = 0; i < p->n; i++)
		for (k = 0; k < p->p[i].nsys; k++)
			fprintf(f, "loopwatch_blocking_calls_total{target=\"%s\",pid=\"%d\","
				"syscall=\"%s\"} %llu\n", t, p->p[i].pid,
				lw_prom_escape(p->p[i].sys[k].name, a, sizeof(a)),
				(unsigned long long)p->p[i].sys[k].count);
	family(f, "loopwatch_callback_duration_seconds", "histogram",
	       "Callback durations (default mode: slow callbacks only; precise mode: all).");
	for (i = 0; i < p->n; i++) {
		const struct pproc *pp = &p->p[i];
		uint64_t cum = 0;

		for (k = 0; k < NBUCKETS; k++) {
			double le = (double)(1ull << (BUCKET_FIRST_LOG2 + k)) / 1e6;

			cum += pp->buckets[k];
			fprintf(f, "loopwatch_callback_duration_seconds_bucket{target=\"%s\","
				"pid=\"%d\",le=\"%.6f\"} %llu\n", t, pp->pid, le,
				(unsigned long long)cum);
		}
		fprintf(f, "loopwatch_callback_duration_seconds_bucket{target=\"%s\",pid=\"%d\","
			"le=\"+Inf\"} %llu\n", t, pp->pid, (unsigned long long)pp->hcount);
		fprintf(f,
			"loopwatch_callback_duration_seconds_sum{target=\"%s\",pid=\"%d\"} %.6f\n",
			t, pp->pid, pp->hsum_s);
		fprintf(f, "loopwatch_callback_duration_seconds_count{target=\"%s\",pid=\"%d\"} "
			"%llu\n", t, pp->pid, (unsigned long long)pp->hcount);
	}
	family(f, "loopwatch_loop_utilization", "gauge",
	       "Busy share of an event-loop thread over the last summary interval (0..1).");
	for (i = 0; i < p->n; i++)
		for (k = 0; k < p->p[i].nloops; k++)
			fprintf(f,
				"loopwatch_loop_utilization{target=\"%s\",pid=\"%d\",tid=\"%d\"} "
				"%.4f\n",
				t, p->p[i].pid, p->p[i].loops[k].tid, p->p[i].loops[k].util);
	family(f, "loopwatch_lost_events_total", "counter",
	       "Events the BPF side could not deliver (ring buffer full), host-wide.");
	for (i = 0; i < p->n; i++)
		fprintf(f, "loopwatch_lost_events_total{target=\"%s\",pid=\"%d\"} %llu\n", t,
			p->p[i].pid, (unsigned long long)p->p[i].lost_events);
	family(f, "loopwatch_read_errors_total", "counter",
	       "Reads of the target's memory that failed (stacks, names).");
	for (i = 0; i < p->n; i++)
		fprintf(f, "loopwatch_read_errors_total{target=\"%s\",pid=\"%d\"} %llu\n", t,
			p->p[i].pid, (unsigned long long)p->p[i].read_errors);
	family(f, "loopwatch_target_processes", "gauge", "Processes traced for this target now.");
	{
		size_t live = 0;

		for (i = 0; i < p->n; i++)
			live += !p->p[i].ended;
		fprintf(f, "loopwatch_target_processes{target=\"%s\"} %zu\n", t, live);
	}
	family(f, "loopwatch_report_write_errors_total", "counter",
	       "Records or files of this target that could not be written.");
	fprintf(f, "loopwatch_report_write_errors_total{target=\"%s\"} %llu\n", t,
		(unsigned long long)p->write_errors);
}

int lw_prom__render(const struct lw_prom *p, char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	render(p, f);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = size;
	return 0;
}

static void forget_ended(struct lw_prom *p)
{
	size_t i = 0;

	while (i < p->n) {
		if (p->p[i].ended)
			drop(p, i);
		else
			i++;
	}
}

int lw_prom__write(struct lw_prom *p, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = lw_prom__render(p, &buf, &len);
	if (r) {
		snprintf(err, errlen, "out of memory rendering %s", path);
		return r;
	}
	r = lw_write_file_atomic_gid(path, buf, len, p->gid, err, errlen);
	if (r == 0)
		forget_ended(p);
	free(buf);
	return r;
}
