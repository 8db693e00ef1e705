/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record ABI shared by the BPF programs (bpf/loopwatch.bpf.c) and userspace (daemon/).
 *
 * Every record sent over the ring buffer starts with struct lw_rec_hdr: a type tag first,
 * then the record's size in bytes. Only fixed-width fields, explicit padding, no bool.
 * Bump LW_ABI_VERSION whenever a layout below changes.
 */
#ifndef LOOPWATCH_H
#define LOOPWATCH_H

#define LW_ABI_VERSION 11

#define LW_MAX_PYFRAMES 64	/* Python frame slots per stack (shims included) */
#define LW_MAX_NATIVE 48	/* native (user) return addresses kept per stack */
#define LW_DEEP_SCAN 192	/* frames past the slots searched for Handle._run */
#define LW_STR_TASK 64		/* task name */
#define LW_STR_QUAL 128		/* qualname / type name */
#define LW_STR_FILE 256		/* code object filename */
#define LW_STR_PATH 128		/* path argument of a blocking syscall */
#define LW_SPLIT_SYSCALLS 6	/* distinct syscalls kept in a time split */
#define LW_HIST_SUB 4		/* sub-buckets per power of two */
#define LW_HIST_SLOTS 128	/* 32 powers of two of microseconds x LW_HIST_SUB */

/* Record types (lw_rec_hdr.type) */
enum lw_rec_type {
	LW_REC_CALLBACK = 1,	/* a callback (precise mode) ran >= threshold */
	LW_REC_TICK = 2,	/* a loop iteration was busy >= threshold */
	LW_REC_BLOCK = 3,	/* a syscall inside a busy iteration blocked >= block threshold */
	LW_REC_SITE = 4,	/* first sighting of a callback site (precise mode) */
	LW_REC_NEWTHREAD = 5,	/* a traced process has a thread not seen before */
	LW_REC_EXIT = 6,	/* a traced process exited */
	LW_REC_EXEC = 7,	/* some process exec'd (daemon discovery) */
	LW_REC_ASYNCIO = 8,	/* asyncio mistake: unawaited coroutine, lost exception, ... */
	LW_REC_GC = 9,		/* a GC pause inside a busy iteration (informational) */
	LW_REC_FORK = 10,	/* some process forked a new process (daemon discovery) */
};

/* What a time split's "off-CPU" reason was */
enum lw_off_kind {
	LW_OFF_NONE = 0,
	LW_OFF_RUNQ = 1,	/* preempted or woken, waiting for a CPU */
	LW_OFF_BLOCKED = 2,	/* sleeping in a syscall (or a page fault) */
	LW_OFF_GIL = 3,		/* sleeping on the GIL's futex */
};

/* lw_ident.kind */
enum lw_cb_kind {
	LW_KIND_OTHER = 0,
	LW_KIND_TASK = 1,	/* a Task step or wakeup */
	LW_KIND_FUNCTION = 2,
	LW_KIND_METHOD = 3,
	LW_KIND_UNKNOWN = 4,	/* could not read the callable */
};

/* lw_ident.flags */
#define LW_IDENT_TASK_NUM	(1u << 0)	/* task name is an int: "Task-<task_num>" */
#define LW_IDENT_CTX_OK		(1u << 1)	/* task->task_context == the Context being run */
#define LW_IDENT_CTX_BAD	(1u << 2)	/* ... and it was not: offsets are wrong */
#define LW_IDENT_PARTIAL	(1u << 3)	/* functools.partial was unwrapped */
#define LW_IDENT_READ_ERR	(1u << 4)	/* some read failed; fields may be empty */

/* lw_pystack.flags */
#define LW_STACK_TRUNCATED	(1u << 0)	/* more frames than LW_MAX_PYFRAMES */
#define LW_STACK_READ_ERR	(1u << 1)	/* a frame could not be read */
#define LW_STACK_NO_TSTATE	(1u << 2)	/* thread state unknown */
#define LW_STACK_VALID		(1u << 3)	/* this slot holds a stack */
#define LW_STACK_USTACK		(1u << 4)	/* its registers and stack top were copied (ustacks) */
/* a whole Python stack with neither BaseEventLoop._run_once nor Handle._run on it (asyncio's
 * _run_once known): the thread was in no asyncio loop when it was walked */
#define LW_STACK_NOLOOP		(1u << 5)
/* On the CPU-sample stack kept for a busy period (lw_tstacks.cpu), sticky for the period: one
 * sample of it was in no loop (ONE), two or more were (LEFT_LOOP: the period left the loop).
 * One is no proof: a sample in a frame push's few instructions can read a stale chain. */
#define LW_STACK_NOLOOP_ONE	(1u << 6)
#define LW_STACK_LEFT_LOOP	(1u << 7)

/* lw_rec_tick.flags / lw_rec_callback.flags */
#define LW_TICK_IN_PROGRESS	(1u << 0)	/* not a record from BPF: userspace live alert */
#define LW_TICK_PRECISE		(1u << 1)	/* callbacks counted by context_run probes */

/* What a file descriptor referred to, read in the kernel when the thread blocked on it */
#define LW_FD_COMPS 16		/* path components kept, innermost first (a power of 2) */
#define LW_FD_COMPLEN 32

enum lw_fd_kind {
	LW_FD_NONE = 0,
	LW_FD_FILE = 1,		/* a file or device: comp[] holds its path */
	LW_FD_FIFO = 2,		/* a named FIFO: comp[] holds its path */
	LW_FD_PIPE = 3,
	LW_FD_INET = 4,		/* family, proto, addresses, ports */
	LW_FD_UNIX = 5,		/* unix socket: its path (else the peer's) as one string from comp[0] */
	LW_FD_SOCKET = 6,	/* another socket family */
	LW_FD_ANON = 7,		/* eventfd, timerfd, ... (name in comp[0]) */
};

struct lw_fdinfo {
	__u8 kind;		/* enum lw_fd_kind */
	__u8 family;		/* AF_INET / AF_INET6 */
	__u8 proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 state;		/* TCP state (10 = listen) */
	__u16 sport;		/* host order */
	__u16 dport;		/* host order */
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 ncomp;
	__u32 truncated;	/* more components than kept */
	char comp[LW_FD_COMPS][LW_FD_COMPLEN];
};

/* Header of every ring-buffer record */
struct lw_rec_hdr {
	__u32 type;
	__u32 size;
	__u32 tgid;
	__u32 tid;
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
};

/* Identity of a callback, read in BPF while it still exists */
struct lw_ident {
	__u32 kind;		/* enum lw_cb_kind */
	__u32 flags;		/* LW_IDENT_* */
	__u64 callable;		/* the callable object (args[0] of Context.run) */
	__u64 code;		/* its code object (0 for kind other) */
	__u64 type;		/* its type object */
	__u64 task;		/* the Task object, 0 when not a task */
	__s64 task_num;		/* LW_IDENT_TASK_NUM: the int name */
	__s32 firstlineno;
	__u32 pad;
	char task_name[LW_STR_TASK];
	char qualname[LW_STR_QUAL];
	char file[LW_STR_FILE];
};

/* What a failed read of target memory was for (BPF global read_errors_by[], summary
 * read_errors_by): read_errors alone said nothing of what failed (issue 20) */
enum lw_rd_cause {
	LW_RD_TSTATE,		/* the thread's state (TSS slot, thread-local, tstate fields) */
	LW_RD_FRAME,		/* a frame of the stack walk (frame pointer, code, back link) */
	LW_RD_CODE,		/* a code object's fields (line, names) */
	LW_RD_CALLBACK,		/* the callback a Handle runs, its type, its Task */
	LW_RD_STRING,		/* a str object (names, file names) */
	LW_RD_OTHER,		/* hooks, precise-mode and scheduler probes */
	LW_RD_NCAUSES
};
#define LW_RD_CAUSE_NAMES { "thread_state", "frame", "code_object", "callback", "string", "other" }

/* Key of the per-process read-error counters (map rderr): a loopwatchd tracing many processes
 * says which one each failed read came from (issue 20 item 10) */
struct lw_rderr_key {
	__u32 tgid;
	__u32 cause;		/* enum lw_rd_cause */
};

/* One Python frame as seen in the kernel: userspace decodes the line */
struct lw_pyframe {
	__u64 code;		/* PyCodeObject *, 0 for a skipped shim/entry frame */
	__u64 instr;		/* f_lasti (<= 3.10) or the instruction pointer (3.11+) */
	__u64 frame;		/* the frame's address */
};

struct lw_pystack {
	__u32 nframes;
	__u32 flags;		/* LW_STACK_* */
	__u32 nnative;
	__u32 syscall;		/* syscall the thread was in when captured, or -1 */
	__u64 ts_ns;		/* when captured */
	__u64 ns;		/* how long the thread stayed blocked there (blocking stacks) */
	/* asyncio: the callback run by the outermost Handle._run frame, when known */
	__u64 cb_callable;
	__u64 task;
	__s64 task_num;		/* LW_IDENT_TASK_NUM in task_flags */
	__u32 task_flags;
	__u32 cb_kind;		/* enum lw_cb_kind, LW_KIND_UNKNOWN when no callback was found */
	char task_name[LW_STR_TASK];
	char cb_qualname[LW_STR_QUAL];	/* its qualname (3.8-3.10 code objects lack one) */
	/* the callback's own frame (just inside Handle._run) when the stack is deeper than the
	 * slots and it was found past them (code 0 otherwise) */
	struct lw_pyframe cb_frame;
	struct lw_pyframe hrun;		/* and Handle._run's frame, found the same way */
	struct lw_pyframe frames[LW_MAX_PYFRAMES];	/* innermost first */
	__u64 native[LW_MAX_NATIVE];			/* user return addresses, innermost first */
};

/* Time split of an interval (an iteration or a callback) */
struct lw_split_sys {
	__u32 nr;		/* syscall number */
	__u32 count;
	__u64 ns;
};

struct lw_split {
	__u64 runq_ns;		/* runnable, waiting for a CPU */
	__u64 blocked_ns;	/* sleeping (all reasons except the GIL) */
	__u64 gil_ns;		/* sleeping on the GIL */
	__u64 gc_ns;		/* inside a garbage collection */
	__u64 other_blocked_ns;	/* blocked in syscalls beyond LW_SPLIT_SYSCALLS */
	__u32 nsys;
	__u32 gil_switches;
	__u64 gil_holder;	/* tstate of the GIL holder at the longest GIL wait */
	__u64 gil_holder_ns;	/* that longest wait */
	__u32 gil_holder_tid;	/* its thread id (read from the tstate in BPF) */
	__u32 pad;
	struct lw_split_sys sys[LW_SPLIT_SYSCALLS];
};

/* LW_REC_CALLBACK: precise mode, one callback >= threshold */
struct lw_rec_callback {
	struct lw_rec_hdr hdr;
	__u64 start_ns;
	__u64 duration_ns;
	__u32 flags;
	__u32 depth_errors;	/* unbalanced entry/return probes seen on this thread */
	struct lw_ident ident;
	struct lw_split split;
	struct lw_pystack block_stack;	/* where it blocked longest (LW_STACK_VALID if any) */
	struct lw_pystack cpu_stack;	/* where it burned CPU (last sample), if any */
};

/* LW_REC_TICK: one loop iteration busy >= threshold */
struct lw_rec_tick {
	struct lw_rec_hdr hdr;
	__u64 start_ns;		/* poll-family syscall returned */
	__u64 busy_ns;		/* until the next poll-family syscall */
	__u32 flags;
	__u32 callbacks;	/* context_run calls seen (precise mode), else 0 */
	__u32 poll_nr;		/* syscall that ends iterations on this thread */
	__u32 pad;
	__u64 slowest_cb_ns;	/* precise mode: the slowest callback in the iteration */
	struct lw_ident slowest;	/* ... and its identity */
	struct lw_split split;
	struct lw_pystack block_stack;
	struct lw_pystack cpu_stack;
};

/* LW_REC_BLOCK: a blocking syscall inside a busy iteration */
struct lw_rec_block {
	struct lw_rec_hdr hdr;
	__u64 start_ns;
	__u64 duration_ns;	/* time the thread was off-CPU in it */
	__u32 syscall;
	__u32 flags;
	__u64 args[3];		/* first syscall arguments (fd, ...) */
	__u64 cb_callable;	/* precise mode: enclosing callback's callable */
	char path[LW_STR_PATH];	/* open/openat/stat...: the path argument */
	struct lw_fdinfo fd;	/* what args[0] referred to, for syscalls on an fd */
	struct lw_pystack stack;
};

/* LW_REC_SITE: a callback site seen for the first time (precise mode) */
struct lw_rec_site {
	struct lw_rec_hdr hdr;
	__u64 site;		/* the key used in the site histogram map */
	struct lw_ident ident;
};

/* LW_REC_ASYNCIO: asyncio's other mistakes, caught where CPython reports them */
enum lw_aio_kind {
	LW_AIO_UNAWAITED = 1,		/* a coroutine finalized without ever being awaited */
	LW_AIO_NEVER_RETRIEVED = 2,	/* a Future/Task finalized with an exception nobody got */
	LW_AIO_DESTROYED_PENDING = 3,	/* a Task finalized while still pending */
};

#define LW_AIO_FOUND		(1u << 0)	/* the object was found among the registers */
#define LW_AIO_IS_TASK		(1u << 1)

struct lw_rec_asyncio {
	struct lw_rec_hdr hdr;
	__u32 kind;		/* enum lw_aio_kind */
	__u32 flags;		/* LW_AIO_* */
	struct lw_ident ident;	/* task name, coroutine qualname, file, first line */
	char exc_type[64];
	char exc_msg[160];
	struct lw_pystack stack;	/* where it happened (where an unawaited coroutine was dropped) */
};

/* LW_REC_NEWTHREAD / LW_REC_EXIT / LW_REC_EXEC / LW_REC_FORK (hdr.tgid: the child) */
struct lw_rec_task {
	struct lw_rec_hdr hdr;
	__u32 ppid;
	__u32 exit_code;	/* EXIT: the exit code; EXEC: 1 when the process was traced */
	char comm[16];
};

/* Keys and values of the maps userspace reads */
struct lw_site_key {
	__u32 tgid;
	__u32 pad;
	__u64 site;		/* code object, or type object for kind other */
};

struct lw_hist {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	__u64 min_ns;		/* 0 = no sample yet */
	__u32 slots[LW_HIST_SLOTS];
};

/* Per-thread loop statistics (map loop_stats, key tid) */
struct lw_loop_stats {
	__u32 tgid;
	__u32 poll_nr;
	__u64 iterations;
	__u64 busy_ns;		/* sum of busy periods */
	__u64 idle_ns;		/* sum of time inside the poll-family syscall */
	__u64 callbacks;	/* precise mode */
	__u64 gc_count;		/* garbage collections on this thread (when hooked) */
	__u64 gc_ns;
	__u32 lag[LW_HIST_SLOTS];	/* histogram of iteration busy times */
};

#define LW_TSS_STATIC_TLS (-2)	/* lw_pycfg.tss_key: the thread state is a static thread-local */

/* Process configuration written by userspace (map procs, key tgid) */
struct lw_pycfg {
	__u32 minor;		/* 8..15; 0 = not CPython */
	__u32 flags;		/* LW_PROC_* */
	/* thread state -> frame */
	__u16 ts_frame;		/* tstate->frame (<=3.10), ->cframe (3.11/3.12), ->current_frame */
	__u16 cframe_cur;	/* _PyCFrame.current_frame, 0xffff when no cframe */
	__u16 f_code;
	__u16 f_back;
	__u16 f_instr;
	__u16 f_owner;		/* 0xffff: no owner field (<= 3.10) */
	__u16 f_localsplus;
	__u16 instr_is_ptr;	/* 1: f_instr holds a pointer (3.11+) */
	/* callables */
	__u16 func_code;
	__u16 func_qualname;
	__u16 meth_func;
	__u16 meth_self;
	__u16 partial_fn;
	__u16 cfunc_ml;
	__u16 cfunc_self;
	__u16 wrapper_task;	/* TaskStepMethWrapper.sw_task / TaskWakeupMethWrapper.ww_task */
	__u16 task_coro;
	__u16 task_name;
	__u16 task_context;
	__u16 coro_qualname;
	__u16 coro_code;	/* cr_code, or cr_iframe + f_code for 3.12+ */
	__u16 co_filename;
	__u16 co_name;
	__u16 co_qualname;	/* 0xffff before 3.11 */
	__u16 co_firstlineno;
	__u16 str_ascii;	/* sizeof(PyASCIIObject) */
	__u16 str_compact;	/* sizeof(PyCompactUnicodeObject) */
	__u16 long_tag;		/* 1: 3.12+ lv_tag layout */
	__u16 tp_name;
	__u16 stackref_mask;	/* 3.14+: _PyStackRef tag bits of frame slots (f_executable, locals) */
	__u64 type_function;
	__u64 type_method;
	__u64 type_cfunction;
	__u64 type_long;
	__u64 type_unicode;
	__u64 type_coro;
	__u64 none_obj;
	/* thread state lookup fallback: pthread TSD slot, or (tss_key == LW_TSS_STATIC_TLS) a
	 * thread-local of the executable at fs base + (__s32)tsd_base (3.15: no TSS key) */
	__s32 tss_key;		/* -1 when unknown */
	__u32 tsd_base;		/* offset of specific_1stblock in struct pthread (glibc: 0x310) */
	/* GIL */
	__u64 gil;		/* address of the GIL state, 0 when unknown */
	__u32 gil_size;
	__u32 gil_last_holder;	/* offset of last_holder */
	/* tstate -> tid: native_thread_id (3.11+), or thread_id (pthread_t) -> pthread.tid */
	__u16 ts_native_id;	/* 0 = none */
	__u16 ts_thread_id;
	__u16 pthread_tid;	/* offset of tid in glibc's struct pthread */
	__u16 tuple_item;	/* PyTupleObject.ob_item: 24, 32 from 3.14 (ob_hash cached) */
	/* thresholds */
	__u64 threshold_ns;
	__u64 block_threshold_ns;
	/* asyncio: BaseEventLoop._run_once's code (found at attach), Handle._run's code (learned),
	 * and the offset of Handle._callback (24 in 3.8-3.13: slots are sorted) */
	__u64 run_once_code;
	__u64 handle_run_code;
	__u32 handle_cb_slot;
	__u32 pad1;
	/* uvloop (cbhandles.pxd): Handle.cb_type, .arg1, .context; TimerHandle.callback, .context */
	__u16 uv_cbtype;
	__u16 uv_arg1;
	__u16 uv_ctx;
	__u16 uv_timer_cb;
	__u16 uv_timer_ctx;
	__u16 pad4;
	/* the ring-buffer share it belongs to with other processes (loopwatchd: its target), 0 for
	 * its own alone (map fair, key LW_SHARE_KEY(share)) */
	__u32 share;
};

#define LW_SHARE_KEY(s) (0x80000000u | (__u32)(s))	/* above every pid */

#define LW_PROC_PRECISE		(1u << 0)	/* context_run probes attached */
#define LW_PROC_PYTHON		(1u << 1)	/* Python stacks can be walked */
#define LW_PROC_STACKS		(1u << 2)	/* capture stacks at blocks/samples */
#define LW_PROC_NATIVE		(1u << 3)	/* capture native stacks */

/* A process's share of the ring buffer (map fair, key tgid): bytes written in the current
 * window, records dropped because it had taken more than its share while the ring filled; and of
 * the threads map: its entries there, threads not tracked because it had its quota */
struct lw_fair {
	__u64 window_ns;
	__u64 bytes;
	__u64 drops;
	__u32 threads;		/* its threads' entries in the threads map */
	__u32 pad;
	__u64 thread_drops;	/* distinct threads refused for the quota (rodata thread_quota) */
};

/*
 * Each loop thread's busy period as one word, for the live tick (issue 19: copying every
 * thread's ~2.8 KB state every 20 ms cost 0.35 s of CPU a second at 2,048 idle threads): a
 * global array (.bss, mapped by userspace) indexed by tid % LW_BUSY_SLOTS, each word the tid
 * (22 bits: pid_max is at most 2^22) over iter_start_ns in 16 ns units (42 bits, 19.5 hours
 * round; 0: not in a busy period). Written with every write of iter_start_ns, one aligned
 * store. A word of another tid (two threads share a slot) tells nothing: the tick reads the
 * thread's state then.
 */
#define LW_BUSY_SLOTS 65536
#define LW_BUSY_SHIFT 42
#define LW_BUSY_TIME_MASK ((1ull << LW_BUSY_SHIFT) - 1)
#define LW_BUSY_TID_MASK 0x3fffffull
#define LW_BUSY_TIME(ns) ((ns) ? ((((ns) >> 4) & LW_BUSY_TIME_MASK) ? \
				  (((ns) >> 4) & LW_BUSY_TIME_MASK) : 1) : 0)
#define LW_BUSY_WORD(tid, ns) ((((__u64)(tid) & LW_BUSY_TID_MASK) << LW_BUSY_SHIFT) | \
			       LW_BUSY_TIME(ns))

/* Per-thread state (map threads, key tid). Userspace reads it for live alerts. */
struct lw_thread {
	__u32 tgid;
	__u32 poll_nr;		/* syscall that ends iterations; (u32)-1 none yet */
	__u32 in_poll;
	__u32 cb_depth;
	__u64 poll_enter_ns;
	__u64 iter_start_ns;	/* 0: not in a busy period */
	__u64 cb_start_ns;	/* precise: outermost callback start */
	__u64 cb_callable;
	__u64 cb_ctx;
	__u32 iter_callbacks;
	__u32 off_kind;		/* enum lw_off_kind of the current off-CPU period */
	__u64 off_ts;		/* switched out at */
	__u64 wake_ts;		/* woken at (0: not yet) */
	__u64 off_rt;		/* its se.sum_exec_runtime at off_ts */
	__u64 off_clk;		/* its se.exec_start (run-queue clock) at off_ts */
	__u32 off_sys;		/* syscall it slept in, (u32)-1 none */
	__u32 off_stack_ok;	/* stacks.pending holds this off period's stack */
	__u64 off_args[3];
	__u64 off_gil_holder;
	__u32 off_gil_holder_tid;
	__u32 gc_depth;		/* collector entries not yet returned (they nest) */
	char off_path[LW_STR_PATH];
	struct lw_fdinfo off_fd;
	__u64 best_block_ns;	/* longest block in this iteration */
	__u64 cb_best_block_ns;	/* longest block in this callback */
	__u64 slowest_cb_ns;
	__u64 threshold_ns;	/* copied from the process configuration */
	__u64 gc_start_ns;	/* inside a collection since, 0 when not */
	__u64 uv_stack;		/* uvloop: which nested _run entries were counted (bit stack) */
	__u32 iter_dirty;	/* iter split holds something: clear it at the next iteration */
	__u32 cb_dirty;
	__u32 cb_seen;		/* precise: a callback entry was seen on this thread */
	__u32 poll_probe;	/* sched mode: a poll-entry uprobe fired on this thread */
	struct lw_ident slowest;
	struct lw_split iter;
	struct lw_split cb;
	struct lw_loop_stats ls;	/* cumulative; userspace diffs snapshots */
	/* precise mode, entry probe only: the open callback ends at the next one's entry (at the
	 * same stack depth or above: a deeper entry is a nested Context.run) or at the loop's poll */
	__u64 cb_sp;		/* stack pointer at the open callback's context_run entry */
	__u32 cb_entry_only;	/* the open callback was begun by the entry-only probe */
	__u32 cb_skipped;	/* precise: Context.run entries outside any loop, open at depth 0 */
	/* ... identified at its entry: when it ends, its callable may already be freed */
	__u64 cb_site;
	struct lw_ident cb_id;	/* its strings too (cb_ident_full completes them from code) */
	/* ... when a CPU sample of the open callback first found the thread in no loop (0: none
	 * since); set in cb_left_ns by a second: the loop was left (loop.stop(), no poll, no next
	 * callback), and the callback ends there when the next entry or poll closes it */
	__u64 cb_noloop_ns;
	__u64 cb_left_ns;
	__u64 cb_loop_sp;	/* entry-only: a context_run entry at this stack pointer was in a loop */
	/* its sched_info.run_delay (the kernel's sum of its run-queue waits) at off_ts: without
	 * the wake-up program, the run-queue part of an off period is the growth of that sum */
	__u64 off_rundelay;
	/* entry + return precise mode: the innermost Python frame and its code at a context_run
	 * entry (at cb_loop_sp) that the walk found in a loop: the same three again need no walk */
	__u64 cb_loop_frame;
	__u64 cb_loop_code;
	/* sched mode: when it fell asleep in the loop's poll (in_poll; off_rt and off_clk are its
	 * runtime then), to date a wake whose switch-in no program saw (poll_close_missed) */
	__u64 poll_sleep_ns;
	/* entry-only precise mode: the return address at cb_sp when the open callback began */
	__u64 cb_ret;
	/* ... and the function's __qualname__ object then (cb_id's strings are that function's) */
	__u64 cb_qualname_obj;
};

/* The stacks of one thread (map stacks, key tid) */
#define LW_CPU_VOTES 4
struct lw_tstacks {
	struct lw_pystack pending;	/* captured when it last went to sleep */
	struct lw_pystack iter_block;	/* longest block of the busy iteration */
	struct lw_pystack cb_block;	/* longest block of the current callback */
	struct lw_pystack cpu;		/* CPU samples: the majority function's latest (ns = votes) */
	struct lw_pystack sample;	/* scratch for the sample being taken */
	/* within the majority function, a second vote on its innermost instruction: cpu holds the
	 * latest sample at the instruction with the most votes (cpu_instr), so a few late samples
	 * elsewhere in the function (a return, a print after the hot loop) do not move the
	 * reported line. Misra-Gries with LW_CPU_VOTES counters (vote_n 0: a free one): a hot
	 * loop's samples spread over its few instructions, none of which need be a majority */
	__u64 cpu_instr;
	__u64 vote_instr[LW_CPU_VOTES];
	__u32 vote_n[LW_CPU_VOTES];
};

/*
 * Native stacks unwound by the binaries' CFI (bpf/lw_ustack.bpf.h, daemon/target/unwind.c):
 * where a native stack is captured (capture_native), the thread's user registers and the top of
 * its user stack go to the LRU map ustacks, keyed by the thread and the capture time that the
 * lw_pystack carries (tid from the record header, lw_pystack.ts_ns).
 */
#define LW_USTACK_MAX 16384	/* bytes of user stack copied at most (rodata ustack_bytes: less) */
#define LW_USTACK_NREGS 17	/* DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip */

struct lw_ustack_key {
	__u32 tid;
	__u32 pad;
	__u64 ts_ns;		/* lw_pystack.ts_ns of the stack it belongs to */
};

#define LW_USTACK_CUT	(1u << 0)	/* less than asked was copied (end of the stack mapping,
					 * or a page not resident) */
#define LW_USTACK_REDZONE (1u << 1)	/* data starts LW_USTACK_RED bytes below rsp: the red
					 * zone, where OpenSSL's SHA-512 keeps its frame's CFA */
#define LW_USTACK_RED 128

struct lw_ustack {
	__u64 regs[LW_USTACK_NREGS];
	__u32 len;		/* bytes in data, copied from regs[7] (rsp) upward, or from
				 * LW_USTACK_RED below it (LW_USTACK_REDZONE) */
	__u32 flags;		/* LW_USTACK_* */
	__u8 data[LW_USTACK_MAX];
};

/*
 * The layouts, pinned: this header is compiled by clang for BPF and by cc for userspace, and
 * both must agree byte for byte. A change here fails the build on both sides until the size
 * below is updated and LW_ABI_VERSION bumped (the loader refuses an object of another ABI).
 */
#define LW_ABI_SIZE(s, n) _Static_assert(sizeof(struct s) == (n), \
	"struct " #s " changed size: update it here and bump LW_ABI_VERSION")
LW_ABI_SIZE(lw_fdinfo, 560);
LW_ABI_SIZE(lw_rec_hdr, 24);
LW_ABI_SIZE(lw_ident, 504);
LW_ABI_SIZE(lw_pyframe, 24);
LW_ABI_SIZE(lw_pystack, 2224);
LW_ABI_SIZE(lw_split_sys, 16);
LW_ABI_SIZE(lw_split, 168);
LW_ABI_SIZE(lw_rec_callback, 5168);
LW_ABI_SIZE(lw_rec_tick, 5184);
LW_ABI_SIZE(lw_rec_block, 2992);
LW_ABI_SIZE(lw_rec_site, 536);
LW_ABI_SIZE(lw_rec_asyncio, 2984);
LW_ABI_SIZE(lw_rec_task, 48);
LW_ABI_SIZE(lw_site_key, 16);
LW_ABI_SIZE(lw_hist, 544);
LW_ABI_SIZE(lw_loop_stats, 568);
LW_ABI_SIZE(lw_pycfg, 216);
LW_ABI_SIZE(lw_fair, 40);
LW_ABI_SIZE(lw_rderr_key, 8);
LW_ABI_SIZE(lw_thread, 2904);
LW_ABI_SIZE(lw_tstacks, 11176);
LW_ABI_SIZE(lw_ustack_key, 16);
LW_ABI_SIZE(lw_ustack, 16528);

#endif /* LOOPWATCH_H */
