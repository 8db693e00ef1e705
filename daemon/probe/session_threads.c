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
 * lines of /proc/PID/task/TID/status (host id first, the innermost namespace's last).
 */
/* the translations seen last, so that a thread that ended since (a GIL holder that finished)
 * is still named: filled by every scan */

pid_t lw_sess_ns_to_host(struct lw_session *s, pid_t nstid)
{
	char path[400], *text = NULL;
	DIR *d;
	struct dirent *de;
	pid_t host = 0;
	unsigned k;

	if (!s->other_pidns || nstid <= 0)
		return nstid;
	for (k = 0; k < LW_ARRAY_SIZE(s->ns_seen); k++)
		if (s->ns_seen[k].ns == nstid && s->ns_seen[k].host &&
		    kill(s->ns_seen[k].host, 0) != 0)
			return s->ns_seen[k].host;	/* gone: the last host id it had */
	snprintf(path, sizeof(path), "%s/%d/task", s->proc_root, (int)s->pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {	/* all of them: ns_seen learns every thread */
		long ids[8];
		int n = 0;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%s/status", s->proc_root, (int)s->pid,
			 de->d_name);
		if (lw_read_file(path, 1 << 16, &text, NULL))
			continue;
		n = lw_parse_nspid(text, ids, 8);
		if (n >= 2) {
			int known = 0;

			for (k = 0; k < LW_ARRAY_SIZE(s->ns_seen); k++)
				known |= s->ns_seen[k].host == (pid_t)ids[0];
			if (!known) {
				k = s->ns_seen_next++ % LW_ARRAY_SIZE(s->ns_seen);
				s->ns_seen[k].ns = (pid_t)ids[n - 1];
				s->ns_seen[k].host = (pid_t)ids[0];
			}
		}
		if (n >= 2 && ids[n - 1] == nstid)
			host = (pid_t)ids[0];
		free(text);
		text = NULL;
	}
	closedir(d);
	return host;
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

/* tid -> tstate for all Python threads: into our table and the BPF map */
static int set_tstate(void *arg, pid_t nstid, uint64_t tstate)
{
	struct lw_session *s = arg;
	pid_t tid = lw_sess_ns_to_host(s, nstid);
	struct lw_sthread *t;

	if (tid <= 0)
		return 0;
	t = lw_u64map__get(s->threads, (uint64_t)tid);

	if (t)
		t->tstate = tstate;
	lw_bpf__set_tstate(s->bpf, tid, tstate);
	return 0;
}

void lw_sess_refresh_tstates(struct lw_session *s)
{
	if (s->is_python)
		lw_py__threads(&s->py, &s->rd, set_tstate, s);
}

/* what a thread entry owns (lw_u64map__free's value destructor) */
void lw_sess_thread_free(void *thread)
{
	struct lw_sthread *t = thread;

	free(t->alert_stack);
	t->alert_stack = NULL;
}

uint64_t lw_sess_tstate_of(struct lw_session *s, pid_t tid)
{
	struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)tid);

	if (!t || !t->tstate)
		lw_sess_refresh_tstates(s);
	t = lw_u64map__get(s->threads, (uint64_t)tid);
	return t ? t->tstate : 0;
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

static int learn_one(void *arg, pid_t tid, uint64_t tstate)
{
	struct lw_session *s = arg;
	struct lw_pystack *st = calloc(1, sizeof(*st));
	struct frame_info fi;
	uint32_t i;

	if (!st)
		return 0;
	/* a running thread's frames change under the read: the frames read before a failed
	 * read are still worth looking at */
	lw_py__walk(&s->py, &s->rd, tstate, st);
	for (i = 0; i < st->nframes && i < LW_MAX_PYFRAMES && !s->py.cfg.run_once_code; i++)
		if (st->frames[i].code && lw_sess_frame_info(s, &st->frames[i], &fi) == 0)
			lw_sess_maybe_learn_handle(s, &st->frames[i], &fi);
	free(st);
	(void)tid;
	return s->py.cfg.run_once_code ? 1 : 0;
}

void lw_sess_learn_from_threads(struct lw_session *s)
{
	lw_py__threads(&s->py, &s->rd, learn_one, s);
}

/*
 * At a thread's first loop poll or callback: the loop is running, its stack changes while it
 * is read. A failed read is tried again a little later (3 tries, 2 ms apart), not at the next
 * periodic refresh (500 ms): a short first loop (asyncio.run of a few sleeps) would be over by
 * then, and what runs after it taken for a loop iteration (issue 20, seen on sid's 3.14).
 */
void lw_sess_learn_at_first_poll(struct lw_session *s)
{
	int try;

	for (try = 0; try < 3 && !s->py.cfg.run_once_code; try++) {
		if (try)
			usleep(2000);
		lw_sess_learn_from_threads(s);
	}
}
