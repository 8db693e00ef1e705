/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Native stacks of a target unwound by the binaries' own unwind tables (.eh_frame /
 * .debug_frame, elfutils' libdwfl frame state), from a thread's registers and a copy of the top
 * of its user stack. Binaries built without frame pointers (distributions' libc, libuv,
 * libpython, -O2 C code) unwind as eu-stack unwinds them; where a module has no CFI, libdwfl's
 * frame-pointer step is tried.
 */
#ifndef LW_UNWIND_H
#define LW_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/memread.h"

/* x86-64 DWARF register numbers: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp,
 * 8-15 r8-r15, 16 rip (the same order as struct lw_ustack.regs in bpf/loopwatch.h) */
#define LW_UNW_NREGS 17
#define LW_UNW_RBP 6
#define LW_UNW_RSP 7
#define LW_UNW_RIP 16

/* Why a stack stopped before its outermost frame */
enum lw_unwind_stop {
	LW_UNW_COMPLETE = 0,	/* reached the outermost frame (_start / clone's) */
	LW_UNW_NO_INFO,		/* a pc in no module, or a module without unwind information */
	LW_UNW_SHORT_COPY,	/* needed stack bytes above the copy that could not be read */
	LW_UNW_UNREADABLE,	/* other memory could not be read */
	LW_UNW_MAX_FRAMES,	/* more frames than asked for */
	LW_UNW_ERROR,		/* libdwfl failed otherwise (bad registers, ...) */
};

/* The reason as the "stack_incomplete" value of records, NULL for LW_UNW_COMPLETE */
const char *lw_unwind_stop_str(enum lw_unwind_stop why);

struct lw_uframe {
	uint64_t pc;		/* the frame's pc (a return address for all but the first) */
	int activation;		/* 1: pc is exact (the innermost frame), 0: a return address */
};

struct lw_unwind;

/*
 * An unwinder for process pid. Mapped files are found through proc_root/PID/maps and opened as
 * proc_root/PID/root/PATH (the target's own view, containers included). live, when not NULL,
 * serves memory outside the stack copy (and above it when the copy is too short); it may fail.
 * 0 or -errno.
 */
int lw_unwind__new(const char *proc_root, pid_t pid, const struct lw_reader *live,
		   struct lw_unwind **out);
void lw_unwind__free(struct lw_unwind *u);

/*
 * Unwind one thread: regs[LW_UNW_NREGS] (DWARF order; at least rip and rsp, rbp and the
 * callee-saved ones when known), stack: len bytes copied from regs[LW_UNW_RSP] upward. Writes up
 * to max frames, innermost first, and the reason it stopped. Returns the number of frames (>= 1
 * when rip is non-zero) or -errno.
 */
int lw_unwind__run(struct lw_unwind *u, const uint64_t *regs, const void *stack, size_t len,
		   struct lw_uframe *frames, int max, enum lw_unwind_stop *why);
/* The same with a stack copied from base (at most rsp: a copy that holds the red zone below
 * it, where hand-written assembly such as OpenSSL's SHA-512 keeps its CFA) */
int lw_unwind__run_at(struct lw_unwind *u, const uint64_t *regs, const void *stack, uint64_t base,
		      size_t len, struct lw_uframe *frames, int max, enum lw_unwind_stop *why);

/* Statistics: live reads used, stacks unwound (for benchmarks and the status) */
uint64_t lw_unwind__live_reads(const struct lw_unwind *u);

#endif
