// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatchd: finding the processes its targets match (/proc at start, exec and fork events)
 * and attaching to them, with retries, exec and pid-reuse bookkeeping (see loopwatchd.c).
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

/* ------------------------------------------------------------------ matching */

/* The first target (in config order) that matches pid; -1 none; -2 the process is gone */
static int match_target(struct daemon *d, pid_t pid, const char *comm)
{
	struct lw_procview v;
	int ti = -1;
	size_t i;

	if (pid == getpid())
		return -1;
	lw_procview__init(&v, "/proc", pid);
	if (comm)
		lw_procview__set_comm(&v, comm);
	for (i = 0; i < d->cfg->ntargets; i++) {
		if (lw_match(&d->cfg->targets[i].match, &v)) {
			ti = (int)i;
			break;
		}
		if (lw_procview__gone(&v)) {
			ti = -2;
			break;
		}
	}
	lw_procview__release(&v);
	return ti;
}

struct proc *ld_add_pending(struct daemon *d, pid_t pid, int ti, uint64_t when)
{
	struct proc *p;
	int created = 0;

	if (lw_u64map__count(d->procs) >= d->max_procs) {
		d->matched++;	/* matched = attached + pending + not attached */
		ld_error(d, "more than %u processes match the targets: pid %d not traced",
			 d->max_procs, (int)pid);
		ld_not_attached(d, pid, ti, NA_LIMIT, "more processes match the targets than "
				"loopwatchd tracks at once");
		return NULL;
	}
	p = lw_u64map__put(d->procs, (uint64_t)pid, &created);
	if (!p) {
		d->matched++;
		ld_not_attached(d, pid, ti, NA_LIMIT, "out of memory");
		return NULL;
	}
	if (!created && p->pidfd >= 0)
		close(p->pidfd);
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ti = ti;
	p->state = P_PENDING;
	/* the identity of what matched, taken first: a pidfd (it stays with that process, not
	 * with the number) and the start time (checked again before and after each attach) */
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	p->start = lw_proc_starttime("/proc", pid);
	p->next_try = when;
	p->since = lw_now_mono();
	p->want_ti = -1;
	d->matched++;
	lw_dbg("pid %d matches target %s", (int)pid, d->cfg->targets[ti].name);
	return p;
}

/* How long ago pid started (CLOCK_BOOTTIME against its start time); -1 when unknown */
static int64_t proc_age_ns(pid_t pid)
{
	char path[64], *text = NULL, *p;
	unsigned long long start = 0;
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);
	int64_t age = -1;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (hz <= 0 || lw_read_file(path, 4096, &text, NULL))
		return -1;
	/* after the command name (which may hold spaces and parentheses): field 3 onwards */
	p = strrchr(text, ')');
	for (i = 3; p && i <= 22; i++) {
		p = strchr(p + 1, ' ');
		if (p && i == 22)
			start = strtoull(p + 1, NULL, 10);
	}
	if (start && clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		age = (int64_t)((uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec) -
		      (int64_t)(start * (S / (uint64_t)hz));
	free(text);
	return age;
}

/* A process seen by the /proc scan or the pid file check */
void ld_consider(struct daemon *d, pid_t pid, uint64_t when)
{
	struct proc *p;
	int64_t age;
	int ti;

	if (lw_u64map__get(d->procs, (uint64_t)pid) || lw_engine__is_attached(d->e, pid))
		return;
	ti = match_target(d, pid, NULL);
	if (ti < 0)
		return;
	p = ld_add_pending(d, pid, ti, when);
	/* started a moment ago: treat it as a fresh exec (probe until it is ready) */
	age = proc_age_ns(pid);
	if (p && age >= 0 && (uint64_t)age < FRESH_NS)
		p->exec_at = when > (uint64_t)age ? when - (uint64_t)age : 1;
}

void ld_scan_proc(struct daemon *d, uint64_t when)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;

	if (!dir) {
		ld_error(d, "cannot list /proc: %s; running processes are not attached (is /proc "
			"mounted and visible to the service?)", strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		ld_consider(d, (pid_t)pid, when);
	}
	closedir(dir);
}

/* ------------------------------------------------------------------ attaching */

static void session_opts(const struct daemon *d, int ti, struct lw_session_opts *so)
{
	const struct lw_target_conf *t = &d->cfg->targets[ti];

	memset(so, 0, sizeof(*so));
	so->threshold_ns = t->tune.threshold_ns;
	so->block_threshold_ns = t->tune.block_threshold_ns;
	so->precise = t->tune.precise;
	so->no_hooks = t->tune.no_hooks;
	so->stuck_after_ns = t->tune.stuck_after_ns;
	so->stuck_every_ns = t->tune.stuck_every_ns;
	so->runtime = LW_RT_AUTO;
	so->proc_root = "/proc";
	so->target_name = t->name;
	/* the target's processes share one part of the ring buffer (issue 19: per target) */
	so->share = (unsigned)ti + 1;
}

void ld_proc_free(void *v)
{
	struct proc *p = v;

	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

void ld_forget(struct daemon *d, pid_t pid)
{
	lw_u64map__del(d->procs, (uint64_t)pid, ld_proc_free);
}

/* Is pid still the process that matched? Its pidfd has not signalled an exit, and it has the
 * start time it had. A pid reused by another process fails both. */
int ld_same_process(const struct proc *p)
{
	if (p->pidfd >= 0) {
		struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };

		if (poll(&pf, 1, 0) > 0)
			return 0;
	}
	/* no start time taken (it could not be read): only the pidfd speaks */
	return !p->start || lw_proc_starttime("/proc", p->pid) == p->start;
}

static const char *const na_names[NA_N] = {
	[NA_EXITED] = "exited_first",
	[NA_STOPPED_MATCHING] = "stopped_matching",
	[NA_NOT_READY] = "not_ready",
	[NA_PERMISSION] = "permission",
	[NA_LIMIT] = "limit",
	[NA_REFUSED] = "refused_runtime",
	[NA_ERROR] = "error",
};

const char *ld_na_name(enum ld_na cause)
{
	return (unsigned)cause < NA_N ? na_names[cause] : "error";
}

/* the cause of a failed attach, from its -errno */
static enum ld_na na_of(int r)
{
	switch (-r) {
	case EPERM:
	case EACCES:
		return NA_PERMISSION;
	case ENOSPC:
	case E2BIG:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case EMLINK:
		return NA_LIMIT;
	case ENOTSUP:
	case ENOEXEC:
	case ENOENT:
		return NA_REFUSED;
	case EAGAIN:
		return NA_NOT_READY;
	case ESRCH:
		return NA_EXITED;
	default:
		return NA_ERROR;
	}
}

void ld_not_attached(struct daemon *d, pid_t pid, int ti, enum ld_na cause, const char *why)
{
	struct ld_tstats *t;
	struct ld_na_entry *e;

	if ((unsigned)cause >= NA_N)
		cause = NA_ERROR;
	d->not_attached[cause]++;
	if (!d->tstats || ti < 0 || (size_t)ti >= d->cfg->ntargets)
		return;
	t = &d->tstats[ti];
	t->not_attached[cause]++;
	e = &t->last[t->nlast++ % NA_LAST];
	e->pid = pid;
	e->cause = cause;
	e->real_ns = lw_now_real();
	lw_strlcpy(e->why, why ? why : "", sizeof(e->why));
}

/* an attempt failed (r: its -errno): try again later, or give up with an error that says why */
static void retry_or_give_up(struct daemon *d, struct proc *p, uint64_t now, const char *why,
			     int r)
{
	lw_strlcpy(p->err, why, sizeof(p->err));
	p->last_r = r;
	if (++p->tries < MAX_TRIES) {
		p->next_try = now + RETRY_STEP_NS * (uint64_t)p->tries;
		lw_dbg("pid %d: attempt %d: %s", (int)p->pid, p->tries, why);
		return;
	}
	d->gave_up++;
	ld_error(d, "cannot trace pid %d for target %s: %s", (int)p->pid,
		d->cfg->targets[p->ti].name, why);
	ld_not_attached(d, p->pid, p->ti, na_of(r), why);
	ld_forget(d, p->pid);
}

/*
 * A Python process that has just exec'd has no thread state yet: attaching then would run
 * without the verified thread-state lookup. Wait (a few attempts) until the probe finds it.
 */
static int ready_to_attach(struct json_object *desc)
{
	const char *rt = lw_j_get_str(desc, "runtime");
	const char *tsl = lw_j_get_str(desc, "thread_state_lookup");

	if (!rt || strcmp(rt, "cpython"))
		return 1;
	return tsl && strstr(tsl, "verified");
}

static void try_attach(struct daemon *d, pid_t pid, uint64_t now)
{
	struct proc *p = lw_u64map__get(d->procs, (uint64_t)pid);
	struct lw_session_opts so;
	struct json_object *desc = NULL;
	char err[1024] = "";
	int ti, r, ready;

	if (!p || p->state != P_PENDING)
		return;
	if (!ld_same_process(p)) {
		d->reused++;
		lw_dbg("pid %d is no longer the process that matched (it exited%s)", (int)pid,
		       lw_proc_starttime("/proc", pid) ? "; the pid was reused" : "");
		ld_not_attached(d, pid, p->ti, NA_EXITED, "exited before it was attached");
		ld_forget(d, pid);
		return;
	}
	/* still the process that matched (it may have exec'd again, or be gone) */
	ti = match_target(d, pid, NULL);
	if (ti < 0) {
		lw_dbg("pid %d %s before it was attached", (int)pid,
		       ti == -2 ? "exited" : "stopped matching");
		ld_not_attached(d, pid, p->ti, ti == -2 ? NA_EXITED : NA_STOPPED_MATCHING,
				ti == -2 ? "exited before it was attached" :
				"no longer matched the target when it was attached");
		ld_forget(d, pid);
		return;
	}
	p->ti = ti;
	session_opts(d, ti, &so);
	/* just exec'd: probe (no BPF, nothing emitted) until it is ready */
	if (p->exec_at && now - p->exec_at < FRESH_NS) {
		r = lw_session__probe(pid, &so, &desc, err, sizeof(err));
		if (r == -ESRCH) {
			ld_not_attached(d, pid, ti, NA_EXITED, "exited before it was attached");
			ld_forget(d, pid);
			return;
		}
		if (r) {
			retry_or_give_up(d, p, now, err[0] ? err : strerror(-r), r);
			return;
		}
		ready = ready_to_attach(desc);
		json_object_put(desc);
		if (!ready && p->tries < MAX_TRIES - 1) {
			retry_or_give_up(d, p, now,
					 "the interpreter is still starting (no thread state yet)",
					 -EAGAIN);
			return;
		}
	}
	lw_router__assign(d->router, pid, ti);
	r = lw_engine__attach(d->e, pid, &so, err, sizeof(err));
	/* the start record may have moved p (a map insert): look it up again */
	p = lw_u64map__get(d->procs, (uint64_t)pid);
	if (r == -EEXIST)
		return;
	if (r == -ESRCH) {
		ld_not_attached(d, pid, ti, NA_EXITED, "exited before it was attached");
		ld_forget(d, pid);
		return;
	}
	if (r) {
		if (p)
			retry_or_give_up(d, p, now, err[0] ? err : strerror(-r), r);
		return;
	}
	/* the process may have exited while the session was set up, and its pid even been
	 * reused: then it is not ours. Its end says which (most often it just exited: a churn
	 * of short-lived processes ended 188 of 466 such sessions as "pid_reused") */
	if (p && !ld_same_process(p)) {
		uint64_t st = lw_proc_starttime("/proc", pid);
		int reused = st && p->start && st != p->start;

		ld_not_attached(d, pid, ti, NA_EXITED, reused ? "exited while it was being "
				"attached, and its pid was reused" : "exited while it was being attached");
		d->reused++;
		lw_engine__detach(d->e, pid, reused ? "pid_reused" : "target_exited");
		ld_forget(d, pid);
		return;
	}
	d->attaches++;
	lw_info("attached to pid %d for target %s", (int)pid, d->cfg->targets[ti].name);
	if (p) {
		p->state = P_ATTACHED;
		p->since = now;
		p->err[0] = 0;
	}
}

/* the pending processes that are due; with a budget, stop once it is spent (one at least) */
void ld_attach_due(struct daemon *d, uint64_t now, uint64_t budget_ns)
{
	pid_t due[1024];
	struct proc *p;
	size_t it = 0;
	int n = 0, i;

	while (n < (int)LW_ARRAY_SIZE(due) && (p = lw_u64map__next(d->procs, &it, NULL)))
		if (p->state == P_PENDING && p->next_try <= now)
			due[n++] = p->pid;
	/* attaching emits records, and records change the map: not while iterating */
	for (i = 0; i < n; i++) {
		try_attach(d, due[i], now);
		if (budget_ns && lw_now_mono() - now >= budget_ns)
			break;
	}
}

/* ------------------------------------------------------------------ engine hooks */

/* Every exec on the host (BPF, sched_process_exec) */
void ld_on_exec(void *ctx, pid_t pid, pid_t ppid, const char *comm)
{
	struct daemon *d = ctx;
	struct proc *p = lw_u64map__get(d->procs, (uint64_t)pid);
	uint64_t now = lw_now_mono();
	int ti;

	(void)ppid;
	d->execs++;
	if (!d->cfg->ntargets)
		return;
	ti = match_target(d, pid, comm);
	if (p && (p->state == P_EXEC || p->state == P_ATTACHED)) {
		if (ti < 0) {
			/* a program its target does not name: the engine has ended its session;
			 * it must not attach the new image (that took a second or more, with a
			 * start record, before check_execs detached it again) */
			lw_engine__cancel_reattach(d->e, pid);
			lw_engine__detach(d->e, pid, "target_exec");
			lw_info("pid %d exec'd a program its target does not name: detached",
				(int)pid);
			ld_forget(d, pid);
			return;
		}
		/* a traced process exec'd: the engine re-attaches it under the same target */
		p->state = P_EXEC;
		p->want_ti = ti;
		p->since = now;
		return;
	}
	if (p) {
		/* pending and exec'd again (a wrapper that execs the real program) */
		if (ti < 0) {
			ld_not_attached(d, pid, p->ti, NA_STOPPED_MATCHING, "exec'd a program the "
					"target does not name before it was attached");
			ld_forget(d, pid);
			return;
		}
		p->ti = ti;
		p->tries = 0;
		p->next_try = now + EXEC_SETTLE_NS;
		p->exec_at = now;
		return;
	}
	if (ti >= 0) {
		p = ld_add_pending(d, pid, ti, now + EXEC_SETTLE_NS);
		if (p)
			p->exec_at = now;
	}
}

/* Every new process on the host (BPF, sched_process_fork): match it a moment later, when a
 * pre-fork worker has set its title and a fork+exec child has exec'd (then ld_on_exec has it). */
void ld_on_fork(void *ctx, pid_t pid, pid_t ppid, const char *comm)
{
	struct daemon *d = ctx;

	(void)ppid;
	(void)comm;
	d->forks++;
	if (!d->cfg->ntargets)
		return;
	if (d->fq_len == FORKQ) {
		d->fq_overflow = 1;
		return;
	}
	d->forkq[(d->fq_head + d->fq_len) % FORKQ].pid = pid;
	d->forkq[(d->fq_head + d->fq_len) % FORKQ].due = lw_now_mono() + FORK_SETTLE_NS;
	d->fq_len++;
}

void ld_match_forks(struct daemon *d, uint64_t now)
{
	while (d->fq_len && d->forkq[d->fq_head].due <= now) {
		pid_t pid = d->forkq[d->fq_head].pid;

		d->fq_head = (d->fq_head + 1) % FORKQ;
		d->fq_len--;
		ld_consider(d, pid, now);	/* known ones (attached, pending, exec'd) are skipped */
	}
}

/*
 * The watchdog is fed from the timer, and also from here: attaching or detaching many processes
 * in a row (the first pass, a mass exit, the final detaches) holds the loop, but each one emits
 * records, so records prove progress. In those long phases systemd's start/stop timeout is
 * extended as well.
 */
