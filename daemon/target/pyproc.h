/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython in a live process: which binary holds the interpreter, its version, the struct
 * offsets for that version (checked against the process), where context_run is, the thread
 * states. See shared research python_unwind.md for where each fact comes from.
 */
#ifndef LW_PYPROC_H
#define LW_PYPROC_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>
#include "loopwatch.h"
#include "target/memread.h"

/* Per-minor-version layout (x86_64, glibc, release GIL build). */
struct lw_pylayout {
	int minor;
	/* runtime / interpreter / thread state */
	unsigned rt_interp_head;	/* _PyRuntime.interpreters.head */
	unsigned rt_tss_key;		/* _PyRuntime...autoTSSkey (Py_tss_t; _key at +4) */
	unsigned rt_main_thread;	/* _PyRuntime.main_thread, 0 = unknown */
	unsigned interp_threads_head;
	unsigned ts_next;
	unsigned ts_thread_id;		/* pthread_t */
	unsigned ts_native_id;		/* 0 = none (<= 3.10) */
	/* frames */
	unsigned ts_frame;
	unsigned cframe_cur;		/* 0xffff = no cframe */
	unsigned f_code, f_back, f_instr, f_owner, f_localsplus;
	int instr_is_ptr;
	unsigned stackref_mask;		/* tag bits of _PyStackRef frame slots (3.14+), 0 = none */
	/* objects */
	unsigned func_code, func_qualname;
	unsigned task_coro, task_name, task_context;
	unsigned coro_qualname, coro_code;
	unsigned co_filename, co_name, co_qualname, co_firstlineno, co_table;
	unsigned code_basicsize;	/* = co_code_adaptive on 3.11+ */
	unsigned str_ascii, str_compact;
	int long_tag;
	/* GIL (0 = unknown) */
	unsigned gil_from_interp;	/* 1: interp->ceval.gil pointer (3.12+), 0: in _PyRuntime */
	unsigned gil_off;		/* offset of the GIL state (runtime) or of the pointer (interp) */
	unsigned gil_size;
	unsigned gil_interval, gil_last_holder, gil_locked;
	/* GC state's "collecting" flag: runtime + off (3.8) or interp + off (3.9+) */
	unsigned gc_from_interp;
	unsigned gc_collecting;
};

/* The table entry for a minor version, or NULL */
const struct lw_pylayout *lw_pylayout_for(int minor);

struct lw_pyinfo {
	pid_t pid;
	pid_t ns_pid;			/* the same process in its own pid namespace */
	int major, minor, micro;
	char version[32];		/* "3.11.2" */
	char exe[PATH_MAX];		/* the executable, as the target sees it */
	char elf[PATH_MAX];		/* file holding the interpreter, as the target sees it */
	char elf_map[PATH_MAX];		/* the same, as /proc/PID/maps shows it to us */
	/* a path to the very inode mapped (/proc/PID/map_files/..., or a checked candidate):
	 * what loopwatch opens and attaches uprobes to, even after the file was replaced */
	char elf_host[PATH_MAX];
	int is_libpython;
	int elf_type;			/* ET_EXEC / ET_DYN */
	int has_symtab;
	uint64_t bias;			/* load bias of elf */
	uint64_t code_type;		/* &PyCode_Type in the target */
	uint64_t runtime;		/* &_PyRuntime in the target */
	/* context_run */
	uint64_t ctxrun_addr;		/* in the target */
	uint64_t ctxrun_off;		/* file offset in elf (for the uprobe) */
	char ctxrun_how[96];		/* how it was found */
	/* thread-state lookup */
	int tss_key;
	uint32_t tsd_base;		/* verified pthread specific_1stblock, 0 = not verified */
	int64_t tls_off;		/* verified fs-relative thread-local holding the thread
					 * state (3.15: no TSS key), 0 = none */
	uint64_t gilstate_fn;		/* PyGILState_GetThisThreadState in the target, 0 = none */
	unsigned pthread_tid_off;	/* offset of tid in glibc struct pthread, 0 = unknown */
	uint64_t main_tstate;
	uint64_t interp;		/* main interpreter state */
	uint64_t gil;			/* GIL state, 0 when not verified */
	/* layout in effect (validated copy of the table) */
	struct lw_pylayout lay;
	char checks[256];		/* what was cross-checked, for `check` */
	/* the BPF configuration derived from all of the above */
	struct lw_pycfg cfg;
};

/*
 * Probe pid. Returns 0, or a negative errno with a message in err that names the cause and
 * the fix:  -ESRCH no such process, -ENOEXEC not CPython, -ENOTSUP unsupported build or
 * version, -EACCES/-EPERM memory not readable, -ENOENT context_run not found.
 */
int lw_py__probe(const char *proc_root, pid_t pid, struct lw_reader *mem, struct lw_pyinfo *out,
		 char *err, size_t errlen);

/* Look again for what a starting interpreter may not have had at probe time (its thread states,
 * the TSS slot, the GIL) and refresh cfg. Returns 1 when something new was found. */
int lw_py__refresh(struct lw_pyinfo *pi, struct lw_reader *mem);

/* Fill the BPF config (out->cfg) from a probed info; thresholds are set by the caller. */
void lw_py__fill_cfg(struct lw_pyinfo *pi);

/* tid -> tstate of every Python thread, newest first (CPython puts a new thread state at the
 * head of interp->threads), at most LW_PY_MAX_THREADS of them. Calls fn for each, stops where fn
 * returns non-zero (that value returned); returns the states read or -errno. */
#define LW_PY_MAX_THREADS 4096
int lw_py__threads(const struct lw_pyinfo *pi, struct lw_reader *mem,
		   int (*fn)(void *arg, pid_t tid, uint64_t tstate), void *arg);

/* Walk the Python frames of a thread from userspace (racy while it runs; good for a thread that
 * is blocked, and for live alerts). Fills s like the BPF walker does. 0 or -errno. */
int lw_py__walk(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t tstate,
		struct lw_pystack *s);

/* Classify a callable like the BPF side does: function, method (bound), Task step/wakeup,
 * functools.partial unwrapped once, anything else by its type name. Fills kind, code, task,
 * qualname, task name. 0 or -errno. */
int lw_py__classify(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t callable,
		    struct lw_ident *id);

/* The Task behind a Task-step/wakeup callable, or 0 */
uint64_t lw_py__callable_task(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t callable);
/* A Task's name ("req-42", or "Task-7" for 3.12+ unnamed tasks). 0 or -errno. */
int lw_py__task_name(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t task, char *buf,
		     size_t size);
/* asyncio: from a live Handle._run frame (its `self` is the Handle), learn the offset of the
 * Handle._callback slot; sets cfg.handle_run_code / handle_cb_slot. 0 or -errno. */
int lw_py__learn_handle(struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t frame,
			uint64_t code);
/* Read a type's tp_name. 0 or -errno. */
int lw_py__type_name(struct lw_reader *mem, uint64_t type, char *buf, size_t size);

/* Python str object -> UTF-8 (compact str only). 0 or -errno. */
int lw_py__read_str(const struct lw_pylayout *lay, struct lw_reader *mem, uint64_t obj, char *buf,
		    size_t size);

#endif
