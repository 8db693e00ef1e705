// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "record/noise.h"
#include "record/rectype.h"
#include "record/hist.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct site {
	int64_t pid;
	char type[24];			/* the records it counts */
	char qualname[128];
	char file[256];
	long line;
	char frame[160];
	uint64_t window_start;
	unsigned passed;		/* records let through in this window */
	unsigned alerts;		/* live alerts let through in this window */
	uint64_t sup_count, sup_total_ns, sup_max_ns;
	struct lw_hist sup_hist;	/* durations suppressed in this window (for p99) */
	struct lw_hist all;		/* every duration seen: the baseline */
	uint64_t baseline_ns;		/* p99 before this window, 0 = not yet known */
	uint64_t used;			/* last record seen (CLOCK_MONOTONIC) */
	int overflow;			/* the counts of evicted sites of (type, pid) */
};

/*
 * The budget (issue 19): a target can make ever new sites (generated code, names with a
 * counter in them), and each one's state (~1.7 KB) stayed as long as the process lived. Past
 * max_sites, the least recently seen sites are evicted (an eighth of the budget at once),
 * counted; the suppressed counts one still held move to its (type, pid)'s "evicted sites"
 * entry, flushed as a `suppressed` record with site.frame "(evicted sites)", so no count is lost.
 */
#define NOISE_BUDGET 16384

/* a live alert let through, per thread: the stall it is about (one alert per stall) */
struct stall {
	uint64_t start_ns;		/* CLOCK_MONOTONIC when the stall began (now - its duration) */
	uint64_t alerted_at;
};

struct lw_noise {
	struct lw_noise_opts o;
	struct lw_u64map *sites;
	struct lw_u64map *stalls;	/* hash(pid, tid) -> stall */
	uint64_t suppressed;
	uint64_t evicted;
};

static uint64_t stall_key(struct json_object *rec)
{
	char k[48];

	snprintf(k, sizeof(k), "%lld/%lld", (long long)lw_j_get_int(rec, "pid", 0),
		 (long long)lw_j_get_int(rec, "tid", 0));
	return lw_hash_str(k);
}

int lw_site_rule_parse(const char *arg, struct lw_site_rule *out)
{
	const char *eq = strrchr(arg, '=');

	memset(out, 0, sizeof(*out));
	if (!eq || eq == arg || !eq[1])
		return -EINVAL;
	if (lw_parse_duration(eq + 1, &out->threshold_ns))
		return -EINVAL;
	out->pattern = strndup(arg, (size_t)(eq - arg));
	return out->pattern ? 0 : -ENOMEM;
}

int lw_site_matches(const char *pattern, const char *qualname, const char *file, long line)
{
	char fl[512], bl[512];

	if (!pattern || !*pattern)
		return 0;
	if (qualname && (strcmp(pattern, qualname) == 0 || fnmatch(pattern, qualname, 0) == 0))
		return 1;
	if (file) {
		snprintf(fl, sizeof(fl), "%s:%ld", file, line);
		snprintf(bl, sizeof(bl), "%s:%ld", lw_basename(file), line);
		if (strcmp(pattern, fl) == 0 || strcmp(pattern, bl) == 0 ||
		    fnmatch(pattern, fl, 0) == 0 || fnmatch(pattern, bl, 0) == 0)
			return 1;
	}
	return 0;
}

uint64_t lw_noise_min_threshold(const struct lw_noise_opts *o, uint64_t dflt)
{
	uint64_t m = dflt;
	size_t i;

	for (i = 0; i < o->nrules; i++)
		if (!o->rules[i].ignore && o->rules[i].threshold_ns && o->rules[i].threshold_ns < m)
			m = o->rules[i].threshold_ns;
	return m;
}

/* the callback a record is about, and the frame that holds the time */
static struct json_object *rec_callback(struct json_object *rec, enum lw_rec_kind k)
{
	if (k == LW_RK_SLOW_TICK)
		return lw_j_get(rec, "slowest");
	/* a slow callback's site, when it says one (a dispatcher's route), else its callback */
	if (k == LW_RK_SLOW_CALLBACK && lw_j_get(rec, "site"))
		return lw_j_get(rec, "site");
	return lw_j_get(rec, "callback");
}

/* a rule that names the callback of a slow callback counted under another site (its route)
 * still applies to it */
static int dispatcher_matches(struct json_object *rec, enum lw_rec_kind k, const char *pattern)
{
	struct json_object *cb = lw_j_get(rec, "callback");

	return k == LW_RK_SLOW_CALLBACK && lw_j_get(rec, "site") && cb &&
	       lw_site_matches(pattern, lw_j_get_str(cb, "qualname"), lw_j_get_str(cb, "file"),
			       (long)lw_j_get_int(cb, "line", 0));
}

static int system_module(const char *m)
{
	return !m || m[0] == '[' || strncmp(m, "libc.so", 7) == 0 ||
	       strncmp(m, "ld-linux", 8) == 0 || strncmp(m, "libpthread", 10) == 0;
}

/*
 * A record named by no callback and no stack of the runtime's (a Node iteration without JS
 * names, a C loop): its site is the dominant native frame (the record's native stack is the
 * majority of its CPU samples, or where it blocked), the innermost one outside libc and the
 * vdso (a read's site is who read), by symbol, else by module; "native:" + it. 0: none.
 */
static int native_site(struct json_object *rec, char *frame, size_t fsize)
{
	struct json_object *ns = lw_j_get(rec, "native_stack"), *e, *pick = NULL, *any = NULL;
	const char *sys = lw_j_get_str(rec, "syscall");
	size_t i, n;

	if (!ns || !json_object_is_type(ns, json_type_array))
		return 0;
	n = json_object_array_length(ns);
	for (i = 0; i < n && !pick; i++) {
		e = json_object_array_get_idx(ns, i);
		if (!lw_j_get_str(e, "symbol") && !lw_j_get_str(e, "module"))
			continue;
		if (!any)
			any = e;
		if (lw_j_get_str(e, "symbol") && !system_module(lw_j_get_str(e, "module")))
			pick = e;
	}
	if (!pick)
		pick = any;
	if (!pick)
		return 0;
	snprintf(frame, fsize, "%s%snative:%s (%s)", sys ?: "", sys ? "@" : "",
		 lw_j_get_str(pick, "symbol") ?: "?", lw_j_get_str(pick, "module") ?: "?");
	return 1;
}

static void rec_site(struct json_object *rec, enum lw_rec_kind k, const char **q, const char **f,
		     long *line, char *frame, size_t fsize)
{
	struct json_object *cb = rec_callback(rec, k), *st = lw_j_get(rec, "stack"), *top = NULL;

	*q = lw_j_get_str(cb, "qualname");
	*f = lw_j_get_str(cb, "file");
	*line = (long)lw_j_get_int(cb, "line", 0);
	if (st && json_object_is_type(st, json_type_array) && json_object_array_length(st))
		top = json_object_array_get_idx(st, 0);
	if (!top && !*q && native_site(rec, frame, fsize))
		return;
	if (k == LW_RK_BLOCKING_CALL)
		snprintf(frame, fsize, "%s@%s:%lld", lw_j_get_str(rec, "syscall") ?: "?",
			 lw_j_get_str(top, "function") ?: "?", (long long)lw_j_get_int(top, "line", 0));
	else
		snprintf(frame, fsize, "%s:%lld", lw_j_get_str(top, "function") ?: "?",
			 (long long)lw_j_get_int(top, "line", 0));
}

void lw_site_key(struct json_object *rec, char *buf, size_t size)
{
	const char *type = lw_j_get_str(rec, "type"), *q, *f;
	enum lw_rec_kind k = lw_rec_kind_of(type);
	char frame[160];
	long line;

	if (!type) {
		snprintf(buf, size, "?");
		return;
	}
	rec_site(rec, k, &q, &f, &line, frame, sizeof(frame));
	snprintf(buf, size, "%s\x1f%s:%ld\x1f%s", q ?: "?", f ?: "?", line, frame);
}

int lw_noise__new(const struct lw_noise_opts *o, struct lw_noise **out)
{
	struct lw_noise *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->o = *o;
	if (!n->o.window_ns)
		n->o.window_ns = 60000000000ull;
	if (!n->o.max_sites)
		n->o.max_sites = NOISE_BUDGET;
	if (lw_u64map__new(sizeof(struct site), &n->sites) ||
	    lw_u64map__new(sizeof(struct stall), &n->stalls)) {
		lw_u64map__free(n->sites, NULL);
		free(n);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

void lw_noise__free(struct lw_noise *n)
{
	if (!n)
		return;
	lw_u64map__free(n->sites, NULL);
	lw_u64map__free(n->stalls, NULL);
	free(n);
}

uint64_t lw_noise__suppressed_total(const struct lw_noise *n)
{
	return n->suppressed;
}

uint64_t lw_noise__evicted(const struct lw_noise *n)
{
	return n ? n->evicted : 0;
}

struct aged {
	uint64_t used, key;
};

static int aged_cmp(const void *a, const void *b)
{
	const struct aged *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* the entry that keeps the suppressed counts of (type, pid)'s evicted sites */
static struct site *overflow_site(struct lw_noise *n, const char *type, int64_t pid, uint64_t now)
{
	char key[96];
	struct site *o;
	int created;

	snprintf(key, sizeof(key), "\x1f(evicted)\x1f%s\x1f%lld", type, (long long)pid);
	o = lw_u64map__put(n->sites, lw_hash_str(key), &created);
	if (o && created) {
		o->pid = pid;
		o->overflow = 1;
		lw_strlcpy(o->type, type, sizeof(o->type));
		lw_strlcpy(o->frame, "(evicted sites)", sizeof(o->frame));
		o->window_start = now;
	}
	return o;
}

/* the least recently seen eighth of the budget goes */
static void evict_sites(struct lw_noise *n, uint64_t now)
{
	size_t cap = lw_u64map__count(n->sites), k = 0, it = 0, i, want;
	struct aged *v = malloc(cap * sizeof(*v));
	struct site *s;
	uint64_t key;

	if (!v)
		return;
	while (k < cap && (s = lw_u64map__next(n->sites, &it, &key)))
		if (!s->overflow) {
			v[k].used = s->used;
			v[k++].key = key;
		}
	qsort(v, k, sizeof(*v), aged_cmp);
	want = n->o.max_sites / 8 ? n->o.max_sites / 8 : 1;
	for (i = 0; i < k && i < want; i++) {
		s = lw_u64map__get(n->sites, v[i].key);
		if (!s)
			continue;
		if (s->sup_count) {
			struct site *o = overflow_site(n, s->type, s->pid, now);

			s = lw_u64map__get(n->sites, v[i].key);
			if (o && s) {
				o->sup_count += s->sup_count;
				o->sup_total_ns += s->sup_total_ns;
				if (s->sup_max_ns > o->sup_max_ns)
					o->sup_max_ns = s->sup_max_ns;
				lw_hist_merge(&o->sup_hist, &s->sup_hist);
				if (s->window_start < o->window_start)
					o->window_start = s->window_start;
			}
		}
		lw_u64map__del(n->sites, v[i].key, NULL);
		n->evicted++;
	}
	free(v);
}

/* a live alert for a stall no alert was let through for yet? (then remember it) */
static int alert_once(struct lw_noise *n, struct json_object *rec, uint64_t now, uint64_t dur_ns)
{
	uint64_t start = now > dur_ns ? now - dur_ns : 0;
	int created;
	struct stall *st = lw_u64map__put(n->stalls, stall_key(rec), &created);

	if (!st)
		return 1;
	/* the same stall: it began at the same time (within a few ms of timer slack) */
	if (!created && (start > st->start_ns ? start - st->start_ns : st->start_ns - start) <
				5000000ull)
		return 0;
	st->start_ns = start;
	st->alerted_at = now;
	return 1;
}

/*
 * stuck_task records (issue 14): a site is where the Task waits (its innermost frame) and its
 * coroutine, so that a thousand request Tasks stuck on one lock make `rate` records a window
 * and a `suppressed` count, not a thousand. A Task on an await cycle (a deadlock) always passes.
 */
static enum lw_noise_verdict stuck_check(struct lw_noise *n, struct json_object *rec, uint64_t now)
{
	struct json_object *st = lw_j_get(rec, "stack"), *top = NULL;
	uint64_t pending_ns = (uint64_t)(lw_j_get_num(rec, "pending_ms", 0) * 1e6);
	const char *coro = lw_j_get_str(lw_j_get(rec, "task"), "coro");
	char key[800];
	struct site *s;
	int created;

	if (!n->o.rate || lw_j_get_bool(rec, "deadlock"))
		return LW_NOISE_PASS;
	if (st && json_object_is_type(st, json_type_array) && json_object_array_length(st))
		top = json_object_array_get_idx(st, 0);
	snprintf(key, sizeof(key), "stuck_task\x1f%s\x1f%s\x1f%s:%lld\x1f%lld", coro ?: "?",
		 lw_j_get_str(top, "qualname") ?: "?", lw_j_get_str(top, "file") ?: "?",
		 (long long)lw_j_get_int(top, "line", 0), (long long)lw_j_get_int(rec, "pid", 0));
	s = lw_u64map__put(n->sites, lw_hash_str(key), &created);
	if (!s)
		return LW_NOISE_PASS;
	if (created) {
		s->pid = lw_j_get_int(rec, "pid", 0);
		lw_strlcpy(s->type, "stuck_task", sizeof(s->type));
		lw_strlcpy(s->qualname, lw_j_get_str(top, "qualname") ?: "", sizeof(s->qualname));
		lw_strlcpy(s->file, lw_j_get_str(top, "file") ?: "", sizeof(s->file));
		s->line = (long)lw_j_get_int(top, "line", 0);
		lw_strlcpy(s->frame, coro ?: "", sizeof(s->frame));
		s->window_start = now;
	}
	if (now - s->window_start >= n->o.window_ns && !s->sup_count) {
		s->window_start = now;
		s->passed = 0;
	}
	if (s->passed < n->o.rate) {
		s->passed++;
		return LW_NOISE_PASS;
	}
	s->sup_count++;
	s->sup_total_ns += pending_ns;
	if (pending_ns > s->sup_max_ns)
		s->sup_max_ns = pending_ns;
	lw_hist_add(&s->sup_hist, pending_ns);
	n->suppressed++;
	return LW_NOISE_SUPPRESS;
}

enum lw_noise_verdict lw_noise__check(struct lw_noise *n, struct json_object *rec, uint64_t now)
{
	const char *type = lw_j_get_str(rec, "type"), *q, *f;
	enum lw_rec_kind k = lw_rec_kind_of(type);
	char key[800], frame[160];
	struct site *s;
	uint64_t dur_ns, thr;
	long line;
	size_t i;
	int created, in_progress, matched = 0;

	if (k == LW_RK_STUCK_TASK)
		return stuck_check(n, rec, now);
	if (!type || (k != LW_RK_SLOW_CALLBACK && k != LW_RK_SLOW_TICK && k != LW_RK_BLOCKING_CALL))
		return LW_NOISE_PASS;
	in_progress = lw_j_get_bool(rec, "in_progress");
	rec_site(rec, k, &q, &f, &line, frame, sizeof(frame));
	dur_ns = (uint64_t)(lw_j_get_num(rec, k != LW_RK_SLOW_TICK ? "duration_ms" : "busy_ms",
					 0) * 1e6);
	/* rules: ignore, or a threshold of the site's own (for its blocking calls too) */
	thr = k != LW_RK_BLOCKING_CALL ? n->o.threshold_ns : 0;
	for (i = 0; i < n->o.nrules; i++) {
		const struct lw_site_rule *r = &n->o.rules[i];

		if (!lw_site_matches(r->pattern, q, f, line) && !dispatcher_matches(rec, k, r->pattern))
			continue;
		if (r->ignore)
			return LW_NOISE_DROP;
		thr = r->threshold_ns;
		matched = 1;
		break;
	}
	(void)matched;
	if (dur_ns < thr)
		return LW_NOISE_DROP;
	if (k == LW_RK_BLOCKING_CALL && q && lw_j_get(rec, "callback")) {
		/* a call that alone held its callback past the slow threshold makes it slow: the
		 * slow_callback record (and its warning) shows it; this one is linked to it */
		uint64_t slow_thr = n->o.threshold_ns;

		for (i = 0; i < n->o.nrules; i++)
			if (!n->o.rules[i].ignore &&
			    lw_site_matches(n->o.rules[i].pattern, q, f, line)) {
				slow_thr = n->o.rules[i].threshold_ns;
				break;
			}
		if (slow_thr && dur_ns >= slow_thr)
			json_object_object_add(rec, "cause_of",
					       json_object_new_string("slow_callback"));
	}
	if (k == LW_RK_SLOW_CALLBACK && !in_progress) {
		struct stall *st = lw_u64map__get(n->stalls, stall_key(rec));

		/* the end of a stall a live alert was let through for: the same event */
		if (st) {
			if (now >= st->alerted_at && now - st->alerted_at <= dur_ns + 50000000ull)
				json_object_object_add(rec, "alerted", json_object_new_boolean(1));
			lw_u64map__del(n->stalls, stall_key(rec), NULL);
		}
	} else if (k == LW_RK_SLOW_TICK && !lw_j_get_bool(rec, "has_slow_callback")) {
		/* the stall ended with no slow_callback record after this one */
		lw_u64map__del(n->stalls, stall_key(rec), NULL);
	}
	if (!n->o.rate) {
		if (in_progress)
			return alert_once(n, rec, now, dur_ns) ? LW_NOISE_PASS : LW_NOISE_DROP;
		return LW_NOISE_PASS;
	}
	lw_site_key(rec, key, sizeof(key));
	snprintf(key + strlen(key), sizeof(key) - strlen(key), "\x1f%s\x1f%lld", type,
		 (long long)lw_j_get_int(rec, "pid", 0));
	s = lw_u64map__get(n->sites, lw_hash_str(key));
	if (!s && lw_u64map__count(n->sites) >= n->o.max_sites)
		evict_sites(n, now);
	s = lw_u64map__put(n->sites, lw_hash_str(key), &created);
	if (!s)
		return LW_NOISE_PASS;
	s->used = now;
	if (created) {
		s->pid = lw_j_get_int(rec, "pid", 0);
		lw_strlcpy(s->type, type, sizeof(s->type));
		lw_strlcpy(s->qualname, q ?: "", sizeof(s->qualname));
		lw_strlcpy(s->file, f ?: "", sizeof(s->file));
		s->line = line;
		lw_strlcpy(s->frame, frame, sizeof(s->frame));
		s->window_start = now;
	}
	if (now - s->window_start >= n->o.window_ns && !s->sup_count) {
		/* a new window: what was seen so far is the baseline */
		s->window_start = now;
		s->passed = 0;
		s->alerts = 0;
		if (s->all.count >= 5)
			s->baseline_ns = lw_hist_quantile(&s->all, 0.99);
	}
	if (in_progress) {
		/* live alerts count against the site's records (the final record of the same
		 * event then passes free, marked "alerted"), one per stall, no suppressed count of
		 * their own (the final record of the event is counted) */
		if (s->passed >= n->o.rate || !alert_once(n, rec, now, dur_ns))
			return LW_NOISE_DROP;
		s->passed++;
		s->alerts++;
		return LW_NOISE_PASS;
	}
	/* the baseline is what the site's first few calls took (not counting this one): set
	 * once five are seen, whichever way they went (passed, alerted, suppressed) */
	if (!s->baseline_ns && s->all.count >= 5)
		s->baseline_ns = lw_hist_quantile(&s->all, 0.99);
	lw_hist_add(&s->all, dur_ns);
	if (lw_j_get_bool(rec, "alerted"))
		return LW_NOISE_PASS;
	if (s->passed < n->o.rate) {
		s->passed++;
		return LW_NOISE_PASS;
	}
	/* escalation: much slower than this site usually is */
	if (s->baseline_ns && dur_ns > 2 * s->baseline_ns) {
		json_object_object_add(rec, "escalated", json_object_new_boolean(1));
		return LW_NOISE_PASS;
	}
	s->sup_count++;
	s->sup_total_ns += dur_ns;
	if (dur_ns > s->sup_max_ns)
		s->sup_max_ns = dur_ns;
	lw_hist_add(&s->sup_hist, dur_ns);
	n->suppressed++;
	return LW_NOISE_SUPPRESS;
}

void lw_noise__flush(struct lw_noise *n, uint64_t now, int force,
		     void (*emit)(void *ctx, struct json_object *rec), void *ctx)
{
	struct site *s;
	size_t it = 0;

	while ((s = lw_u64map__next(n->sites, &it, NULL))) {
		struct json_object *o, *site;

		if (!s->sup_count || (!force && now - s->window_start < n->o.window_ns))
			continue;
		o = lw_j_record("suppressed", (pid_t)s->pid, lw_mono_to_real(now));
		site = json_object_new_object();
		json_object_object_add(site, "qualname", lw_j_str_or_null(s->qualname));
		json_object_object_add(site, "file", lw_j_str_or_null(s->file));
		json_object_object_add(site, "line", s->line > 0 ? json_object_new_int64(s->line) : NULL);
		json_object_object_add(site, "frame", lw_j_str_or_null(s->frame));
		json_object_object_add(o, "site", site);
		json_object_object_add(o, "record_type", json_object_new_string(s->type));
		json_object_object_add(o, "count", json_object_new_int64((int64_t)s->sup_count));
		json_object_object_add(o, "total_ms", lw_j_ms(s->sup_total_ns));
		json_object_object_add(o, "max_ms", lw_j_ms(s->sup_max_ns));
		json_object_object_add(o, "p99_ms", lw_j_ms(lw_hist_quantile(&s->sup_hist, 0.99)));
		json_object_object_add(o, "window_s",
				       lw_j_num((double)(now - s->window_start) / 1e9, 3));
		emit(ctx, o);
		s->sup_count = s->sup_total_ns = s->sup_max_ns = 0;
		memset(&s->sup_hist, 0, sizeof(s->sup_hist));
		/* the next record opens a new window */
		s->window_start = now - n->o.window_ns;
	}
}

size_t lw_noise__forget_pid(struct lw_noise *n, int64_t pid)
{
	uint64_t keys[256], key;
	struct site *s;
	size_t it, k, dropped = 0;

	/* the rate limiter keys its state by (site, type, pid): without this, every process that
	 * ever came and went kept ~1.7 KB per site (issue 19's soak: RSS grew with churn) */
	do {
		it = 0;
		k = 0;
		while (k < LW_ARRAY_SIZE(keys) && (s = lw_u64map__next(n->sites, &it, &key)))
			if (s->pid == pid && !s->sup_count)
				keys[k++] = key;
		for (it = 0; it < k; it++)
			lw_u64map__del(n->sites, keys[it], NULL);
		dropped += k;
	} while (k == LW_ARRAY_SIZE(keys));
	return dropped;
}

size_t lw_noise__sites(const struct lw_noise *n)
{
	return lw_u64map__count(n->sites);
}
