// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A session's threads: polling threads at attach, pid namespaces (the target's thread ids as
 * the host sees them), thread states, uvloop discovery and what the threads teach (session.c). */
#include "probe/session_priv.h"

#include <signal.h>
#include <unistd.h>

/* poll, select, epoll_wait, pselect6, ppoll, epoll_pwait, epoll_pwait2 (x86_64) */
static int poll_family(long nr)
{
	return nr == 7 || nr == 23 || nr == 232 || nr == 270 || nr == 271 || nr == 281 || nr == 441;
}

/* Threads asleep in a poll-family syscall as the probes go live (/proc/PID/task/TID/syscall):
 * their wait so far is idle time that no probe sees begin */
void lw_sess_note_polling_threads(struct lw_session *s)
{
	char path[200], *text = NULL;
	struct dirent *de;
	uint64_t now = lw_now_mono();
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/task", s->proc_root, (int)s->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = 0;
		long tid = strtol(de->d_name, NULL, 10), nr;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%ld/syscall", s->proc_root, (int)s->pid, tid);
		if (lw_read_file(path, 256, &text, &n) == 0 && n &&
		    (nr = strtol(text, NULL, 10)) >= 0 && poll_family(nr)) {
			struct lw_sthread *t = lw_sess_thread_get(s, (pid_t)tid, NULL);

			if (t)
				t->poll_since = now;
		}
		free(text);
		text = NULL;
	}
	closedir(d);
}

struct lw_sthread *lw_sess_thread_get(struct lw_session *s, pid_t tid, const char *comm)
{
	int created = 0;
	struct lw_sthread *t = lw_u64map__put(s->threads, (uint64_t)tid, &created);

	if (t && created) {
		t->tid = tid;
		lw_sess_read_comm(s->proc_root, s->pid, tid, t->comm, sizeof(t->comm));
		if (!t->comm[0] && comm)
			lw_strlcpy(t->comm, comm, sizeof(t->comm));
	}
	return t;
}

/*
 * Thread ids the target knows (CPython's native_thread_id, glibc's pthread tid) are those of its
 * own pid namespace. In a container they differ from the host's: translate through the NSpid
 * lines of /proc/PID/task/TID/status (host id first, the innermost namespace's last). Each
 * thread's status is read once: what it says is kept both ways (s->ns_by_id, s->ns_by_host)
 * while the thread lives. Before (issue 19), every translation read the status of every thread,
 * quadratic for a container starting thousands of threads.
 */
static int ns_maps(struct lw_session *s)
{
	if (!s->ns_by_id && lw_u64map__new(sizeof(struct lw_nsid), &s->ns_by_id))
		return -ENOMEM;
	if (!s->ns_by_host && lw_u64map__new(sizeof(struct lw_nsid), &s->ns_by_host))
		return -ENOMEM;
	return 0;
}

/* a thread gone: out of both maps, its ids kept a while (ns_seen) so that it is still named */
static void ns_gone(struct lw_session *s, pid_t host, pid_t nsid)
{
	struct lw_nsid *f = lw_u64map__get(s->ns_by_id, (uint64_t)nsid);
	unsigned k = s->ns_seen_next++ % LW_ARRAY_SIZE(s->ns_seen);

	s->ns_seen[k].ns = nsid;
	s->ns_seen[k].host = host;
	if (f && f->id == host)
		lw_u64map__del(s->ns_by_id, (uint64_t)nsid, NULL);
	lw_u64map__del(s->ns_by_host, (uint64_t)host, NULL);
}

/* Read the task directory: the status of threads not seen before (each once), threads gone
 * forgotten. The host id of namespace id nstid, or 0. */
static pid_t ns_scan(struct lw_session *s, pid_t nstid)
{
	char path[400], *text = NULL;
	struct lw_nsid *e, *f;
	struct dirent *de;
	uint64_t key;
	size_t it = 0;
	pid_t host = 0;
	int seen = 0, created;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/task", s->proc_root, (int)s->pid);
	d = opendir(path);
	if (!d)
		return 0;
	if (++s->ns_gen == 0)
		s->ns_gen = 1;
	while ((de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10), ids[8];
		int n;

		if (tid <= 0)
			continue;
		seen++;
		if ((e = lw_u64map__get(s->ns_by_host, (uint64_t)tid))) {
			e->gen = s->ns_gen;
			if (e->id == nstid)
				host = (pid_t)tid;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%d/task/%ld/status", s->proc_root, (int)s->pid, tid);
		if (lw_read_file(path, 1 << 16, &text, NULL))
			continue;
		n = lw_parse_nspid(text, ids, 8);
		free(text);
		text = NULL;
		if (n < 2 || ids[0] != tid)
			continue;
		e = lw_u64map__put(s->ns_by_host, (uint64_t)tid, &created);
		f = lw_u64map__put(s->ns_by_id, (uint64_t)ids[n - 1], &created);
		if (!e || !f)
			break;	/* out of memory: what is known stays */
		e->id = (pid_t)ids[n - 1];
		e->gen = s->ns_gen;
		f->id = (pid_t)tid;	/* a namespace id reused: the live thread's */
		f->gen = s->ns_gen;
		if (ids[n - 1] == nstid)
			host = (pid_t)tid;
	}
	closedir(d);
	if (!seen)
		return host;	/* the process is gone or going: nothing taken for gone */
	while ((e = lw_u64map__next(s->ns_by_host, &it, &key)))
		if (e->gen != s->ns_gen)
			ns_gone(s, (pid_t)key, e->id);
	return host;
}

pid_t lw_sess_ns_to_host(struct lw_session *s, pid_t nstid)
{
	char path[200];
	struct lw_nsid *f;
	pid_t host, old = 0;
	unsigned k;

	if (!s->other_pidns || nstid <= 0)
		return nstid;
	if (ns_maps(s))
		return 0;
	f = lw_u64map__get(s->ns_by_id, (uint64_t)nstid);
	if (f) {
		/* still a thread of the process: the translation holds (a thread's ids do not
		 * change; its namespace id is only reused after it ended) */
		snprintf(path, sizeof(path), "%s/%d/task/%d", s->proc_root, (int)s->pid, (int)f->id);
		if (access(path, F_OK) == 0)
			return f->id;
		old = f->id;
	}
	host = ns_scan(s, nstid);
	if (host)
		return host;
	if (old)
		return old;	/* gone: the last host id it had */
	for (k = 0; k < LW_ARRAY_SIZE(s->ns_seen); k++)
		if (s->ns_seen[k].ns == nstid && s->ns_seen[k].host &&
		    kill(s->ns_seen[k].host, 0) != 0)
			return s->ns_seen[k].host;	/* gone: the last host id it had */
	return 0;
}

int lw_sess_same_pidns(const char *proc_root, pid_t pid)
{
	char a[64], b[64], pa[128];
	ssize_t n1, n2;

	snprintf(pa, sizeof(pa), "%s/%d/ns/pid", proc_root, (int)pid);
	n1 = readlink("/proc/self/ns/pid", a, sizeof(a) - 1);
	n2 = readlink(pa, b, sizeof(b) - 1);
	if (n1 < 0 || n2 < 0)
		return 1;
	a[n1] = 0;
	b[n2] = 0;
	return strcmp(a, b) == 0;
}

/*
 * Thread states (tid -> PyThreadState*, for the BPF stack walks) are kept in the BPF tstates
 * map and, as the session knows them, in s->tst. A process has at most LW_TSTATE_QUOTA
 * entries there; a thread refused one is counted once (the thread-specific slot still finds
 * its state where the interpreter has one). A full walk of interp->threads (gen != 0) marks
 * what it saw and, when it read the whole list, drops the entries of states no longer there.
 */
static void tst_apply(struct lw_session *s, pid_t tid, uint64_t tstate, uint32_t gen)
{
	int created = 0;
	struct lw_tst *e = lw_u64map__put(s->tst, (uint64_t)tid, &created);

	if (!e)
		return;
	if (gen)
		e->gen = gen;
	if (!created && e->tstate == tstate && !e->refused)
		return;
	e->tstate = tstate;
	if (!created && !e->refused) {
		lw_bpf__set_tstate(s->bpf, tid, tstate);	/* its state changed */
		return;
	}
	if (s->tst_stored < LW_TSTATE_QUOTA && lw_bpf__set_tstate(s->bpf, tid, tstate) == 0) {
		e->refused = 0;
		s->tst_stored++;
		return;
	}
	if (created) {	/* over the quota (or the map full for every target): once a thread */
		s->tst_quota_drops++;
		lw_bpf__count_tstate_drop(s->bpf);
	}
	e->refused = 1;
}

static void tst_forget(struct lw_session *s, pid_t tid, struct lw_tst *e)
{
	if (!e->refused) {
		lw_bpf__del_tstate(s->bpf, tid);
		if (s->tst_stored)
			s->tst_stored--;
	}
	lw_u64map__del(s->tst, (uint64_t)tid, NULL);
}

static int set_tstate(void *arg, pid_t nstid, uint64_t tstate)
{
	struct lw_session *s = arg;
	pid_t tid = lw_sess_ns_to_host(s, nstid);

	if (tid > 0)
		tst_apply(s, tid, tstate, s->tst_gen);
	return 0;
}

void lw_sess_refresh_tstates(struct lw_session *s)
{
	struct lw_tst *e;
	uint64_t key;
	size_t it = 0;
	int n;

	if (!s->is_python || !s->tst)
		return;
	if (++s->tst_gen == 0)
		s->tst_gen = 1;
	s->tst_full_due = 0;
	s->last_tst_full = lw_now_mono();
	n = lw_py__threads(&s->py, &s->rd, set_tstate, s);
	if (n < 0 || n >= LW_PY_MAX_THREADS)
		return;	/* not the whole list: nothing taken for gone */
	while ((e = lw_u64map__next(s->tst, &it, &key)))
		if (e->gen != s->tst_gen)
			tst_forget(s, (pid_t)key, e);
}

/* newest first: up to the first state known as it is (every older one was seen before) */
static int new_tstate(void *arg, pid_t nstid, uint64_t tstate)
{
	struct lw_session *s = arg;
	pid_t tid = lw_sess_ns_to_host(s, nstid);
	struct lw_tst *e;

	if (tid <= 0)
		return 0;
	e = lw_u64map__get(s->tst, (uint64_t)tid);
	if (e && e->tstate == tstate)
		return 1;
	if (e) {
		/* a thread with another state: replaced, or (<= 3.11) a new one not yet started,
		 * which carries its creator's id. Only a full walk tells which: soon. */
		s->tst_full_due = 1;
		return 0;
	}
	tst_apply(s, tid, tstate, 0);
	return 0;
}

void lw_sess_new_tstates(struct lw_session *s)
{
	if (s->is_python && s->tst)
		lw_py__threads(&s->py, &s->rd, new_tstate, s);
}

/* what a thread entry owns (lw_u64map__free's value destructor) */
void lw_sess_thread_free(void *thread)
{
	struct lw_sthread *t = thread;

	free(t->alert_stack);
	t->alert_stack = NULL;
	json_object_put(t->alert_js);
	t->alert_js = NULL;
}

uint64_t lw_sess_tstate_of(struct lw_session *s, pid_t tid)
{
	struct lw_tst *e = s->tst ? lw_u64map__get(s->tst, (uint64_t)tid) : NULL;

	if (!e) {
		lw_sess_new_tstates(s);
		e = s->tst ? lw_u64map__get(s->tst, (uint64_t)tid) : NULL;
	}
	return e ? e->tstate : 0;
}

/*
 * Threads that exited leave the session's table (issue 19: a process starting and ending
 * threads grew it by ~700 bytes a thread, and every tick looked at each): those without loop
 * iterations go (the BPF side dropped their entries as they exited); loop threads stay for
 * the summary's loop statistics (at most the BPF threads quota of them). Thread states of
 * threads gone leave s->tst and the BPF map. One read of /proc/PID/task a second.
 */
static void prune_exited(struct lw_session *s)
{
	char path[200];
	struct lw_u64map *alive = NULL;
	struct lw_sthread *t;
	struct lw_tst *e;
	struct lw_loop_stats *ls;
	struct dirent *de;
	uint64_t key;
	size_t it = 0;
	DIR *d;
	int created, unknown = 0;

	snprintf(path, sizeof(path), "%s/%d/task", s->proc_root, (int)s->pid);
	d = opendir(path);
	if (!d)
		return;
	if (lw_u64map__new(1, &alive)) {
		closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10);

		if (tid > 0 && !lw_u64map__put(alive, (uint64_t)tid, &created)) {
			closedir(d);
			lw_u64map__free(alive, NULL);
			return;	/* out of memory: nothing taken for gone */
		}
		if (tid > 0 && s->tst && !lw_u64map__get(s->tst, (uint64_t)tid))
			unknown = 1;
	}
	closedir(d);
	/* a thread with no state known: one started after the attach that has reached no probe
	 * yet (asleep), or no Python thread at all. Its state is looked for now, newest first (a
	 * walk that stops at the first state known): before, only a probe on it made it known,
	 * and a thread started while the attach read the list stayed unknown (CI:
	 * test_thread_states_removed_with_their_process) */
	if (unknown)
		lw_sess_new_tstates(s);
	if (!lw_u64map__count(alive)) {	/* the process is gone or going: left to its exit */
		lw_u64map__free(alive, NULL);
		return;
	}
	ls = malloc(sizeof(*ls));
	while (ls && (t = lw_u64map__next(s->threads, &it, &key))) {
		if (lw_u64map__get(alive, key))
			continue;
		if (lw_bpf__get_loop_stats(s->bpf, t->tid, ls) == 0 && ls->iterations)
			continue;	/* a loop thread: its statistics go in the final summary */
		lw_u64map__del(s->threads, key, lw_sess_thread_free);
		s->threads_pruned++;
	}
	free(ls);
	it = 0;
	while (s->tst && (e = lw_u64map__next(s->tst, &it, &key)))
		if (!lw_u64map__get(alive, key))
			tst_forget(s, (pid_t)key, e);
	lw_u64map__free(alive, NULL);
}

void lw_sess_threads_tick(struct lw_session *s, uint64_t now)
{
	if (s->tst_full_due && now - s->last_tst_full >= LW_TST_FULL_NS)
		lw_sess_refresh_tstates(s);
	if (now - s->last_prune >= LW_PRUNE_NS) {
		s->last_prune = now;
		prune_exited(s);
	}
}

/* precise mode under uvloop: its Handle._run and TimerHandle._run, entry and return */
void lw_sess_attach_uvloop(struct lw_session *s)
{
	static const int progs[4] = { LW_HOOK_UV_HANDLE, LW_HOOK_UV_EXIT, LW_HOOK_UV_TIMER,
				      LW_HOOK_UV_EXIT };
	/* return probes first (see lw_bpf__attach_ctxrun) */
	static const int order[4] = { 1, 3, 0, 2 };
	char err[512];
	int j, i;

	if (s->uv_handles[0] >= 0)
		return;
	lw_uvloop_find(&s->py, &s->rd, s->proc_root, &s->uv);
	if (!s->uv.found)
		return;
	for (j = 0; j < 4; j++) {
		uint64_t off;

		i = order[j];
		off = i < 2 ? s->uv.handle_run_off : s->uv.timer_run_off;

		s->uv_handles[i] = lw_bpf__attach_hook(s->bpf, progs[i], s->pid, s->uv.so_host, off, 0,
						       i & 1, err, sizeof(err));
		if (s->uv_handles[i] < 0)
			lw_warn("pid %d: uvloop: %s", (int)s->pid, err);
	}
}

/* the frames of thread state tstate looked at for asyncio's _run_once; the walk's result
 * (non-zero: the read failed part of the way) */
static int learn_walk(struct lw_session *s, uint64_t tstate)
{
	struct lw_pystack *st = calloc(1, sizeof(*st));
	struct frame_info fi;
	uint32_t i;
	int r;

	if (!st)
		return -ENOMEM;
	/* a running thread's frames change under the read: the frames read before a failed
	 * read are still worth looking at */
	r = lw_py__walk(&s->py, &s->rd, tstate, st);
	for (i = 0; i < st->nframes && i < LW_MAX_PYFRAMES && !s->py.cfg.run_once_code; i++)
		if (st->frames[i].code && lw_sess_frame_info(s, &st->frames[i], &fi) == 0)
			lw_sess_maybe_learn_handle(s, &st->frames[i], &fi);
	free(st);
	return r;
}

static int learn_one(void *arg, pid_t tid, uint64_t tstate)
{
	struct lw_session *s = arg;

	learn_walk(s, tstate);
	(void)tid;
	return s->py.cfg.run_once_code ? 1 : 0;
}

void lw_sess_learn_from_threads(struct lw_session *s)
{
	lw_py__threads(&s->py, &s->rd, learn_one, s);
}

/*
 * The periodic look for _run_once (tick, while it is not found): the stacks of threads with
 * loop iterations, and of LW_LEARN_BUDGET others, taking turns (issue 19: a process of 2,400
 * threads without an asyncio loop had every stack read twice a second, 1.5 s of CPU a second).
 */
#define LW_LEARN_BUDGET 32
/* retries of a first poll's walk for _run_once, a process (2 ms each) */
#define LW_LEARN_RETRIES 32

struct learn_some {
	struct lw_session *s;
	struct lw_loop_stats *ls;
	unsigned idx, walked;
};

static int learn_some_one(void *arg, pid_t nstid, uint64_t tstate)
{
	struct learn_some *w = arg;
	struct lw_session *s = w->s;
	unsigned i = w->idx++;
	pid_t tid = lw_sess_ns_to_host(s, nstid);
	int loop = tid > 0 && lw_u64map__get(s->threads, (uint64_t)tid) &&
		   lw_bpf__get_loop_stats(s->bpf, tid, w->ls) == 0 && w->ls->iterations;

	if (loop || (i >= s->learn_next && w->walked < LW_LEARN_BUDGET)) {
		if (!loop)
			w->walked++;
		learn_walk(s, tstate);
	}
	return s->py.cfg.run_once_code ? 1 : 0;
}

void lw_sess_learn_some(struct lw_session *s)
{
	struct learn_some w = { s, malloc(sizeof(struct lw_loop_stats)), 0, 0 };
	int n;

	if (!w.ls)
		return;
	n = lw_py__threads(&s->py, &s->rd, learn_some_one, &w);
	/* the next turn starts after the last thread walked; at the end of the list, again */
	s->learn_next = n >= 0 && w.walked == LW_LEARN_BUDGET ? s->learn_next + w.walked : 0;
	free(w.ls);
}

/*
 * At a thread's first loop poll or callback: the loop is running, its stack changes while it
 * is read. A failed read is tried again a little later (3 tries, 2 ms apart), not at the next
 * periodic refresh (500 ms): a short first loop (asyncio.run of a few sleeps) would be over by
 * then, and what runs after it taken for a loop iteration (issue 20, seen on sid's 3.14).
 * Only that thread's stack is read (issue 19: every thread's, three times with two sleeps,
 * for each new thread made a process starting thousands of threads cost quadratic time); a
 * thread whose state is not known yet is left to the periodic refresh.
 */
void lw_sess_learn_at_first_poll(struct lw_session *s, pid_t tid)
{
	uint64_t ts = lw_sess_tstate_of(s, tid);
	int try;

	/* not found: again a little later (a loop being set up, a frame chain changing under
	 * the read), for the process's first LW_LEARN_RETRIES first polls only: a thread that
	 * runs no asyncio loop (one of thousands in a thread pool) then costs one walk, not two
	 * sleeps */
	for (try = 0; ts && try < 3 && !s->py.cfg.run_once_code; try++) {
		if (try) {
			if (s->learn_retries >= LW_LEARN_RETRIES)
				break;
			s->learn_retries++;
			usleep(2000);
		}
		learn_walk(s, ts);
	}
}
