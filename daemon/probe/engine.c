// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/engine.h"
#include "probe/bpfobj.h"
#include "record/jsonrec.h"
#include "target/elfsym.h"
#include "target/hookfind.h"
#include "target/procmaps.h"
#include "base/lw_util.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_SINKS 8
#define MAX_FDS 8

enum { EV_RING = 1, EV_SIGNAL, EV_TIMER, EV_PIDFD, EV_USER };

/* libc's poll-family wrappers and the syscall each makes (sched iteration mode) */
static const struct {
	const char *name;
	unsigned nr;
} poll_wrappers[] = {
	{ "epoll_wait", 232 }, { "epoll_pwait", 281 }, { "epoll_pwait2", 441 },
	{ "poll", 7 }, { "ppoll", 271 }, { "select", 23 }, { "pselect", 270 },
};
#define NPOLL (sizeof(poll_wrappers) / sizeof(poll_wrappers[0]))

struct target {
	struct lw_session *s;
	pid_t pid;
	int pidfd;
	int exited;
	uint64_t gone_checked;	/* last look at /proc for it (each tick without a pidfd) */
	int poll_hooks[NPOLL];	/* sched mode: uprobes on the libc poll wrappers (one
				 * handle for them all where the kernel has uprobe_multi links) */
	int nhooks;
	int npoll;		/* wrappers probed */
	char poll_lib[256];	/* the file they are in */
	char poll_at[256];	/* where each sits: "epoll_wait+10 poll+7 ppoll+0 ..." */
};

/* a traced process that exec'd: attach again once its new image has started */
struct reattach {
	pid_t pid;
	int tries;
	uint64_t next;
	struct lw_session_opts o;
	char target[64];
	char proc_root[64];
};

#define REATTACH_MAX 32
#define REATTACH_TRIES 12

struct user_fd {
	int fd;
	void (*fn)(void *ctx, int fd);
	void *ctx;
};

struct lw_engine {
	struct lw_engine_opts o;
	struct lw_bpf *bpf;
	struct ring_buffer *rb;
	int epfd, sigfd, timerfd;
	sigset_t oldmask;
	struct {
		lw_emit_fn fn;
		void *ctx;
	} sinks[MAX_SINKS];
	int nsinks;
	struct target *t;
	int nt, capt;
	enum lw_stop_reason stop;
	uint64_t next_summary;
	void (*exec_fn)(void *ctx, pid_t pid, pid_t ppid, const char *comm);
	void *exec_ctx;
	void (*fork_fn)(void *ctx, pid_t pid, pid_t ppid, const char *comm);
	void *fork_ctx;
	void (*hup_fn)(void *ctx);
	void *hup_ctx;
	void (*timer_fn)(void *ctx, uint64_t now);
	void *timer_ctx;
	struct user_fd ufds[MAX_FDS];
	int nufds;
	uint64_t bad_records;
	struct reattach re[REATTACH_MAX];
	int nre;
	int in_record;		/* inside the ring buffer's callback: no draining from there */
	unsigned drain_left;	/* records this drain may still handle */
	struct lw_noise *noise;
};

static void to_sinks(void *ctx, struct json_object *rec)
{
	struct lw_engine *e = ctx;
	int i;

	if (!rec)
		return;
	for (i = 0; i < e->nsinks; i++)
		e->sinks[i].fn(e->sinks[i].ctx, rec);
	json_object_put(rec);
}

/* every record passes the noise filter first (summaries, start, end always pass) */
static void emit_all(void *ctx, struct json_object *rec)
{
	struct lw_engine *e = ctx;

	if (!rec)
		return;
	if (e->noise && lw_noise__check(e->noise, rec, lw_now_mono()) != LW_NOISE_PASS) {
		json_object_put(rec);
		return;
	}
	to_sinks(e, rec);
}

void lw_engine__emit(struct lw_engine *e, struct json_object *rec)
{
	emit_all(e, rec);
}

int lw_engine__add_sink(struct lw_engine *e, lw_emit_fn fn, void *ctx)
{
	if (e->nsinks == MAX_SINKS)
		return -ENOSPC;
	e->sinks[e->nsinks].fn = fn;
	e->sinks[e->nsinks].ctx = ctx;
	e->nsinks++;
	return 0;
}

static struct target *find_target(const struct lw_engine *e, pid_t pid)
{
	int i;

	for (i = 0; i < e->nt; i++)
		if (e->t[i].pid == pid)
			return &e->t[i];
	return NULL;
}

static size_t min_size(uint32_t type)
{
	switch (type) {
	case LW_REC_CALLBACK:
		return sizeof(struct lw_rec_callback);
	case LW_REC_TICK:
		return sizeof(struct lw_rec_tick);
	case LW_REC_BLOCK:
		return sizeof(struct lw_rec_block);
	case LW_REC_SITE:
		return sizeof(struct lw_rec_site);
	case LW_REC_ASYNCIO:
		return sizeof(struct lw_rec_asyncio);
	case LW_REC_NEWTHREAD:
	case LW_REC_EXIT:
	case LW_REC_EXEC:
	case LW_REC_FORK:
		return sizeof(struct lw_rec_task);
	default:
		return 0;
	}
}

static void exec_replaced(struct lw_engine *e, struct target *t);

static int handle_record(struct lw_engine *e, void *data, size_t size);

static int on_record(void *ctx, void *data, size_t size)
{
	struct lw_engine *e = ctx;
	int r;

	e->in_record = 1;
	r = handle_record(e, data, size);
	e->in_record = 0;
	/* this pass's share done: the rest at the next (libbpf stops at a negative return, this
	 * record consumed) */
	if (r >= 0 && e->drain_left && --e->drain_left == 0)
		return -EAGAIN;
	return r;
}

static int handle_record(struct lw_engine *e, void *data, size_t size)
{
	const struct lw_rec_hdr *h = data;
	struct target *t;
	size_t need;

	if (size < sizeof(*h) || h->size > size) {
		e->bad_records++;
		return 0;
	}
	need = min_size(h->type);
	if (!need || h->size < need) {
		e->bad_records++;
		return 0;
	}
	if (h->type == LW_REC_EXEC) {
		const struct lw_rec_task *r = data;
		char comm[17];

		memcpy(comm, r->comm, 16);
		comm[16] = 0;
		t = find_target(e, (pid_t)h->tgid);
		if (t && t->s)
			exec_replaced(e, t);
		if (e->exec_fn)
			e->exec_fn(e->exec_ctx, (pid_t)h->tgid, (pid_t)r->ppid, comm);
		return 0;
	}
	if (h->type == LW_REC_FORK) {
		const struct lw_rec_task *r = data;
		char comm[17];

		memcpy(comm, r->comm, 16);
		comm[16] = 0;
		if (e->fork_fn)
			e->fork_fn(e->fork_ctx, (pid_t)h->tgid, (pid_t)r->ppid, comm);
		return 0;
	}
	t = find_target(e, (pid_t)h->tgid);
	if (!t || !t->s)
		return 0;
	if (h->type == LW_REC_EXIT) {
		t->exited = 1;
		return 0;
	}
	lw_session__handle(t->s, h, size, emit_all, e);
	return 0;
}

/*
 * sched iteration mode: uprobes on the entry of the poll-family wrappers of the libc the target
 * maps (or of its executable when it is linked statically). A loop whose poll sleeps is seen by
 * the scheduler without them; these see polls that return at once. Missing ones are not fatal:
 * the start record says how many are in use.
 */
static void attach_poll_probes(struct lw_engine *e, struct target *t, const char *root)
{
	struct lw_maps *maps = NULL;
	const struct lw_map *m = NULL;
	struct lw_elf *elf = NULL;
	uint64_t offs[NPOLL];
	unsigned nrs[NPOLL];
	size_t i, j, n = 0;
	char path[4400];
	int multi = lw_bpf__poll_multi(e->bpf);

	if (lw_bpf__iter_mode(e->bpf) != LW_ITER_SCHED)
		return;
	if (lw_maps__load(root, t->pid, &maps))
		return;
	m = lw_maps__find_lib(maps, "libc.so.6");
	if (!m)
		m = lw_maps__find_lib(maps, "libc-");
	if (m) {
		/* the very file the process maps (map_files, or a dev/ino-checked path): in a
		 * chroot its maps show paths as seen from our root, /proc/PID/root + that is wrong */
		int fd = lw_maps__open_mapped(root, t->pid, m, path, sizeof(path));

		lw_strlcpy(t->poll_lib, m->path, sizeof(t->poll_lib));	/* as its maps name it */
		lw_maps__free(maps);
		/* lw_elf__open_fd owns fd, closed on failure too */
		if (fd < 0 || lw_elf__open_fd(fd, path, &elf)) {
			lw_warn("pid %d: cannot open its libc (%s): polls that do not sleep will not "
				"end iterations", (int)t->pid, strerror(fd < 0 ? -fd : ENOEXEC));
			return;
		}
	} else {
		snprintf(path, sizeof(path), "%s/%d/exe", root, (int)t->pid);
		lw_strlcpy(t->poll_lib, path, sizeof(t->poll_lib));
		lw_maps__free(maps);
		if (lw_elf__open(path, &elf))
			return;
	}
	for (i = 0; i < NPOLL; i++) {
		uint64_t v, pv, off;
		uint8_t code[48];
		char err[512];
		int h, dup = 0;

		if (lw_elf__find_symbol(elf, poll_wrappers[i].name, &v, NULL))
			continue;
		/* at the first instruction the kernel emulates: one trap per poll, not two */
		if (lw_elf__read(elf, v, code, sizeof(code)) == 0 &&
		    lw_hook_emulated_entry(code, sizeof(code), v, &pv) && pv != v)
			lw_dbg("pid %d: %s probed at +%llu (emulated, not single-stepped)", (int)t->pid,
			       poll_wrappers[i].name, (unsigned long long)(pv - v));
		else
			pv = v;
		if (lw_elf__vaddr_to_offset(elf, pv, &off))
			continue;
		/* aliases at one address: one probe (two would end each iteration twice) */
		for (j = 0; j < n; j++)
			dup |= offs[j] == off;
		if (dup)
			continue;
		if (multi) {	/* attached below, all in one link */
			h = 0;
		} else {
			h = lw_bpf__attach_poll(e->bpf, t->pid, path, off, poll_wrappers[i].nr, err,
						sizeof(err));
			if (h < 0) {
				lw_warn("pid %d: %s (polls that do not sleep will not end iterations)",
					(int)t->pid, err);
				continue;
			}
			t->poll_hooks[t->nhooks++] = h;
		}
		nrs[n] = poll_wrappers[i].nr;
		offs[n++] = off;
		snprintf(t->poll_at + strlen(t->poll_at), sizeof(t->poll_at) - strlen(t->poll_at),
			 "%s%s+%llu", t->poll_at[0] ? " " : "", poll_wrappers[i].name,
			 (unsigned long long)(pv - v));
	}
	lw_elf__close(elf);
	t->npoll = (int)n;
	if (multi && n) {
		char err[512];
		int h = lw_bpf__attach_polls(e->bpf, t->pid, path, offs, nrs, (unsigned)n, err,
					     sizeof(err));

		if (h < 0) {
			lw_warn("pid %d: %s (polls that do not sleep will not end iterations)",
				(int)t->pid, err);
			t->npoll = 0;
			t->poll_at[0] = 0;
			return;
		}
		t->poll_hooks[t->nhooks++] = h;
	}
}

static void detach_poll_probes(struct lw_engine *e, struct target *t)
{
	int i;

	for (i = 0; i < t->nhooks; i++)
		lw_bpf__detach_hook(e->bpf, t->poll_hooks[i]);
	t->nhooks = 0;
	t->npoll = 0;
}

/* The start record's "iterations": which probes find loop iterations and blocking calls, and
 * what they cost processes loopwatch does not trace (interface.md) */
static struct json_object *with_iter_probes(struct lw_engine *e, const struct target *t,
					    struct json_object *rec)
{
	struct json_object *it = json_object_new_object();
	enum lw_iter_mode m = lw_bpf__iter_mode(e->bpf);

	json_object_object_add(it, "mode", json_object_new_string(lw_bpf__iter_mode_name(m)));
	json_object_object_add(it, "probe", json_object_new_string(lw_bpf__iter_probe(e->bpf)));
	/* why this probe: chosen, or fentry loaded, or what refused fentry (the fallback) */
	json_object_object_add(it, "why", json_object_new_string(lw_bpf__iter_why(e->bpf)));
	json_object_object_add(it, "blocking_calls", json_object_new_string(
		"sched_switch: the syscall a thread sleeps in (orig_ax), its arguments and fd"));
	if (m == LW_ITER_SCHED) {
		json_object_object_add(it, "poll_uprobes", json_object_new_int(t->npoll));
		if (t->npoll)
			json_object_object_add(it, "poll_uprobes_in",
					       json_object_new_string(t->poll_lib));
		/* probes past a wrapper's entry sit on an instruction the kernel emulates */
		if (t->npoll)
			json_object_object_add(it, "poll_uprobes_at",
					       json_object_new_string(t->poll_at));
	}
	json_object_object_add(it, "host_cost", json_object_new_string(lw_bpf__host_cost(e->bpf)));
	json_object_object_add(it, "target_cost", json_object_new_string(lw_bpf__target_cost_of(m)));
	if (rec)
		json_object_object_add(rec, "iterations", it);
	else
		json_object_put(it);
	return rec;
}

int lw_engine__new(const struct lw_engine_opts *o, struct lw_engine **out, char *err,
		   size_t errlen)
{
	struct lw_engine *e = calloc(1, sizeof(*e));
	struct lw_bpf_opts bo = { 0 };
	struct epoll_event ev;
	sigset_t mask;
	int r;

	if (!e)
		return -ENOMEM;
	e->o = *o;
	if (!e->o.tick_ns)
		e->o.tick_ns = 20000000ull;
	e->epfd = e->sigfd = e->timerfd = -1;
	bo.want_exec = o->want_exec;
	r = lw_bpf__parse_iter_mode(o->iterations, &bo.iter_mode, err, errlen);
	if (r)
		goto fail;
	/* bytes of user stack copied per native stack for CFI unwinding (docs/benchmarks.md):
	 * LW_USTACK_BYTES=0 keeps frame pointers only; unset: 16 KiB */
	if (getenv("LW_USTACK_BYTES"))
		bo.ustack_bytes = atoi(getenv("LW_USTACK_BYTES")) > 0 ? atoi(getenv("LW_USTACK_BYTES")) : -1;
	bo.no_precise = o->no_precise;
	bo.max_procs = o->max_procs;
	bo.sample_hz = o->no_sampling ? 0 : (o->sample_hz ? o->sample_hz : 49);
	r = lw_bpf__new(&bo, &e->bpf, err, errlen);
	if (r)
		goto fail;
	e->rb = ring_buffer__new(lw_bpf__events_fd(e->bpf), on_record, e, NULL);
	if (!e->rb) {
		r = -errno;
		snprintf(err, errlen, "cannot set up the BPF ring buffer: %s", strerror(-r));
		goto fail;
	}
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &e->oldmask);
	e->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	e->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (e->epfd < 0 || e->sigfd < 0 || e->timerfd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot set up the event loop: %s", strerror(-r));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = EV_RING;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(e->rb), &ev);
	ev.data.u64 = EV_SIGNAL;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->sigfd, &ev);
	ev.data.u64 = EV_TIMER;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->timerfd, &ev);
	{
		struct itimerspec its = { 0 };

		its.it_interval.tv_sec = (time_t)(e->o.tick_ns / 1000000000ull);
		its.it_interval.tv_nsec = (long)(e->o.tick_ns % 1000000000ull);
		its.it_value = its.it_interval;
		timerfd_settime(e->timerfd, 0, &its, NULL);
	}
	if (o->summary_interval_ns)
		e->next_summary = lw_now_mono() + o->summary_interval_ns;
	r = lw_noise__new(&o->noise, &e->noise);
	if (r) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*out = e;
	return 0;
fail:
	lw_engine__free(e);
	return r;
}

void lw_engine__free(struct lw_engine *e)
{
	int i;

	if (!e)
		return;
	for (i = 0; i < e->nt; i++) {
		detach_poll_probes(e, &e->t[i]);
		lw_session__free(e->t[i].s);
		if (e->t[i].pidfd >= 0)
			close(e->t[i].pidfd);
	}
	free(e->t);
	lw_noise__free(e->noise);
	ring_buffer__free(e->rb);
	lw_bpf__free(e->bpf);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->sigfd >= 0) {
		close(e->sigfd);
		sigprocmask(SIG_SETMASK, &e->oldmask, NULL);
	}
	if (e->timerfd >= 0)
		close(e->timerfd);
	free(e);
}

int lw_engine__attach(struct lw_engine *e, pid_t pid, const struct lw_session_opts *o, char *err,
		      size_t errlen)
{
	struct lw_session *s = NULL;
	struct target *t;
	int r;

	if (find_target(e, pid)) {
		snprintf(err, errlen, "pid %d is already traced", (int)pid);
		return -EEXIST;
	}
	if (pid == getpid()) {
		snprintf(err, errlen, "loopwatch does not trace itself");
		return -EINVAL;
	}
	if (e->nt == e->capt) {
		int nc = e->capt ? e->capt * 2 : 8;
		struct target *nt = realloc(e->t, (size_t)nc * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		e->t = nt;
		e->capt = nc;
	}
	r = lw_session__new(e->bpf, pid, o, &s, err, errlen);
	if (r)
		return r;
	t = &e->t[e->nt++];
	memset(t, 0, sizeof(*t));
	t->s = s;
	t->pid = pid;
	attach_poll_probes(e, t, o->proc_root ? o->proc_root : "/proc");
	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd >= 0) {
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u64 = ((uint64_t)(uint32_t)pid << 8) | EV_PIDFD;
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, t->pidfd, &ev);
	}
	emit_all(e, with_iter_probes(e, t, lw_session__start_record(s)));
	return 0;
}

/*
 * Records waiting in the ring buffer, at most max of them. A target that floods
 * records faster than they are handled would otherwise keep ring_buffer__consume from ever
 * returning: no timer, no control socket (`status` timed out), no watchdog. The ring's fd stays
 * readable while records wait, so the main loop comes back for the rest after the others.
 */
#define DRAIN_MAX 1024
#define DRAIN_ALL 100000	/* more than the ring holds (4 MiB), but bounded */

static void drain_n(struct lw_engine *e, unsigned max)
{
	if (e->in_record)
		return;
	e->drain_left = max;
	ring_buffer__consume(e->rb);
}

static void drain(struct lw_engine *e)
{
	drain_n(e, DRAIN_MAX);
}

/* The process exec'd another program: close this session, try the new image shortly. */
static void exec_replaced(struct lw_engine *e, struct target *t)
{
	const struct lw_session_opts *so = lw_session__opts(t->s);
	struct reattach *ra;
	pid_t pid = t->pid;

	if (e->nre < REATTACH_MAX) {
		ra = &e->re[e->nre++];
		memset(ra, 0, sizeof(*ra));
		ra->pid = pid;
		ra->o = *so;
		if (so->target_name)
			lw_strlcpy(ra->target, so->target_name, sizeof(ra->target));
		lw_strlcpy(ra->proc_root, so->proc_root ? so->proc_root : "/proc",
			   sizeof(ra->proc_root));
		ra->o.target_name = ra->target[0] ? ra->target : NULL;
		ra->o.proc_root = ra->proc_root;
		ra->next = lw_now_mono() + 100000000ull;
	}
	lw_engine__detach(e, pid, "target_exec");
}

/* the re-attach at index i is done with */
static void reattach_drop(struct lw_engine *e, int i)
{
	memmove(&e->re[i], &e->re[i + 1], (size_t)(e->nre - i - 1) * sizeof(e->re[0]));
	e->nre--;
}

static void retry_reattach(struct lw_engine *e, uint64_t now)
{
	int i = 0;

	while (i < e->nre) {
		struct reattach *ra = &e->re[i];
		char err[1024] = "";
		int r;

		if (now < ra->next) {
			i++;
			continue;
		}
		ra->o.target_name = ra->target[0] ? ra->target : NULL;
		ra->o.proc_root = ra->proc_root;
		r = lw_engine__attach(e, ra->pid, &ra->o, err, sizeof(err));
		/* a new interpreter needs a moment before its thread states exist */
		if (r && r != -ESRCH && ++ra->tries < REATTACH_TRIES) {
			ra->next = now + 100000000ull * (uint64_t)ra->tries;
			i++;
			continue;
		}
		if (r)
			lw_warn("pid %d exec'd a new program that cannot be traced: %s", (int)ra->pid,
				err[0] ? err : strerror(-r));
		reattach_drop(e, i);
	}
}

void lw_engine__cancel_reattach(struct lw_engine *e, pid_t pid)
{
	int i;

	for (i = 0; i < e->nre; i++)
		if (e->re[i].pid == pid) {
			reattach_drop(e, i);
			return;
		}
}

void lw_engine__detach(struct lw_engine *e, pid_t pid, const char *reason)
{
	struct target *t = find_target(e, pid);
	uint64_t now;
	int i;

	if (!t)
		return;
	drain_n(e, DRAIN_ALL);	/* the process's last records, before its summary */
	now = lw_now_mono();
	if (e->noise)
		lw_noise__flush(e->noise, now, 1, to_sinks, e);
	emit_all(e, lw_session__summary(t->s, 1, now));
	if (e->noise)
		lw_noise__forget_pid(e->noise, pid);
	{
		struct json_object *end = lw_session__end_record(t->s, reason,
								 lw_engine__lost_events(e));

		json_object_object_add(end, "suppressed",
				       json_object_new_int64((int64_t)lw_engine__suppressed(e)));
		/* the noise filter's budget: sites whose rate-limit state was evicted */
		json_object_object_add(end, "noise_sites_evicted",
				       json_object_new_int64((int64_t)lw_noise__evicted(e->noise)));
		emit_all(e, end);
	}
	detach_poll_probes(e, t);
	lw_session__free(t->s);
	if (t->pidfd >= 0)
		close(t->pidfd);
	i = (int)(t - e->t);
	memmove(&e->t[i], &e->t[i + 1], (size_t)(e->nt - i - 1) * sizeof(*t));
	e->nt--;
}

int lw_engine__is_attached(const struct lw_engine *e, pid_t pid)
{
	return find_target(e, pid) != NULL;
}

int lw_engine__count(const struct lw_engine *e)
{
	return e->nt;
}

struct lw_session *lw_engine__session(struct lw_engine *e, int i)
{
	return i >= 0 && i < e->nt ? e->t[i].s : NULL;
}

void lw_engine__on_fork(struct lw_engine *e, void (*fn)(void *, pid_t, pid_t, const char *), void *ctx)
{
	e->fork_fn = fn;
	e->fork_ctx = ctx;
}

void lw_engine__on_exec(struct lw_engine *e, void (*fn)(void *, pid_t, pid_t, const char *), void *ctx)
{
	e->exec_fn = fn;
	e->exec_ctx = ctx;
}

void lw_engine__on_hup(struct lw_engine *e, void (*fn)(void *), void *ctx)
{
	e->hup_fn = fn;
	e->hup_ctx = ctx;
}

void lw_engine__on_timer(struct lw_engine *e, void (*fn)(void *, uint64_t), void *ctx)
{
	e->timer_fn = fn;
	e->timer_ctx = ctx;
}

void lw_engine__on_fd(struct lw_engine *e, int fd, void (*fn)(void *, int), void *ctx)
{
	struct epoll_event ev;

	if (e->nufds == MAX_FDS)
		return;
	e->ufds[e->nufds].fd = fd;
	e->ufds[e->nufds].fn = fn;
	e->ufds[e->nufds].ctx = ctx;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = ((uint64_t)(uint32_t)e->nufds << 8) | EV_USER;
	e->nufds++;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void lw_engine__stop(struct lw_engine *e, enum lw_stop_reason why)
{
	e->stop = why;
}

/*
 * An exit is seen by the BPF exit record and, where the kernel has them, by the pidfd: the look
 * at /proc is the fallback for kernels without pidfds, and a slow safety net (once a second)
 * elsewhere. Made at every 20 ms tick it was a third of an idle daemon's CPU (perf: a path
 * walk through /proc per target per tick).
 */
static int target_gone(struct target *t, uint64_t now)
{
	char path[64];

	if (t->exited)
		return 1;
	if (t->pidfd >= 0 && now - t->gone_checked < 1000000000ull)
		return 0;
	t->gone_checked = now;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t->pid);
	if (access(path, F_OK))
		return 1;
	return 0;
}

static void on_timer(struct lw_engine *e)
{
	uint64_t now = lw_now_mono(), exp;
	int i;

	if (read(e->timerfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		return;
	drain(e);
	if (!e->o.no_live_alerts)
		for (i = 0; i < e->nt; i++)
			lw_session__tick(e->t[i].s, now, emit_all, e);
	if (e->noise)
		lw_noise__flush(e->noise, now, 0, to_sinks, e);
	if (e->next_summary && now >= e->next_summary) {
		e->next_summary = now + e->o.summary_interval_ns;
		for (i = 0; i < e->nt; i++)
			emit_all(e, lw_session__summary(e->t[i].s, 0, now));
	}
	/* targets without a pidfd (old kernels) and zombies */
	for (i = e->nt - 1; i >= 0; i--)
		if (target_gone(&e->t[i], now))
			lw_engine__detach(e, e->t[i].pid, "target_exited");
	if (e->nre)
		retry_reattach(e, now);
	if (e->timer_fn)
		e->timer_fn(e->timer_ctx, now);
}

enum lw_stop_reason lw_engine__run(struct lw_engine *e, uint64_t deadline, int stop_when_empty)
{
	struct epoll_event evs[16];

	e->stop = LW_STOP_NONE;
	while (!e->stop) {
		int n, i, timeout = 200;

		if (stop_when_empty && e->nt == 0 && e->nre == 0) {
			e->stop = LW_STOP_TARGETS_EXITED;
			break;
		}
		if (deadline) {
			uint64_t now = lw_now_mono();

			if (now >= deadline) {
				e->stop = LW_STOP_DURATION;
				break;
			}
			if ((deadline - now) / 1000000 < (uint64_t)timeout)
				timeout = (int)((deadline - now) / 1000000) + 1;
		}
		n = epoll_wait(e->epfd, evs, 16, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			lw_err("epoll_wait: %s", strerror(errno));
			e->stop = LW_STOP_SIGNAL;
			break;
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64 & 0xff;

			if (tag == EV_RING) {
				drain(e);
			} else if (tag == EV_SIGNAL) {
				struct signalfd_siginfo si;

				while (read(e->sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						if (e->hup_fn)
							e->hup_fn(e->hup_ctx);
					} else {
						e->stop = LW_STOP_SIGNAL;
					}
				}
			} else if (tag == EV_TIMER) {
				on_timer(e);
			} else if (tag == EV_PIDFD) {
				pid_t pid = (pid_t)(evs[i].data.u64 >> 8);

				lw_engine__detach(e, pid, "target_exited");
			} else if (tag == EV_USER) {
				int k = (int)(evs[i].data.u64 >> 8);

				if (k < e->nufds)
					e->ufds[k].fn(e->ufds[k].ctx, e->ufds[k].fd);
			}
		}
	}
	return e->stop;
}

void lw_engine__finish(struct lw_engine *e, const char *reason)
{
	while (e->nt)
		lw_engine__detach(e, e->t[e->nt - 1].pid, reason);
}

uint64_t lw_engine__lost_events(const struct lw_engine *e)
{
	struct lw_bpf_counters c;

	lw_bpf__counters(e->bpf, &c);
	return c.lost_events;
}

struct lw_bpf *lw_engine__bpf(struct lw_engine *e)
{
	return e->bpf;
}

uint64_t lw_engine__suppressed(const struct lw_engine *e)
{
	return e->noise ? lw_noise__suppressed_total(e->noise) : 0;
}
