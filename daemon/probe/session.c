// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/session.h"
#include "probe/bpfobj.h"
#include "target/fdinfo.h"
#include "record/hist.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "target/elfsym.h"
#include "target/nativesym.h"
#include "target/procmaps.h"
#include "target/pycode.h"
#include "probe/pyhooks.h"
#include "target/pyuvloop.h"
#include "target/pyproc.h"
#include "probe/syscalls.h"
#include "target/memread.h"
#include "base/u64map.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SUMMARY_SITES 100

/* a loop thread */
struct lw_sthread {
	pid_t tid;
	char comm[16];
	uint64_t tstate;
	uint64_t alerted_iter;		/* iteration start we alerted for */
	int alert_level;		/* 1: at threshold, 2: at 10x */
	struct lw_loop_stats prev;	/* snapshot at the last periodic summary */
	int have_prev;
};

/* identity of a precise-mode site, from its LW_REC_SITE record */
struct lw_site_id {
	int kind;
	char qualname[LW_STR_QUAL];
	char file[LW_STR_FILE];
	int line;
	struct lw_hist prev;		/* snapshot at the last periodic summary */
};

/* userspace aggregate: slow callbacks (default mode) and blocking call sites */
struct lw_agg {
	char qualname[LW_STR_QUAL];
	char file[LW_STR_FILE];
	int line;
	char syscall[32];		/* blocking sites */
	char target[128];
	struct lw_hist h;
	struct lw_hist prev;
};

struct lw_session {
	struct lw_bpf *bpf;
	pid_t pid;
	char comm[16];
	char target[64];
	char proc_root[64];
	struct lw_session_opts o;
	enum lw_runtime runtime;
	int is_python;
	struct lw_pyinfo py;
	struct lw_memread *mem;
	struct lw_reader rd;
	struct lw_pycache *codes;
	struct lw_nativesym *nsym;
	int ctxrun;			/* probe handle, -1 none */
	char mode[16];
	struct lw_u64map *threads;	/* tid -> lw_sthread */
	struct lw_u64map *sites;	/* precise site -> lw_site_id */
	struct lw_u64map *slow_sites;	/* hash -> lw_agg (slow callbacks) */
	struct lw_u64map *block_sites;	/* hash -> lw_agg */
	struct lw_session_counts counts;
	uint64_t start_mono;
	uint64_t last_summary_mono;
	uint64_t last_refresh;
	int handle_learned;
	int other_pidns;		/* the target lives in another pid namespace */
	struct lw_pyhooks *hooks;	/* asyncio mistakes and GC */
	struct lw_uvloop uv;		/* uvloop, when loaded */
	int uv_handles[4];		/* its precise-mode probes, -1 none */
	uint64_t last_uv_try;
	uint64_t last_hook_try;
	uint64_t aio_counts[4];		/* by enum lw_aio_kind */
	char runtime_why[512];
};

/* ------------------------------------------------------------------ small helpers */

static const char *kind_name(int kind)
{
	switch (kind) {
	case LW_KIND_TASK:
		return "task";
	case LW_KIND_FUNCTION:
		return "function";
	case LW_KIND_METHOD:
		return "method";
	default:
		return "other";
	}
}

static void read_comm(const char *proc_root, pid_t pid, pid_t tid, char *buf, size_t size)
{
	char path[128], *text = NULL;
	size_t n = 0;

	if (tid)
		snprintf(path, sizeof(path), "%s/%d/task/%d/comm", proc_root, (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "%s/%d/comm", proc_root, (int)pid);
	buf[0] = 0;
	if (lw_read_file(path, 64, &text, &n) == 0) {
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
			text[--n] = 0;
		lw_strlcpy(buf, text, size);
	}
	free(text);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static struct lw_sthread *thread_get(struct lw_session *s, pid_t tid, const char *comm)
{
	int created = 0;
	struct lw_sthread *t = lw_u64map__put(s->threads, (uint64_t)tid, &created);

	if (t && created) {
		t->tid = tid;
		read_comm(s->proc_root, s->pid, tid, t->comm, sizeof(t->comm));
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
static struct { pid_t tgid, ns, host; } ns_seen[64];
static unsigned ns_seen_next;

static pid_t ns_to_host(struct lw_session *s, pid_t nstid)
{
	char path[400], *text = NULL;
	DIR *d;
	struct dirent *de;
	pid_t host = 0;
	unsigned k;

	if (!s->other_pidns || nstid <= 0)
		return nstid;
	for (k = 0; k < LW_ARRAY_SIZE(ns_seen); k++)
		if (ns_seen[k].tgid == s->pid && ns_seen[k].ns == nstid &&
		    kill(ns_seen[k].host, 0) != 0)
			return ns_seen[k].host;	/* gone: the last host id it had */
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

			for (k = 0; k < LW_ARRAY_SIZE(ns_seen); k++)
				known |= ns_seen[k].tgid == s->pid && ns_seen[k].host == (pid_t)ids[0];
			if (!known) {
				k = ns_seen_next++ % LW_ARRAY_SIZE(ns_seen);
				ns_seen[k].tgid = s->pid;
				ns_seen[k].ns = (pid_t)ids[n - 1];
				ns_seen[k].host = (pid_t)ids[0];
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

static int same_pidns(const char *proc_root, pid_t pid)
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
	pid_t tid = ns_to_host(s, nstid);
	struct lw_sthread *t;

	if (tid <= 0)
		return 0;
	t = lw_u64map__get(s->threads, (uint64_t)tid);

	if (t)
		t->tstate = tstate;
	lw_bpf__set_tstate(s->bpf, tid, tstate);
	return 0;
}

static void refresh_tstates(struct lw_session *s)
{
	if (s->is_python)
		lw_py__threads(&s->py, &s->rd, set_tstate, s);
}

static uint64_t tstate_of(struct lw_session *s, pid_t tid)
{
	struct lw_sthread *t = lw_u64map__get(s->threads, (uint64_t)tid);

	if (!t || !t->tstate)
		refresh_tstates(s);
	t = lw_u64map__get(s->threads, (uint64_t)tid);
	return t ? t->tstate : 0;
}

struct tid_of_ts {
	uint64_t tstate;
	pid_t tid;
};

static int find_tid(void *arg, pid_t tid, uint64_t tstate)
{
	struct tid_of_ts *q = arg;

	if (tstate == q->tstate) {
		q->tid = tid;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ stacks */

struct frame_info {
	const char *qualname;
	const char *file;
	int line;
	int firstlineno;
};

static int frame_info(struct lw_session *s, const struct lw_pyframe *f, struct frame_info *fi)
{
	const struct lw_pycode *pc;

	memset(fi, 0, sizeof(*fi));
	if (!f->code || !s->codes)
		return -ENOENT;
	pc = lw_pycache__get(s->codes, &s->rd, f->code);
	if (!pc)
		return -EFAULT;
	fi->qualname = pc->qualname;
	fi->file = pc->file;
	fi->firstlineno = pc->firstlineno;
	fi->line = lw_pycache__line(s->codes, pc, f->instr);
	return 0;
}

/* asyncio's dispatch frames (<= 3.10 code objects carry no qualname: "_run", "_run_once") */
static int is_handle_run(const struct frame_info *fi)
{
	return fi->qualname && (strcmp(fi->qualname, "Handle._run") == 0 ||
				strcmp(fi->qualname, "_run") == 0) &&
	       ends_with(fi->file, "asyncio/events.py");
}

static int is_run_once(const struct frame_info *fi)
{
	return fi->qualname && (strcmp(fi->qualname, "BaseEventLoop._run_once") == 0 ||
				strcmp(fi->qualname, "_run_once") == 0) &&
	       ends_with(fi->file, "asyncio/base_events.py");
}

static void push_cfg(struct lw_session *s)
{
	s->py.cfg.threshold_ns = s->o.threshold_ns;
	s->py.cfg.block_threshold_ns = s->o.block_threshold_ns;
	lw_bpf__set_proc(s->bpf, s->pid, &s->py.cfg);
}

/*
 * asyncio's dispatch frames, so that stacks name the Task being run: BaseEventLoop._run_once
 * (always on the loop thread's stack, idle or not) and Handle._run with its Handle's
 * _callback slot (checked against the live Handle type when a frame allows).
 */
static void maybe_learn_handle(struct lw_session *s, const struct lw_pyframe *f,
			       const struct frame_info *fi)
{
	if (!fi->qualname)
		return;
	if (!s->py.cfg.run_once_code && is_run_once(fi)) {
		s->py.cfg.run_once_code = f->code;
		push_cfg(s);
		lw_dbg("pid %d: BaseEventLoop._run_once is code 0x%llx", (int)s->pid,
		       (unsigned long long)f->code);
		return;
	}
	if (s->handle_learned || !is_handle_run(fi))
		return;
	if (lw_py__learn_handle(&s->py, &s->rd, f->frame, f->code) == 0) {
		s->handle_learned = 1;
		push_cfg(s);
		lw_dbg("pid %d: Handle._callback is at +%u", (int)s->pid, s->py.cfg.handle_cb_slot);
	}
}

static struct json_object *stack_json(struct lw_session *s, const struct lw_pystack *st)
{
	struct json_object *a = json_object_new_array();
	uint32_t i, n = st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES;

	for (i = 0; i < n; i++) {
		const struct lw_pyframe *f = &st->frames[i];
		struct json_object *o;
		struct frame_info fi;

		if (!f->code)
			continue;
		o = json_object_new_object();
		if (frame_info(s, f, &fi) == 0) {
			maybe_learn_handle(s, f, &fi);
			json_object_object_add(o, "function", json_object_new_string(fi.qualname));
			json_object_object_add(o, "file", json_object_new_string(fi.file));
			json_object_object_add(o, "line",
					       fi.line >= 0 ? json_object_new_int(fi.line) : NULL);
		} else {
			json_object_object_add(o, "function", NULL);
			json_object_object_add(o, "file", NULL);
			json_object_object_add(o, "line", NULL);
		}
		json_object_array_add(a, o);
	}
	return a;
}

/* A stack that is not whole says so: "truncated" (deeper than the frames kept: the innermost are
 * there) or "unreadable" (a frame could not be read: the target changed it under the read) */
static void mark_stack(struct json_object *o, const struct lw_pystack *st)
{
	if (!st || !(st->flags & LW_STACK_VALID))
		return;
	if (st->flags & LW_STACK_READ_ERR)
		json_object_object_add(o, "stack_incomplete", json_object_new_string("unreadable"));
	else if (st->flags & LW_STACK_TRUNCATED)
		json_object_object_add(o, "stack_incomplete", json_object_new_string("truncated"));
}

static struct json_object *native_json(struct lw_session *s, const struct lw_pystack *st)
{
	struct json_object *a = json_object_new_array();
	uint32_t i, n = st->nnative < LW_MAX_NATIVE ? st->nnative : LW_MAX_NATIVE;

	for (i = 0; i < n; i++) {
		struct lw_native_frame nf;
		struct json_object *o;

		if (!st->native[i])
			break;
		o = json_object_new_object();
		if (s->nsym && lw_nativesym__resolve(s->nsym, st->native[i], &nf) == 0) {
			json_object_object_add(o, "symbol", lw_j_str_or_null(nf.symbol));
			json_object_object_add(o, "module", lw_j_str_or_null(nf.module));
			json_object_object_add(o, "offset", json_object_new_int64((int64_t)nf.offset));
		} else {
			char addr[32];

			snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)st->native[i]);
			json_object_object_add(o, "symbol", NULL);
			json_object_object_add(o, "module", NULL);
			json_object_object_add(o, "address", json_object_new_string(addr));
		}
		json_object_array_add(a, o);
	}
	return a;
}

/* precise mode under uvloop: its Handle._run and TimerHandle._run, entry and return */
static void attach_uvloop(struct lw_session *s)
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
	if (lw_py__walk(&s->py, &s->rd, tstate, st) == 0)
		for (i = 0; i < st->nframes && i < LW_MAX_PYFRAMES && !s->py.cfg.run_once_code; i++)
			if (st->frames[i].code && frame_info(s, &st->frames[i], &fi) == 0)
				maybe_learn_handle(s, &st->frames[i], &fi);
	free(st);
	(void)tid;
	return s->py.cfg.run_once_code ? 1 : 0;
}

static void learn_from_threads(struct lw_session *s)
{
	lw_py__threads(&s->py, &s->rd, learn_one, s);
}

/* ------------------------------------------------------------------ callback identity */

struct cb_ident {
	int found;
	int kind;
	char task_name[LW_STR_TASK];
	char qualname[LW_STR_QUAL];
	char file[LW_STR_FILE];
	int line;
};

static struct json_object *ident_json(const struct cb_ident *id)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(kind_name(id->kind)));
	json_object_object_add(o, "task_name", lw_j_str_or_null(id->task_name));
	json_object_object_add(o, "qualname", lw_j_str_or_null(id->qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(id->file));
	json_object_object_add(o, "line", id->line > 0 ? json_object_new_int(id->line) : NULL);
	return o;
}

/* from an identity the BPF side read while the callback ran */
static void ident_from_bpf(struct lw_session *s, const struct lw_ident *bi, struct cb_ident *id)
{
	memset(id, 0, sizeof(*id));
	id->found = 1;
	id->kind = bi->kind == LW_KIND_UNKNOWN ? LW_KIND_OTHER : (int)bi->kind;
	if (bi->flags & LW_IDENT_TASK_NUM)
		snprintf(id->task_name, sizeof(id->task_name), "Task-%lld", (long long)bi->task_num);
	else
		lw_strlcpy(id->task_name, bi->task_name, sizeof(id->task_name));
	lw_strlcpy(id->qualname, bi->qualname, sizeof(id->qualname));
	lw_strlcpy(id->file, bi->file, sizeof(id->file));
	id->line = bi->firstlineno;
	/* a long path was cut at LW_STR_FILE: the code object, if still there, has it whole */
	if (bi->code && s->codes && strlen(bi->file) >= LW_STR_FILE - 1) {
		const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, bi->code);

		if (pc && pc->firstlineno == bi->firstlineno)
			lw_strlcpy(id->file, pc->file, sizeof(id->file));
	}
}

#define CO_COROUTINE 0x80
#define CO_ITERABLE_COROUTINE 0x100

/*
 * Default mode: name the callback from a stack. asyncio runs every callback from Handle._run
 * (asyncio/events.py); the frame just inside it is the callback (for a Task step: the Task's
 * coroutine). Without Handle._run (uvloop, plain threads) the outermost frame that is not the
 * loop's own machinery is used.
 */
static void ident_from_stack(struct lw_session *s, const struct lw_pystack *st, struct cb_ident *id)
{
	uint32_t i, n = st->nframes < LW_MAX_PYFRAMES ? st->nframes : LW_MAX_PYFRAMES;
	const struct lw_pyframe *inner_f = NULL;
	int inner = -1, hrun = -1;
	struct frame_info fi;

	memset(id, 0, sizeof(*id));
	if (!(st->flags & LW_STACK_VALID))
		return;
	for (i = 0; i < n; i++) {
		const struct lw_pyframe *f = &st->frames[i];

		if (!f->code || frame_info(s, f, &fi))
			continue;
		maybe_learn_handle(s, f, &fi);
		if (is_handle_run(&fi)) {
			hrun = (int)i;
			break;
		}
		/* no Handle._run (uvloop: its loop is C): the callback sits right on the Python
		 * frame that called into the loop (Runner.run, run_until_complete, run_forever) */
		if (inner >= 0 && (ends_with(fi.file, "asyncio/runners.py") ||
				   ends_with(fi.file, "asyncio/base_events.py"))) {
			hrun = (int)i;
			break;
		}
		inner = (int)i;
	}
	if (hrun < 0 && st->cb_frame.code) {
		/* deeper than the stack's slots: BPF found Handle._run and the callback's frame
		 * past them */
		if (!s->handle_learned && st->hrun.code &&
		    lw_py__learn_handle(&s->py, &s->rd, st->hrun.frame, st->hrun.code) == 0) {
			s->handle_learned = 1;
			push_cfg(s);
		}
		inner_f = &st->cb_frame;
	} else if (hrun < 0) {
		return;
	} else if (inner >= 0) {
		inner_f = &st->frames[inner];
	}
	/* what Handle._run's self._callback was: read with the stack, authoritative */
	if (st->cb_kind != LW_KIND_UNKNOWN && st->cb_qualname[0]) {
		id->found = 1;
		id->kind = (int)st->cb_kind;
		lw_strlcpy(id->qualname, st->cb_qualname, sizeof(id->qualname));
		if (st->task_flags & LW_IDENT_TASK_NUM)
			snprintf(id->task_name, sizeof(id->task_name), "Task-%lld",
				 (long long)st->task_num);
		else
			lw_strlcpy(id->task_name, st->task_name, sizeof(id->task_name));
		if (inner_f && frame_info(s, inner_f, &fi) == 0) {
			lw_strlcpy(id->file, fi.file, sizeof(id->file));
			id->line = fi.firstlineno;
		}
		return;
	}
	if (!inner_f)
		return;
	if (frame_info(s, inner_f, &fi))
		return;
	id->found = 1;
	lw_strlcpy(id->qualname, fi.qualname, sizeof(id->qualname));
	lw_strlcpy(id->file, fi.file, sizeof(id->file));
	id->line = fi.firstlineno;
	id->kind = LW_KIND_FUNCTION;
	{
		int32_t flags = 0;

		/* co_flags sits right after co_argcount's neighbours: read it via its member
		 * offset when known (3.11+: 48, <= 3.10: 36) */
		uint64_t off = s->py.minor >= 11 ? 48 : 36;

		if (lw_mem_read(&s->rd, inner_f->code + off, &flags, sizeof(flags)) == 0 &&
		    (flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE)))
			id->kind = LW_KIND_TASK;
	}
	if (st->task) {
		id->kind = LW_KIND_TASK;
		if (st->task_flags & LW_IDENT_TASK_NUM)
			snprintf(id->task_name, sizeof(id->task_name), "Task-%lld",
				 (long long)st->task_num);
		else
			lw_strlcpy(id->task_name, st->task_name, sizeof(id->task_name));
	} else if (id->kind == LW_KIND_FUNCTION && strchr(id->qualname, '.') &&
		   !strstr(id->qualname, "<locals>")) {
		id->kind = LW_KIND_METHOD;
	}
}

/* ------------------------------------------------------------------ native runtimes */

struct native_info {
	const char *phase;		/* libuv phase the stack is in, or NULL */
	int js_found;
	char js_name[LW_STR_QUAL];	/* the JS callback (perf map), "" when none */
	char js_file[LW_STR_FILE];
	int js_line;
};

static const struct {
	const char *sym, *phase;
} UV_PHASES[] = {
	{ "uv__run_timers", "timers" },	  { "uv__io_poll", "poll" },
	{ "uv__run_check", "check" },	  { "uv__run_idle", "idle" },
	{ "uv__run_prepare", "prepare" }, { "uv__run_pending", "pending" },
	{ "uv__run_closing_handles", "close" },
};

/* "JS:~handler /app/x.js:10:5" (V8 perf map) -> handler, /app/x.js, 10 */
static int parse_js(const char *sym, char *name, size_t nsize, char *file, size_t fsize, int *line)
{
	static const char *const kinds[] = { "JS:", "LazyCompile:", "Function:", "Script:" };
	const char *p = NULL, *sp, *c2, *c1;
	size_t i, n;

	for (i = 0; i < LW_ARRAY_SIZE(kinds) && !p; i++)
		if (strncmp(sym, kinds[i], strlen(kinds[i])) == 0)
			p = sym + strlen(kinds[i]);
	if (!p)
		return 0;
	while (*p == '*' || *p == '~' || *p == '^' || *p == '+')
		p++;
	sp = strchr(p, ' ');
	n = sp ? (size_t)(sp - p) : strlen(p);
	snprintf(name, nsize, "%.*s", (int)n, n ? p : "(anonymous)");
	if (!n)
		lw_strlcpy(name, "(anonymous)", nsize);
	file[0] = 0;
	*line = 0;
	if (sp) {
		sp++;
		/* file:line:column, the file may hold colons: take the last two */
		c2 = strrchr(sp, ':');
		c1 = c2 ? c2 - 1 : NULL;
		while (c1 && c1 > sp && *c1 != ':')
			c1--;
		if (c1 && c1 > sp && *c1 == ':') {
			snprintf(file, fsize, "%.*s", (int)(c1 - sp), sp);
			*line = atoi(c1 + 1);
		} else {
			lw_strlcpy(file, sp, fsize);
		}
	}
	return 1;
}

/*
 * A native stack (innermost first) of an event-loop thread: which libuv phase it is in (when
 * libuv's internal symbols are known), and for Node, the JS function libuv/Node called: the
 * outermost JS frame above Node's C++ dispatch (names from V8's perf map).
 */
static void native_ident(struct lw_session *s, const struct lw_pystack *st, struct native_info *ni,
			 struct json_object **js_stack)
{
	uint32_t i, n = st->nnative < LW_MAX_NATIVE ? st->nnative : LW_MAX_NATIVE;
	int last_js = -1;

	memset(ni, 0, sizeof(*ni));
	if (js_stack)
		*js_stack = json_object_new_array();
	if (!s->nsym)
		return;
	for (i = 0; i < n; i++) {
		struct lw_native_frame nf;
		char name[LW_STR_QUAL], file[LW_STR_FILE];
		int line;
		size_t k;

		if (!st->native[i] || lw_nativesym__resolve(s->nsym, st->native[i], &nf) ||
		    !nf.symbol)
			continue;
		for (k = 0; k < LW_ARRAY_SIZE(UV_PHASES); k++)
			if (strcmp(nf.symbol, UV_PHASES[k].sym) == 0 ||
			    (strncmp(nf.symbol, UV_PHASES[k].sym, strlen(UV_PHASES[k].sym)) == 0 &&
			     nf.symbol[strlen(UV_PHASES[k].sym)] == '.'))
				ni->phase = UV_PHASES[k].phase;
		if (!parse_js(nf.symbol, name, sizeof(name), file, sizeof(file), &line))
			continue;
		/* JS frames, innermost first, into the Python-shaped stack */
		if (js_stack) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "function", json_object_new_string(name));
			json_object_object_add(o, "file", lw_j_str_or_null(file));
			json_object_object_add(o, "line", line > 0 ? json_object_new_int(line) : NULL);
			json_object_array_add(*js_stack, o);
		}
		/* the callback: the outermost JS frame of the program (Node's own JS modules,
		 * "node:internal/timers" and friends, are the dispatch, not the callback) */
		if (strncmp(file, "node:", 5) == 0 && ni->js_found)
			continue;
		last_js = (int)i;
		ni->js_found = 1;
		lw_strlcpy(ni->js_name, name, sizeof(ni->js_name));
		lw_strlcpy(ni->js_file, file, sizeof(ni->js_file));
		ni->js_line = line;
	}
	(void)last_js;
}

/* ------------------------------------------------------------------ time split */

static uint64_t split_offcpu(const struct lw_split *sp)
{
	return sp->runq_ns + sp->blocked_ns + sp->gil_ns;
}

static void add_split(struct lw_session *s, struct json_object *o, const struct lw_split *sp,
		      uint64_t dur_ns)
{
	struct json_object *blocked = json_object_new_array();
	uint64_t off = split_offcpu(sp), cpu = dur_ns > off ? dur_ns - off : 0;
	uint32_t i, n = sp->nsys < LW_SPLIT_SYSCALLS ? sp->nsys : LW_SPLIT_SYSCALLS;
	int order[LW_SPLIT_SYSCALLS], k, j;

	json_object_object_add(o, "cpu_ms", lw_j_ms(cpu));
	json_object_object_add(o, "offcpu_ms", lw_j_ms(off));
	json_object_object_add(o, "runq_ms", lw_j_ms(sp->runq_ns));
	json_object_object_add(o, "gil_ms", lw_j_ms(sp->gil_ns));
	json_object_object_add(o, "gc_ms", lw_j_ms(sp->gc_ns));
	/* blocked syscalls, longest first */
	for (k = 0; k < (int)n; k++)
		order[k] = k;
	for (k = 1; k < (int)n; k++)
		for (j = k; j > 0 && sp->sys[order[j]].ns > sp->sys[order[j - 1]].ns; j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (k = 0; k < (int)n; k++) {
		const struct lw_split_sys *y = &sp->sys[order[k]];
		struct json_object *b = json_object_new_object();
		char nb[32];

		json_object_object_add(b, "syscall",
				       json_object_new_string(lw_syscall_name(y->nr, nb, sizeof(nb))));
		json_object_object_add(b, "ms", lw_j_ms(y->ns));
		json_object_object_add(b, "count", json_object_new_int64(y->count));
		json_object_array_add(blocked, b);
	}
	if (sp->other_blocked_ns) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "syscall", json_object_new_string("other"));
		json_object_object_add(b, "ms", lw_j_ms(sp->other_blocked_ns));
		json_object_object_add(b, "count", NULL);
		json_object_array_add(blocked, b);
	}
	json_object_object_add(o, "blocked", blocked);
	(void)i;
	/* the GIL: who held it during the longest wait */
	if (sp->gil_ns && sp->gil_holder) {
		struct json_object *h = json_object_new_object();
		struct tid_of_ts q = { sp->gil_holder, (pid_t)sp->gil_holder_tid };
		struct lw_pystack *hs;

		if (s->is_python && !q.tid)
			lw_py__threads(&s->py, &s->rd, find_tid, &q);
		q.tid = ns_to_host(s, q.tid);
		json_object_object_add(h, "tid", q.tid ? json_object_new_int(q.tid) : NULL);
		if (q.tid) {
			char comm[16];

			read_comm(s->proc_root, s->pid, q.tid, comm, sizeof(comm));
			json_object_object_add(h, "comm", lw_j_str_or_null(comm));
		}
		/* the holder is probably still at it: its stack now */
		hs = calloc(1, sizeof(*hs));
		if (hs && s->is_python && lw_py__walk(&s->py, &s->rd, sp->gil_holder, hs) == 0)
			json_object_object_add(h, "stack", stack_json(s, hs));
		free(hs);
		json_object_object_add(o, "gil_holder", h);
	}
}

/* ------------------------------------------------------------------ aggregation */

static struct lw_agg *agg_get(struct lw_u64map *m, const char *qualname, const char *file, int line,
			      const char *syscall, const char *target)
{
	char key[600];
	int created;
	struct lw_agg *a;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%d\x1f%s\x1f%s", qualname ? qualname : "",
		 file ? file : "", line, syscall ? syscall : "", target ? target : "");
	a = lw_u64map__put(m, lw_hash_str(key), &created);
	if (a && created) {
		lw_strlcpy(a->qualname, qualname ? qualname : "", sizeof(a->qualname));
		lw_strlcpy(a->file, file ? file : "", sizeof(a->file));
		a->line = line;
		lw_strlcpy(a->syscall, syscall ? syscall : "", sizeof(a->syscall));
		lw_strlcpy(a->target, target ? target : "", sizeof(a->target));
	}
	return a;
}

/* ------------------------------------------------------------------ records */

static uint64_t real_of(uint64_t mono)
{
	return lw_mono_to_real(mono);
}

static const struct lw_pystack *pick_stack(const struct lw_pystack *blk, const struct lw_pystack *cpu,
					   const struct lw_split *sp, uint64_t dur, const char **kind)
{
	uint64_t off = sp->blocked_ns + sp->gil_ns;
	int blk_ok = (blk->flags & LW_STACK_VALID) && (blk->nframes || blk->nnative);
	int cpu_ok = (cpu->flags & LW_STACK_VALID) && (cpu->nframes || cpu->nnative);

	if (blk_ok && (!cpu_ok || off * 2 >= dur)) {
		*kind = "blocked";
		return blk;
	}
	if (cpu_ok) {
		*kind = "cpu";
		return cpu;
	}
	*kind = NULL;
	return NULL;
}

static struct json_object *slow_callback_json(struct lw_session *s, uint32_t tid, uint64_t ts_mono,
					      uint64_t dur, int in_progress,
					      const struct cb_ident *id, const struct lw_split *sp,
					      const struct lw_pystack *stack, const char *stack_kind)
{
	struct json_object *o = lw_j_record("slow_callback", s->pid, real_of(ts_mono));

	json_object_object_add(o, "tid", json_object_new_int64(tid));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "duration_ms", lw_j_ms(dur));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "in_progress", json_object_new_boolean(in_progress));
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	json_object_object_add(o, "callback", ident_json(id));
	add_split(s, o, sp, dur);
	json_object_object_add(o, "stack", stack ? stack_json(s, stack) : json_object_new_array());
	mark_stack(o, stack);
	json_object_object_add(o, "stack_kind", lw_j_str_or_null(stack_kind));
	if (stack && stack->nnative)
		json_object_object_add(o, "native_stack", native_json(s, stack));
	return o;
}

static void count_slow(struct lw_session *s, const struct cb_ident *id, uint64_t dur)
{
	struct lw_agg *a;

	s->counts.slow_callbacks++;
	if (s->o.precise)
		return;	/* precise mode counts every callback in BPF */
	a = agg_get(s->slow_sites, id->found ? id->qualname : "<unknown>", id->file, id->line, NULL,
		    NULL);
	if (a)
		lw_hist_add(&a->h, dur);
}

static void on_callback(struct lw_session *s, const struct lw_rec_callback *r, lw_emit_fn emit,
			void *ctx)
{
	const struct lw_pystack *st;
	const char *kind = NULL;
	struct cb_ident id;

	ident_from_bpf(s, &r->ident, &id);
	st = pick_stack(&r->block_stack, &r->cpu_stack, &r->split, r->duration_ns, &kind);
	count_slow(s, &id, r->duration_ns);
	emit(ctx, slow_callback_json(s, r->hdr.tid, r->hdr.ts_ns, r->duration_ns, 0, &id, &r->split,
				     st, kind));
}

static void on_tick(struct lw_session *s, const struct lw_rec_tick *r, lw_emit_fn emit, void *ctx)
{
	struct json_object *o = lw_j_record("slow_tick", s->pid, real_of(r->hdr.ts_ns));
	const struct lw_pystack *st;
	const char *kind = NULL;
	struct cb_ident id;
	struct native_info ni = { 0 };
	struct json_object *js = NULL;
	char nb[32];

	s->counts.slow_ticks++;
	st = pick_stack(&r->block_stack, &r->cpu_stack, &r->split, r->busy_ns, &kind);
	memset(&id, 0, sizeof(id));
	if (r->flags & LW_TICK_PRECISE) {
		if (r->slowest_cb_ns && r->slowest.code && s->codes) {
			const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, r->slowest.code);

			if (pc) {
				id.found = 1;
				id.kind = (int)r->slowest.kind;
				lw_strlcpy(id.qualname, pc->qualname, sizeof(id.qualname));
				lw_strlcpy(id.file, pc->file, sizeof(id.file));
				id.line = pc->firstlineno;
			}
		}
	} else if (st && s->is_python) {
		ident_from_stack(s, st, &id);
	} else if (st) {
		native_ident(s, st, &ni, &js);
		if (ni.js_found) {
			id.found = 1;
			id.kind = LW_KIND_FUNCTION;
			lw_strlcpy(id.qualname, ni.js_name, sizeof(id.qualname));
			lw_strlcpy(id.file, ni.js_file, sizeof(id.file));
			id.line = ni.js_line;
		}
	}
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "busy_ms", lw_j_ms(r->busy_ns));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "callbacks", (r->flags & LW_TICK_PRECISE) ?
							json_object_new_int64(r->callbacks) : NULL);
	json_object_object_add(o, "poll", json_object_new_string(lw_syscall_name(r->poll_nr, nb,
										  sizeof(nb))));
	if (!s->is_python)
		json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
	if (id.found) {
		struct json_object *sl = ident_json(&id);

		json_object_object_add(sl, "duration_ms", (r->flags & LW_TICK_PRECISE) ?
								   lw_j_ms(r->slowest_cb_ns) : NULL);
		json_object_object_add(o, "slowest", sl);
	} else {
		json_object_object_add(o, "slowest", NULL);
	}
	add_split(s, o, &r->split, r->busy_ns);
	json_object_object_add(o, "stack", js ? json_object_get(js) :
					    st ? stack_json(s, st) : json_object_new_array());
	mark_stack(o, st);
	json_object_object_add(o, "stack_kind", lw_j_str_or_null(kind));
	if (st && st->nnative)
		json_object_object_add(o, "native_stack", native_json(s, st));
	/* a slow_callback record covers this iteration already (precise: its slowest callback was
	 * slow itself; default: it is named after the callback below) */
	json_object_object_add(o, "has_slow_callback",
			       json_object_new_boolean((r->flags & LW_TICK_PRECISE) ?
						       r->slowest_cb_ns >= s->o.threshold_ns :
						       id.found));
	emit(ctx, o);

	/* default mode: the busy iteration, named after the callback its stacks point at */
	if (!(r->flags & LW_TICK_PRECISE) && id.found) {
		count_slow(s, &id, r->busy_ns);
		o = slow_callback_json(s, r->hdr.tid, r->hdr.ts_ns, r->busy_ns, 0, &id, &r->split, st,
				       kind);
		json_object_object_add(o, "duration_basis", json_object_new_string("iteration"));
		if (js) {
			json_object_object_add(o, "stack", json_object_get(js));
			json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
		}
		emit(ctx, o);
	}
	json_object_put(js);
}

static void on_block(struct lw_session *s, const struct lw_rec_block *r, lw_emit_fn emit, void *ctx)
{
	struct json_object *o = lw_j_record("blocking_call", s->pid, real_of(r->hdr.ts_ns));
	char nb[32], target[256] = "";
	const char *sys = lw_syscall_name(r->syscall, nb, sizeof(nb));
	int has_fd = r->syscall != (uint32_t)-1 && lw_syscall_fd_arg0(r->syscall);
	struct cb_ident id;
	struct lw_agg *a;
	const char *top_q = NULL, *top_f = NULL;
	int top_l = 0;
	struct frame_info fi;
	uint32_t i;

	s->counts.blocking_calls++;
	if (r->syscall == (uint32_t)-1)
		sys = "page-fault-or-lock";
	/* what the kernel saw when it blocked; else what the fd is now, if still open */
	if (lw_fd_format(&r->fd, target, sizeof(target)) && has_fd && (int64_t)r->args[0] >= 0 &&
	    r->args[0] < (1u << 24))
		lw_fd_describe(s->proc_root, s->pid, (int)r->args[0], target, sizeof(target));
	if (!target[0] && r->path[0])
		lw_strlcpy(target, r->path, sizeof(target));
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "syscall", json_object_new_string(sys));
	json_object_object_add(o, "duration_ms", lw_j_ms(r->duration_ns));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.block_threshold_ns));
	json_object_object_add(o, "fd", has_fd ? json_object_new_int64((int64_t)r->args[0]) : NULL);
	json_object_object_add(o, "target", lw_j_str_or_null(target));
	if (s->is_python) {
		json_object_object_add(o, "stack", stack_json(s, &r->stack));
		mark_stack(o, &r->stack);
		ident_from_stack(s, &r->stack, &id);
	} else {
		struct native_info ni;
		struct json_object *js = NULL;

		native_ident(s, &r->stack, &ni, &js);
		json_object_object_add(o, "stack", js);
		json_object_object_add(o, "phase", lw_j_str_or_null(ni.phase));
		memset(&id, 0, sizeof(id));
		if (ni.js_found) {
			id.found = 1;
			id.kind = LW_KIND_FUNCTION;
			lw_strlcpy(id.qualname, ni.js_name, sizeof(id.qualname));
			lw_strlcpy(id.file, ni.js_file, sizeof(id.file));
			id.line = ni.js_line;
		}
	}
	json_object_object_add(o, "native_stack", native_json(s, &r->stack));
	json_object_object_add(o, "callback", id.found ? ident_json(&id) : NULL);
	emit(ctx, o);

	/* blocking site: syscall + the innermost Python frame */
	for (i = 0; i < r->stack.nframes && i < LW_MAX_PYFRAMES; i++) {
		if (r->stack.frames[i].code && frame_info(s, &r->stack.frames[i], &fi) == 0) {
			top_q = fi.qualname;
			top_f = fi.file;
			top_l = fi.line;
			break;
		}
	}
	a = agg_get(s->block_sites, top_q ? top_q : "<native>", top_f, top_l, sys, target);
	if (a)
		lw_hist_add(&a->h, r->duration_ns);
}

static const char *const AIO_TYPES[] = { NULL, "unawaited_coroutine",
					  "exception_never_retrieved", "task_destroyed_pending" };

static void on_asyncio(struct lw_session *s, const struct lw_rec_asyncio *r, lw_emit_fn emit,
		       void *ctx)
{
	struct json_object *o;
	struct cb_ident id;
	char exc[256];

	if (r->kind < 1 || r->kind > 3)
		return;
	s->aio_counts[r->kind]++;
	o = lw_j_record(AIO_TYPES[r->kind], s->pid, real_of(r->hdr.ts_ns));
	ident_from_bpf(s, &r->ident, &id);
	json_object_object_add(o, "tid", json_object_new_int64(r->hdr.tid));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	if (r->kind != LW_AIO_UNAWAITED)
		json_object_object_add(o, "task_name", lw_j_str_or_null(id.task_name));
	json_object_object_add(o, "qualname", lw_j_str_or_null(id.qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(id.file));
	json_object_object_add(o, "line", id.line > 0 ? json_object_new_int(id.line) : NULL);
	if (r->kind == LW_AIO_NEVER_RETRIEVED) {
		char t[65], m[161];

		memcpy(t, r->exc_type, 64);
		t[64] = 0;
		memcpy(m, r->exc_msg, 160);
		m[160] = 0;
		if (m[0])
			snprintf(exc, sizeof(exc), "%s: %s", t, m);
		else
			snprintf(exc, sizeof(exc), "%s", t);
		json_object_object_add(o, "exception", lw_j_str_or_null(exc));
		json_object_object_add(o, "future_kind",
				       json_object_new_string(r->flags & LW_AIO_IS_TASK ? "task" : "future"));
	}
	json_object_object_add(o, "stack", stack_json(s, &r->stack));
	mark_stack(o, &r->stack);
	if (!(r->flags & LW_AIO_FOUND))
		json_object_object_add(o, "incomplete", json_object_new_boolean(1));
	emit(ctx, o);
}

static void on_site(struct lw_session *s, const struct lw_rec_site *r)
{
	int created;
	struct lw_site_id *si = lw_u64map__put(s->sites, r->site, &created);
	struct cb_ident id;

	if (!si)
		return;
	ident_from_bpf(s, &r->ident, &id);
	si->kind = id.kind;
	lw_strlcpy(si->qualname, id.qualname, sizeof(si->qualname));
	lw_strlcpy(si->file, id.file, sizeof(si->file));
	si->line = id.line;
}

void lw_session__handle(struct lw_session *s, const struct lw_rec_hdr *h, size_t size,
			lw_emit_fn emit, void *ctx)
{
	switch (h->type) {
	case LW_REC_CALLBACK:
		on_callback(s, (const struct lw_rec_callback *)h, emit, ctx);
		break;
	case LW_REC_TICK:
		on_tick(s, (const struct lw_rec_tick *)h, emit, ctx);
		break;
	case LW_REC_BLOCK:
		on_block(s, (const struct lw_rec_block *)h, emit, ctx);
		break;
	case LW_REC_SITE:
		on_site(s, (const struct lw_rec_site *)h);
		break;
	case LW_REC_ASYNCIO:
		on_asyncio(s, (const struct lw_rec_asyncio *)h, emit, ctx);
		break;
	case LW_REC_NEWTHREAD: {
		const struct lw_rec_task *t = (const struct lw_rec_task *)h;
		char comm[17];

		memcpy(comm, t->comm, 16);
		comm[16] = 0;
		thread_get(s, (pid_t)h->tid, comm);
		refresh_tstates(s);
		break;
	}
	default:
		break;
	}
	(void)size;
}

/* ------------------------------------------------------------------ live alerts */

void lw_session__tick(struct lw_session *s, uint64_t now, lw_emit_fn emit, void *ctx)
{
	struct lw_sthread *t;
	struct lw_thread th;
	struct lw_tstacks *stk = NULL;
	size_t it = 0;

	/* an interpreter attached while it started: thread states, GIL, asyncio appear later */
	if (s->is_python && now - s->last_refresh > 500000000ull &&
	    (!s->py.tsd_base || !s->py.gil || !s->py.cfg.run_once_code)) {
		s->last_refresh = now;
		if (lw_py__refresh(&s->py, &s->rd)) {
			refresh_tstates(s);
			push_cfg(s);
		}
		if (!s->py.cfg.run_once_code)
			learn_from_threads(s);
	}
	if (s->o.precise && s->is_python && s->uv_handles[0] < 0 &&
	    now - s->last_uv_try > 1000000000ull) {
		s->last_uv_try = now;
		attach_uvloop(s);
	}
	/* asyncio may be imported after attach: hook its module when it shows up */
	if (s->hooks && !lw_pyhooks__complete(s->hooks) && now - s->last_hook_try > 1000000000ull) {
		s->last_hook_try = now;
		lw_pyhooks__update(s->hooks);
	}

	while ((t = lw_u64map__next(s->threads, &it, NULL))) {
		uint64_t busy, limit;
		struct lw_pystack *st;
		const char *kind = "cpu";
		struct cb_ident id;
		struct json_object *o;

		if (lw_bpf__get_thread(s->bpf, t->tid, &th) || !th.iter_start_ns ||
		    now <= th.iter_start_ns)
			continue;
		busy = now - th.iter_start_ns;
		if (t->alerted_iter != th.iter_start_ns) {
			t->alerted_iter = th.iter_start_ns;
			t->alert_level = 0;
		}
		limit = s->o.threshold_ns * (t->alert_level == 0 ? 1 : 10);
		if (t->alert_level >= 2 || busy < limit)
			continue;
		t->alert_level++;
		if (!stk)
			stk = calloc(1, sizeof(*stk));
		if (!stk)
			return;
		/* the stack as it stands: the one taken when it went to sleep, if it sleeps */
		st = NULL;
		if (th.off_ts && th.off_kind != LW_OFF_RUNQ && th.off_stack_ok &&
		    lw_bpf__get_stacks(s->bpf, t->tid, stk) == 0 && (stk->pending.flags & LW_STACK_VALID)) {
			st = &stk->pending;
			kind = "blocked";
		} else if (s->is_python &&
			   lw_py__walk(&s->py, &s->rd, tstate_of(s, t->tid), &stk->cpu) == 0) {
			st = &stk->cpu;
		}
		memset(&id, 0, sizeof(id));
		if (st)
			ident_from_stack(s, st, &id);
		/* the off-CPU period going on now is not in the split yet */
		if (th.off_ts && now > th.off_ts) {
			uint64_t off = now - th.off_ts, blk = 0, rq = 0;

			if (th.off_kind == LW_OFF_RUNQ) {
				rq = off;
			} else if (th.wake_ts >= th.off_ts && th.wake_ts <= now) {
				blk = th.wake_ts - th.off_ts;
				rq = now - th.wake_ts;
			} else {
				blk = off;
			}
			th.iter.runq_ns += rq;
			if (th.off_kind == LW_OFF_GIL) {
				th.iter.gil_ns += blk;
			} else if (blk) {
				uint32_t i;

				th.iter.blocked_ns += blk;
				for (i = 0; i < th.iter.nsys && i < LW_SPLIT_SYSCALLS; i++)
					if (th.iter.sys[i].nr == th.off_sys)
						break;
				if (i < LW_SPLIT_SYSCALLS) {
					if (i == th.iter.nsys) {
						th.iter.sys[i].nr = th.off_sys;
						th.iter.nsys++;
					}
					th.iter.sys[i].ns += blk;
					th.iter.sys[i].count++;
				} else {
					th.iter.other_blocked_ns += blk;
				}
			}
		}
		o = slow_callback_json(s, (uint32_t)t->tid, now, busy, 1, &id, &th.iter, st,
				       st ? kind : NULL);
		json_object_object_add(o, "duration_basis", json_object_new_string("iteration"));
		json_object_object_add(o, "alert_level", json_object_new_int(t->alert_level));
		emit(ctx, o);
	}
	free(stk);
}

/* ------------------------------------------------------------------ summary */

struct site_row {
	const char *qualname;
	const char *file;
	int line;
	const char *syscall;
	const char *target;
	struct lw_hist h;
};

static int row_cmp(const void *a, const void *b)
{
	const struct site_row *x = a, *y = b;

	return x->h.total_ns < y->h.total_ns ? 1 : x->h.total_ns > y->h.total_ns ? -1 : 0;
}

static struct json_object *row_json(const struct site_row *r, int blocking)
{
	struct json_object *o = json_object_new_object();

	if (blocking) {
		json_object_object_add(o, "syscall", lw_j_str_or_null(r->syscall));
		json_object_object_add(o, "target", lw_j_str_or_null(r->target));
	}
	json_object_object_add(o, "qualname", lw_j_str_or_null(r->qualname));
	json_object_object_add(o, "file", lw_j_str_or_null(r->file));
	json_object_object_add(o, "line", r->line > 0 ? json_object_new_int(r->line) : NULL);
	json_object_object_add(o, "count", json_object_new_int64((int64_t)r->h.count));
	json_object_object_add(o, "total_ms", lw_j_ms(r->h.total_ns));
	json_object_object_add(o, "p50_ms", lw_j_ms(lw_hist_quantile(&r->h, 0.50)));
	json_object_object_add(o, "p99_ms", lw_j_ms(lw_hist_quantile(&r->h, 0.99)));
	json_object_object_add(o, "max_ms", lw_j_ms(r->h.max_ns));
	if (!blocking) {
		struct json_object *hist = json_object_new_array();
		uint32_t i;

		/* the histogram itself: [low_ms, count] for non-empty slots */
		for (i = 0; i < LW_HIST_SLOTS; i++) {
			struct json_object *pair;

			if (!r->h.slots[i])
				continue;
			pair = json_object_new_array();
			json_object_array_add(pair, lw_j_ms(lw_hist_slot_low(i)));
			json_object_array_add(pair, json_object_new_int64(r->h.slots[i]));
			json_object_array_add(hist, pair);
		}
		json_object_object_add(o, "hist", hist);
	}
	return o;
}

struct rows {
	struct site_row *v;
	size_t n, cap;
};

static struct site_row *rows_add(struct rows *rs)
{
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 64;
		struct site_row *nv = realloc(rs->v, nc * sizeof(*nv));

		if (!nv)
			return NULL;
		rs->v = nv;
		rs->cap = nc;
	}
	memset(&rs->v[rs->n], 0, sizeof(rs->v[0]));
	return &rs->v[rs->n++];
}

struct site_walk {
	struct lw_session *s;
	struct rows *rows;
	int final;
};

static int site_cb(void *arg, uint64_t site, const struct lw_hist *h)
{
	struct site_walk *w = arg;
	struct lw_session *s = w->s;
	int created = 0;
	struct lw_site_id *si = lw_u64map__put(s->sites, site, &created);
	struct site_row *r;

	if (!si)
		return 0;
	if (created && s->codes) {
		/* the SITE record was lost: ask the code object itself */
		const struct lw_pycode *pc = lw_pycache__get(s->codes, &s->rd, site);

		if (pc) {
			lw_strlcpy(si->qualname, pc->qualname, sizeof(si->qualname));
			lw_strlcpy(si->file, pc->file, sizeof(si->file));
			si->line = pc->firstlineno;
		} else {
			snprintf(si->qualname, sizeof(si->qualname), "<site 0x%llx>",
				 (unsigned long long)site);
		}
	}
	r = rows_add(w->rows);
	if (!r)
		return -ENOMEM;
	r->qualname = si->qualname;
	r->file = si->file;
	r->line = si->line;
	if (w->final) {
		r->h = *h;
	} else {
		lw_hist_delta(&r->h, h, &si->prev);
		si->prev = *h;
	}
	return 0;
}

static void agg_rows(struct lw_u64map *m, struct rows *rows, int final, int blocking)
{
	struct lw_agg *a;
	size_t it = 0;

	while ((a = lw_u64map__next(m, &it, NULL))) {
		struct site_row *r = rows_add(rows);

		if (!r)
			return;
		r->qualname = a->qualname;
		r->file = a->file;
		r->line = a->line;
		if (blocking) {
			r->syscall = a->syscall;
			r->target = a->target;
		}
		if (final) {
			r->h = a->h;
		} else {
			lw_hist_delta(&r->h, &a->h, &a->prev);
			a->prev = a->h;
		}
	}
}

static struct json_object *rows_json(struct rows *rows, int blocking, size_t *omitted)
{
	struct json_object *a = json_object_new_array();
	size_t i, shown = 0;

	if (rows->n)
		qsort(rows->v, rows->n, sizeof(rows->v[0]), row_cmp);
	for (i = 0; i < rows->n; i++) {
		if (!rows->v[i].h.count)
			continue;
		if (shown == MAX_SUMMARY_SITES) {
			(*omitted)++;
			continue;
		}
		json_object_array_add(a, row_json(&rows->v[i], blocking));
		shown++;
	}
	return a;
}

struct json_object *lw_session__summary(struct lw_session *s, int final, uint64_t now)
{
	struct json_object *o = lw_j_record("summary", s->pid, real_of(now));
	struct json_object *util = json_object_new_object(), *loops = json_object_new_array();
	struct rows rows = { 0 }, brows = { 0 };
	struct site_walk w = { s, &rows, final };
	struct lw_bpf_counters bc;
	struct lw_sthread *t;
	struct lw_loop_stats *ls;
	size_t it = 0, omitted = 0, bomitted = 0;
	uint64_t since = final ? s->start_mono : s->last_summary_mono;

	ls = malloc(sizeof(*ls));
	json_object_object_add(o, "final", json_object_new_boolean(final));
	json_object_object_add(o, "interval_s", lw_j_num((double)(now - since) / 1e9, 3));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	/* loop threads */
	while (ls && (t = lw_u64map__next(s->threads, &it, NULL))) {
		struct lw_loop_stats d;
		struct json_object *l;
		char key[16];
		uint64_t wall;
		struct lw_hist lag;
		uint32_t i;

		if (lw_bpf__get_loop_stats(s->bpf, t->tid, ls) || !ls->iterations)
			continue;
		d = *ls;
		if (!final && t->have_prev) {
			d.iterations -= t->prev.iterations;
			d.gc_count -= t->prev.gc_count;
			d.gc_ns -= t->prev.gc_ns;
			d.busy_ns -= t->prev.busy_ns;
			d.idle_ns -= t->prev.idle_ns;
			d.callbacks -= t->prev.callbacks;
			for (i = 0; i < LW_HIST_SLOTS; i++)
				d.lag[i] -= t->prev.lag[i];
		}
		if (!final) {
			t->prev = *ls;
			t->have_prev = 1;
		}
		wall = d.busy_ns + d.idle_ns;
		snprintf(key, sizeof(key), "%d", (int)t->tid);
		json_object_object_add(util, key, lw_j_num(wall ? (double)d.busy_ns / (double)wall : 0, 4));
		l = json_object_new_object();
		json_object_object_add(l, "tid", json_object_new_int(t->tid));
		json_object_object_add(l, "comm", lw_j_str_or_null(t->comm));
		json_object_object_add(l, "utilization",
				       lw_j_num(wall ? (double)d.busy_ns / (double)wall : 0, 4));
		json_object_object_add(l, "iterations", json_object_new_int64((int64_t)d.iterations));
		json_object_object_add(l, "busy_ms", lw_j_ms(d.busy_ns));
		json_object_object_add(l, "gc_collections", json_object_new_int64((int64_t)d.gc_count));
		json_object_object_add(l, "gc_ms", lw_j_ms(d.gc_ns));
		json_object_object_add(l, "callbacks", s->o.precise ?
					json_object_new_int64((int64_t)d.callbacks) : NULL);
		json_object_object_add(l, "callbacks_per_iteration",
				       s->o.precise && d.iterations ?
					       lw_j_num((double)d.callbacks / (double)d.iterations, 2) :
					       NULL);
		memset(&lag, 0, sizeof(lag));
		for (i = 0; i < LW_HIST_SLOTS; i++) {
			lag.slots[i] = d.lag[i];
			lag.count += d.lag[i];
		}
		lag.max_ns = lag.count ? lw_hist_slot_high(LW_HIST_SLOTS - 1) : 0;
		for (i = LW_HIST_SLOTS; i-- > 0;)
			if (lag.slots[i]) {
				lag.max_ns = lw_hist_slot_high(i);
				break;
			}
		json_object_object_add(l, "lag_p50_ms", lw_j_ms(lw_hist_quantile(&lag, 0.5)));
		json_object_object_add(l, "lag_p99_ms", lw_j_ms(lw_hist_quantile(&lag, 0.99)));
		{
			struct json_object *hist = json_object_new_array();

			for (i = 0; i < LW_HIST_SLOTS; i++) {
				struct json_object *pair;

				if (!lag.slots[i])
					continue;
				pair = json_object_new_array();
				json_object_array_add(pair, lw_j_ms(lw_hist_slot_low(i)));
				json_object_array_add(pair, json_object_new_int64(lag.slots[i]));
				json_object_array_add(hist, pair);
			}
			json_object_object_add(l, "lag_hist", hist);
		}
		json_object_array_add(loops, l);
	}
	free(ls);
	json_object_object_add(o, "loop_utilization", util);
	json_object_object_add(o, "loops", loops);
	/* callback sites */
	if (s->o.precise)
		lw_bpf__for_each_site(s->bpf, s->pid, site_cb, &w);
	else
		agg_rows(s->slow_sites, &rows, final, 0);
	json_object_object_add(o, "sites_scope", json_object_new_string(s->o.precise ? "all" : "slow"));
	json_object_object_add(o, "sites", rows_json(&rows, 0, &omitted));
	json_object_object_add(o, "sites_omitted", json_object_new_int64((int64_t)omitted));
	agg_rows(s->block_sites, &brows, final, 1);
	json_object_object_add(o, "blocking_sites", rows_json(&brows, 1, &bomitted));
	if (s->is_python) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "unawaited_coroutines",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_UNAWAITED]));
		json_object_object_add(a, "exceptions_never_retrieved",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_NEVER_RETRIEVED]));
		json_object_object_add(a, "tasks_destroyed_pending",
				       json_object_new_int64((int64_t)s->aio_counts[LW_AIO_DESTROYED_PENDING]));
		json_object_object_add(o, "asyncio", a);
	}
	json_object_object_add(o, "slow_callbacks", json_object_new_int64((int64_t)s->counts.slow_callbacks));
	json_object_object_add(o, "slow_ticks", json_object_new_int64((int64_t)s->counts.slow_ticks));
	json_object_object_add(o, "blocking_calls", json_object_new_int64((int64_t)s->counts.blocking_calls));
	lw_bpf__counters(s->bpf, &bc);
	json_object_object_add(o, "lost_events", json_object_new_int64((int64_t)bc.lost_events));
	json_object_object_add(o, "read_errors",
			       json_object_new_int64((int64_t)(bc.read_errors +
							       (s->mem ? lw_memread__errors(s->mem) : 0))));
	free(rows.v);
	free(brows.v);
	if (!final)
		s->last_summary_mono = now;
	return o;
}

/* ------------------------------------------------------------------ lifecycle */

static const char *runtime_name(const struct lw_session *s)
{
	switch (s->runtime) {
	case LW_RT_PYTHON:
		return "cpython";
	case LW_RT_NODE:
		return "node";
	case LW_RT_LIBUV:
		return "libuv";
	default:
		return "generic";
	}
}

static struct json_object *probes_json(const struct lw_session *s, int sampling)
{
	struct json_object *p = json_object_new_array();
	char buf[4400];

	json_object_array_add(p, json_object_new_string("tp_btf/sys_exit:poll-family"));
	json_object_array_add(p, json_object_new_string("tp_btf/sched_switch"));
	json_object_array_add(p, json_object_new_string("tp_btf/sched_wakeup"));
	if (sampling)
		json_object_array_add(p, json_object_new_string("perf_event/cpu-clock"));
	if (s->o.precise && s->is_python && s->py.ctxrun_addr) {
		snprintf(buf, sizeof(buf), "uprobe+uretprobe:%s:context_run+0x%llx", s->py.elf,
			 (unsigned long long)s->py.ctxrun_off);
		json_object_array_add(p, json_object_new_string(buf));
	}
	if (s->uv_handles[0] >= 0) {
		snprintf(buf, sizeof(buf), "uprobe+uretprobe:uvloop Handle._run, TimerHandle._run (%s)",
			 lw_basename(s->uv.so_host));
		json_object_array_add(p, json_object_new_string(buf));
	}
	return p;
}

struct json_object *lw_session__start_record(struct lw_session *s)
{
	struct json_object *o = lw_j_record("start", s->pid, lw_now_real());

	json_object_object_add(o, "tool_version", json_object_new_string(LW_VERSION));
	json_object_object_add(o, "comm", lw_j_str_or_null(s->comm));
	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "runtime", json_object_new_string(runtime_name(s)));
	json_object_object_add(o, "runtime_version", s->is_python ?
							json_object_new_string(s->py.version) : NULL);
	json_object_object_add(o, "mode", json_object_new_string(s->mode));
	json_object_object_add(o, "threshold_ms", lw_j_ms(s->o.threshold_ns));
	json_object_object_add(o, "block_threshold_ms", lw_j_ms(s->o.block_threshold_ns));
	json_object_object_add(o, "probes", probes_json(s, lw_bpf__sampling(s->bpf)));
	if (s->hooks)
		json_object_object_add(o, "hooks", lw_pyhooks_plan_json(lw_pyhooks__plan(s->hooks)));
	return o;
}

struct json_object *lw_session__end_record(struct lw_session *s, const char *reason,
					   uint64_t lost_events)
{
	struct json_object *o = lw_j_record("end", s->pid, lw_now_real());

	if (s->target[0])
		json_object_object_add(o, "target_name", json_object_new_string(s->target));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "lost_events", json_object_new_int64((int64_t)lost_events));
	json_object_object_add(o, "duration_s",
			       lw_j_num((double)(lw_now_mono() - s->start_mono) / 1e9, 3));
	return o;
}

static const char *rt_name(enum lw_runtime rt)
{
	switch (rt) {
	case LW_RT_PYTHON:
		return "cpython";
	case LW_RT_NODE:
		return "node";
	case LW_RT_LIBUV:
		return "libuv";
	default:
		return "generic";
	}
}

static struct json_object *describe(const struct lw_session_opts *o, pid_t pid, const char *comm,
				    int is_python, enum lw_runtime rt, const struct lw_pyinfo *py,
				    const char *why)
{
	struct json_object *d = json_object_new_object();
	char buf[256];

	json_object_object_add(d, "pid", json_object_new_int(pid));
	/* the same process as it knows itself (a container's pid namespace; = pid otherwise) */
	json_object_object_add(d, "pid_in_namespace",
			       json_object_new_int(lw_ns_pid(o->proc_root ? o->proc_root : "/proc",
							     pid)));
	json_object_object_add(d, "comm", lw_j_str_or_null(comm));
	json_object_object_add(d, "runtime", json_object_new_string(rt_name(rt)));
	json_object_object_add(d, "runtime_why", lw_j_str_or_null(why));
	if (is_python) {
		json_object_object_add(d, "runtime_version", json_object_new_string(py->version));
		json_object_object_add(d, "executable", json_object_new_string(py->exe));
		json_object_object_add(d, "interpreter_elf", json_object_new_string(py->elf));
		json_object_object_add(d, "stripped", json_object_new_boolean(!py->has_symtab));
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)py->runtime);
		json_object_object_add(d, "pyruntime", json_object_new_string(buf));
		if (py->ctxrun_addr) {
			snprintf(buf, sizeof(buf), "0x%llx (file offset 0x%llx)",
				 (unsigned long long)py->ctxrun_addr, (unsigned long long)py->ctxrun_off);
			json_object_object_add(d, "context_run", json_object_new_string(buf));
			json_object_object_add(d, "context_run_how", json_object_new_string(py->ctxrun_how));
		} else {
			json_object_object_add(d, "context_run", NULL);
			json_object_object_add(d, "context_run_how",
					       json_object_new_string("not found: precise mode unavailable"));
		}
		json_object_object_add(d, "thread_state_lookup",
				       json_object_new_string(py->tsd_base ?
						"pthread TSS slot (verified) + userspace tid map" :
						"userspace tid map"));
		json_object_object_add(d, "gil", py->gil ? json_object_new_string("found") :
							   json_object_new_string("not found: GIL waits count as blocked"));
		json_object_object_add(d, "checks", json_object_new_string(py->checks));
		{
			struct lw_uvloop uv;
			struct lw_memread *m = NULL;

			if (lw_memread__open(pid, &m) == 0) {
				struct lw_reader rd = lw_memread__reader(m);

				lw_uvloop_find(py, &rd, o->proc_root ? o->proc_root : "/proc", &uv);
				json_object_object_add(d, "event_loop", json_object_new_string(
							uv.loaded ? "uvloop" : "asyncio"));
				if (uv.loaded)
					json_object_object_add(d, "uvloop", json_object_new_string(uv.how));
				lw_memread__close(m);
			}
		}
		{
			struct lw_pyhook_plan *plan = calloc(1, sizeof(*plan));

			if (plan) {
				lw_pyhooks_plan(py, o->proc_root ? o->proc_root : "/proc", plan);
				json_object_object_add(d, "hooks", lw_pyhooks_plan_json(plan));
				free(plan);
			}
		}
	}
	json_object_object_add(d, "mode", json_object_new_string(o->precise ? "precise" : "default"));
	return d;
}

#define PF_KTHREAD 0x00200000

/* Zombies and kernel threads have no memory to read: say so instead of "not Python". */
static int proc_sanity(const char *root, pid_t pid, char *err, size_t errlen)
{
	char path[128], *text = NULL, state = 0;
	unsigned long flags = 0;
	int r = 0;

	snprintf(path, sizeof(path), "%s/%d/stat", root, (int)pid);
	if (lw_read_file(path, 4096, &text, NULL)) {
		snprintf(err, errlen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	if (lw_parse_proc_stat(text, &state, &flags) == 0) {
		if (state == 'Z' || state == 'X') {
			snprintf(err, errlen,
				 "pid %d is a zombie (it exited and its parent has not reaped it yet): "
				 "there is nothing left to trace",
				 (int)pid);
			r = -ESRCH;
		} else if (flags & PF_KTHREAD) {
			snprintf(err, errlen,
				 "pid %d is a kernel thread: loopwatch traces user processes (asyncio, "
				 "Node.js, event loops); pick the pid of one with pgrep",
				 (int)pid);
			r = -EINVAL;
		}
	}
	free(text);
	return r;
}

/*
 * Not CPython: Node.js (its binary, or a libnode it maps), a libuv program (a mapped libuv or
 * uv_run in the executable), or any poll loop. Says why in `why`.
 */
static void native_runtime(const char *root, pid_t pid, enum lw_runtime *rt, char *why,
			   size_t whylen)
{
	char path[128], exe[4096], host[4300];
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	uint64_t v;
	ssize_t n;
	int has_uv = 0, has_uv_internal = 0;

	*rt = LW_RT_GENERIC;
	snprintf(why, whylen, "not CPython, Node.js or libuv: generic poll-loop tracking");
	snprintf(path, sizeof(path), "%s/%d/exe", root, (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	if (lw_maps__load(root, pid, &maps) == 0) {
		m = lw_maps__find_lib(maps, "libnode.so");
		if (m) {
			*rt = LW_RT_NODE;
			snprintf(why, whylen, "maps %s (Node.js)", m->path);
		}
		if (lw_maps__find_lib(maps, "libuv.so"))
			has_uv = 1;
		lw_maps__free(maps);
	}
	snprintf(host, sizeof(host), "%s/%d/root%s", root, (int)pid, exe);
	if (lw_elf__open(host, &e) == 0) {
		if (lw_elf__find_symbol(e, "napi_module_register", &v, NULL) == 0 && *rt != LW_RT_NODE) {
			*rt = LW_RT_NODE;
			snprintf(why, whylen, "%s exports the Node-API (Node.js)", exe);
		}
		if (lw_elf__find_symbol(e, "uv_run", &v, NULL) == 0)
			has_uv = 1;
		if (lw_elf__find_symbol(e, "uv__run_timers", &v, NULL) == 0)
			has_uv_internal = 1;
		lw_elf__close(e);
	}
	if (*rt == LW_RT_NODE) {
		size_t l = strlen(why);

		snprintf(why + l, whylen - l, "%s",
			 has_uv_internal ? "; libuv phases from its symbols (uv__run_timers ...)" :
					   "; libuv is shared or stripped: no phase names");
		return;
	}
	if (has_uv) {
		*rt = LW_RT_LIBUV;
		snprintf(why, whylen, "%s", has_uv_internal ?
			 "a libuv program with libuv's internal symbols: phases named" :
			 "a libuv program; the shared libuv exports only uv_* (no uv__run_*): phases "
			 "cannot be named, generic tier with native stacks");
	}
}

static int probe(pid_t pid, const struct lw_session_opts *o, struct lw_memread *mem,
		 struct lw_pyinfo *py, int *is_python, enum lw_runtime *rt, char *why,
		 size_t whylen, char *err, size_t errlen)
{
	struct lw_reader rd = lw_memread__reader(mem);
	const char *root = o->proc_root ? o->proc_root : "/proc";
	char path[128];
	int r;

	*is_python = 0;
	snprintf(path, sizeof(path), "%s/%d", root, (int)pid);
	if (access(path, F_OK)) {
		snprintf(err, errlen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	r = proc_sanity(root, pid, err, errlen);
	if (r)
		return r;
	*rt = LW_RT_GENERIC;
	if (o->runtime == LW_RT_NODE || o->runtime == LW_RT_LIBUV) {
		if (o->precise) {
			snprintf(err, errlen,
				 "--precise is for CPython (context_run/uvloop probes); for %s the default "
				 "mode gives iterations, libuv phases, blocking calls and JS names",
				 o->runtime == LW_RT_NODE ? "Node.js" : "libuv");
			return -ENOTSUP;
		}
		native_runtime(root, pid, rt, why, whylen);
		if (*rt != o->runtime && !(o->runtime == LW_RT_LIBUV && *rt == LW_RT_NODE)) {
			snprintf(err, errlen, "--runtime %s: pid %d does not look like it (%s); use "
				 "--runtime auto or generic",
				 o->runtime == LW_RT_NODE ? "node" : "libuv", (int)pid, why);
			return -ENOEXEC;
		}
		*rt = o->runtime;
		return 0;
	}
	if (o->runtime == LW_RT_GENERIC) {
		snprintf(why, whylen, "forced by --runtime generic");
		return 0;
	}
	r = lw_py__probe(root, pid, &rd, py, err, errlen);
	if (r == 0) {
		*is_python = 1;
		*rt = LW_RT_PYTHON;
		snprintf(why, whylen, "%s defines _PyRuntime (CPython %s)", py->elf, py->version);
		if (o->precise && !py->ctxrun_addr) {
			snprintf(err, errlen,
				 "context_run not found in %s: no .symtab and the PyContext_Type lookup "
				 "failed; precise mode is unavailable here, drop --precise to use the "
				 "default mode",
				 py->elf);
			return -ENOENT;
		}
		return 0;
	}
	if (r == -ENOEXEC && o->runtime == LW_RT_AUTO) {
		/* not Python: Node, libuv or any poll loop */
		native_runtime(root, pid, rt, why, whylen);
		err[0] = 0;
		if (o->precise) {
			snprintf(err, errlen,
				 "--precise needs a CPython process; pid %d is not one (no _PyRuntime); "
				 "drop --precise to watch its loop in the default mode",
				 (int)pid);
			return -ENOTSUP;
		}
		return 0;
	}
	return r;
}

int lw_session__probe(pid_t pid, const struct lw_session_opts *o, struct json_object **out,
		      char *err, size_t errlen)
{
	struct lw_memread *mem = NULL;
	struct lw_pyinfo *py = calloc(1, sizeof(*py));
	char why[4608] = "", comm[16];
	enum lw_runtime rt = LW_RT_GENERIC;
	int is_python, r;

	if (!py)
		return -ENOMEM;
	r = lw_memread__open(pid, &mem);
	if (r)
		goto out;
	r = probe(pid, o, mem, py, &is_python, &rt, why, sizeof(why), err, errlen);
	if (r)
		goto out;
	read_comm(o->proc_root ? o->proc_root : "/proc", pid, 0, comm, sizeof(comm));
	*out = describe(o, pid, comm, is_python, rt, py, why);
out:
	lw_memread__close(mem);
	free(py);
	return r;
}

struct json_object *lw_session__describe(struct lw_session *s)
{
	return describe(&s->o, s->pid, s->comm, s->is_python, s->runtime, &s->py, s->runtime_why);
}

int lw_session__new(struct lw_bpf *b, pid_t pid, const struct lw_session_opts *o,
		    struct lw_session **out, char *err, size_t errlen)
{
	struct lw_session *s = calloc(1, sizeof(*s));
	char why[4608];
	int r;

	if (!s)
		return -ENOMEM;
	s->bpf = b;
	s->pid = pid;
	s->o = *o;
	s->ctxrun = -1;
	s->uv_handles[0] = s->uv_handles[1] = s->uv_handles[2] = s->uv_handles[3] = -1;
	lw_strlcpy(s->proc_root, o->proc_root ? o->proc_root : "/proc", sizeof(s->proc_root));
	s->o.proc_root = s->proc_root;
	s->o.target_name = NULL;
	if (o->target_name) {
		lw_strlcpy(s->target, o->target_name, sizeof(s->target));
		s->o.target_name = s->target;
	}
	s->start_mono = s->last_summary_mono = lw_now_mono();
	if (lw_u64map__new(sizeof(struct lw_sthread), &s->threads) ||
	    lw_u64map__new(sizeof(struct lw_site_id), &s->sites) ||
	    lw_u64map__new(sizeof(struct lw_agg), &s->slow_sites) ||
	    lw_u64map__new(sizeof(struct lw_agg), &s->block_sites)) {
		r = -ENOMEM;
		goto fail;
	}
	r = lw_memread__open(pid, &s->mem);
	if (r)
		goto fail;
	s->rd = lw_memread__reader(s->mem);
	r = probe(pid, o, s->mem, &s->py, &s->is_python, &s->runtime, why, sizeof(why), err, errlen);
	if (r)
		goto fail;
	read_comm(s->proc_root, pid, 0, s->comm, sizeof(s->comm));
	s->other_pidns = !same_pidns(s->proc_root, pid);
	lw_strlcpy(s->runtime_why, why, sizeof(s->runtime_why));
	lw_nativesym__new(s->proc_root, pid, &s->nsym);
	if (s->is_python) {
		r = lw_pycache__new(&s->py.lay, s->py.minor, &s->codes);
		if (r)
			goto fail;
		s->py.cfg.flags |= LW_PROC_STACKS | LW_PROC_NATIVE;
	} else {
		memset(&s->py.cfg, 0, sizeof(s->py.cfg));
		s->py.cfg.flags = LW_PROC_STACKS | LW_PROC_NATIVE;
		s->py.cfg.tss_key = -1;
	}
	s->py.cfg.threshold_ns = o->threshold_ns;
	s->py.cfg.block_threshold_ns = o->block_threshold_ns;
	if (o->precise && s->is_python)
		s->py.cfg.flags |= LW_PROC_PRECISE;
	lw_strlcpy(s->mode, o->precise ? "precise" : "default", sizeof(s->mode));
	/* tid -> tstate before anything fires; find asyncio's _run_once on the loop threads */
	if (s->is_python) {
		refresh_tstates(s);
		learn_from_threads(s);
	}
	r = lw_bpf__set_proc(b, pid, &s->py.cfg);
	if (r) {
		snprintf(err, errlen, "cannot configure the BPF maps for pid %d: %s", (int)pid,
			 strerror(-r));
		goto fail;
	}
	if (s->is_python && !o->no_hooks)
		lw_pyhooks__new(b, &s->py, s->proc_root, &s->hooks);
	if (o->precise && s->is_python) {
		r = lw_bpf__attach_ctxrun(b, pid, s->py.elf_host, s->py.ctxrun_off, err, errlen);
		if (r < 0) {
			lw_bpf__forget_proc(b, pid);
			goto fail;
		}
		s->ctxrun = r;
		attach_uvloop(s);
	}
	*out = s;
	return 0;
fail:
	lw_session__free(s);
	return r;
}

void lw_session__free(struct lw_session *s)
{
	if (!s)
		return;
	lw_pyhooks__free(s->hooks);
	if (s->bpf) {
		int i;

		for (i = 0; i < 4; i++)
			if (s->uv_handles[i] >= 0)
				lw_bpf__detach_hook(s->bpf, s->uv_handles[i]);
		if (s->ctxrun >= 0)
			lw_bpf__detach(s->bpf, s->ctxrun);
		if (s->threads)
			lw_bpf__forget_proc(s->bpf, s->pid);
	}
	lw_pycache__free(s->codes);
	lw_nativesym__free(s->nsym);
	lw_memread__close(s->mem);
	lw_u64map__free(s->threads, NULL);
	lw_u64map__free(s->sites, NULL);
	lw_u64map__free(s->slow_sites, NULL);
	lw_u64map__free(s->block_sites, NULL);
	free(s);
}

pid_t lw_session__pid(const struct lw_session *s)
{
	return s->pid;
}

const struct lw_session_opts *lw_session__opts(const struct lw_session *s)
{
	return &s->o;
}

const char *lw_session__comm(const struct lw_session *s)
{
	return s->comm;
}

const char *lw_session__target(const struct lw_session *s)
{
	return s->target;
}

void lw_session__counts(const struct lw_session *s, struct lw_session_counts *out)
{
	*out = s->counts;
}
