/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The asyncio Tasks of a live CPython process (3.8-3.15), read from outside: where asyncio keeps
 * them (asyncio.tasks._all_tasks, or _scheduled_tasks and _eager_tasks from 3.12, per-thread
 * linked lists of C Tasks from 3.14), each Task's
 * state, name, coroutine, its await chain (coroutine frames, innermost first, file:line) and the
 * future it waits on, and the await graph (which Task awaits which: directly, through gather(),
 * a TaskGroup or wait_for()). Every read is bounded and allowed to fail; nothing is written and
 * the target is not stopped: a Task that changes under the read is skipped and counted.
 */
#ifndef LW_PYTASKS_H
#define LW_PYTASKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/memread.h"
#include "target/pyproc.h"

#define LW_TASK_MAX_FRAMES 32
#define LW_TASK_MAX_AWAITERS 8
#define LW_TASKS_MAX 200000

/* Per-minor-version layout of what the Task reader needs beyond struct lw_pylayout */
struct lw_tasklayout {
	int minor;
	unsigned interp_modules;	/* PyInterpreterState.modules / .imports.modules */
	unsigned ht_cached_keys;	/* PyHeapTypeObject.ht_cached_keys */
	unsigned func_closure_rel;	/* PyFunctionObject.func_closure - func_code */
	unsigned fut_state;		/* int: 0 pending, 1 cancelled, 2 finished */
	unsigned task_waiter;		/* task_fut_waiter; coro, name follow (pyoffsets) */
	unsigned must_cancel;		/* int, or a bit field byte (must_cancel_bit) */
	int must_cancel_bit;		/* -1: an int */
	unsigned num_cancels;		/* task_num_cancels_requested, 0 = none (<= 3.10) */
	/* coroutine -> frame */
	unsigned gen_frame;		/* 3.8-3.10: gi_frame pointer; 3.11+: the frame inline */
	int gen_frame_inline;
	unsigned gen_frame_state;	/* 3.11+: int8 gi_frame_state */
	int suspended_min, suspended_max;	/* frame states of a suspended generator */
	/* the value stack of a suspended frame, for what it awaits (yield from) */
	unsigned f_stacktop;		/* 3.8/3.9: PyObject **f_stacktop */
	unsigned f_valuestack, f_stackdepth, f_state;	/* 3.10 */
	unsigned if_stacktop;		/* 3.11-3.13: int stacktop (in localsplus slots);
					 * 3.14+: _PyStackRef *stackpointer (if_stackptr) */
	int if_stackptr;
	unsigned yf_depth;		/* 3.14+: the awaited object is stackpointer[-yf_depth] */
	/* 3.14+: C Tasks live in per-thread linked lists (struct llist_node task_node), the
	 * running loop and Task in the thread state, and each Future names its awaiters
	 * (fut_awaited_by: one object, or a set when fut_awaited_by_is_set). _asyncio's
	 * AsyncioDebug section gives these for the build at hand (lw_pytasks__debug_offsets). */
	unsigned task_node;		/* 0: no lists (<= 3.13) */
	unsigned ts_tasks_head, ts_running_loop, ts_running_task;
	unsigned interp_tasks_head;	/* Tasks of threads that have exited */
	unsigned fut_awaited_by, fut_awaited_by_is_set;
};

const struct lw_tasklayout *lw_tasklayout_for(int minor);

/*
 * 3.14+: the offsets the process's own _asyncio exports for debuggers (the AsyncioDebug section
 * of the _asyncio extension, or of the interpreter when it is built in), read from the mapped
 * file and checked against the table: *out = the table's layout for pi->minor with them in.
 * 0; -ENOENT when _asyncio is not loaded or has no such section (out keeps the table's values);
 * -errno with err naming the cause. how says where they came from.
 */
int lw_pytasks__debug_offsets(const char *proc_root, const struct lw_pyinfo *pi,
			      struct lw_tasklayout *out, char *how, size_t howlen);
/* The section's bytes -> out (which holds the table's layout): 0 or -EINVAL (not used) */
int lw_pytasks__parse_debug(const void *buf, size_t len, const struct lw_pyinfo *pi,
			    struct lw_tasklayout *out, char *how, size_t howlen);

enum lw_task_state {
	LW_TASK_PENDING,
	LW_TASK_RUNNING,	/* the loop's current task (_current_tasks) */
	LW_TASK_CANCELLING,	/* cancel() requested, not yet done */
	LW_TASK_DONE,
};

struct lw_task_frame {
	const char *qualname;	/* never NULL; the strings belong to the lw_tasks */
	const char *file;
	int line;		/* -1 unknown */
};

struct lw_task_awaiter {
	uint64_t task;		/* the awaiting Task */
	char via[16];		/* "await", "gather", "taskgroup", "wait_for", "wait", "callback" */
};

struct lw_task {
	uint64_t addr;
	uint64_t loop;
	pid_t tid;		/* the loop's thread, 0 = unknown */
	int state;		/* enum lw_task_state */
	int eager;		/* found in _eager_tasks (3.12+) */
	char name[128];
	char coro[128];		/* the coroutine's qualname */
	unsigned nframes;
	int truncated;		/* deeper than LW_TASK_MAX_FRAMES */
	int deadlock;		/* on a cycle of Tasks awaiting each other */
	struct lw_task_frame *frames;	/* nframes of them, innermost first */
	/* what it waits on: fut_waiter, and what the innermost frame tells about it */
	uint64_t waiter;	/* the Future/Task it waits on, 0 = none */
	char awaits_kind[16];	/* task, gather, future, sleep, lock, event, queue, semaphore,
				 * condition, taskgroup, wait_for, wait, barrier, "" = none */
	char awaits[160];	/* e.g. "Lock 0x7f.. (Lock.acquire)", "Task req-3" */
	unsigned nawaiters;
	struct lw_task_awaiter awaiters[LW_TASK_MAX_AWAITERS];
	/* internal: raw links for the graph */
	uint64_t cb_futs[8];	/* futures whose waiters await this task (wait_for, wait) */
	const char *cb_via[8];	/* how: "wait_for", "wait", "callback" */
	uint64_t cb_parents[4];	/* TaskGroup parent tasks */
	unsigned ncb_futs, ncb_parents;
};

struct lw_task_loop {
	uint64_t addr;
	char type[64];
	pid_t tid;
};

struct lw_tasks {
	struct lw_task *v;
	size_t n, cap;
	int sorted;		/* v is sorted by addr (lw_tasks__find searches) */
	struct lw_task_loop loops[16];
	size_t nloops;
	size_t skipped;		/* changed or unreadable during the read */
	size_t deadlocked;	/* Tasks on await cycles */
	size_t done;		/* finished Tasks still in the set (not listed) */
	size_t not_c_tasks;	/* pure-Python Tasks (not read) */
	char source[96];	/* where they were found */
	struct lw_u64map *strings;	/* frame qualnames and files, each kept once */
};

/*
 * Snapshot every Task of pi's main interpreter. 0, or -errno with err naming cause and fix
 * (-ENOENT: asyncio not imported; -ENOTSUP: this version's Task layout is unknown).
 */
int lw_pytasks__snapshot(const struct lw_pyinfo *pi, struct lw_reader *mem, struct lw_tasks *out,
			 char *err, size_t errlen);
/* The same with a layout (from lw_pytasks__debug_offsets); NULL = the table's */
int lw_pytasks__snapshot_lay(const struct lw_pyinfo *pi, const struct lw_tasklayout *lay,
			     struct lw_reader *mem, struct lw_tasks *out, char *err, size_t errlen);
void lw_pytasks__free(struct lw_tasks *t);

/*
 * Who awaits one Task, and who awaits that one, up to max links (the await chain of a slow
 * callback's Task), read without a snapshot: from each Task's done callbacks (the awaiting
 * Task's wakeup, gather's outer future, wait_for's and wait()'s waiter, a TaskGroup's parent)
 * and, from 3.14, fut_awaited_by. A Task done by now has none. Returns the number of links.
 */
struct lw_task_link {
	uint64_t task;
	char name[128];
	char coro[128];
	char via[16];		/* "await", "gather", "taskgroup", "wait_for", "wait" */
};
size_t lw_pytasks__await_chain(const struct lw_pyinfo *pi, const struct lw_tasklayout *lay,
			       struct lw_reader *mem, uint64_t task, struct lw_task_link *out,
			       size_t max);

/*
 * Stuck Tasks across periodic snapshots (the live modes' inventory): feed each snapshot taken
 * at now_ns; out gets the Tasks pending at the same await (innermost frame and line, awaited
 * object) for at least threshold_ns, each once per such wait (t points into that snapshot;
 * t->deadlock tells a Task on an await cycle). A Task that moves on, or runs, starts again;
 * Tasks gone from the snapshot are forgotten. Returns how many (<= max) or -ENOMEM.
 */
struct lw_stuck;
struct lw_stuck_task {
	uint64_t task;
	uint64_t pending_ns;	/* at that await for at least this long */
	const struct lw_task *t;
};
int lw_stuck__new(struct lw_stuck **out);
void lw_stuck__free(struct lw_stuck *s);
int lw_stuck__update(struct lw_stuck *s, const struct lw_tasks *t, uint64_t now_ns,
		     uint64_t threshold_ns, struct lw_stuck_task *out, size_t max);

const char *lw_task_state_name(int state);
/* index of the Task at addr in t, or -1 */
long lw_tasks__find(const struct lw_tasks *t, uint64_t addr);

/* Object readers (also pyuvloop.c's, and the tests'): all bounded, all allowed to fail. */
/* Calls fn(arg, key, value) for each live entry of a dict (combined or split). Returns the
 * number of entries seen or -errno. At most max entries. */
int lw_pyobj__dict_items(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t dict,
			 size_t max, int (*fn)(void *arg, uint64_t key, uint64_t value), void *arg);
/* d[key] for a str key. 0 or -ENOENT / -EFAULT. */
int lw_pyobj__dict_get(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t dict,
		       const char *key, uint64_t *value);
/* Calls fn(arg, key) for each key of a set (dummies skipped). Count or -errno. */
int lw_pyobj__set_items(struct lw_reader *mem, uint64_t set, size_t max,
			int (*fn)(void *arg, uint64_t key), void *arg);
/* An instance attribute from its __dict__ (dict offset, managed dict or inline values).
 * 0 or -ENOENT / -EFAULT. */
int lw_pyobj__attr(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t obj,
		   const char *name, uint64_t *value);
/* A small int (up to 62 bits) -> v. 0 or -errno. */
int lw_pyobj__long(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t obj, int64_t *v);

#endif
