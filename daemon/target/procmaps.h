/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* /proc/PID/maps, parsed. */
#ifndef LW_PROCMAPS_H
#define LW_PROCMAPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lw_map {
	uint64_t start;
	uint64_t end;
	uint64_t offset;	/* file offset of start */
	uint64_t inode;
	unsigned dev_major;
	unsigned dev_minor;
	char perms[5];		/* "r-xp" */
	int deleted;		/* path ended in " (deleted)" (stripped from path) */
	char *path;		/* "" for anonymous; "[heap]", "[vdso]", ... kept as is */
};

struct lw_maps;

/* Parse the text of a maps file. Malformed lines are skipped and counted. 0 or -errno. */
int lw_maps__parse(const char *text, size_t len, struct lw_maps **out);
/* Read and parse /proc/PID/maps (proc_root normally "/proc"). */
int lw_maps__load(const char *proc_root, pid_t pid, struct lw_maps **out);
void lw_maps__free(struct lw_maps *m);

size_t lw_maps__count(const struct lw_maps *m);
const struct lw_map *lw_maps__get(const struct lw_maps *m, size_t i);
size_t lw_maps__skipped(const struct lw_maps *m);
/* The mapping that contains addr, or NULL */
const struct lw_map *lw_maps__find_addr(const struct lw_maps *m, uint64_t addr);
/* First mapping whose path's basename starts with `prefix` (e.g. "libpython3."), or NULL */
const struct lw_map *lw_maps__find_lib(const struct lw_maps *m, const char *prefix);
/* Lowest mapping of `path` (the one with the smallest start), or NULL */
const struct lw_map *lw_maps__first_of(const struct lw_maps *m, const char *path);
/* The executable's lowest mapping (the path /proc/PID/exe links to, as the maps show it; exe
 * gets that path), or NULL */
const struct lw_map *lw_maps__exe(const struct lw_maps *m, const char *proc_root, pid_t pid,
				  char *exe, size_t exelen);
/* Node's V8 image: a mapped libnode.so (Debian's node), else the executable; NULL if neither */
const struct lw_map *lw_maps__node_image(const struct lw_maps *m, const char *proc_root, pid_t pid);

/*
 * Open the file mapping m maps, the very inode (device and inode checked against the maps
 * line; /proc/PID/map_files/START-END first, then /proc/PID/root + path, then the path as
 * shown), read-only, O_NONBLOCK, regular files only. Returns an fd (the caller closes it) and,
 * in via, a path that resolves to the same inode (for uprobe attach by path); -errno
 * (-ESTALE: only another file sits at the path now).
 */
int lw_maps__open_mapped(const char *proc_root, pid_t pid, const struct lw_map *m, char *via,
			 size_t vialen);
/* The path a maps line shows, as the target itself sees it (a plain chroot's maps shows the
 * reader's view, DIR/usr/bin/x: DIR is stripped). */
void lw_maps__target_path(const char *proc_root, pid_t pid, const char *path, char *out,
			  size_t outlen);

#endif
