// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * uvloop dispatches callbacks from Cython: Handle._run and TimerHandle._run are static C
 * functions without symbols. Cython publishes each extension type's method table in the type's
 * __dict__ as a capsule, "__pyx_vtable__"; _run is entry 2 of Handle's (after _set_loop and
 * _set_context) and entry 0 of TimerHandle's (uvloop 0.17, cbhandles.pxd). The type objects are
 * static data of the module, found through the relocation that makes their tp_name point at
 * "uvloop.loop.Handle"; their basicsize (120 and 96) checks the layout the BPF side assumes.
 */
#include "target/pyuvloop.h"
#include "target/elfsym.h"
#include "target/hookfind.h"
#include "base/lw_util.h"
#include "target/procmaps.h"
#include "target/pytasks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct uvtype {
	const char *name;
	int64_t basicsize;
	int vtable_index;
};

static const struct uvtype HANDLE = { "uvloop.loop.Handle", 120, 2 };
static const struct uvtype TIMER = { "uvloop.loop.TimerHandle", 96, 0 };

static int find_run(const struct lw_pyinfo *pi, struct lw_reader *mem, struct lw_elf *e,
		    uint64_t bias, const struct uvtype *t, uint64_t *off, char *why, size_t wl)
{
	uint64_t s, field, type, tp_dict = 0, capsule = 0, vtable = 0, fn = 0;
	int64_t bs = 0;

	if (lw_hook_find_string(lw_elf__path(e), t->name, &s) ||
	    lw_elf__find_pointer_to(e, s, &field)) {
		snprintf(why, wl, "type %s not found in the module", t->name);
		return -ENOENT;
	}
	type = field - 24 + bias;	/* tp_name is at +24 */
	if (lw_mem_read(mem, type + 32, &bs, sizeof(bs)) || bs != t->basicsize) {
		snprintf(why, wl, "%s is %lld bytes, not the %lld this uvloop support knows", t->name,
			 (long long)bs, (long long)t->basicsize);
		return -ENOTSUP;
	}
	if (lw_mem_read_u64(mem, type + 264, &tp_dict) || !tp_dict ||
	    lw_pyobj__dict_get(pi, mem, tp_dict, "__pyx_vtable__", &capsule) ||
	    lw_mem_read_u64(mem, capsule + 16, &vtable) || !vtable ||
	    lw_mem_read_u64(mem, vtable + (uint64_t)t->vtable_index * 8, &fn) || fn < bias) {
		snprintf(why, wl, "no __pyx_vtable__ for %s", t->name);
		return -ENOENT;
	}
	if (lw_elf__vaddr_to_offset(e, fn - bias, off)) {
		snprintf(why, wl, "%s._run at 0x%llx is outside the module", t->name,
			 (unsigned long long)fn);
		return -ENOENT;
	}
	return 0;
}

void lw_uvloop_find(const struct lw_pyinfo *pi, struct lw_reader *mem, const char *proc_root,
		    struct lw_uvloop *out)
{
	struct lw_maps *maps = NULL;
	const struct lw_map *m = NULL, *first;
	struct lw_elf *e = NULL;
	uint64_t v;
	size_t i;
	int fd;
	char why[200];

	memset(out, 0, sizeof(*out));
	snprintf(out->how, sizeof(out->how), "uvloop not loaded");
	if (lw_maps__load(proc_root, pi->pid, &maps))
		return;
	for (i = 0; i < lw_maps__count(maps); i++) {
		const struct lw_map *x = lw_maps__get(maps, i);

		if (strstr(x->path, "/uvloop/loop.") && strstr(x->path, ".so")) {
			m = x;
			break;
		}
	}
	if (!m)
		goto out;
	out->loaded = 1;
	first = lw_maps__first_of(maps, m->path);
	fd = first ? lw_maps__open_mapped(proc_root, pi->pid, first, out->so_host,
					  sizeof(out->so_host)) : -ENOENT;
	if (fd < 0 || lw_elf__open_fd(fd, out->so_host, &e) ||
	    lw_elf__offset_to_vaddr(e, first->offset, &v)) {
		snprintf(out->how, sizeof(out->how), "cannot read %s", m->path);
		goto out;
	}
	if (find_run(pi, mem, e, first->start - v, &HANDLE, &out->handle_run_off, why, sizeof(why)) ||
	    find_run(pi, mem, e, first->start - v, &TIMER, &out->timer_run_off, why, sizeof(why))) {
		snprintf(out->how, sizeof(out->how), "uvloop loaded, precise mode unavailable: %s", why);
		goto out;
	}
	out->found = 1;
	snprintf(out->how, sizeof(out->how),
		 "Handle._run at +0x%llx and TimerHandle._run at +0x%llx of %s (from __pyx_vtable__)",
		 (unsigned long long)out->handle_run_off, (unsigned long long)out->timer_run_off,
		 lw_basename(m->path));
out:
	lw_elf__close(e);
	lw_maps__free(maps);
}
