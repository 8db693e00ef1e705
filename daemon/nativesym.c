// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "nativesym.h"
#include "elfsym.h"
#include "lw_util.h"
#include "procmaps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELVES 64

struct elf_slot {
	char *path;
	struct lw_elf *elf;	/* NULL: could not open */
};

struct lw_nativesym {
	char proc_root[64];
	pid_t pid;
	struct lw_maps *maps;
	int maps_reloaded;
	struct elf_slot elves[MAX_ELVES];
	int nelves;
};

int lw_nativesym__new(const char *proc_root, pid_t pid, struct lw_nativesym **out)
{
	struct lw_nativesym *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	lw_strlcpy(s->proc_root, proc_root, sizeof(s->proc_root));
	s->pid = pid;
	*out = s;
	return 0;
}

void lw_nativesym__free(struct lw_nativesym *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < s->nelves; i++) {
		lw_elf__close(s->elves[i].elf);
		free(s->elves[i].path);
	}
	lw_maps__free(s->maps);
	free(s);
}

static struct lw_elf *elf_for(struct lw_nativesym *s, const char *path)
{
	char host[4096];
	int i;

	for (i = 0; i < s->nelves; i++)
		if (strcmp(s->elves[i].path, path) == 0)
			return s->elves[i].elf;
	if (s->nelves == MAX_ELVES) {
		/* simple eviction: drop the oldest */
		lw_elf__close(s->elves[0].elf);
		free(s->elves[0].path);
		memmove(&s->elves[0], &s->elves[1], sizeof(s->elves[0]) * (MAX_ELVES - 1));
		s->nelves--;
	}
	snprintf(host, sizeof(host), "%s/%d/root%s", s->proc_root, (int)s->pid, path);
	s->elves[s->nelves].path = strdup(path);
	s->elves[s->nelves].elf = NULL;
	if (!s->elves[s->nelves].path)
		return NULL;
	if (lw_elf__open(host, &s->elves[s->nelves].elf))
		s->elves[s->nelves].elf = NULL;
	return s->elves[s->nelves++].elf;
}

int lw_nativesym__resolve(struct lw_nativesym *s, uint64_t addr, struct lw_native_frame *out)
{
	const struct lw_map *m = NULL;
	struct lw_elf *e;
	uint64_t base, vaddr, off;
	const char *name;

	memset(out, 0, sizeof(*out));
	if (!s->maps && lw_maps__load(s->proc_root, s->pid, &s->maps))
		return -ENOENT;
	m = lw_maps__find_addr(s->maps, addr);
	if (!m && !s->maps_reloaded) {
		/* a library loaded since: read the maps again, once */
		lw_maps__free(s->maps);
		s->maps = NULL;
		s->maps_reloaded = 1;
		if (lw_maps__load(s->proc_root, s->pid, &s->maps))
			return -ENOENT;
		m = lw_maps__find_addr(s->maps, addr);
	}
	if (!m || m->path[0] != '/')
		return -ENOENT;
	out->module = lw_basename(m->path);
	out->offset = addr - m->start + m->offset;
	e = elf_for(s, m->path);
	if (!e)
		return 0;
	if (lw_elf__offset_to_vaddr(e, m->offset, &base))
		return 0;
	vaddr = base + (addr - m->start);
	if (lw_elf__symbolize(e, vaddr, &name, &off) == 0) {
		out->symbol = name;
		out->offset = off;
	}
	return 0;
}
