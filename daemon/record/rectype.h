/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kinds of JSON record (their "type" field, interface.md), one list: consumers pick their
 * handling by kind instead of comparing strings, and producers name a kind from the table.
 */
#ifndef LW_RECTYPE_H
#define LW_RECTYPE_H

/* X(enum suffix, "type" string) */
#define LW_REC_KINDS(X)							\
	X(START, "start")						\
	X(END, "end")							\
	X(SUMMARY, "summary")						\
	X(SLOW_CALLBACK, "slow_callback")				\
	X(SLOW_TICK, "slow_tick")					\
	X(BLOCKING_CALL, "blocking_call")				\
	X(SUPPRESSED, "suppressed")					\
	X(UNAWAITED_COROUTINE, "unawaited_coroutine")			\
	X(EXCEPTION_NEVER_RETRIEVED, "exception_never_retrieved")	\
	X(TASK_DESTROYED_PENDING, "task_destroyed_pending")		\
	X(STUCK_TASK, "stuck_task")

enum lw_rec_kind {
	LW_RK_UNKNOWN = 0,	/* a type this version does not know, or none */
#define LW_RK_ENUM_(name, str) LW_RK_##name,
	LW_REC_KINDS(LW_RK_ENUM_)
#undef LW_RK_ENUM_
	LW_RK__COUNT
};

/* the kind of a record's "type" string (NULL or unknown: LW_RK_UNKNOWN) */
enum lw_rec_kind lw_rec_kind_of(const char *type);

/* the "type" string of a kind; NULL for LW_RK_UNKNOWN and out of range */
const char *lw_rec_kind_name(enum lw_rec_kind kind);

#endif
