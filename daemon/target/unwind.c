// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/unwind.h"
#include "target/procmaps.h"
#include "target/memread.h"
#include "base/lw_util.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Addresses this far above the stack copy are taken as stack addresses (for the reason a stack
 * stops: "stack copy too short" rather than "unreadable") */
#define STACK_SPAN (8u << 20)
/* Re-read the maps when a pc falls outside every module, at most this often */
#define REREPORT_NS 1000000000ull
/* The vDSO has no file: its image is read from the target, at most this much */
#define VDSO_MAX (64u << 10)

struct lw_unwind {
	char proc_root[64];
	pid_t pid;
	struct lw_reader live;
	int has_live;
	Dwfl *dwfl;
	Dwfl_Callbacks cbs;
	int attached;
	uint64_t reported_ns;
	uint64_t live_reads;
	/* the vDSO's image, read from the target while it lives; its CFI unwinds a pc in it
	 * (libdwfl's frame-pointer guess goes wrong in its prologue and epilogue, and needs the
	 * target's memory, gone once it has exited) */
	void *vdso;
	uint64_t vdso_start, vdso_len;
	/* the stack being unwound */
	const uint64_t *regs;
	const unsigned char *stack;
	size_t len;
	uint64_t base;			/* the address of stack[0]: rsp, or below it */
	uint64_t sp;
	int short_copy;
	int unreadable;
	struct lw_uframe *frames;
	int n, max;
};

const char *lw_unwind_stop_str(enum lw_unwind_stop why)
{
	switch (why) {
	case LW_UNW_COMPLETE:
		return NULL;
	case LW_UNW_NO_INFO:
		return "no unwind info";
	case LW_UNW_SHORT_COPY:
		return "stack copy too short";
	case LW_UNW_UNREADABLE:
		return "unreadable";
	case LW_UNW_MAX_FRAMES:
		return "truncated";
	case LW_UNW_ERROR:
		break;
	}
	return "unwind error";
}

/* ------------------------------------------------------------------ files of the target */

static int open_in_root(const struct lw_unwind *u, const char *path, char **name)
{
	char host[4400];
	int fd;

	struct stat st;

	snprintf(host, sizeof(host), "%s/%d/root%s", u->proc_root, (int)u->pid, path);
	/* the target controls what sits at these paths: never block on a FIFO, never follow a
	 * link at the end, regular files only */
	fd = open(host, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		return -1;
	}
	if (fd >= 0 && name) {
		*name = strdup(host);
		if (!*name) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* A separate debug file (its .debug_frame when .eh_frame lacks a function): by build-id under
 * /usr/lib/debug/.build-id, or .gnu_debuglink next to the file, in .debug/, under
 * /usr/lib/debug; all inside the target's root. Never debuginfod: nothing leaves the machine. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink, GElf_Word crc, char **out)
{
	struct lw_unwind *u;
	const unsigned char *bits;
	GElf_Addr vaddr;
	char path[4400], dir[4096];
	const char *slash;
	int n, i, fd, len = 0;

	u = *userdata;
	if (!u)
		return -1;
	n = dwfl_module_build_id(mod, &bits, &vaddr);
	if (n > 1) {
		len = snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", bits[0]);
		for (i = 1; i < n && len < (int)sizeof(path) - 8; i++)
			len += snprintf(path + len, sizeof(path) - len, "%02x", bits[i]);
		snprintf(path + len, sizeof(path) - len, ".debug");
		fd = open_in_root(u, path, out);
		if (fd >= 0)
			return fd;
	}
	if (!debuglink || strchr(debuglink, '/') || !modname || modname[0] != '/')
		return -1;
	slash = strrchr(modname, '/');
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - modname), modname);
	if (strcmp(lw_basename(modname), debuglink)) {
		snprintf(path, sizeof(path), "%s/%s", dir, debuglink);
		if ((fd = open_in_root(u, path, out)) >= 0)
			return fd;
	}
	snprintf(path, sizeof(path), "%s/.debug/%s", dir, debuglink);
	if ((fd = open_in_root(u, path, out)) >= 0)
		return fd;
	snprintf(path, sizeof(path), "/usr/lib/debug%s/%s", dir, debuglink);
	return open_in_root(u, path, out);
}

static int find_elf_none(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			 char **file_name, Elf **elfp)
{
	struct lw_unwind *u = *userdata;

	/* every module is reported with its file but the vDSO, whose image we keep */
	if (u && u->vdso && modname && !strcmp(modname, "[vdso]") && base == u->vdso_start)
		*elfp = elf_memory(u->vdso, u->vdso_len);
	return -1;
}

/* The target's vDSO image, read once (read-only, bounded, allowed to fail: a pc in it then
 * falls back to libdwfl's frame-pointer guess) */
static int read_vdso(struct lw_unwind *u, const struct lw_map *m)
{
	uint64_t len = m->end - m->start;
	struct lw_memread *mr = NULL;
	void *buf;
	int err;

	if (u->vdso)
		return u->vdso_start == m->start && u->vdso_len == len ? 0 : -1;
	if (!len || len > VDSO_MAX || lw_memread__open(u->pid, &mr))
		return -1;
	buf = malloc(len);
	err = buf ? lw_memread__read(mr, m->start, buf, len) : -ENOMEM;
	lw_memread__close(mr);
	if (err || len < 4 || memcmp(buf, "\177ELF", 4)) {
		free(buf);
		return -1;
	}
	u->vdso = buf;
	u->vdso_start = m->start;
	u->vdso_len = len;
	return 0;
}

/* Load bias of a mapping: where the file offset of the mapping lands in the ELF's vaddrs */
static int map_bias(int fd, const struct lw_map *m, uint64_t *bias, int *is_exec)
{
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	GElf_Ehdr eh;
	size_t i, n;
	int rc = -1;

	if (!e)
		return -1;
	if (gelf_getehdr(e, &eh) && elf_getphdrnum(e, &n) == 0) {
		*is_exec = eh.e_type == ET_EXEC;
		for (i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
				continue;
			if (m->offset >= (ph.p_offset & ~0xfffull) &&
			    m->offset < ph.p_offset + ph.p_filesz) {
				*bias = m->start - (ph.p_vaddr - (ph.p_offset - m->offset));
				rc = 0;
				break;
			}
		}
	}
	elf_end(e);
	return rc;
}

/* Was this file already reported at this base in this pass? */
static int reported_before(const struct lw_maps *maps, const size_t *done, size_t ndone,
			   const uint64_t *bases, const char *path, uint64_t base)
{
	size_t j;

	for (j = 0; j < ndone; j++)
		if (bases[j] == base && !strcmp(lw_maps__get(maps, done[j])->path, path))
			return 1;
	return 0;
}

/* Report every executable file mapping of the process to libdwfl (modules already known with
 * the same range are kept with their parsed tables). A file is reported once per base: an
 * executable (ET_EXEC) has several executable mappings (node: three, and V8's copy of its
 * builtins elsewhere), all at base 0, and a second report of it fails as overlapping, which
 * leaves libdwfl's address lookup without the first one (elfutils 0.188: dwfl_addrmodule
 * then finds no module for any pc of the executable, and a stack through it stops there with
 * "no unwind info"). */
static int report_modules(struct lw_unwind *u)
{
	struct lw_maps *maps;
	size_t i, n, ndone = 0, *done;
	uint64_t *bases;
	int rc;

	rc = lw_maps__load(u->proc_root, u->pid, &maps);
	if (rc)
		return rc;
	n = lw_maps__count(maps);
	done = calloc(n + 1, sizeof(*done));
	bases = calloc(n + 1, sizeof(*bases));
	if (!done || !bases) {
		free(done);
		free(bases);
		lw_maps__free(maps);
		return -ENOMEM;
	}
	u->reported_ns = lw_now_mono();
	dwfl_report_begin(u->dwfl);
	for (i = 0; i < n; i++) {
		const struct lw_map *m = lw_maps__get(maps, i);
		uint64_t bias = 0;
		int fd, is_exec = 0;
		char *name = NULL;

		char via[4400];

		if (!strcmp(m->path, "[vdso]") && m->perms[2] == 'x') {
			if (!read_vdso(u, m))
				dwfl_report_module(u->dwfl, "[vdso]", m->start, m->end);
			continue;
		}
		if (m->path[0] != '/' || m->perms[2] != 'x')
			continue;
		/* the very inode mapped (a file replaced or deleted since, a chroot's paths, a FIFO
		 * planted at the path: procmaps.h) */
		fd = lw_maps__open_mapped(u->proc_root, u->pid, m, via, sizeof(via));
		if (fd < 0)
			continue;
		name = strdup(via);
		if (!name) {
			close(fd);
			continue;
		}
		if (map_bias(fd, m, &bias, &is_exec)) {
			close(fd);
			free(name);
			continue;
		}
		if (is_exec)
			bias = 0;
		if (reported_before(maps, done, ndone, bases, m->path, bias)) {
			close(fd);
			free(name);
			continue;
		}
		/* the module's name is its path in the target (find_debuginfo looks beside it) */
		if (!dwfl_report_elf(u->dwfl, m->path, name, fd, bias, true)) {
			close(fd);
		} else {
			done[ndone] = i;
			bases[ndone++] = bias;
		}
		free(name);
	}
	dwfl_report_end(u->dwfl, NULL, NULL);
	free(done);
	free(bases);
	lw_maps__free(maps);
	return 0;
}

/* ------------------------------------------------------------------ libdwfl thread callbacks */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct lw_unwind *u = arg;

	if (*thread_argp)
		return 0;
	*thread_argp = u;
	return u->pid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	*thread_argp = arg;
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct lw_unwind *u = arg;
	uint64_t v;

	if (addr >= u->base && u->len >= 8 && addr - u->base <= u->len - 8) {
		memcpy(&v, u->stack + (addr - u->base), 8);
		*result = v;
		return true;
	}
	if (u->has_live && addr >= 4096 && lw_mem_read(&u->live, addr, &v, 8) == 0) {
		u->live_reads++;
		*result = v;
		return true;
	}
	if (addr >= u->sp && addr - u->sp < STACK_SPAN)
		u->short_copy = 1;
	else
		u->unreadable = 1;
	return false;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct lw_unwind *u = arg;
	Dwarf_Word regs[LW_UNW_NREGS];
	int i;

	for (i = 0; i < LW_UNW_NREGS; i++)
		regs[i] = u->regs[i];
	return dwfl_thread_state_registers(thread, 0, LW_UNW_NREGS, regs);
}

static void detach(Dwfl *dwfl, void *arg)
{
}

static const Dwfl_Thread_Callbacks thread_cbs = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
	.detach = detach,
	.thread_detach = NULL,
};

/* ------------------------------------------------------------------ the unwinder */

int lw_unwind__new(const char *proc_root, pid_t pid, const struct lw_reader *live,
		   struct lw_unwind **out)
{
	struct lw_unwind *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	lw_strlcpy(u->proc_root, proc_root, sizeof(u->proc_root));
	u->pid = pid;
	if (live) {
		u->live = *live;
		u->has_live = 1;
	}
	u->cbs.find_elf = find_elf_none;
	u->cbs.find_debuginfo = find_debuginfo;
	u->cbs.section_address = dwfl_offline_section_address;
	u->dwfl = dwfl_begin(&u->cbs);
	if (!u->dwfl) {
		free(u);
		return -ENOMEM;
	}
	*out = u;
	return 0;
}

void lw_unwind__free(struct lw_unwind *u)
{
	if (!u)
		return;
	dwfl_end(u->dwfl);
	free(u->vdso);
	free(u);
}

uint64_t lw_unwind__live_reads(const struct lw_unwind *u)
{
	return u->live_reads;
}

/* find_debuginfo's userdata is per module: point it at the unwinder */
static int set_userdata(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
			void *arg)
{
	*userdata = arg;
	return DWARF_CB_OK;
}

static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct lw_unwind *u = arg;
	Dwarf_Addr pc;
	bool act = false;

	if (!dwfl_frame_pc(state, &pc, &act))
		return DWARF_CB_ABORT;
	if (u->n >= u->max)
		return DWARF_CB_ABORT;
	u->frames[u->n].pc = pc;
	u->frames[u->n].activation = act;
	u->n++;
	return DWARF_CB_OK;
}

static int ensure_ready(struct lw_unwind *u)
{
	if (u->attached)
		return 0;
	if (report_modules(u))
		return -ENOENT;
	dwfl_getmodules(u->dwfl, set_userdata, u, 0);
	if (!dwfl_attach_state(u->dwfl, NULL, u->pid, &thread_cbs, u))
		return -ENOEXEC;
	u->attached = 1;
	return 0;
}

int lw_unwind__run(struct lw_unwind *u, const uint64_t *regs, const void *stack, size_t len,
		   struct lw_uframe *frames, int max, enum lw_unwind_stop *why)
{
	return lw_unwind__run_at(u, regs, stack, regs[LW_UNW_RSP], len, frames, max, why);
}

int lw_unwind__run_at(struct lw_unwind *u, const uint64_t *regs, const void *stack, uint64_t base,
		      size_t len, struct lw_uframe *frames, int max, enum lw_unwind_stop *why)
{
	uint64_t last;
	int rc, i;

	*why = LW_UNW_ERROR;
	if (max <= 0 || !regs[LW_UNW_RIP])
		return -EINVAL;
	if (ensure_ready(u))
		return -ENOENT;
	/* a pc in no module: maybe a library loaded since; read the maps again (rate-limited) */
	if (!dwfl_addrmodule(u->dwfl, regs[LW_UNW_RIP]) &&
	    lw_now_mono() - u->reported_ns > REREPORT_NS) {
		/* A fresh Dwfl, not a re-report into the attached one: a module that went away
		 * can be the one whose backend the attached state uses (libdw then asserts on
		 * freed memory: seen under --top on a busy target). The old one stays until the
		 * fresh one is ready: a process that has exited has no maps any more (its last
		 * records are unwound after it is gone) and its stacks unwind with the modules
		 * read before. */
		Dwfl *old = u->dwfl, *fresh = dwfl_begin(&u->cbs);

		if (fresh) {
			u->dwfl = fresh;
			u->attached = 0;
			if (ensure_ready(u)) {
				dwfl_end(fresh);
				u->dwfl = old;
				u->attached = 1;
			} else {
				dwfl_end(old);
			}
		}
	}
	u->regs = regs;
	u->stack = stack;
	u->len = stack ? len : 0;
	u->sp = regs[LW_UNW_RSP];
	u->base = stack && base <= u->sp ? base : u->sp;
	u->short_copy = u->unreadable = 0;
	u->frames = frames;
	u->n = 0;
	u->max = max;
	rc = dwfl_getthread_frames(u->dwfl, u->pid, frame_cb, u);
	if (u->n == 0) {
		/* not even the first frame: keep the pc alone */
		frames[0].pc = regs[LW_UNW_RIP];
		frames[0].activation = 1;
		u->n = 1;
	}
	/* drop a trailing zero pc (the outermost frame of some threads) */
	while (u->n > 1 && frames[u->n - 1].pc == 0)
		u->n--;
	if (rc == 0 && !u->short_copy && !u->unreadable) {
		*why = LW_UNW_COMPLETE;
	} else if (u->n >= max) {
		*why = LW_UNW_MAX_FRAMES;
	} else {
		/* libdwfl ends some complete stacks with an error (the outermost frame of a thread
		 * has no return-address rule) and some cut ones without (a failed read ends its
		 * frame-pointer fallback quietly): a last frame in _start or a thread's clone
		 * entry is complete, any other stop says why */
		static const char *const outermost[] = { "_start", "clone", "__clone", "clone3",
							 "__clone3" };
		Dwfl_Module *mod;
		const char *name;

		last = frames[u->n - 1].pc - (frames[u->n - 1].activation ? 0 : 1);
		mod = dwfl_addrmodule(u->dwfl, last);
		name = mod ? dwfl_module_addrname(mod, last) : NULL;
		*why = u->short_copy ? LW_UNW_SHORT_COPY : u->unreadable ? LW_UNW_UNREADABLE : LW_UNW_NO_INFO;
		for (i = 0; name && i < (int)(sizeof(outermost) / sizeof(*outermost)); i++)
			if (!strcmp(name, outermost[i]))
				*why = LW_UNW_COMPLETE;
	}
	return u->n;
}
