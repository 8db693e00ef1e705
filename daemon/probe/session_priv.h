/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Private to probe/session*.c: the session's state and the functions its files share.
 * session.c: event handlers, the time split, the tick, lifecycle;
 * session_target.c: probing a target (sanity, runtime, describe);
 * session_ident.c: identifying a callback (from BPF, from the stack, native) and stack JSON;
 * session_summary.c: site aggregation and the summary record.
 */
#ifndef LW_SESSION_PRIV_H
#define LW_SESSION_PRIV_H

#include "probe/session.h"
#include "probe/bpfobj.h"
#include "target/fdinfo.h"
#include "record/hist.h"
#include "record/jsonrec.h"
#include "record/rectype.h"
#include "base/lw_util.h"
#include "target/elfsym.h"
#include "target/nativesym.h"
#include "probe/nstack.h"
#include "target/procmaps.h"
#include "target/pycode.h"
#include "probe/pyhooks.h"
#include "probe/v8gc.h"
#include "target/pyuvloop.h"
#include "target/pyproc.h"
#include "probe/syscalls.h"
#include "target/memread.h"
#include "target/pytasks.h"
#include "base/u64map.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SUMMARY_SITES 100

/*
 * Each process's share of the BPF tstates map (8,192 entries for every target; loopwatch
 * writes them from its walks of interp->threads): a quarter, as for the threads map
 * (bpf/lw_maps.bpf.h LW_THREAD_QUOTA). A thread refused is counted once (tstate_quota_drops);
 * its stacks are still found through the thread-specific slot where the interpreter has one.
 */
#define LW_TSTATE_QUOTA 2048

/* a thread's id in the target's pid namespace or on the host (s->ns_by_id, s->ns_by_host) */
struct lw_nsid {
	pid_t id;
	uint32_t gen;			/* the last scan of the task directory that saw it */
};

/* a thread state known to the session (s->tst) */
struct lw_tst {
	uint64_t tstate;
	uint32_t gen;			/* the last full walk that saw it */
	int refused;			/* not in the BPF map: the process had its quota */
};

/* how often exited threads are looked for in a session's thread table (ns) */
#define LW_PRUNE_NS 1000000000ull
/* how often at most a full walk of interp->threads runs for a changed thread state (ns) */
#define LW_TST_FULL_NS 200000000ull

/* a loop thread */
struct lw_sthread {
	pid_t tid;
	char comm[16];
	uint64_t tstate;
	uint64_t alerted_iter;		/* iteration start we alerted for */
	int alert_level;		/* 1: at threshold, 2: at 10x */
	/* the stack the live alert of iteration alerted_iter was named from (NULL: none): the
	 * iteration's own record falls back on it when no CPU sample fell inside it */
	struct lw_pystack *alert_stack;
	int alert_blocked;		/* alert_stack was taken asleep, not walked on CPU */
	uint64_t alert_look_ns;		/* when alert_stack was walked (precise mode's callbacks) */
	/* alert_stack's frames as the look named them (a "stack" array, owned), and whether one
	 * was left out: the iteration's own record, rendered after it ended, shows these when its
	 * stack is the same; a code object freed at the callback's end (exec'd code) reads as
	 * garbage by then, its frame left out, though it was read right while it ran */
	struct json_object *alert_js;
	int alert_js_dropped;
	/* iteration start of a stretch seen outside any loop, or in a loop's own code on CPU (a
	 * selector that never polls: a mock): no iteration, no alert, its tick dropped (issue 20) */
	uint64_t noiter;
	/* iteration start of a first look that found the thread on CPU in the loop's own code:
	 * noiter only when a later look of the same iteration finds it there again (a real
	 * selector's select() after a slow callback is such code too, for microseconds) */
	uint64_t loop_code_seen;
	int noiter_weak;	/* noiter came from the loop's own code, not from no loop at all */
	int look_retries;		/* looks of iteration alerted_iter put off: stack unreadable */
	struct lw_loop_stats prev;	/* snapshot at the last periodic summary */
	int have_prev;
	uint64_t poll_since;		/* asleep in a poll-family syscall when the probes went live */
	uint64_t pre_idle_ns;		/* and idle from then to its first return seen by BPF */
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
	uint64_t used;			/* when last updated (a sequence number): eviction order */
};

/*
 * A budget for each per-target site table (slow callback sites, blocking sites): a target with
 * ever new names cannot grow loopwatch's memory. When a table is full, the site updated least
 * recently is evicted (its counts leave the summary's rows; slow_callbacks/blocking_calls keep
 * them) and counted in the summary's sites_evicted. LW_SITE_BUDGET (tests) lowers it.
 */
#define LW_AGG_BUDGET 4096

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
	struct lw_nstack *nstk;		/* native stacks by CFI (NULL: frame pointers only) */
	int ctxrun;			/* probe handle, -1 none */
	char mode[16];
	struct lw_u64map *threads;	/* tid -> lw_sthread */
	struct lw_u64map *sites;	/* precise site -> lw_site_id */
	struct lw_u64map *slow_sites;	/* hash -> lw_agg (slow callbacks) */
	/* precise mode: BPF site key -> lw_hist of its slow callbacks counted under another site
	 * (a dispatcher's under its route, in slow_sites): taken out of the BPF site's row */
	struct lw_u64map *moved_out;
	struct lw_u64map *block_sites;	/* hash -> lw_agg */
	struct lw_session_counts counts;
	uint64_t start_mono;
	uint64_t last_summary_mono;
	uint64_t last_refresh;
	int handle_learned;
	int other_pidns;		/* the target lives in another pid namespace */
	/* another pid namespace: the threads' ids there and on the host, learnt from each
	 * thread's /proc status once (issue 19: every translation read every thread's status,
	 * quadratic for a container starting thousands of threads). ns_by_id: namespace id ->
	 * lw_nsid (host id); ns_by_host: host id -> lw_nsid (namespace id), every live thread
	 * read once */
	struct lw_u64map *ns_by_id, *ns_by_host;
	uint32_t ns_gen;		/* the task directory scan that last saw a thread */
	/* namespace thread ids of threads that ended and their host ids, so that a thread that
	 * ended since (a GIL holder that finished) is still named */
	struct { pid_t ns, host; } ns_seen[64];
	unsigned ns_seen_next;
	struct lw_pyhooks *hooks;	/* asyncio mistakes and GC */
	struct lw_uvloop uv;		/* uvloop, when loaded */
	int uv_handles[4];		/* its precise-mode probes, -1 none */
	struct lw_v8gc v8gc;		/* Node.js: V8's collections (gc_ms) */
	uint64_t last_uv_try;
	uint64_t last_hook_try;
	uint64_t aio_counts[4];		/* by enum lw_aio_kind */
	uint64_t sites_evicted;		/* site table entries evicted (LW_AGG_BUDGET) */
	/* tid -> lw_tst: the thread states this process has in the BPF tstates map (or was
	 * refused there for its quota), as the last walk of interp->threads found them */
	struct lw_u64map *tst;
	uint32_t tst_gen;		/* the full walk that last saw an entry */
	uint32_t tst_stored;		/* entries in the BPF map (at most LW_TSTATE_QUOTA) */
	uint64_t tst_quota_drops;	/* threads refused an entry for the quota (each once) */
	int tst_full_due;		/* a full walk is needed (a thread's state changed) */
	uint64_t last_tst_full;		/* when the last full walk ran */
	uint64_t last_prune;		/* when exited threads were last dropped from threads */
	uint64_t threads_pruned;	/* exited threads dropped from threads */
	unsigned learn_next;		/* lw_sess_learn_some's turn: first thread to walk */
	unsigned learn_retries;	/* lw_sess_learn_at_first_poll's retries so far */
	char runtime_why[512];
	struct lw_stuck *stuck;		/* the stuck-Task inventory (session_live.c) */
	uint64_t last_stuck;
	/* while a record of an iteration its thread's live look saw is rendered: that thread
	 * (lw_sess_add_stack shows the look's frames for the same stack); NULL otherwise */
	const struct lw_sthread *memo;
};

struct frame_info {
	const char *qualname;
	const char *file;
	int line;
	int firstlineno;
};

struct cb_ident {
	int found;
	int kind;
	char task_name[LW_STR_TASK];
	char qualname[LW_STR_QUAL];
	char file[LW_STR_FILE];
	int line;
	uint64_t task;			/* the Task it steps, 0 = none or unknown */
};

struct native_info {
	const char *phase;		/* libuv phase the stack is in, or NULL */
	int js_found;
	char js_name[LW_STR_QUAL];	/* the JS callback (perf map), "" when none */
	char js_file[LW_STR_FILE];
	int js_line;
	int unnamed_js;			/* interpreted JS frames the perf map could not name */
	char leaf[LW_STR_QUAL];		/* the innermost native frame: "symbol (module)", "" */
};

/* session.c: small helpers */
const char *lw_sess_kind_name(int kind);
void lw_sess_read_comm(const char *proc_root, pid_t pid, pid_t tid, char *buf, size_t size);
int lw_sess_ends_with(const char *s, const char *suffix);
uint64_t lw_sess_real_of(uint64_t mono);

/* session_ident.c: stacks and callback identity */
int lw_sess_frame_info(struct lw_session *s, const struct lw_pyframe *f, struct frame_info *fi);
void lw_sess_push_cfg(struct lw_session *s);
void lw_sess_maybe_learn_handle(struct lw_session *s, const struct lw_pyframe *f,
				const struct frame_info *fi);
struct json_object *lw_sess_stack_json(struct lw_session *s, const struct lw_pystack *st);
int lw_sess_stack_shows(struct lw_session *s, const struct lw_pystack *st);
void lw_sess_mark_stack(struct json_object *o, const struct lw_pystack *st);
/* frames that are right only; dropped: some frame or line could not be read or validated */
struct json_object *lw_sess_stack_json_ex(struct lw_session *s, const struct lw_pystack *st,
					  int *dropped);
/* "stack" + "stack_incomplete" (also when a frame was dropped) */
void lw_sess_add_stack(struct lw_session *s, struct json_object *o, const struct lw_pystack *st);
struct json_object *lw_sess_native_json(struct lw_session *s, const struct lw_pystack *st);
/* "mixed_stack": the native frames under the innermost Python frame, then the Python frames */
void lw_sess_add_mixed(struct json_object *o);
struct json_object *lw_sess_ident_json(const struct cb_ident *id);
void lw_sess_ident_from_bpf(struct lw_session *s, const struct lw_ident *bi, struct cb_ident *id);
void lw_sess_ident_from_stack(struct lw_session *s, const struct lw_pystack *st, struct cb_ident *id);
void lw_sess_py_site(struct lw_session *s, const struct lw_pystack *st, const struct cb_ident *id,
		     struct cb_ident *site);
void lw_sess_native_ident(struct lw_session *s, const struct lw_pystack *st, struct native_info *ni,
			  struct json_object **js_stack);
/* Node: the kept CPU stack of tid's iteration [from, to] replaced by the sample of the JS
 * function most of the iteration's samples name, when it is another's */
void lw_sess_js_vote(struct lw_session *s, uint32_t tid, uint64_t from, uint64_t to,
		     struct lw_pystack *cpu);
/* a V8 perf-map name -> function, file, line (0 when none); 0 when it is no JS frame */
int lw_sess_parse_js(const char *sym, char *name, size_t nsize, char *file, size_t fsize,
		     int *line);

/* session.c: records */
struct json_object *lw_sess_slow_callback_json(struct lw_session *s, uint32_t tid, uint64_t ts_mono,
					      uint64_t dur, int in_progress,
					      const struct cb_ident *id, const struct lw_split *sp,
					      const struct lw_pystack *stack, const char *stack_kind);
int lw_sess_outside_loop(const struct lw_session *s, const struct lw_pystack *st);
int lw_sess_loop_own_code(const struct lw_session *s, const struct lw_pystack *st);
int lw_sess_left_loop(const struct lw_session *s, const struct lw_pystack *cpu, uint64_t since);
int lw_sess_cb_young(const struct lw_session *s, const struct lw_thread *th, uint64_t now);

/* session_summary.c: the BPF side's losses (host-wide counters) as fields of record o */
void lw_sess_add_bpf_losses(const struct lw_session *s, struct json_object *o);

/* session_threads.c: threads, pid namespaces, thread states */
int lw_sess_same_pidns(const char *proc_root, pid_t pid);
pid_t lw_sess_ns_to_host(struct lw_session *s, pid_t nstid);
struct lw_sthread *lw_sess_thread_get(struct lw_session *s, pid_t tid, const char *comm);
void lw_sess_thread_free(void *thread);
uint64_t lw_sess_tstate_of(struct lw_session *s, pid_t tid);
void lw_sess_attach_uvloop(struct lw_session *s);
void lw_sess_learn_at_first_poll(struct lw_session *s, pid_t tid);
void lw_sess_learn_from_threads(struct lw_session *s);
void lw_sess_learn_some(struct lw_session *s);
void lw_sess_note_polling_threads(struct lw_session *s);
void lw_sess_refresh_tstates(struct lw_session *s);
/* the thread states started since the last walk (the head of interp->threads, up to the first
 * one known): what a new thread needs, without walking every thread again (issue 19) */
void lw_sess_new_tstates(struct lw_session *s);
/* the full walk when one is due, at most every LW_TST_FULL_NS; exited threads dropped from the
 * thread table every LW_PRUNE_NS (tick) */
void lw_sess_threads_tick(struct lw_session *s, uint64_t now);

/* session_summary.c: aggregation */
struct lw_agg *lw_sess_agg_get(struct lw_u64map *m, const char *qualname, const char *file, int line,
			       const char *syscall, const char *target, uint64_t *evicted);
struct json_object *lw_sess_agg_json(struct lw_u64map *m, int final, int blocking, size_t *omitted);

/* session_target.c: probing a target */
/* Node.js: js_names, js_lines, the flags seen and recommended, perf map, jitdump, the fixes */
void lw_sess_describe_node(struct json_object *d, const char *proc_root, pid_t pid);
struct json_object *lw_sess_describe(const struct lw_session_opts *o, pid_t pid, const char *comm,
				     int is_python, enum lw_runtime rt, const struct lw_pyinfo *py,
				     const char *why);
int lw_sess_probe(pid_t pid, const struct lw_session_opts *o, struct lw_memread *mem,
		  struct lw_pyinfo *py, int *is_python, enum lw_runtime *rt, char *why,
		  size_t whylen, char *err, size_t errlen);

#endif
