// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/pyhooks.h"
#include "probe/bpfobj.h"
#include "target/elfsym.h"
#include "target/hookfind.h"
#include "base/lw_util.h"
#include "target/procmaps.h"
#include "target/pyproc.h"

#include <errno.h>
#include <gelf.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the messages asyncio's C module builds only on these paths (Modules/_asynciomodule.c) */
static const char MSG_NEVER_RETRIEVED[] = "%s exception was never retrieved";
static const char MSG_DESTROYED_PENDING[] = "Task was destroyed but it is pending!";

static const char *const KIND_NAMES[LW_PH_NKINDS] = {
	"unawaited_coroutine", "exception_never_retrieved", "task_destroyed_pending", "gc",
};

static void add_site(struct lw_pyhook_kind_plan *k, struct lw_elf *e, uint64_t vaddr,
		     uint64_t sema_vaddr, int prog, int retprobe)
{
	uint64_t off, sema = 0;

	if (k->found >= LW_PH_MAX_SITES || lw_elf__vaddr_to_offset(e, vaddr, &off))
		return;
	if (sema_vaddr && lw_elf__vaddr_to_offset(e, sema_vaddr, &sema))
		return;
	k->offset[k->found] = off;
	k->ref_ctr[k->found] = sema;
	k->prog[k->found] = prog;
	k->retprobe[k->found] = retprobe;
	k->found++;
}

/*
 * 3.11+: _Py_ID(_warn_unawaited_coroutine) is a static str inside _PyRuntime, and the code that
 * warns about an unawaited coroutine (inlined into its callers in LTO builds) loads its address.
 * Find the object in the file image: the string's bytes preceded by a str header of the right
 * length.
 */
static int find_identifier(const struct lw_pyinfo *pi, struct lw_elf *e, const char *ident,
			   uint64_t *obj)
{
	Elf *elf = lw_elf__elf(e);
	size_t fsize = 0, len = strlen(ident);
	const char *img = elf_rawfile(elf, &fsize), *p;
	size_t left = fsize;

	if (!img)
		return -ENOENT;
	p = img;
	while (left > len && (p = memmem(p, left, ident, len + 1))) {
		uint64_t off = (uint64_t)(p - img), va, hdr_len = 0;

		if (lw_elf__offset_to_vaddr(e, off, &va) == 0 && off >= pi->lay.str_ascii &&
		    lw_elf__read(e, va - pi->lay.str_ascii + 16, &hdr_len, 8) == 0 &&
		    hdr_len == len) {
			uint64_t cand = va - pi->lay.str_ascii, offs[1];

			/* the copy the code refers to (there is also a template copy) */
			if (lw_hook_find_refs(lw_elf__path(e), cand, offs, 1) > 0) {
				*obj = cand;
				return 0;
			}
		}
		p++;
		left = fsize - (size_t)(p - img);
	}
	return -ENOENT;
}

static void plan_unawaited(const struct lw_pyinfo *pi, struct lw_elf *e,
			   struct lw_pyhook_kind_plan *k)
{
	uint64_t v, obj, offs[LW_PH_MAX_SITES];
	int n, i;

	if (lw_elf__has_symtab(e) &&
	    lw_elf__find_symbol(e, "_PyErr_WarnUnawaitedCoroutine", &v, NULL) == 0) {
		add_site(k, e, v, 0, LW_HOOK_UNAWAITED, 0);
		snprintf(k->how, sizeof(k->how), "uprobe on _PyErr_WarnUnawaitedCoroutine (.symtab)");
		return;
	}
	if (pi->minor >= 11 && find_identifier(pi, e, "_warn_unawaited_coroutine", &obj) == 0) {
		n = lw_hook_find_refs(pi->elf_host, obj, offs, LW_PH_MAX_SITES);
		for (i = 0; i < n; i++) {
			uint64_t va;

			if (lw_elf__offset_to_vaddr(e, offs[i], &va) == 0)
				add_site(k, e, va, 0, LW_HOOK_UNAWAITED, 0);
		}
		if (k->found) {
			snprintf(k->how, sizeof(k->how),
				 "%d sites that load _Py_ID(_warn_unawaited_coroutine) (stripped build)",
				 k->found);
			return;
		}
	}
	snprintf(k->how, sizeof(k->how),
		 "unavailable: %s has no .symtab and no site could be found by its identifier; "
		 "install its debug symbols or use a build with symbols",
		 lw_basename(pi->elf));
}

static void plan_gc(const struct lw_pyinfo *pi, struct lw_elf *e, struct lw_pyhook_kind_plan *k)
{
	static const char *const fns[] = { "gc_collect_main", "collect", "collect.constprop.0",
					   "collect.constprop.1" };
	uint64_t pc1, s1, pc2, s2, v;
	size_t i;

	if (lw_elf__usdt(e, "python", "gc__start", &pc1, &s1) == 0 &&
	    lw_elf__usdt(e, "python", "gc__done", &pc2, &s2) == 0) {
		add_site(k, e, pc1, s1, LW_HOOK_GC_START, 0);
		add_site(k, e, pc2, s2, LW_HOOK_GC_DONE, 0);
		snprintf(k->how, sizeof(k->how), "USDT python:gc__start and python:gc__done");
		return;
	}
	for (i = 0; i < LW_ARRAY_SIZE(fns); i++) {
		if (lw_elf__find_symbol(e, fns[i], &v, NULL))
			continue;
		add_site(k, e, v, 0, LW_HOOK_GC_START, 0);
		add_site(k, e, v, 0, LW_HOOK_GC_DONE, 1);
	}
	if (k->found) {
		snprintf(k->how, sizeof(k->how), "uprobe+uretprobe on the collector (.symtab)");
		return;
	}
	snprintf(k->how, sizeof(k->how),
		 "unavailable: no USDT gc probes and no .symtab in %s; GC time is not split out",
		 lw_basename(pi->elf));
}

static void plan_asyncio(const struct lw_pyinfo *pi, const char *proc_root,
			 struct lw_pyhook_plan *plan)
{
	struct lw_pyhook_kind_plan *nr = &plan->k[LW_PH_NEVER_RETRIEVED];
	struct lw_pyhook_kind_plan *dp = &plan->k[LW_PH_DESTROYED_PENDING];
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	char host[4200], name[80];
	uint64_t va, offs[LW_PH_MAX_SITES];
	int n, i;

	if (lw_maps__load(proc_root, pi->pid, &maps))
		return;
	m = lw_maps__find_lib(maps, "_asyncio.");
	if (m) {
		/* the very file mapped (a path that resolves to its inode), as for the interpreter */
		int fd = lw_maps__open_mapped(proc_root, pi->pid, lw_maps__first_of(maps, m->path),
					      host, sizeof(host));

		if (fd < 0) {
			lw_maps__free(maps);
			return;
		}
		close(fd);
		lw_strlcpy(name, lw_basename(m->path), sizeof(name));
	} else {
		lw_strlcpy(host, pi->elf_host, sizeof(host));	/* built in? */
		lw_strlcpy(name, lw_basename(pi->elf), sizeof(name));
	}
	lw_maps__free(maps);
	if (lw_hook_find_string(host, MSG_NEVER_RETRIEVED, &va)) {
		nr->waiting = dp->waiting = !m;
		snprintf(nr->how, sizeof(nr->how), m ? "unavailable: no known message in %s" :
			 "waiting for the _asyncio module to be loaded", m ? name : "");
		lw_strlcpy(dp->how, nr->how, sizeof(dp->how));
		return;
	}
	if (lw_elf__open(host, &e))
		return;
	lw_strlcpy(nr->path, host, sizeof(nr->path));
	lw_strlcpy(dp->path, host, sizeof(dp->path));
	n = lw_hook_find_refs(host, va, offs, LW_PH_MAX_SITES);
	for (i = 0; i < n; i++) {
		uint64_t v;

		if (lw_elf__offset_to_vaddr(e, offs[i], &v) == 0)
			add_site(nr, e, v, 0, LW_HOOK_NEVER_RETRIEVED, 0);
	}
	if (nr->found)
		snprintf(nr->how, sizeof(nr->how), "%d site(s) building \"%s\" in %s", nr->found,
			 MSG_NEVER_RETRIEVED, name);
	else
		snprintf(nr->how, sizeof(nr->how), "unavailable: no code refers to \"%s\" in %s",
			 MSG_NEVER_RETRIEVED, name);
	if (lw_hook_find_string(host, MSG_DESTROYED_PENDING, &va) == 0) {
		n = lw_hook_find_refs(host, va, offs, LW_PH_MAX_SITES);
		for (i = 0; i < n; i++) {
			uint64_t v;

			if (lw_elf__offset_to_vaddr(e, offs[i], &v) == 0)
				add_site(dp, e, v, 0, LW_HOOK_DESTROYED_PENDING, 0);
		}
	}
	if (dp->found)
		snprintf(dp->how, sizeof(dp->how), "%d site(s) building \"%s\" in %s", dp->found,
			 MSG_DESTROYED_PENDING, name);
	else
		snprintf(dp->how, sizeof(dp->how), "unavailable: no code refers to \"%s\" in %s",
			 MSG_DESTROYED_PENDING, name);
	lw_elf__close(e);
}

void lw_pyhooks_plan(const struct lw_pyinfo *pi, const char *proc_root,
		     struct lw_pyhook_plan *plan)
{
	struct lw_elf *e = NULL;

	memset(plan, 0, sizeof(*plan));
	if (lw_elf__open(pi->elf_host, &e) == 0) {
		lw_strlcpy(plan->k[LW_PH_UNAWAITED].path, pi->elf_host,
			   sizeof(plan->k[LW_PH_UNAWAITED].path));
		lw_strlcpy(plan->k[LW_PH_GC].path, pi->elf_host, sizeof(plan->k[LW_PH_GC].path));
		plan_unawaited(pi, e, &plan->k[LW_PH_UNAWAITED]);
		plan_gc(pi, e, &plan->k[LW_PH_GC]);
		lw_elf__close(e);
	}
	plan_asyncio(pi, proc_root, plan);
}

struct json_object *lw_pyhooks_plan_json(const struct lw_pyhook_plan *plan)
{
	struct json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < LW_PH_NKINDS; i++)
		json_object_object_add(o, KIND_NAMES[i], json_object_new_string(plan->k[i].how));
	return o;
}

struct lw_pyhooks {
	struct lw_bpf *bpf;
	const struct lw_pyinfo *pi;
	char proc_root[64];
	struct lw_pyhook_plan plan;
	int attached[LW_PH_NKINDS];
	int handles[LW_PH_NKINDS][LW_PH_MAX_SITES];
};

static int attach_kind(struct lw_pyhooks *h, int kind)
{
	struct lw_pyhook_kind_plan *k = &h->plan.k[kind];
	char err[512];
	int i, n = 0;

	int pass;

	/* the probes that close something (a collection's end) before those that open it, so
	 * that nothing opened while attaching stays open for good */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < k->found; i++) {
			int closing = k->retprobe[i] || k->prog[i] == LW_HOOK_GC_DONE;
			int r;

			if (closing != (pass == 0))
				continue;
			r = lw_bpf__attach_hook(h->bpf, k->prog[i], h->pi->pid, k->path,
						k->offset[i], k->ref_ctr[i], k->retprobe[i], err,
						sizeof(err));
			h->handles[kind][i] = r;
			if (r < 0)
				lw_warn("pid %d: %s hook: %s", (int)h->pi->pid, KIND_NAMES[kind],
					err);
			else
				n++;
		}
	}
	h->attached[kind] = 1;
	return n;
}

int lw_pyhooks__new(struct lw_bpf *b, const struct lw_pyinfo *pi, const char *proc_root,
		    struct lw_pyhooks **out)
{
	struct lw_pyhooks *h = calloc(1, sizeof(*h));
	int i, j;

	if (!h)
		return -ENOMEM;
	h->bpf = b;
	h->pi = pi;
	lw_strlcpy(h->proc_root, proc_root, sizeof(h->proc_root));
	for (i = 0; i < LW_PH_NKINDS; i++)
		for (j = 0; j < LW_PH_MAX_SITES; j++)
			h->handles[i][j] = -1;
	lw_pyhooks_plan(pi, proc_root, &h->plan);
	for (i = 0; i < LW_PH_NKINDS; i++)
		if (h->plan.k[i].found)
			attach_kind(h, i);
	*out = h;
	return 0;
}

int lw_pyhooks__complete(const struct lw_pyhooks *h)
{
	return !h->plan.k[LW_PH_NEVER_RETRIEVED].waiting;
}

int lw_pyhooks__update(struct lw_pyhooks *h)
{
	struct lw_pyhook_plan *p;
	int changed = 0, i;

	if (lw_pyhooks__complete(h))
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return 0;
	lw_pyhooks_plan(h->pi, h->proc_root, p);
	for (i = LW_PH_NEVER_RETRIEVED; i <= LW_PH_DESTROYED_PENDING; i++) {
		if (h->attached[i] || p->k[i].waiting)
			continue;
		h->plan.k[i] = p->k[i];
		if (p->k[i].found && attach_kind(h, i))
			changed = 1;
		h->attached[i] = 1;
	}
	h->plan.k[LW_PH_NEVER_RETRIEVED].waiting = p->k[LW_PH_NEVER_RETRIEVED].waiting;
	h->plan.k[LW_PH_DESTROYED_PENDING].waiting = p->k[LW_PH_DESTROYED_PENDING].waiting;
	free(p);
	return changed;
}

const struct lw_pyhook_plan *lw_pyhooks__plan(const struct lw_pyhooks *h)
{
	return &h->plan;
}

void lw_pyhooks__free(struct lw_pyhooks *h)
{
	int i, j;

	if (!h)
		return;
	for (i = 0; i < LW_PH_NKINDS; i++)
		for (j = 0; j < LW_PH_MAX_SITES; j++)
			if (h->handles[i][j] >= 0)
				lw_bpf__detach_hook(h->bpf, h->handles[i][j]);
	free(h);
}
