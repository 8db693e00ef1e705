/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* uvloop in a CPython process: where its Handle._run and TimerHandle._run are. */
#ifndef LW_PYUVLOOP_H
#define LW_PYUVLOOP_H

#include <stdint.h>

#include "target/pyproc.h"
#include "target/memread.h"

struct lw_uvloop {
	int loaded;			/* uvloop's loop module is mapped */
	int found;			/* both _run functions were found */
	char how[256];			/* how, or why not */
	char version[32];		/* uvloop.__version__ when readable */
	char so_host[4200];		/* the module, as we open it */
	uint64_t handle_run_off;	/* file offsets for the uprobes */
	uint64_t timer_run_off;
};

/* Look for uvloop in process pi->pid. Never fails: out->how says what was found. */
void lw_uvloop_find(const struct lw_pyinfo *pi, struct lw_reader *mem, const char *proc_root,
		    struct lw_uvloop *out);

#endif
