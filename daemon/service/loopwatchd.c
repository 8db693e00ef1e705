// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatchd: the service. It reads its config (config.h), attaches to every running process a
 * target matches, then to new ones as they exec (the engine's exec events, no /proc polling),
 * lets the engine detach them when they exit, and writes each target's records to its report
 * files (router.h). systemd: Type=notify (READY=1 after the first attach pass, STATUS=,
 * WATCHDOG=1), journald priority prefixes on stderr. SIGHUP reopens the report files; SIGTERM
 * writes final summaries and exits 0. `loopwatch status` talks to it over control.h's socket.
 * This file: errors, the main loop and its timer, status, main; finding and attaching to the
 * processes in loopwatchd_procs.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "service/loopwatchd_priv.h"
#include "service/prom.h"

/* ------------------------------------------------------------------ errors */

static void remember_error(void *ctx, const char *msg)
{
	struct daemon *d = ctx;
	struct derror *e = &d->errors[d->nerrors++ % NERRORS];

	e->real_ns = lw_now_real();
	lw_strlcpy(e->msg, msg, sizeof(e->msg));
}

/* an error worth a line in the journal and in `loopwatch status` */
void ld_error(struct daemon *d, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lw_err("%s", msg);
	remember_error(d, msg);
}

static void keepalive(struct daemon *d, uint64_t now)
{
	if (d->watchdog_ns && now >= d->next_watchdog) {
		sd_notify(0, "WATCHDOG=1");
		d->next_watchdog = now + d->watchdog_ns / 2;
	}
	if (d->busy_phase && now >= d->next_extend) {
		sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", EXTEND_USEC);
		d->next_extend = now + S;
	}
}

/* A second sink: follow what the engine does with each process */
static void state_sink(void *ctx, struct json_object *rec)
{
	struct daemon *d = ctx;
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind kind = lw_rec_kind_of(type);
	pid_t pid = (pid_t)lw_j_get_int(rec, "pid", 0);
	struct proc *p;

	if (!type || pid <= 0)
		return;
	keepalive(d, lw_now_mono());
	if (kind == LW_RK_START) {
		const char *name = lw_j_get_str(rec, "target_name");
		int ti = name ? lw_config__target(d->cfg, name) : -1, created = 0;

		p = lw_u64map__put(d->procs, (uint64_t)pid, &created);
		if (!p)
			return;
		if (created) {
			memset(p, 0, sizeof(*p));
			p->pid = pid;
			p->want_ti = ti;
			/* attached by the engine itself: its identity from now */
			p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
			p->start = lw_proc_starttime("/proc", pid);
		}
		if (p->state == P_EXEC && p->want_ti != ti)
			p->mismatch = 1;	/* the new image is not this target's any more */
		p->state = P_ATTACHED;
		p->since = lw_now_mono();
		if (ti >= 0)
			p->ti = ti;
	} else if (kind == LW_RK_END) {
		const char *reason = lw_j_get_str(rec, "reason");

		p = lw_u64map__get(d->procs, (uint64_t)pid);
		if (!p)
			return;
		if (reason && strcmp(reason, "target_exec") == 0 && !p->mismatch) {
			p->state = P_EXEC;
			p->want_ti = -1;	/* ld_on_exec says which, right after */
			p->since = lw_now_mono();
		} else {
			ld_forget(d, pid);
			lw_info("pid %d detached (%s)", (int)pid, reason ? reason : "?");
		}
	}
}

static void on_hup(void *ctx)
{
	struct daemon *d = ctx;

	lw_log(LW_LOG_NOTICE, "SIGHUP: reopening the report files");
	lw_router__reopen(d->router);
}

/* processes the engine re-attached after an exec: still what their target names? */
static void check_execs(struct daemon *d, uint64_t now)
{
	pid_t todo[256];
	struct proc *p;
	size_t it = 0;
	int n = 0, i;

	while (n < (int)LW_ARRAY_SIZE(todo) && (p = lw_u64map__next(d->procs, &it, NULL)))
		if (p->mismatch || (p->state == P_EXEC && now - p->since > EXEC_GRACE_NS) ||
		    (p->state == P_EXEC && !ld_same_process(p)))
			todo[n++] = p->pid;
	for (i = 0; i < n; i++) {
		int want;

		p = lw_u64map__get(d->procs, (uint64_t)todo[i]);
		if (!p)
			continue;
		want = p->want_ti;
		if (p->state == P_EXEC && !ld_same_process(p)) {
			/* exited while the engine waited to re-attach after its exec: whatever has
			 * the pid now is another process */
			d->reused++;
			lw_engine__detach(d->e, todo[i], "target_exited");
			ld_forget(d, todo[i]);
			continue;
		} else if (p->state == P_EXEC) {
			/* the engine gave up on it */
			ld_forget(d, todo[i]);
		} else {
			lw_info("pid %d exec'd a program target %s does not name: detaching",
				(int)todo[i], d->cfg->targets[p->ti].name);
			lw_engine__detach(d->e, todo[i], "target_exec");
			ld_forget(d, todo[i]);
		}
		if (want >= 0 && !lw_engine__is_attached(d->e, todo[i]))
			ld_add_pending(d, todo[i], want, now);
	}
}

static void check_pidfiles(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->cfg->ntargets; i++) {
		const char *pf = d->cfg->targets[i].match.pidfile;
		pid_t pid;

		if (pf && lw_pidfile_read(pf, &pid) == 0)
			ld_consider(d, pid, 0);
	}
}

static size_t count_pending(struct daemon *d)
{
	struct proc *p;
	size_t it = 0, n = 0;

	while ((p = lw_u64map__next(d->procs, &it, NULL)))
		n += p->state == P_PENDING;
	return n;
}

static void notify_status(struct daemon *d)
{
	sd_notifyf(0, "STATUS=%d processes traced for %zu targets, %zu pending; %llu records, "
		   "%llu lost events", lw_engine__count(d->e), d->cfg->ntargets, count_pending(d),
		   (unsigned long long)lw_router__records(d->router),
		   (unsigned long long)lw_engine__lost_events(d->e));
}

/* the engine's host-wide counters, the BPF side's drops and the processes not attached, for
 * DIR/loopwatchd.prom */
static void host_counters(struct daemon *d)
{
	struct lw_bpf_counters bc = { 0 };
	struct lw_bpf *b = lw_engine__bpf(d->e);
	struct lw_prom_count na[NA_N];
	char *t1 = NULL, *t2 = NULL, *all;
	size_t l1 = 0, l2 = 0;
	int k;

	if (b)
		lw_bpf__counters(b, &bc);
	lw_router__set_host(d->router, lw_engine__lost_events(d->e), bc.read_errors,
			    lw_engine__suppressed(d->e));
	{
		const struct lw_prom_count drops[] = {
			{ "thread_map_full", bc.thread_map_full },
			{ "sites_map_full", bc.sites_full },
			{ "fair_share", bc.fair_drops },
			{ "thread_quota", bc.thread_quota_drops },
			{ "tstate_quota", bc.tstate_quota_drops },
			{ "depth_errors", bc.depth_errors },
			{ "ustack_failed", bc.ustack_failed },
			{ "ustack_cut", bc.ustack_cut },
		};

		for (k = 0; k < NA_N; k++) {
			na[k].label = ld_na_name(k);
			na[k].value = d->not_attached[k];
		}
		if (lw_prom_counts_render("loopwatch_bpf_drops_total",
					  "What the BPF side dropped besides lost events, by cause "
					  "(threads not tracked, precise callbacks not counted, records "
					  "of a process over its share of a filling ring buffer, "
					  "unbalanced probes, user stacks not copied or cut short), "
					  "host-wide, since loopwatchd started.", "cause", drops,
					  LW_ARRAY_SIZE(drops), &t1, &l1) ||
		    lw_prom_counts_render("loopwatch_not_attached_total",
					  "Processes that matched a target but were not attached, by "
					  "cause (`loopwatch status` lists the last ones), since "
					  "loopwatchd started.", "cause", na, NA_N, &t2, &l2))
			goto out;
	}
	all = malloc(l1 + l2 + 1);
	if (!all)
		goto out;
	memcpy(all, t1, l1);
	memcpy(all + l1, t2, l2);
	lw_router__set_host_extra(d->router, all, l1 + l2);
out:
	free(t1);
	free(t2);
}

static void on_timer(void *ctx, uint64_t now)
{
	struct daemon *d = ctx;
	uint64_t lost;

	if (lw_u64map__count(d->procs))
		ld_attach_due(d, now, ATTACH_BUDGET_NS);
	check_execs(d, now);
	ld_match_forks(d, now);
	if (d->has_pidfiles && now >= d->next_pidfiles) {
		d->next_pidfiles = now + PIDFILE_EVERY_NS;
		check_pidfiles(d);
	}
	/* exec events may have been lost with the others: look at /proc once */
	lost = lw_engine__lost_events(d->e);
	if ((lost > d->last_lost || d->fq_overflow) && now >= d->next_rescan && d->cfg->ntargets) {
		if (lost > d->last_lost)
			lw_warn("%llu events lost (ring buffer full): rescanning /proc for new matches",
				(unsigned long long)(lost - d->last_lost));
		else
			lw_warn("more than %d new processes at once: rescanning /proc for new matches",
				FORKQ);
		d->fq_overflow = 0;
		d->last_lost = lost;
		d->next_rescan = now + RESCAN_GAP_NS;
		ld_scan_proc(d, now);
	}
	host_counters(d);
	lw_router__tick(d->router, now, 0);
	keepalive(d, now);
	if (now >= d->next_status) {
		d->next_status = now + STATUS_EVERY_NS;
		notify_status(d);
	}
}

/* ------------------------------------------------------------------ status */

/* {"exited_first": N, ...}: every cause, zeros included */
static struct json_object *na_json(const uint64_t *na)
{
	struct json_object *o = json_object_new_object();
	int k;

	for (k = 0; k < NA_N; k++)
		json_object_object_add(o, ld_na_name(k), json_object_new_int64((int64_t)na[k]));
	return o;
}

/* what the BPF side dropped besides lost_events (host-wide, since the programs were loaded) */
static struct json_object *bpf_losses_json(struct daemon *d, uint64_t *ustack_copies)
{
	struct json_object *o = json_object_new_object();
	struct lw_bpf_counters bc = { 0 };
	struct lw_bpf *b = lw_engine__bpf(d->e);

	if (b)
		lw_bpf__counters(b, &bc);
	*ustack_copies = bc.ustack_copies;	/* not a loss: the stacks copied */
	json_object_object_add(o, "thread_map_full",
			       json_object_new_int64((int64_t)bc.thread_map_full));
	json_object_object_add(o, "sites_map_full", json_object_new_int64((int64_t)bc.sites_full));
	json_object_object_add(o, "fair_share", json_object_new_int64((int64_t)bc.fair_drops));
	json_object_object_add(o, "thread_quota",
			       json_object_new_int64((int64_t)bc.thread_quota_drops));
	json_object_object_add(o, "tstate_quota",
			       json_object_new_int64((int64_t)bc.tstate_quota_drops));
	json_object_object_add(o, "depth_errors", json_object_new_int64((int64_t)bc.depth_errors));
	json_object_object_add(o, "ustack_cut", json_object_new_int64((int64_t)bc.ustack_cut));
	json_object_object_add(o, "ustack_failed",
			       json_object_new_int64((int64_t)bc.ustack_failed));
	return o;
}

static struct json_object *status_json(struct daemon *d)
{
	struct json_object *o = json_object_new_object(), *targets = json_object_new_array();
	struct json_object *errs = json_object_new_array();
	const struct lw_config *c = d->cfg;
	uint64_t now = lw_now_mono(), ustack_copies = 0;
	char buf[128];
	size_t i;
	unsigned k;
	int j;

	json_object_object_add(o, "version", json_object_new_string(LW_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "config", json_object_new_string(c->path));
	json_object_object_add(
		o, "started",
		json_object_new_string(lw_fmt_rfc3339(d->started_real, buf, sizeof(buf))));
	json_object_object_add(o, "uptime_s", lw_j_num((double)(now - d->started_mono) / 1e9, 1));
	json_object_object_add(o, "report_dir", json_object_new_string(c->report_dir));
	json_object_object_add(
		o, "formats",
		json_object_new_string(lw_config__formats_str(c->formats, buf, sizeof(buf))));
	json_object_object_add(o, "summary_interval_s",
			       lw_j_num((double)c->summary_interval_ns / 1e9, 3));
	json_object_object_add(o, "processes", json_object_new_int(lw_engine__count(d->e)));
	json_object_object_add(o, "records",
			       json_object_new_int64((int64_t)lw_router__records(d->router)));
	json_object_object_add(o, "lost_events",
			       json_object_new_int64((int64_t)lw_engine__lost_events(d->e)));
	json_object_object_add(o, "suppressed",
			       json_object_new_int64((int64_t)lw_engine__suppressed(d->e)));
	json_object_object_add(o, "execs_seen", json_object_new_int64((int64_t)d->execs));
	json_object_object_add(o, "forks_seen", json_object_new_int64((int64_t)d->forks));
	json_object_object_add(o, "matched", json_object_new_int64((int64_t)d->matched));
	json_object_object_add(o, "attaches", json_object_new_int64((int64_t)d->attaches));
	json_object_object_add(o, "gave_up", json_object_new_int64((int64_t)d->gave_up));
	json_object_object_add(o, "exited_before_attach", json_object_new_int64((int64_t)d->reused));
	json_object_object_add(o, "not_attached", na_json(d->not_attached));
	json_object_object_add(o, "bpf_losses", bpf_losses_json(d, &ustack_copies));
	json_object_object_add(o, "ustack_copies", json_object_new_int64((int64_t)ustack_copies));
	for (i = 0; i < c->ntargets; i++) {
		const struct lw_target_conf *t = &c->targets[i];
		struct json_object *to = json_object_new_object();
		struct json_object *procs = json_object_new_array(),
				   *pend = json_object_new_array();
		struct lw_route_stats rs;
		struct proc *p;
		size_t it = 0;

		json_object_object_add(to, "name", json_object_new_string(t->name));
		json_object_object_add(to, "threshold_ms", lw_j_ms(t->tune.threshold_ns));
		json_object_object_add(to, "block_threshold_ms",
				       lw_j_ms(t->tune.block_threshold_ns));
		json_object_object_add(to, "stuck_after_ms", lw_j_ms(t->tune.stuck_after_ns));
		json_object_object_add(
			to, "mode",
			json_object_new_string(t->tune.precise ? "precise" : "default"));
		for (j = 0; j < lw_engine__count(d->e); j++) {
			struct lw_session *s = lw_engine__session(d->e, j);
			struct lw_session_counts sc;
			struct json_object *po;
			const char *tn = lw_session__target(s);
			pid_t pid = lw_session__pid(s);

			if (!tn || strcmp(tn, t->name))
				continue;
			lw_session__counts(s, &sc);
			p = lw_u64map__get(d->procs, (uint64_t)pid);
			po = json_object_new_object();
			json_object_object_add(po, "pid", json_object_new_int(pid));
			json_object_object_add(po, "comm", lw_j_str_or_null(lw_session__comm(s)));
			json_object_object_add(po, "attached_s", p ?
					       lw_j_num((double)(now - p->since) / 1e9, 1) : NULL);
			json_object_object_add(po, "slow_callbacks",
					       json_object_new_int64((int64_t)sc.slow_callbacks));
			json_object_object_add(po, "slow_ticks",
					       json_object_new_int64((int64_t)sc.slow_ticks));
			json_object_object_add(po, "blocking_calls",
					       json_object_new_int64((int64_t)sc.blocking_calls));
			json_object_object_add(po, "read_errors",
					       json_object_new_int64((int64_t)sc.read_errors));
			json_object_array_add(procs, po);
		}
		while ((p = lw_u64map__next(d->procs, &it, NULL))) {
			struct json_object *po;

			if (p->ti != (int)i || p->state != P_PENDING)
				continue;
			po = json_object_new_object();
			json_object_object_add(po, "pid", json_object_new_int(p->pid));
			json_object_object_add(po, "tries", json_object_new_int(p->tries));
			json_object_object_add(po, "error", lw_j_str_or_null(p->err));
			json_object_array_add(pend, po);
		}
		json_object_object_add(to, "processes", procs);
		json_object_object_add(to, "pending", pend);
		if (d->tstats) {
			const struct ld_tstats *ts = &d->tstats[i];
			struct json_object *last = json_object_new_array();

			json_object_object_add(to, "not_attached", na_json(ts->not_attached));
			for (k = ts->nlast > NA_LAST ? ts->nlast - NA_LAST : 0; k < ts->nlast; k++) {
				const struct ld_na_entry *e = &ts->last[k % NA_LAST];
				struct json_object *eo = json_object_new_object();

				json_object_object_add(eo, "pid", json_object_new_int(e->pid));
				json_object_object_add(eo, "cause",
						       json_object_new_string(ld_na_name(e->cause)));
				json_object_object_add(eo, "error", json_object_new_string(e->why));
				json_object_object_add(eo, "ts", json_object_new_string(
						       lw_fmt_rfc3339(e->real_ns, buf, sizeof(buf))));
				json_object_array_add(last, eo);
			}
			json_object_object_add(to, "not_attached_last", last);
		}
		lw_router__stats(d->router, (int)i, &rs);
		json_object_object_add(to, "records", json_object_new_int64((int64_t)rs.records));
		json_object_object_add(to, "slow_callbacks",
				       json_object_new_int64((int64_t)rs.slow_callbacks));
		json_object_object_add(to, "live_alerts",
				       json_object_new_int64((int64_t)rs.live_alerts));
		json_object_object_add(to, "exited", lw_router__exited(d->router, (int)i, now));
		json_object_object_add(to, "slow_ticks",
				       json_object_new_int64((int64_t)rs.slow_ticks));
		json_object_object_add(to, "blocking_calls",
				       json_object_new_int64((int64_t)rs.blocking_calls));
		json_object_object_add(to, "write_errors",
				       json_object_new_int64((int64_t)rs.write_errors));
		json_object_object_add(to, "last_error", lw_j_str_or_null(rs.last_error));
		json_object_object_add(to, "jsonl", lw_j_str_or_null(rs.jsonl_path));
		json_object_object_add(to, "prom", lw_j_str_or_null(rs.prom_path));
		json_object_array_add(targets, to);
	}
	json_object_object_add(o, "targets", targets);
	/* the last errors, oldest first */
	for (k = d->nerrors > NERRORS ? d->nerrors - NERRORS : 0; k < d->nerrors; k++) {
		const struct derror *e = &d->errors[k % NERRORS];
		struct json_object *eo = json_object_new_object();

		json_object_object_add(
			eo, "ts",
			json_object_new_string(lw_fmt_rfc3339(e->real_ns, buf, sizeof(buf))));
		json_object_object_add(eo, "message", json_object_new_string(e->msg));
		json_object_array_add(errs, eo);
	}
	json_object_object_add(o, "errors", errs);
	json_object_object_add(o, "errors_total", json_object_new_int64(d->nerrors));
	return o;
}

static struct json_object *on_control(void *ctx, const char *request)
{
	if (strcmp(request, "status") == 0 || request[0] == 0)
		return status_json(ctx);
	return NULL;
}

/* ------------------------------------------------------------------ main */

static const char usage_text[] =
	"Usage: loopwatchd [--config FILE] [--check-config] [-v]\n"
	"\n"
	"The loopwatch service: attaches to the processes the config file names (running ones and\n"
	"new ones as they start) and writes their slow callbacks, blocking calls and summaries to\n"
	"report files (JSON Lines and Prometheus text). See loopwatchd(8), loopwatch.conf(5).\n"
	"\n"
	"  -c, --config FILE   the config file (default " LW_CONFIG_DEFAULT_PATH ")\n"
	"      --check-config  check the config file and exit (0 valid, 2 invalid)\n"
	"  -v, --verbose       debug messages\n"
	"      --version       print the version\n"
	"  -h, --help          this text\n"
	"\n"
	"Signals: SIGHUP reopens the report files (logrotate); SIGTERM/SIGINT write final\n"
	"summaries and exit 0.\n";

struct args {
	const char *config;
	int check_only;
	int verbose;
};

/* 0 to run, or 1 + the exit status */
static int parse_args(int argc, char **argv, struct args *a)
{
	enum { OPT_CHECK = 1000, OPT_VERSION };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->config = LW_CONFIG_DEFAULT_PATH;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case OPT_CHECK:
			a->check_only = 1;
			break;
		case 'v':
			a->verbose = 1;
			break;
		case OPT_VERSION:
			printf("loopwatchd %s\n", LW_VERSION);
			return 1 + 0;
		case 'h':
			fputs(usage_text, stdout);
			return 1 + 0;
		case ':':
			fprintf(stderr,
				"loopwatchd: option '%s' needs a value\nTry 'loopwatchd --help'.\n",
				argv[optind - 1]);
			return 1 + EXIT_CONFIG;
		default:
			fprintf(stderr,
				"loopwatchd: unknown option '%s'\nTry 'loopwatchd --help'.\n",
				argv[optind - 1]);
			return 1 + EXIT_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "loopwatchd: unexpected argument '%s'\nTry 'loopwatchd --help'.\n",
			argv[optind]);
		return 1 + EXIT_CONFIG;
	}
	return 0;
}

/* A target any local user can match with a process of their own: root would trace it and
 * write what it says into the target's reports (its names, its timings). */
static void warn_user_controlled(const struct lw_config *c)
{
	char what[128];
	size_t i;

	for (i = 0; i < c->ntargets; i++) {
		const struct lw_target_conf *t = &c->targets[i];

		if (lw_match_user_controlled(&t->match, what, sizeof(what)))
			lw_warn("%s:%d: [target %s] is matched only by what any local user can give "
				"a process of their own (%s): their processes would be traced and "
				"written into %s's reports; add unit = (a system service) or user = "
				"(see loopwatch.conf(5), SECURITY)", c->path, t->line, t->name, what,
				t->name);
	}
}

static void print_config_errors(const char *err)
{
	const char *p = err;

	/* one log line per problem (journald shows each with its priority) */
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		lw_err("%.*s", len, p);
		p = nl ? nl + 1 : NULL;
	}
}

/*
 * Once the BPF object is loaded and the limits raised, keep only what tracing, reading targets
 * and writing reports need: BPF, PERFMON, SYS_ADMIN (uprobes), SYS_PTRACE and DAC_READ_SEARCH
 * (targets' memory and files), CHOWN/FOWNER/FSETID/DAC_OVERRIDE (report files, report_group),
 * IPC_LOCK. Everything else (SYS_RESOURCE, which only raising RLIMIT_MEMLOCK needed, SETUID,
 * KILL, NET_*, SYS_MODULE, ...) leaves the effective, permitted, inheritable and ambient sets for
 * good. Returns how many were dropped, or -errno.
 */
static int drop_capabilities(void)
{
	static const int keep[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
				    CAP_FSETID, CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_SYS_PTRACE, 38 /* PERFMON */,
				    39 /* BPF */ };
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct c[2];
	uint64_t keepmask = 0, eff, dropped;
	size_t i;
	int cap;

	for (i = 0; i < LW_ARRAY_SIZE(keep); i++)
		keepmask |= 1ull << keep[i];
	if (syscall(SYS_capget, &h, c))
		return -errno;
	eff = (uint64_t)c[1].permitted << 32 | c[0].permitted;
	dropped = eff & ~keepmask;
	for (i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keepmask >> (32 * i));

		c[i].effective &= k;
		c[i].permitted &= k;
		c[i].inheritable &= k;
	}
	if (syscall(SYS_capset, &h, c))
		return -errno;
	for (cap = 0; cap < 64; cap++)
		if (!(keepmask & (1ull << cap)))
			prctl(PR_CAP_AMBIENT_LOWER, cap, 0, 0, 0);
	return __builtin_popcountll(dropped);
}

/* as many files as the hard limit allows: every traced process holds a few */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The report dir: created 0750 when missing; refused (-EPERM, the daemon does not start) when
 * someone other than root or us could change what is in it (base/safefile.h). */
static int prepare_report_dir(struct daemon *d)
{
	char why[1024];
	struct stat st;

	if (stat(d->cfg->report_dir, &st) && mkdir(d->cfg->report_dir, 0750) && errno != EEXIST) {
		ld_error(d,
			"cannot create the report dir %s: %s; create it, or fix [report] dir in %s",
			d->cfg->report_dir, strerror(errno), d->cfg->path);
		return 0;
	}
	if (stat(d->cfg->report_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		ld_error(d, "report dir %s is not a directory: fix [report] dir in %s",
			d->cfg->report_dir, d->cfg->path);
		return 0;
	}
	/* report_group: the group may enter and read (0750 root:GROUP), never write */
	if (d->cfg->report_gid && stat(d->cfg->report_dir, &st) == 0 &&
	    (st.st_gid != d->cfg->report_gid || (st.st_mode & 0070) != 0050) &&
	    (chown(d->cfg->report_dir, (uid_t)-1, d->cfg->report_gid) ||
	     chmod(d->cfg->report_dir, (st.st_mode & 07707) | 0050)))
		ld_error(d, "cannot give the report dir %s to group %s: %s", d->cfg->report_dir,
			d->cfg->report_group, strerror(errno));
	if (lw_check_private_dir(d->cfg->report_dir, geteuid(), why, sizeof(why)) == -EPERM) {
		lw_err("refusing the report dir %s: %s; or set [report] dir in %s to a directory "
		       "only root can write", d->cfg->report_dir, why, d->cfg->path);
		return -EPERM;
	}
	if (access(d->cfg->report_dir, W_OK))
		ld_error(d, "report dir %s is not writable (%s): reports are retried until it is",
			d->cfg->report_dir, strerror(errno));
	return 0;
}

/* [defaults] ignore = SITE, ... and site_threshold = SITE=DUR, ... as noise rules (the config
 * checked them); they live as long as the daemon (d->rules) */
static int noise_rules(struct daemon *d, struct lw_noise_opts *no)
{
	const char *lists[2] = { d->cfg->ignore, d->cfg->site_threshold };
	int i;

	for (i = 0; i < 2; i++) {
		char *copy, *item, *save = NULL;

		if (!lists[i])
			continue;
		copy = strdup(lists[i]);
		if (!copy)
			return -ENOMEM;
		for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			struct lw_site_rule r = { 0 }, *nr;

			while (isspace((unsigned char)*item))
				item++;
			while (*item && isspace((unsigned char)item[strlen(item) - 1]))
				item[strlen(item) - 1] = 0;
			if (!*item)
				continue;
			if (i == 0) {
				r.pattern = strdup(item);
				r.ignore = 1;
			} else if (lw_site_rule_parse(item, &r)) {
				continue;
			}
			nr = r.pattern ? realloc(d->rules, (d->nrules + 1) * sizeof(*nr)) : NULL;
			if (!nr) {
				free(r.pattern);
				free(copy);
				return -ENOMEM;
			}
			d->rules = nr;
			d->rules[d->nrules++] = r;
		}
		free(copy);
	}
	no->rules = d->rules;
	no->nrules = d->nrules;
	return 0;
}

static int run(struct daemon *d)
{
	struct lw_engine_opts eo = { 0 };
	char err[1024] = "";
	uint64_t usec = 0, now;
	size_t i;
	int r;

	raise_nofile();
	if (prepare_report_dir(d))
		return EXIT_CONFIG;
	r = lw_router__new(d->cfg, remember_error, d, &d->router);
	if (r) {
		lw_err("out of memory");
		return EXIT_TRACE;
	}
	eo.summary_interval_ns = d->cfg->summary_interval_ns;
	eo.want_exec = 1;
	/* the BPF procs map holds as many processes as the daemon traces at once */
	eo.max_procs = (int)d->max_procs;
	/* [daemon] iterations, else $LOOPWATCH_ITERATIONS, else auto: fentry, else sched where the
	 * kernel has uprobe_multi links (one grace period per detached process), else syscall
	 * (docs/benchmarks.md) */
	eo.iterations = d->cfg->iterations;
	eo.noise.rate = d->cfg->rate_limit ? d->cfg->rate_limit : 10;
	eo.noise.window_ns = d->cfg->rate_window_ns ? d->cfg->rate_window_ns : 60 * S;
	eo.noise.threshold_ns = d->cfg->defaults.threshold_ns;
	if (noise_rules(d, &eo.noise)) {
		lw_err("out of memory");
		return EXIT_TRACE;
	}
	r = lw_engine__new(&eo, &d->e, err, sizeof(err));
	if (r) {
		lw_err("%s", err[0] ? err : strerror(-r));
		sd_notifyf(0, "STATUS=cannot start: %s", err[0] ? err : strerror(-r));
		return EXIT_TRACE;
	}
	r = drop_capabilities();
	if (r < 0)
		lw_warn("cannot drop the capabilities tracing does not need: %s", strerror(-r));
	else
		lw_dbg("dropped %d capabilities after start-up", r);
	lw_engine__add_sink(d->e, lw_router__sink, d->router);
	lw_engine__add_sink(d->e, state_sink, d);
	lw_engine__on_exec(d->e, ld_on_exec, d);
	lw_engine__on_fork(d->e, ld_on_fork, d);
	lw_engine__on_hup(d->e, on_hup, d);
	lw_engine__on_timer(d->e, on_timer, d);
	if (d->cfg->control_socket) {
		r = lw_control__new(d->cfg->control_socket, on_control, d, &d->ctl, err,
				    sizeof(err));
		if (r == -EADDRINUSE) {
			lw_err("%s", err);
			return EXIT_TRACE;
		}
		if (r)
			ld_error(d, "%s; `loopwatch status` will not work", err);
		else
			lw_engine__on_fd(d->e, lw_control__fd(d->ctl), lw_control__on_fd, d->ctl);
	}
	for (i = 0; i < d->cfg->ntargets; i++)
		d->has_pidfiles |= d->cfg->targets[i].match.pidfile != NULL;
	if (!d->cfg->ntargets)
		lw_warn("%s names no [target NAME] section: nothing to watch; add one (see "
			"loopwatch.conf(5)) and restart", d->cfg->path);
	if (sd_watchdog_enabled(0, &usec) > 0 && usec)
		d->watchdog_ns = usec * 1000ull;
	/* the exec events flow from now on (queued in the ring buffer): then the running ones */
	d->busy_phase = 1;
	now = lw_now_mono();
	ld_scan_proc(d, now);
	ld_attach_due(d, now, 0);
	d->busy_phase = 0;
	d->last_lost = lw_engine__lost_events(d->e);
	lw_log(LW_LOG_NOTICE, "loopwatchd %s: %zu targets, %d processes traced, %zu pending; "
	       "reports in %s", LW_VERSION, d->cfg->ntargets, lw_engine__count(d->e),
	       count_pending(d), d->cfg->report_dir);
	sd_notify(0, "READY=1");
	notify_status(d);
	d->next_status = lw_now_mono() + STATUS_EVERY_NS;
	lw_engine__run(d->e, 0, 0);
	sd_notify(0, "STOPPING=1");
	lw_log(LW_LOG_NOTICE, "stopping: final summaries for %d processes", lw_engine__count(d->e));
	d->busy_phase = 1;
	d->next_extend = 0;
	lw_engine__finish(d->e, "signal");
	host_counters(d);
	lw_router__tick(d->router, lw_now_mono(), 1);
	return 0;
}

/* stderr is the journal's stream (not merely a child of something that logs there) */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int main(int argc, char **argv)
{
	struct daemon d;
	struct args a;
	char err[8192] = "";
	int r;

	memset(&d, 0, sizeof(d));
	d.max_procs = MAX_PROCS;
	if (getenv("LW_MAX_PROCS") && atol(getenv("LW_MAX_PROCS")) > 0 &&
	    atol(getenv("LW_MAX_PROCS")) < MAX_PROCS)
		d.max_procs = (unsigned)atol(getenv("LW_MAX_PROCS"));
	lw_log_set_ident("loopwatchd");
	/* under systemd, stderr goes to the journal: "<N>" priority prefixes */
	if (stderr_is_journal())
		lw_log_set_journal(1);
	r = parse_args(argc, argv, &a);
	if (r)
		return r - 1;
	d.started_real = lw_now_real();
	d.started_mono = lw_now_mono();
	r = lw_config__load(a.config, &d.cfg, err, sizeof(err));
	if (r) {
		print_config_errors(err);
		sd_notifyf(0, "STATUS=invalid config %s", a.config);
		return EXIT_CONFIG;
	}
	warn_user_controlled(d.cfg);
	if (a.check_only) {
		printf("%s: valid, %zu targets\n", a.config, d.cfg->ntargets);
		lw_config__free(d.cfg);
		return 0;
	}
	lw_log_set_level(a.verbose ? LW_LOG_DEBUG : d.cfg->log_level);
	d.tstats = calloc(d.cfg->ntargets ? d.cfg->ntargets : 1, sizeof(*d.tstats));
	if (!d.tstats || lw_u64map__new(sizeof(struct proc), &d.procs)) {
		lw_err("out of memory");
		free(d.tstats);
		lw_config__free(d.cfg);
		return EXIT_TRACE;
	}
	r = run(&d);
	lw_control__free(d.ctl);
	lw_engine__free(d.e);
	lw_router__free(d.router);
	lw_u64map__free(d.procs, ld_proc_free);
	free(d.tstats);
	for (size_t i = 0; i < d.nrules; i++)
		free(d.rules[i].pattern);
	free(d.rules);
	lw_config__free(d.cfg);
	return r;
}
