// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/procmaps.h"
#include "base/lw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct lw_maps {
	struct lw_map *v;
	size_t n;
	size_t cap;
	size_t skipped;
};

static int hexval(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int digits = 0;

	while (p < end) {
		char ch = *p;
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			break;
		if (digits >= 16)
			return -1;
		v = (v << 4) | d;
		digits++;
		p++;
	}
	if (!digits)
		return -1;
	*pp = p;
	*out = v;
	return 0;
}

static int decval(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int digits = 0;

	while (p < end && *p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		digits++;
		p++;
	}
	if (!digits)
		return -1;
	*pp = p;
	*out = v;
	return 0;
}

static int expect(const char **pp, const char *end, char ch)
{
	if (*pp >= end || **pp != ch)
		return -1;
	(*pp)++;
	return 0;
}

static void skip_spaces(const char **pp, const char *end)
{
	while (*pp < end && (**pp == ' ' || **pp == '\t'))
		(*pp)++;
}

/* "start-end perms offset major:minor inode [path]" */
static int parse_line(const char *p, const char *end, struct lw_map *m)
{
	uint64_t maj, min;
	size_t plen;
	static const char del[] = " (deleted)";

	memset(m, 0, sizeof(*m));
	if (hexval(&p, end, &m->start) || expect(&p, end, '-') || hexval(&p, end, &m->end))
		return -1;
	if (m->end < m->start)
		return -1;
	skip_spaces(&p, end);
	if (end - p < 4)
		return -1;
	memcpy(m->perms, p, 4);
	m->perms[4] = 0;
	p += 4;
	skip_spaces(&p, end);
	if (hexval(&p, end, &m->offset))
		return -1;
	skip_spaces(&p, end);
	if (hexval(&p, end, &maj) || expect(&p, end, ':') || hexval(&p, end, &min))
		return -1;
	m->dev_major = (unsigned)maj;
	m->dev_minor = (unsigned)min;
	skip_spaces(&p, end);
	if (decval(&p, end, &m->inode))
		return -1;
	skip_spaces(&p, end);
	plen = (size_t)(end - p);
	if (plen >= sizeof(del) - 1 && memcmp(end - (sizeof(del) - 1), del, sizeof(del) - 1) == 0) {
		m->deleted = 1;
		plen -= sizeof(del) - 1;
	}
	m->path = strndup(p, plen);
	return m->path ? 0 : -ENOMEM;
}

int lw_maps__parse(const char *text, size_t len, struct lw_maps **out)
{
	struct lw_maps *m = calloc(1, sizeof(*m));
	const char *p = text, *end = text + len;
	int err = 0;

	if (!m)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		struct lw_map e;

		if (le > p) {
			int r = parse_line(p, le, &e);

			if (r == -ENOMEM) {
				err = r;
				goto fail;
			}
			if (r) {
				m->skipped++;
			} else {
				if (m->n == m->cap) {
					size_t nc = m->cap ? m->cap * 2 : 64;
					struct lw_map *nv = realloc(m->v, nc * sizeof(*nv));

					if (!nv) {
						free(e.path);
						err = -ENOMEM;
						goto fail;
					}
					m->v = nv;
					m->cap = nc;
				}
				m->v[m->n++] = e;
			}
		}
		p = nl ? nl + 1 : end;
	}
	*out = m;
	return 0;
fail:
	lw_maps__free(m);
	return err;
}

int lw_maps__load(const char *proc_root, pid_t pid, struct lw_maps **out)
{
	char path[256], *text = NULL;
	size_t len = 0;
	int err;

	snprintf(path, sizeof(path), "%s/%d/maps", proc_root, (int)pid);
	err = lw_read_file(path, 64 << 20, &text, &len);
	if (err)
		return err;
	err = lw_maps__parse(text, len, out);
	free(text);
	return err;
}

void lw_maps__free(struct lw_maps *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	free(m);
}

size_t lw_maps__count(const struct lw_maps *m)
{
	return m->n;
}

const struct lw_map *lw_maps__get(const struct lw_maps *m, size_t i)
{
	return i < m->n ? &m->v[i] : NULL;
}

size_t lw_maps__skipped(const struct lw_maps *m)
{
	return m->skipped;
}

const struct lw_map *lw_maps__find_addr(const struct lw_maps *m, uint64_t addr)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (addr >= m->v[i].start && addr < m->v[i].end)
			return &m->v[i];
	return NULL;
}

const struct lw_map *lw_maps__find_lib(const struct lw_maps *m, const char *prefix)
{
	size_t i, pl = strlen(prefix);

	for (i = 0; i < m->n; i++) {
		const char *b;

		if (m->v[i].path[0] != '/')
			continue;
		b = lw_basename(m->v[i].path);
		if (strncmp(b, prefix, pl) == 0)
			return &m->v[i];
	}
	return NULL;
}

const struct lw_map *lw_maps__first_of(const struct lw_maps *m, const char *path)
{
	const struct lw_map *best = NULL;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->v[i].path, path) == 0 && (!best || m->v[i].start < best->start))
			best = &m->v[i];
	return best;
}

const struct lw_map *lw_maps__exe(const struct lw_maps *m, const char *proc_root, pid_t pid,
				  char *exe, size_t exelen)
{
	char path[128];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/exe", proc_root, (int)pid);
	n = readlink(path, exe, exelen - 1);
	if (n <= 0) {
		exe[0] = 0;
		return NULL;
	}
	exe[n] = 0;
	return lw_maps__first_of(m, exe);
}

const struct lw_map *lw_maps__node_image(const struct lw_maps *m, const char *proc_root, pid_t pid)
{
	const struct lw_map *lib = lw_maps__find_lib(m, "libnode.so");
	char exe[4096];

	return lib ? lw_maps__first_of(m, lib->path) : lw_maps__exe(m, proc_root, pid, exe, sizeof(exe));
}

/*
 * The file a mapping maps, the very inode (issue 13): a chroot shows paths from the reader's
 * root, a container relative to its own root, and a package upgrade leaves "PATH (deleted)"
 * with another file at PATH. Tried in order, each checked against the maps line's device and
 * inode and opened without blocking (a FIFO put at the path) and without following a symlink
 * in the last component:
 *   1. /proc/PID/map_files/START-END (root: the mapped file itself, even deleted);
 *   2. /proc/PID/root + path (the path as the target sees it);
 *   3. the path as shown.
 */
static int open_checked(const char *path, const struct lw_map *m, int nofollow)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != m->inode ||
	    major(st.st_dev) != m->dev_major || minor(st.st_dev) != m->dev_minor) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int lw_maps__open_mapped(const char *proc_root, pid_t pid, const struct lw_map *m, char *via,
			 size_t vialen)
{
	char cand[PATH_MAX + 96];
	int fd, err = -ENOENT;

	if (!m->path[0] || m->path[0] == '[' || !m->inode)
		return -ENOENT;
	snprintf(cand, sizeof(cand), "%s/%d/map_files/%" PRIx64 "-%" PRIx64, proc_root, (int)pid,
		 m->start, m->end);
	fd = open_checked(cand, m, 0);
	if (fd < 0) {
		err = fd;
		if (m->path[0] != '/')
			return err;
		snprintf(cand, sizeof(cand), "%s/%d/root%s", proc_root, (int)pid, m->path);
		fd = open_checked(cand, m, 1);
	}
	if (fd < 0 && m->path[0] == '/') {
		if (fd != -ENOENT)
			err = fd;
		lw_strlcpy(cand, m->path, sizeof(cand));
		fd = open_checked(cand, m, 1);
		if (fd == -ENOENT)
			fd = err;
	}
	if (fd >= 0 && via)
		lw_strlcpy(via, cand, vialen);
	return fd;
}

void lw_maps__target_path(const char *proc_root, pid_t pid, const char *path, char *out,
			  size_t outlen)
{
	char link[96], root[PATH_MAX];
	ssize_t n;
	size_t rl;

	snprintf(link, sizeof(link), "%s/%d/root", proc_root, (int)pid);
	n = readlink(link, root, sizeof(root) - 1);
	lw_strlcpy(out, path, outlen);
	if (n <= 1 || root[0] != '/')
		return;
	root[n] = 0;
	rl = (size_t)n;
	/* a plain chroot: maps shows DIR/usr/bin/x; the target sees /usr/bin/x */
	if (strncmp(path, root, rl) == 0 && path[rl] == '/')
		lw_strlcpy(out, path + rl, outlen);
}
