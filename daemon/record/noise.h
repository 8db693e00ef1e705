/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Noise control: a site slow a thousand times a minute must not drown its operator, while every
 * number stays exact. Records go through a filter before any sink:
 *   - ignored sites: no record (still counted by the sessions' histograms and summaries);
 *   - per-site thresholds: a site reported only from its own threshold up;
 *   - a per-site rate: up to `rate` records per window, then a `suppressed` record per site and
 *     window with how many were dropped, their total and max;
 *   - escalation: a first-seen site, or one much slower than its own baseline, always passes.
 * Sites are keyed by the callback's identity plus the frame where it blocked / burned CPU;
 * stuck_task records by where the Task waits and its coroutine (a deadlock always passes; the
 * suppressed record's site.frame is then the coroutine).
 */
#ifndef LW_NOISE_H
#define LW_NOISE_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

struct lw_site_rule {
	char *pattern;		/* qualname, file:line (basename or full path), or a glob of either */
	uint64_t threshold_ns;	/* 0 with ignore */
	int ignore;
};

struct lw_noise_opts {
	unsigned rate;		/* records per site per window; 0 = unlimited */
	uint64_t window_ns;	/* 0 = 60 s */
	uint64_t threshold_ns;	/* the default threshold (for per-site ones below it) */
	struct lw_site_rule *rules;
	size_t nrules;
	size_t max_sites;	/* rate-limit state kept, all processes (0 = 16,384) */
};

/* Parse "SITE=DUR" (a --site-threshold value) into a rule. 0 or -EINVAL. */
int lw_site_rule_parse(const char *arg, struct lw_site_rule *out);
/* Does a record's site match pattern? (qualname, file:line, basename:line, fnmatch globs) */
int lw_site_matches(const char *pattern, const char *qualname, const char *file, long line);
/* The lowest threshold any rule asks for (the BPF side must send down to it), or dflt. */
uint64_t lw_noise_min_threshold(const struct lw_noise_opts *o, uint64_t dflt);

/* "qualname\x1ffile:line\x1ftop-frame" of a record (slow_callback, slow_tick, blocking_call) */
void lw_site_key(struct json_object *rec, char *buf, size_t size);

struct lw_noise;

int lw_noise__new(const struct lw_noise_opts *o, struct lw_noise **out);
void lw_noise__free(struct lw_noise *n);

enum lw_noise_verdict {
	LW_NOISE_PASS = 0,
	LW_NOISE_DROP,		/* ignored or under its site's threshold: not counted as suppressed */
	LW_NOISE_SUPPRESS,	/* over the rate: counted into the next `suppressed` record */
};

/* What to do with a record; now = CLOCK_MONOTONIC ns. */
enum lw_noise_verdict lw_noise__check(struct lw_noise *n, struct json_object *rec, uint64_t now);
/* Windows that ended (or all of them with force, at exit): one `suppressed` record per site
 * with drops, handed to emit (which takes ownership). */
void lw_noise__flush(struct lw_noise *n, uint64_t now, int force,
		     void (*emit)(void *ctx, struct json_object *rec), void *ctx);
uint64_t lw_noise__suppressed_total(const struct lw_noise *n);
/* A process is gone (detached): drop its sites' state, once their suppressed counts have been
 * flushed (those with counts still pending stay until the next flush). Returns how many. */
size_t lw_noise__forget_pid(struct lw_noise *n, int64_t pid);
/* How many (site, type, pid) entries are kept (tests, status) */
size_t lw_noise__sites(const struct lw_noise *n);
/* Sites evicted for the budget (their suppressed counts kept); 0 for NULL */
uint64_t lw_noise__evicted(const struct lw_noise *n);

#endif
