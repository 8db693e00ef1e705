// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/nativesym.h"
#include "target/memread.h"
#include "target/elfsym.h"
#include "target/jitdump.h"
#include "target/v8frame.h"
#include "base/lw_util.h"
#include "target/procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ELVES 64
/* The vDSO has no file: its image is read from the target once, at most this much */
#define VDSO_MAX (64u << 10)

struct elf_slot {
	char *path;
	struct lw_elf *elf;	/* NULL: could not open */
	struct lw_elf *dbg;	/* separate debug file with the symbols, when there is one */
};

/*
 * A JIT's perf map (/tmp/perf-PID.map: "START SIZE name" in hex), sorted by start.
 *
 * The target writes the file: it may be huge, grow without end, or be rewritten (issue 19: a
 * 256 MiB map was read whole and copied line by line up to 20 times a second). It is read
 * incrementally: only what was appended since the last read, at most PM_CHUNK bytes a read; a
 * line longer than PM_LINE_MAX is skipped and counted; the entries kept are bounded by
 * PM_BUDGET, and their names by PM_NAME_BYTES (a map of 1 KiB names: 131,072 of them were
 * 128 MiB), the least recently used (written or looked up) evicted first and counted.
 */
#define PM_BUDGET 131072
#define PM_NAME_BYTES (16u << 20)
#define PM_CHUNK (8u << 20)
#define PM_LINE_MAX 1024

struct pmap_ent {
	uint64_t start, size;
	size_t seq;		/* its line's order in the file: a later line wins */
	uint64_t used;		/* when written or last looked up (s->pm_clock) */
	char *name;
};

/*
 * V8's jitdump (--perf-prof: jit-PID.dump in node's working directory, mmapped so that perf
 * finds it): found and read here, parsed by jitdump.c. Read incrementally (whole records, at
 * most LW_JITDUMP_CHUNK bytes a read).
 */
#define JD_CHUNK LW_JITDUMP_CHUNK

struct lw_nativesym {
	char proc_root[64];
	pid_t pid;
	struct pmap_ent *pm;
	size_t npm;
	size_t pm_budget;
	size_t pm_name_bytes;		/* of the names kept (strlen + 1 each) */
	size_t pm_name_budget;
	size_t pm_seq;			/* lines read so far */
	uint64_t pm_clock;
	off_t pm_off;			/* bytes of the file consumed (whole lines) */
	dev_t pm_dev;
	ino_t pm_ino;
	int pm_skipping;		/* inside an over-long line: skip to its end */
	uint64_t pm_checked;		/* when its size was last looked at */
	struct lw_perfmap_stats pm_st;
	struct lw_jitdump jd;		/* the jitdump's code with line tables */
	char jd_path[512];		/* the jitdump's mapping ("" not found yet) */
	struct lw_map jd_map;
	off_t jd_off;			/* bytes consumed (whole records) */
	dev_t jd_dev;
	ino_t jd_ino;
	uint64_t jd_checked;
	struct lw_jitdump jt;		/* the records still in V8's stdio buffer (jd_tail) */
	uint64_t jt_list;		/* libc's _IO_list_all in the target */
	int jt_state;			/* 0 not looked for, 1 found, -1 none (not glibc) */
	uint64_t jt_checked;
	off_t jt_size;			/* the file's size and the buffer's span when read */
	uint64_t jt_wbase, jt_wptr;
	struct lw_maps *maps;
	int maps_reloaded;
	struct elf_slot elves[MAX_ELVES];
	int nelves;
	uint64_t vdso_start;		/* the vDSO image read from there (0: not yet) */
	void *vdso_buf;
	struct lw_elf *vdso;		/* parsed; NULL: unreadable */
	int v8_state;			/* V8's metadata: 0 not read yet, 1 read, -1 none */
	struct lw_v8meta v8;
	char v8_why[256];
};

int lw_nativesym__new(const char *proc_root, pid_t pid, struct lw_nativesym **out)
{
	struct lw_nativesym *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	lw_strlcpy(s->proc_root, proc_root, sizeof(s->proc_root));
	s->pid = pid;
	s->pm_budget = PM_BUDGET;
	s->pm_name_budget = PM_NAME_BYTES;
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
		lw_elf__close(s->elves[i].dbg);
		free(s->elves[i].path);
	}
	lw_maps__free(s->maps);
	lw_elf__close(s->vdso);
	free(s->vdso_buf);
	for (i = 0; i < (int)s->npm; i++)
		free(s->pm[i].name);
	free(s->pm);
	lw_jitdump__clear(&s->jd);
	lw_jitdump__clear(&s->jt);
	free(s);
}

/*
 * A stripped binary's symbols may be in a separate debug file: by build-id under
 * /usr/lib/debug/.build-id/, or by .gnu_debuglink next to it, in .debug/, or under /usr/lib/debug.
 */
static struct lw_elf *open_debug(struct lw_nativesym *s, const char *path, struct lw_elf *e)
{
	char id[128], link[256], cand[4800], dir[4096];
	struct lw_elf *d = NULL;
	const char *slash;

	if (lw_elf__has_symtab(e))
		return NULL;
	if (lw_elf__build_id(e, id, sizeof(id)) == 0 && strlen(id) > 2) {
		snprintf(cand, sizeof(cand), "%s/%d/root/usr/lib/debug/.build-id/%.2s/%s.debug",
			 s->proc_root, (int)s->pid, id, id + 2);
		if (lw_elf__open(cand, &d) == 0)
			return d;
	}
	if (lw_elf__debuglink(e, link, sizeof(link)) || strchr(link, '/'))
		return NULL;
	slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	snprintf(cand, sizeof(cand), "%s/%d/root%s/%s", s->proc_root, (int)s->pid, dir, link);
	if (strcmp(lw_basename(path), link) && lw_elf__open(cand, &d) == 0)
		return d;
	snprintf(cand, sizeof(cand), "%s/%d/root%s/.debug/%s", s->proc_root, (int)s->pid, dir, link);
	if (lw_elf__open(cand, &d) == 0)
		return d;
	snprintf(cand, sizeof(cand), "%s/%d/root/usr/lib/debug%s/%s", s->proc_root, (int)s->pid, dir,
		 link);
	if (lw_elf__open(cand, &d) == 0)
		return d;
	return NULL;
}

static struct elf_slot *elf_for(struct lw_nativesym *s, const struct lw_map *m)
{
	char host[4200], seen[4096];
	struct elf_slot *slot;
	const char *path = m->path;
	int i, fd;

	for (i = 0; i < s->nelves; i++)
		if (strcmp(s->elves[i].path, path) == 0)
			return &s->elves[i];
	if (s->nelves == MAX_ELVES) {
		/* simple eviction: drop the oldest */
		lw_elf__close(s->elves[0].elf);
		lw_elf__close(s->elves[0].dbg);
		free(s->elves[0].path);
		memmove(&s->elves[0], &s->elves[1], sizeof(s->elves[0]) * (MAX_ELVES - 1));
		s->nelves--;
	}
	slot = &s->elves[s->nelves];
	memset(slot, 0, sizeof(*slot));
	slot->path = strdup(path);
	if (!slot->path)
		return NULL;
	/* the very file mapped (replaced or deleted since, in a chroot or a container) */
	fd = lw_maps__open_mapped(s->proc_root, s->pid, m, host, sizeof(host));
	if (fd < 0 || lw_elf__open_fd(fd, host, &slot->elf)) {
		slot->elf = NULL;
	} else {
		/* debug files are looked up where the target sees its file */
		lw_maps__target_path(s->proc_root, s->pid, path, seen, sizeof(seen));
		slot->dbg = open_debug(s, seen, slot->elf);
	}
	s->nelves++;
	return slot;
}

static int pm_cmp(const void *a, const void *b)
{
	const struct pmap_ent *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void pm_clear(struct lw_nativesym *s)
{
	for (size_t i = 0; i < s->npm; i++)
		free(s->pm[i].name);
	free(s->pm);
	s->pm = NULL;
	s->npm = 0;
	s->pm_seq = 0;
	s->pm_name_bytes = 0;
}

struct pm_use {
	uint64_t used;
	size_t bytes;
};

static int use_cmp_desc(const void *a, const void *b)
{
	uint64_t x = ((const struct pm_use *)a)->used, y = ((const struct pm_use *)b)->used;

	return x > y ? -1 : x < y;
}

static size_t pm_name_size(const struct pmap_ent *e)
{
	return strlen(e->name) + 1;
}

/* Over budget (entries or name bytes): the least recently used go until three quarters of
 * each budget are left (a quarter at once, not one at every line), counted */
static void pm_evict(struct lw_nativesym *s)
{
	struct pm_use *u;
	uint64_t cut = 0;
	int chose;
	size_t i, k = 0, keep = s->pm_budget - s->pm_budget / 4, bytes = 0;
	size_t keep_bytes = s->pm_name_budget - s->pm_name_budget / 4;

	if (s->npm <= s->pm_budget && s->pm_name_bytes <= s->pm_name_budget)
		return;
	u = malloc(s->npm * sizeof(*u));
	chose = u != NULL;
	if (u) {
		for (i = 0; i < s->npm; i++) {
			u[i].used = s->pm[i].used;
			u[i].bytes = pm_name_size(&s->pm[i]);
		}
		qsort(u, s->npm, sizeof(*u), use_cmp_desc);
		/* the most recently used first, while both budgets' three quarters hold */
		cut = UINT64_MAX;
		for (i = 0; i < s->npm && i < keep && bytes + u[i].bytes <= keep_bytes; i++) {
			bytes += u[i].bytes;
			cut = u[i].used;	/* keep those used at cut or later */
		}
		free(u);
	}
	s->pm_name_bytes = 0;
	for (i = 0; i < s->npm; i++) {
		/* without memory to choose: the lowest addresses go */
		if (chose ? s->pm[i].used < cut : s->npm - i > keep - k) {
			free(s->pm[i].name);
			s->pm_st.evicted++;
			continue;
		}
		s->pm_name_bytes += pm_name_size(&s->pm[i]);
		s->pm[k++] = s->pm[i];
	}
	s->npm = k;
}

/* Parse the lines of text (len bytes, modified) and merge them into the sorted entries */
static void pm_add_lines(struct lw_nativesym *s, char *text, size_t len)
{
	struct pmap_ent *add = NULL, *m;
	size_t nadd = 0, cap = 0, i, j, k, add_bytes = 0;
	char *line, *next, *end = text + len;

	for (line = text; line < end; line = next) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		unsigned long long a, z;
		int n = 0;

		if (!nl)
			nl = end;
		*nl = 0;
		next = nl + 1;
		s->pm_seq++;
		if ((size_t)(nl - line) > PM_LINE_MAX) {
			s->pm_st.skipped++;
			continue;
		}
		if (sscanf(line, "%llx %llx %n", &a, &z, &n) != 2 || !n || !line[n] || !z ||
		    a + z < a)
			continue;
		if (nadd == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct pmap_ent *np = realloc(add, nc * sizeof(*np));

			if (!np)
				break;
			add = np;
			cap = nc;
		}
		add[nadd].start = a;
		add[nadd].size = z;
		add[nadd].seq = s->pm_seq;
		add[nadd].used = ++s->pm_clock;
		add[nadd].name = strdup(line + n);
		if (add[nadd].name)
			add_bytes += pm_name_size(&add[nadd++]);
		/* a flood of new lines in one read: the budgets hold as they come (newest stay) */
		if (nadd >= 2 * s->pm_budget || add_bytes >= 2 * s->pm_name_budget) {
			for (i = 0; i < nadd && (nadd - i > s->pm_budget ||
						 add_bytes > s->pm_name_budget); i++) {
				add_bytes -= pm_name_size(&add[i]);
				free(add[i].name);
				s->pm_st.evicted++;
			}
			memmove(add, add + i, (nadd - i) * sizeof(*add));
			nadd -= i;
		}
	}
	if (!nadd) {
		free(add);
		return;
	}
	qsort(add, nadd, sizeof(*add), pm_cmp);
	m = malloc((s->npm + nadd) * sizeof(*m));
	if (!m) {
		for (i = 0; i < nadd; i++)
			free(add[i].name);
		free(add);
		return;
	}
	s->pm_name_bytes += add_bytes;
	/*
	 * Merge the two sorted runs, keeping no two entries that overlap. V8 reuses the memory of
	 * code it dropped and appends the new code's line, and live code never overlaps: of two
	 * lines that overlap, the one written first is code that is gone, whether it starts at the
	 * same address, lower, or inside the newer one. The kept entries do not overlap, so the new
	 * one can overlap only the last kept (the one before that ends where the last starts, or
	 * lower). Before, overlapping lines were all kept and a lookup looked back 32 entries for
	 * the newest that covered the address: a function compiled over more than 32 small, dropped
	 * code objects (V8's per-function trampoline copies) was then named after an older, larger
	 * one that had covered the address before (issue 21's CI miss: /busy's on-stack-replaced
	 * loop named "restore" of Express's router).
	 */
	for (i = j = k = 0; i < s->npm || j < nadd;) {
		struct pmap_ent e;

		if (j >= nadd || (i < s->npm && pm_cmp(&s->pm[i], &add[j]) <= 0))
			e = s->pm[i++];
		else
			e = add[j++];
		if (k && e.start - m[k - 1].start < m[k - 1].size) {
			struct pmap_ent *gone = m[k - 1].seq < e.seq ? &m[k - 1] : &e;

			s->pm_name_bytes -= pm_name_size(gone);
			free(gone->name);
			s->pm_st.replaced++;
			if (gone == &m[k - 1])
				m[k - 1] = e;
		} else {
			m[k++] = e;
		}
	}
	free(add);
	free(s->pm);
	s->pm = m;
	s->npm = k;
	pm_evict(s);
}

int lw_nativesym__load_perf_map(struct lw_nativesym *s, char *text)
{
	pm_clear(s);
	pm_add_lines(s, text, strlen(text));
	return (int)s->npm;
}

void lw_nativesym__set_perf_map_budget(struct lw_nativesym *s, size_t entries)
{
	s->pm_budget = entries ? entries : PM_BUDGET;
}

void lw_nativesym__set_perf_map_name_budget(struct lw_nativesym *s, size_t bytes)
{
	s->pm_name_budget = bytes ? bytes : PM_NAME_BYTES;
}

void lw_nativesym__perf_map_stats(const struct lw_nativesym *s, struct lw_perfmap_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	*out = s->pm_st;
	out->entries = s->npm;
}

/* Read what was appended to the perf map since the last read (whole lines, at most PM_CHUNK
 * bytes); all of it again when the file was replaced or cut. At most once a second, or every
 * 50 ms when an address was not found in it (a function just compiled, e.g. by on-stack
 * replacement while it runs), or at every record's stack (lw_nativesym__sync: missed 3) */
static void pmap_refresh(struct lw_nativesym *s, int missed)
{
	char path[256], *buf, *start, *last_nl;
	struct stat st;
	uint64_t now = lw_now_mono();
	size_t want, got = 0, use;
	int fd;

	if (missed != 3 && s->pm_checked &&
	    now - s->pm_checked < (missed ? 50000000ull : 1000000000ull))
		return;
	s->pm_checked = now;
	snprintf(path, sizeof(path), "%s/%d/root/tmp/perf-%d.map", s->proc_root, (int)s->pid,
		 (int)lw_ns_pid(s->proc_root, s->pid));
	/* the target owns /tmp/perf-PID.map: never block on a FIFO, never follow a link */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	if (st.st_dev != s->pm_dev || st.st_ino != s->pm_ino || st.st_size < s->pm_off) {
		/* another file, or cut short: from the start */
		pm_clear(s);
		s->pm_off = 0;
		s->pm_skipping = 0;
		s->pm_dev = st.st_dev;
		s->pm_ino = st.st_ino;
	}
	if (st.st_size == s->pm_off) {
		close(fd);
		return;
	}
	want = (size_t)(st.st_size - s->pm_off);
	if (want > PM_CHUNK)
		want = PM_CHUNK;
	buf = malloc(want + 1);
	if (!buf) {
		close(fd);
		return;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, s->pm_off + (off_t)got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	s->pm_st.bytes_read += got;
	buf[got] = 0;
	start = buf;
	if (s->pm_skipping) {
		/* the rest of an over-long line */
		char *nl = memchr(buf, '\n', got);

		if (!nl) {
			s->pm_off += (off_t)got;
			free(buf);
			return;
		}
		start = nl + 1;
		s->pm_skipping = 0;
	}
	last_nl = memrchr(start, '\n', got - (size_t)(start - buf));
	if (last_nl) {
		use = (size_t)(last_nl + 1 - buf);
		pm_add_lines(s, start, (size_t)(last_nl - start));
	} else {
		/* no whole line yet: wait for its end, unless it is too long already */
		use = (size_t)(start - buf);
		if (got - use > PM_LINE_MAX) {
			s->pm_skipping = 1;
			s->pm_st.skipped++;
			s->pm_seq++;
			use = got;
		}
	}
	s->pm_off += (off_t)use;
	free(buf);
}

/* the index of the entry for addr, or -ENOENT */
static long pm_find(const struct lw_nativesym *s, uint64_t addr)
{
	size_t lo = 0, hi = s->npm;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->pm[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* the entry before addr covers it, or none does: entries do not overlap (pm_add_lines) */
	if (!lo || addr - s->pm[lo - 1].start >= s->pm[lo - 1].size)
		return -ENOENT;
	return (long)lo - 1;
}

int lw_nativesym__jit_lookup(const struct lw_nativesym *s, uint64_t addr,
			     struct lw_native_frame *out)
{
	long i = pm_find(s, addr);

	if (i < 0)
		return -ENOENT;
	out->symbol = s->pm[i].name;
	out->module = "[jit]";
	out->offset = addr - s->pm[i].start;
	return 0;
}

/* found entries are in use: the last to be evicted */
static int pmap_lookup(struct lw_nativesym *s, uint64_t addr, struct lw_native_frame *out)
{
	long i;

	pmap_refresh(s, 0);
	if ((i = pm_find(s, addr)) < 0) {
		pmap_refresh(s, 1);
		i = pm_find(s, addr);
	}
	if (i < 0)
		return -ENOENT;
	s->pm[i].used = ++s->pm_clock;
	return lw_nativesym__jit_lookup(s, addr, out);
}

static void jd_refresh(struct lw_nativesym *s);

/*
 * Before a stack is named: what V8 appended since the last read, however recent. A function
 * compiled by on-stack replacement moments before the sample has its line written by then,
 * and an older line may cover its address (dropped code): with a read up to 5 ms old, the
 * first slow /busy of issue 21's Express test was named after the dropped code
 * ("*get node:_http_incoming", "*normalizeParseOptions"), and its live look's naming was kept
 * for the record. Each byte is still read once (the reads continue where the last ended);
 * what this adds is an open and an fstat per stack named.
 */
void lw_nativesym__sync(struct lw_nativesym *s)
{
	pmap_refresh(s, 3);
	if (s->jd_path[0])
		s->jd_checked = 0;
	jd_refresh(s);
}

/* ------------------------------------------------------------------ V8's jitdump */

/* the jitdump: a mapping of a file named jit-NSPID.dump (V8 maps it for perf to find) */
static int jd_find(struct lw_nativesym *s)
{
	struct lw_maps *maps = NULL;
	char want[48];
	size_t i;

	snprintf(want, sizeof(want), "jit-%d.dump", (int)lw_ns_pid(s->proc_root, s->pid));
	if (lw_maps__load(s->proc_root, s->pid, &maps))
		return -ENOENT;
	for (i = 0; i < lw_maps__count(maps); i++) {
		const struct lw_map *m = lw_maps__get(maps, i);

		if (m->path[0] == '/' && strcmp(lw_basename(m->path), want) == 0 &&
		    strlen(m->path) < sizeof(s->jd_path)) {
			s->jd_map = *m;
			lw_strlcpy(s->jd_path, m->path, sizeof(s->jd_path));
			s->jd_map.path = s->jd_path;
			break;
		}
	}
	lw_maps__free(maps);
	return s->jd_path[0] ? 0 : -ENOENT;
}

/* Read the records appended since the last read (whole records, at most JD_CHUNK bytes; a
 * larger one is stepped over). At most every 5 ms, once a second while none is found. */
static void jd_refresh(struct lw_nativesym *s)
{
	struct lw_jitdump_names names = { 0 };
	unsigned char *buf;
	struct stat st;
	uint64_t now = lw_now_mono();
	size_t want, got = 0, at;
	int fd;

	if (s->jd_checked && now - s->jd_checked < (s->jd_path[0] ? 5000000ull : 1000000000ull))
		return;
	s->jd_checked = now;
	if (!s->jd_path[0] && jd_find(s))
		return;
	/* the very file mapped (through map_files/: in a chroot or a container too) */
	fd = lw_maps__open_mapped(s->proc_root, s->pid, &s->jd_map, NULL, 0);
	if (fd < 0) {
		s->jd_path[0] = 0;	/* unmapped since: look again */
		return;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	if (st.st_dev != s->jd_dev || st.st_ino != s->jd_ino || st.st_size < s->jd_off) {
		lw_jitdump__clear(&s->jd);
		s->jd_off = 0;
		s->jd_dev = st.st_dev;
		s->jd_ino = st.st_ino;
	}
	if (st.st_size <= s->jd_off) {
		close(fd);
		return;
	}
	want = (size_t)(st.st_size - s->jd_off);
	if (want > JD_CHUNK)
		want = JD_CHUNK;
	buf = malloc(want);
	if (!buf) {
		close(fd);
		return;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, s->jd_off + (off_t)got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	at = lw_jitdump__feed(&s->jd, buf, got, s->jd_off == 0, (uint64_t)(st.st_size - s->jd_off),
			      s->pm_dev ? NULL : &names);
	s->jd_off += (off_t)at;
	free(buf);
	if (names.len)
		pm_add_lines(s, names.text, names.len);
	free(names.text);
}

/*
 * The jitdump's tail still in V8's stdio buffer. V8 writes the file through a FILE with a 2 MB
 * buffer (setvbuf): the code it compiled last (a function just optimized, on-stack
 * replacement of a hot loop) is in the file only once 2 MB more were written after it, or at
 * exit. Until then its records sit in the target's memory, between the FILE's _IO_write_base
 * and _IO_write_ptr, and follow the file's last byte: they are read from there (read-only,
 * bounded, allowed to fail), parsed into a table of their own, replaced on each read.
 * The FILE is found through glibc's list of open streams (_IO_list_all, a symbol libc.so.6
 * exports), by its descriptor: the one open on the jitdump file itself (same device and inode).
 * The layout is glibc's struct _IO_FILE on x86-64, part of its ABI (unchanged since 2.1):
 */
#define JT_FILE_FLAGS 0		/* int; _IO_MAGIC 0xFBAD0000 in its high half */
#define JT_FILE_WBASE 32	/* _IO_write_base */
#define JT_FILE_WPTR 40		/* _IO_write_ptr */
#define JT_FILE_WEND 48		/* _IO_write_end */
#define JT_FILE_CHAIN 104	/* _chain: the next stream */
#define JT_FILE_FILENO 112	/* int */
#define JT_FILE_SIZE 120	/* the bytes read of each */
#define JT_STREAMS 256		/* streams looked at, at most */
#if defined(__GLIBC__) && defined(__x86_64__)
#include <stddef.h>
_Static_assert(offsetof(struct _IO_FILE, _IO_write_base) == JT_FILE_WBASE &&
		       offsetof(struct _IO_FILE, _IO_write_ptr) == JT_FILE_WPTR &&
		       offsetof(struct _IO_FILE, _IO_write_end) == JT_FILE_WEND &&
		       offsetof(struct _IO_FILE, _chain) == JT_FILE_CHAIN &&
		       offsetof(struct _IO_FILE, _fileno) == JT_FILE_FILENO,
	       "glibc's struct _IO_FILE as jd_tail reads it");
#endif

/* libc's _IO_list_all in the target: 0, or -ENOENT (no glibc mapped, no such symbol) */
static int jt_find_list(struct lw_nativesym *s)
{
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	uint64_t v, base;
	int fd, r = -ENOENT;

	if (lw_maps__load(s->proc_root, s->pid, &maps))
		return -ENOENT;
	m = lw_maps__find_lib(maps, "libc.so.6");
	if (!m)
		m = lw_maps__find_lib(maps, "libc-");
	fd = m ? lw_maps__open_mapped(s->proc_root, s->pid, m, NULL, 0) : -ENOENT;
	if (fd >= 0 && lw_elf__open_fd(fd, m->path, &e) == 0) {
		if (lw_elf__find_symbol(e, "_IO_list_all", &v, NULL) == 0 &&
		    lw_elf__offset_to_vaddr(e, m->offset, &base) == 0) {
			s->jt_list = v - base + m->start;
			r = 0;
		}
		lw_elf__close(e);
	}
	lw_maps__free(maps);
	return r;
}

/* fd of the target open on the jitdump file (the device and inode read)? */
static int jt_is_jitdump_fd(const struct lw_nativesym *s, int fileno)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%d/fd/%d", s->proc_root, (int)s->pid, fileno);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == s->jd_dev &&
	       st.st_ino == s->jd_ino;
}

/* The jitdump's FILE: its address, and the span of its buffer not written yet. 0 or -ENOENT */
static int jt_find_file(const struct lw_nativesym *s, const struct lw_reader *heap,
			uint64_t *file, uint64_t *wbase, uint64_t *wptr)
{
	unsigned char f[JT_FILE_SIZE];
	uint64_t fp = 0, wend;
	uint32_t flags;
	int32_t fileno;
	int i;

	if (lw_mem_read_u64(heap, s->jt_list, &fp))
		return -ENOENT;
	for (i = 0; fp && i < JT_STREAMS; i++) {
		if (lw_mem_read(heap, fp, f, sizeof(f)))
			return -ENOENT;
		memcpy(&flags, f + JT_FILE_FLAGS, 4);
		memcpy(&fileno, f + JT_FILE_FILENO, 4);
		if ((flags & 0xFFFF0000u) != 0xFBAD0000u)
			return -ENOENT;		/* not a FILE: the list is not what it seems */
		if (fileno >= 0 && jt_is_jitdump_fd(s, fileno)) {
			memcpy(wbase, f + JT_FILE_WBASE, 8);
			memcpy(wptr, f + JT_FILE_WPTR, 8);
			memcpy(&wend, f + JT_FILE_WEND, 8);
			if (*wptr < *wbase || *wptr > wend || *wptr - *wbase > JD_CHUNK)
				return -ENOENT;
			*file = fp;
			return 0;
		}
		memcpy(&fp, f + JT_FILE_CHAIN, 8);
	}
	return -ENOENT;
}

/* Read the tail again (the file read first: jd_refresh): at most every 5 ms, and only while a
 * line is missing. The file's unparsed end (a record cut by the buffer's last write) and the
 * buffer are one stream; a write between the two reads (the file grew, the buffer moved) makes
 * them not that: then the tail is dropped, until the next read. */
static void jd_tail(struct lw_nativesym *s, const struct lw_reader *heap)
{
	uint64_t now = lw_now_mono(), file, wbase, wptr, wbase2, wptr2;
	struct stat st, st2;
	unsigned char *buf = NULL;
	size_t part, len;
	int fd;

	if (!heap || !s->jd_path[0] || (s->jt_checked && now - s->jt_checked < 5000000ull))
		return;
	s->jt_checked = now;
	if (!s->jt_state)
		s->jt_state = jt_find_list(s) ? -1 : 1;
	if (s->jt_state < 0)
		return;
	fd = lw_maps__open_mapped(s->proc_root, s->pid, &s->jd_map, NULL, 0);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_dev != s->jd_dev || st.st_ino != s->jd_ino ||
	    st.st_size < s->jd_off || st.st_size - s->jd_off > (off_t)JD_CHUNK ||
	    jt_find_file(s, heap, &file, &wbase, &wptr)) {
		lw_jitdump__clear(&s->jt);
		s->jt_size = 0;
		goto out;
	}
	/* nothing written since the last read: what was parsed stands */
	if (st.st_size == s->jt_size && wbase == s->jt_wbase && wptr == s->jt_wptr)
		goto out;
	lw_jitdump__clear(&s->jt);
	s->jt_size = 0;
	part = (size_t)(st.st_size - s->jd_off);
	len = part + (size_t)(wptr - wbase);
	if (!len || !(buf = malloc(len)))
		goto out;
	if ((part && pread(fd, buf, part, s->jd_off) != (ssize_t)part) ||
	    (wptr > wbase && lw_mem_read(heap, wbase, buf + part, (size_t)(wptr - wbase))))
		goto out;
	/* nothing written meanwhile: the same file size, the buffer where it was */
	if (fstat(fd, &st2) || st2.st_size != st.st_size ||
	    lw_mem_read_u64(heap, file + JT_FILE_WBASE, &wbase2) ||
	    lw_mem_read_u64(heap, file + JT_FILE_WPTR, &wptr2) || wbase2 != wbase || wptr2 < wptr)
		goto out;
	/* a DEBUG_INFO at the file's end waits for its CODE_LOAD in the buffer */
	if (lw_jitdump__continue(&s->jt, &s->jd))
		goto out;
	lw_jitdump__feed(&s->jt, buf, len, s->jd_off == 0, len, NULL);
	s->jt_size = st.st_size;
	s->jt_wbase = wbase;
	s->jt_wptr = wptr;
out:
	free(buf);
	close(fd);
}

int lw_nativesym__jit_line(struct lw_nativesym *s, const struct lw_reader *heap, uint64_t addr,
			   int first)
{
	long i = pm_find(s, addr);
	uint64_t start = i >= 0 ? s->pm[i].start : 0;
	int line;

	jd_refresh(s);
	/*
	 * The perf map is written line by line (V8 flushes each), the jitdump through a 2 MB
	 * buffer: where the perf map knows the code at addr, only the jitdump's record of code
	 * that starts there has its lines. The newest record that covers addr may be older code
	 * V8 has dropped since, whose own record is still in the buffer (an interpreter
	 * trampoline copy laid over a dropped function: its lines, from another file, were given
	 * to fifoRoute and parseRoute in issue 21's Express test).
	 * The tail is newer than the file: its code, where it covers addr, is the code there now
	 * (read when the file has no line, and again while the tail has code).
	 */
	if (heap && (s->jt.n || !lw_jitdump__line_at(&s->jd, addr, start, first))) {
		jd_tail(s, heap);
		line = lw_jitdump__line_at(&s->jt, addr, start, first);
		if (line > 0)
			return line;
	}
	return lw_jitdump__line_at(&s->jd, addr, start, first);
}

/* V8's postmortem metadata, from the node executable or libnode.so as mapped. 0 or -errno
 * with why set */
static int v8meta_read(const char *proc_root, pid_t pid, struct lw_v8meta *meta, char *why,
		       size_t whylen)
{
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	char host[4300];
	int fd, r = -ENOENT;

	snprintf(why, whylen, "neither a libnode.so nor the executable is mapped");
	if (lw_maps__load(proc_root, pid, &maps))
		return -ENOENT;
	m = lw_maps__node_image(maps, proc_root, pid);
	fd = m ? lw_maps__open_mapped(proc_root, pid, m, host, sizeof(host)) : -ENOENT;
	if (m && fd < 0)
		snprintf(why, whylen, "cannot open %s as mapped: %s", m->path, strerror(-fd));
	if (fd >= 0 && lw_elf__open_fd(fd, host, &e) == 0) {
		r = lw_v8meta__load(e, meta, why, whylen);
		lw_elf__close(e);
	}
	lw_maps__free(maps);
	return r;
}

/* read once per process */
static const struct lw_v8meta *v8meta(struct lw_nativesym *s)
{
	if (!s->v8_state)
		s->v8_state = v8meta_read(s->proc_root, s->pid, &s->v8, s->v8_why,
					  sizeof(s->v8_why)) ? -1 : 1;
	return s->v8_state > 0 ? &s->v8 : NULL;
}

int lw_node_v8frames(const char *proc_root, pid_t pid, char *why, size_t whylen)
{
	struct lw_v8meta m;

	return v8meta_read(proc_root, pid, &m, why, whylen) == 0;
}

int lw_nativesym__interp_line(struct lw_nativesym *s, const struct lw_reader *heap,
			      const void *stack, uint64_t base, size_t len, uint64_t ret,
			      uint64_t *cursor)
{
	const struct lw_v8meta *m = v8meta(s);

	return m ? lw_v8__interp_line(m, heap, stack, base, len, ret, cursor) : 0;
}

int lw_nativesym__has_perf_map(struct lw_nativesym *s)
{
	pmap_refresh(s, 0);
	return s->npm > 0;
}

/*
 * The target's vDSO, parsed: its image read from the target's memory (target/memread.c:
 * read-only, the mapping's size and at most VDSO_MAX; allowed to fail: the frame keeps [vdso]
 * and its offset). Read once per mapping address.
 */
static struct lw_elf *vdso_elf(struct lw_nativesym *s, const struct lw_map *m)
{
	uint64_t len = m->end - m->start;
	struct lw_memread *mr = NULL;
	int err = -ENOMEM;

	if (s->vdso_start == m->start)
		return s->vdso;
	lw_elf__close(s->vdso);
	free(s->vdso_buf);
	s->vdso = NULL;
	s->vdso_buf = NULL;
	s->vdso_start = m->start;
	if (!len || len > VDSO_MAX || lw_memread__open(s->pid, &mr))
		return NULL;
	s->vdso_buf = malloc(len);
	if (s->vdso_buf)
		err = lw_memread__read(mr, m->start, s->vdso_buf, len);
	lw_memread__close(mr);
	if (err || lw_elf__open_mem(s->vdso_buf, len, &s->vdso)) {
		s->vdso = NULL;
		free(s->vdso_buf);
		s->vdso_buf = NULL;
	}
	return s->vdso;
}

int lw_nativesym__resolve(struct lw_nativesym *s, uint64_t addr, struct lw_native_frame *out)
{
	const struct lw_map *m = NULL;
	struct elf_slot *slot;
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
	if (m && m->path[0] == '[' && pmap_lookup(s, addr, out)) {
		/* [vdso] and friends: named by the mapping, offset into it; the vDSO's functions
		 * (clock_gettime's fast path) by its own symbol table, as eu-stack names them */
		out->module = m->path;
		out->offset = addr - m->start;
		if (!strcmp(m->path, "[vdso]") && (e = vdso_elf(s, m)) &&
		    !lw_elf__offset_to_vaddr(e, 0, &base) &&
		    !lw_elf__symbolize(e, base + (addr - m->start), &name, &off)) {
			out->symbol = name;
			out->offset = off;
		}
		return 0;
	}
	if (!m || m->path[0] != '/')
		return pmap_lookup(s, addr, out);	/* JIT code: the runtime's perf map */
	out->module = lw_basename(m->path);
	out->offset = addr - m->start + m->offset;
	slot = elf_for(s, m);
	if (!slot || !(e = slot->elf))
		return 0;
	if (lw_elf__offset_to_vaddr(e, m->offset, &base))
		return 0;
	vaddr = base + (addr - m->start);
	if ((slot->dbg && lw_elf__symbolize(slot->dbg, vaddr, &name, &off) == 0) ||
	    lw_elf__symbolize(e, vaddr, &name, &off) == 0) {
		out->symbol = name;
		out->offset = off;
	}
	return 0;
}

/* the NUL-separated words of /proc/PID/cmdline, or NODE_OPTIONS's space-separated ones: the
 * V8 flags that name JS frames (perf map, interpreted frames) and give their lines (jitdump) */
static void node_flags_in(struct lw_node_js *o, const char *w)
{
	static const char *const basic[] = { "--perf-basic-prof", "--perf_basic_prof",
					     "--perf-basic-prof-only-functions",
					     "--perf_basic_prof_only_functions" };
	size_t i, l;
	int known = 0;

	for (i = 0; i < LW_ARRAY_SIZE(basic); i++)
		if (strcmp(w, basic[i]) == 0)
			o->perf_basic_prof = known = 1;
	if (strcmp(w, "--interpreted-frames-native-stack") == 0 ||
	    strcmp(w, "--interpreted_frames_native_stack") == 0)
		o->interpreted_frames = known = 1;
	if (strcmp(w, "--perf-prof") == 0 || strcmp(w, "--perf_prof") == 0)
		o->perf_prof = known = 1;
	if (!known)
		return;
	l = strlen(o->flags_seen);
	if (!strstr(o->flags_seen, w))
		snprintf(o->flags_seen + l, sizeof(o->flags_seen) - l, "%s%s", l ? " " : "", w);
}

/* V8's jitdump: a mapping of a file named jit-NSPID.dump (as jd_find), its size */
static void node_jitdump_probe(const char *proc_root, pid_t pid, struct lw_node_js *out)
{
	struct lw_maps *maps = NULL;
	char want[48];
	struct stat st;
	size_t i;
	int fd;

	snprintf(want, sizeof(want), "jit-%d.dump", (int)lw_ns_pid(proc_root, pid));
	if (lw_maps__load(proc_root, pid, &maps))
		return;
	for (i = 0; i < lw_maps__count(maps); i++) {
		const struct lw_map *m = lw_maps__get(maps, i);

		if (m->path[0] != '/' || strcmp(lw_basename(m->path), want))
			continue;
		out->jitdump = 1;
		lw_maps__target_path(proc_root, pid, m->path, out->jitdump_path,
				     sizeof(out->jitdump_path));
		fd = lw_maps__open_mapped(proc_root, pid, m, NULL, 0);
		if (fd >= 0) {
			if (fstat(fd, &st) == 0)
				out->jitdump_bytes = (long long)st.st_size;
			close(fd);
		} else {
			out->jitdump_bytes = -1;
		}
		break;
	}
	lw_maps__free(maps);
}

void lw_node_js_probe(const char *proc_root, pid_t pid, struct lw_node_js *out)
{
	char path[256], *text = NULL, *p, *end;
	size_t len = 0;
	struct stat st;
	int fd;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/%d/cmdline", proc_root, (int)pid);
	if (lw_read_file(path, 1 << 16, &text, &len) == 0) {
		/* node's own options come before the script: stop at the first non-option */
		for (p = text, end = text + len; p < end; p += strlen(p) + 1) {
			if (p != text && p[0] != '-')
				break;
			node_flags_in(out, p);
		}
		free(text);
		text = NULL;
	}
	snprintf(path, sizeof(path), "%s/%d/environ", proc_root, (int)pid);
	if (lw_read_file(path, 1 << 20, &text, &len) == 0) {
		for (p = text, end = text + len; p < end; p += strlen(p) + 1) {
			char *save = NULL, *w;

			if (strncmp(p, "NODE_OPTIONS=", 13))
				continue;
			for (w = strtok_r(p + 13, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
				node_flags_in(out, w);
			break;
		}
		free(text);
	}
	node_jitdump_probe(proc_root, pid, out);
	/* the target owns its /tmp: no link, no FIFO, no device */
	snprintf(path, sizeof(path), "%s/%d/root/tmp/perf-%d.map", proc_root, (int)pid,
		 (int)lw_ns_pid(proc_root, pid));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			out->perf_map = 1;
			out->perf_map_bytes = (long long)st.st_size;
		}
		close(fd);
	}
}
