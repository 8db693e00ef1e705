/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Hooks for asyncio's other mistakes and for garbage collections in a CPython process: where
 * they are (found per build: .symtab symbols, USDT notes, or code that refers to the message
 * strings and identifiers only those paths use), and their uprobes.
 */
#ifndef LW_PYHOOKS_H
#define LW_PYHOOKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lw_bpf;
struct lw_pyinfo;
struct json_object;

enum lw_pyhook_kind {
	LW_PH_UNAWAITED,
	LW_PH_NEVER_RETRIEVED,
	LW_PH_DESTROYED_PENDING,
	LW_PH_GC,
	LW_PH_NKINDS,
};

#define LW_PH_MAX_SITES 16

struct lw_pyhook_kind_plan {
	int found;			/* sites found (0: unavailable, or waiting) */
	int waiting;			/* not yet: its module is not loaded (asyncio) */
	char how[200];			/* how they were found, or why not */
	char path[4200];		/* host path of the file to probe */
	uint64_t offset[LW_PH_MAX_SITES];	/* file offsets */
	uint64_t ref_ctr[LW_PH_MAX_SITES];	/* USDT semaphore file offsets, 0 none */
	int prog[LW_PH_MAX_SITES];		/* enum lw_hook_prog */
	int retprobe[LW_PH_MAX_SITES];
};

struct lw_pyhook_plan {
	struct lw_pyhook_kind_plan k[LW_PH_NKINDS];
};

/* Find the sites in process pid (no BPF needed: `check` shows this). */
void lw_pyhooks_plan(const struct lw_pyinfo *pi, const char *proc_root,
		     struct lw_pyhook_plan *plan);

/* The plan as {"unawaited_coroutine": "...", ...} for `check` and start records */
struct json_object *lw_pyhooks_plan_json(const struct lw_pyhook_plan *plan);

struct lw_pyhooks;

/* Attach what can be found now; lw_pyhooks__update() retries what was waiting. */
int lw_pyhooks__new(struct lw_bpf *b, const struct lw_pyinfo *pi, const char *proc_root,
		    struct lw_pyhooks **out);
/* 1 when something new was attached, 0 when nothing changed */
int lw_pyhooks__update(struct lw_pyhooks *h);
/* everything that can be found is attached (nothing is waiting for a module) */
int lw_pyhooks__complete(const struct lw_pyhooks *h);
const struct lw_pyhook_plan *lw_pyhooks__plan(const struct lw_pyhooks *h);
void lw_pyhooks__free(struct lw_pyhooks *h);

#endif
