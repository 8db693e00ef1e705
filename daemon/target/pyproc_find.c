// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Finding a process's CPython: its ELF (executable or libpython), version and build, the
 * layout checks (the runtime's own _Py_DebugOffsets where it has them) and the context-run hook
 * (see pyproc.c, pyproc.h).
 */
#include "target/pyproc_priv.h"
#include "target/elfsym.h"
#include "base/lw_util.h"
#include "target/procmaps.h"
#include "base/lw_util.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a C string from the target (bounded). */
int pp_rd_cstr(struct lw_reader *mem, uint64_t addr, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size; i++) {
		if (lw_mem_read(mem, addr + i, &buf[i], 1))
			return -EFAULT;
		if (!buf[i])
			return 0;
	}
	buf[size - 1] = 0;
	return 0;
}

int pp_sym_addr(struct lw_elf *e, uint64_t bias, const char *name, uint64_t *out)
{
	uint64_t v;
	int err = lw_elf__find_symbol(e, name, &v, NULL);

	if (err)
		return err;
	*out = v + bias;
	return 0;
}

/* Type object -> tp_members[name].offset. */
int pp_member_offset(struct lw_reader *mem, uint64_t type, const char *name, unsigned *off)
{
	uint64_t members = 0;
	int i;

	if (lw_mem_read_u64(mem, type + 240, &members) || !members)
		return -ENOENT;
	for (i = 0; i < 64; i++) {
		uint64_t np = 0;
		int64_t o = 0;
		char n[64];

		if (lw_mem_read_u64(mem, members + (uint64_t)i * 40, &np) || !np)
			break;
		if (pp_rd_cstr(mem, np, n, sizeof(n)))
			break;
		if (strcmp(n, name) == 0) {
			if (lw_mem_read(mem, members + (uint64_t)i * 40 + 16, &o, sizeof(o)) || o < 0 ||
			    o > 4096)
				return -EINVAL;
			*off = (unsigned)o;
			return 0;
		}
	}
	return -ENOENT;
}

static int minor_from_name(const char *path)
{
	const char *b = lw_basename(path), *p = strstr(b, "python3.");
	int m;

	if (!p)
		return -1;
	p += 8;
	if (*p < '0' || *p > '9')
		return -1;
	m = atoi(p);
	return m;
}

static int free_threaded_name(const char *path)
{
	const char *p = strstr(lw_basename(path), "python3.");

	if (!p)
		return 0;
	p += 8;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == 't';
}

/* Choose the ELF that holds the interpreter: a mapped libpython3.X, else the executable. Each
 * is opened as the very file the process maps (lw_maps__open_mapped), never by path alone. */
int pp_find_python_elf(const char *proc_root, struct lw_pyinfo *pi, struct lw_maps *maps,
			   const char *exe_map, struct lw_elf **elf, char *err, size_t errlen)
{
	const struct lw_map *lib = lw_maps__find_lib(maps, "libpython3");
	const struct lw_map *cands[2];
	int ncand = 0, i, r, why = 0;
	uint64_t v;

	if (lib)
		cands[ncand++] = lw_maps__first_of(maps, lib->path);
	if ((cands[ncand] = lw_maps__first_of(maps, exe_map)))
		ncand++;
	for (i = 0; i < ncand; i++) {
		struct lw_elf *e = NULL;
		int fd = lw_maps__open_mapped(proc_root, pi->pid, cands[i], pi->elf_host,
					      sizeof(pi->elf_host));

		if (fd < 0) {
			why = fd;
			continue;
		}
		r = lw_elf__open_fd(fd, pi->elf_host, &e);
		if (r)
			continue;
		if (lw_elf__find_symbol(e, "_PyRuntime", &v, NULL) == 0) {
			lw_strlcpy(pi->elf_map, cands[i]->path, sizeof(pi->elf_map));
			lw_maps__target_path(proc_root, pi->pid, cands[i]->path, pi->elf,
					     sizeof(pi->elf));
			pi->is_libpython = lib && i == 0;
			*elf = e;
			return 0;
		}
		lw_elf__close(e);
	}
	if (why && why != -ENOENT)
		return pp_fail(err, errlen, why == -ESTALE ? -ESTALE : -EACCES,
			    "pid %d (%s): cannot open the files it maps as mapped (%s); %s",
			    (int)pi->pid, lw_basename(pi->exe), strerror(-why),
			    why == -ESTALE ? "another file now sits at their paths and "
			    "/proc/PID/map_files is not readable: run as root (CAP_SYS_ADMIN)"
			    : "run as root");
	return pp_fail(err, errlen, -ENOEXEC,
		    "pid %d (%s) is not a CPython process: neither it nor a mapped libpython3.X "
		    "defines _PyRuntime; use --runtime generic to watch its loop without Python "
		    "details",
		    (int)pi->pid, lw_basename(pi->exe));
}

int pp_load_bias(struct lw_elf *e, struct lw_maps *maps, const char *path, uint64_t *bias)
{
	const struct lw_map *m;
	uint64_t v;

	if (lw_elf__type(e) == ET_EXEC) {
		*bias = 0;
		return 0;
	}
	m = lw_maps__first_of(maps, path);
	if (!m || lw_elf__offset_to_vaddr(e, m->offset, &v))
		return -ENOENT;
	*bias = m->start - v;
	return 0;
}

int pp_detect_version(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem,
			  char *err, size_t errlen)
{
	uint64_t a;
	uint32_t hex = 0;
	char buf[32], prefix[16];
	int m, i;

	if (pp_sym_addr(e, pi->bias, "Py_Version", &a) == 0 && lw_mem_read(mem, a, &hex, sizeof(hex)) == 0 &&
	    (hex >> 24) == 3) {
		pi->major = 3;
		pi->minor = (hex >> 16) & 0xff;
		pi->micro = (hex >> 8) & 0xff;
		snprintf(pi->version, sizeof(pi->version), "%d.%d.%d", pi->major, pi->minor,
			 pi->micro);
		pp_addcheck(pi, "version from Py_Version");
		return 0;
	}
	m = minor_from_name(pi->elf);
	if (m < 0)
		m = minor_from_name(pi->exe);
	for (i = (m >= 0 ? m : 8); i <= (m >= 0 ? m : 15); i++) {
		snprintf(prefix, sizeof(prefix), "3.%d.", i);
		if (lw_elf__find_version_string(e, prefix, buf, sizeof(buf)) == 0) {
			pi->major = 3;
			pi->minor = i;
			pi->micro = atoi(buf + strlen(prefix));
			snprintf(pi->version, sizeof(pi->version), "%d.%d.%d", 3, i, pi->micro);
			pp_addcheck(pi, "version from the binary's version string");
			return 0;
		}
	}
	if (m >= 0) {
		pi->major = 3;
		pi->minor = m;
		snprintf(pi->version, sizeof(pi->version), "3.%d", m);
		pp_addcheck(pi, "version from the file name");
		return 0;
	}
	return pp_fail(err, errlen, -ENOTSUP,
		    "could not tell which CPython version %s is (no Py_Version, no version string); "
		    "use --runtime generic",
		    pi->elf);
}

int pp_refuse_builds(struct lw_pyinfo *pi, struct lw_elf *e, char *err, size_t errlen)
{
	static const char *const debug_syms[] = { "_Py_RefTotal", "_Py_GetRefTotal",
						  "_Py_NegativeRefcount", "_Py_IncRefTotal",
						  "_Py_ForgetReference" };
	uint64_t v;
	size_t i;

	if (pi->minor < 8 || pi->minor > 15)
		return pp_fail(err, errlen, -ENOTSUP,
			    "CPython %s is not supported (supported: 3.8 to 3.15); use --runtime "
			    "generic to watch its loop without Python details",
			    pi->version);
	if (free_threaded_name(pi->elf) || free_threaded_name(pi->exe))
		return pp_fail(err, errlen, -ENOTSUP,
			    "%s is a free-threaded CPython build, whose object layout loopwatch does "
			    "not support; use --runtime generic",
			    pi->elf);
	for (i = 0; i < LW_ARRAY_SIZE(debug_syms); i++)
		/* 3.14+ release builds export _Py_ForgetReference too (Objects/object.c) */
		if ((pi->minor < 14 || strcmp(debug_syms[i], "_Py_ForgetReference")) &&
		    lw_elf__find_symbol(e, debug_syms[i], &v, NULL) == 0)
			return pp_fail(err, errlen, -ENOTSUP,
				    "%s is a debug build of CPython (it defines %s); its object "
				    "layout differs and is not supported; use a release build or "
				    "--runtime generic",
				    pi->elf, debug_syms[i]);
	return 0;
}

/*
 * Where each field lives in _Py_DebugOffsets (Include/internal/pycore_debug_offsets.h), as an
 * index of 8-byte words from the start of _PyRuntime, per minor version (the struct is stable
 * within one: CPython's own remote-debugging module relies on that). 3.13: 3.13.0's header;
 * 3.14: 3.14's adds interpreter_state.threads_main, code_object_generation, tlbc_generation,
 * interpreter_frame.stackpointer, tlbc_index, code_object.co_tlbc, set_object, gen_object;
 * 3.15: thread_state grew (base_frame, last_profiled_frame, ..., holds_gil, gil_requested).
 * Indices for 3.14/3.15 checked on sid's 3.14.10 and 3.15.2 against the objects themselves.
 */
struct dbg_index {
	int minor;
	unsigned char interp_head, threads_head, ts_size, ts_next, ts_frame, ts_tid, ts_native;
	unsigned char f_size, f_back, f_code, f_instr, f_localsplus, f_owner;
	unsigned char co_size, co_filename, co_name, co_qualname, co_table, co_firstlineno, co_adaptive;
	unsigned char ascii_size, ceval_gil, gil_rt, gil_locked, gil_holder;
};

static const struct dbg_index dbg_indices[] = {
	{ 13, 5, 9, 19, 21, 23, 24, 25, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 43,
	  70, 14, 15, 17, 18 },
	{ 14, 5, 9, 22, 24, 26, 27, 28, 31, 32, 33, 34, 35, 36, 39, 40, 41, 42, 43, 44, 48,
	  80, 15, 16, 18, 19 },
	{ 15, 5, 9, 22, 24, 26, 30, 31, 39, 40, 41, 42, 43, 44, 47, 48, 49, 50, 51, 52, 56,
	  92, 15, 16, 18, 19 },
};

/* 3.13+: _Py_DebugOffsets at the start of _PyRuntime: the process's own numbers, taken over
 * the table's once they pass the checks below (a micro release or a distribution patch that
 * moves a field keeps working; one that breaks the struct is refused). */
int pp_check_debug_offsets(struct lw_pyinfo *pi, struct lw_reader *mem, char *err,
			       size_t errlen)
{
	uint64_t w[100];
	struct lw_pylayout *l = &pi->lay;
	const struct dbg_index *x = NULL;
	size_t i;

	for (i = 0; i < LW_ARRAY_SIZE(dbg_indices); i++)
		if (dbg_indices[i].minor == pi->minor)
			x = &dbg_indices[i];
	if (!x)
		return pp_fail(err, errlen, -ENOTSUP, "no _Py_DebugOffsets map for CPython %s",
			    pi->version);
	if (lw_mem_read(mem, pi->runtime, w, sizeof(w)))
		return pp_fail(err, errlen, -EFAULT, "cannot read _PyRuntime of pid %d", (int)pi->pid);
	if (memcmp(w, "xdebugpy", 8))
		return pp_fail(err, errlen, -ENOTSUP,
			    "_Py_DebugOffsets cookie missing in pid %d: not a CPython 3.%d runtime "
			    "as expected (a patched build?); use --runtime generic",
			    (int)pi->pid, pi->minor);
	if (((w[1] >> 24) & 0xff) != 3 || ((w[1] >> 16) & 0xff) != (uint64_t)pi->minor)
		return pp_fail(err, errlen, -ENOTSUP,
			    "_Py_DebugOffsets version 0x%llx does not match %s (a patched build?); "
			    "use --runtime generic",
			    (unsigned long long)w[1], pi->version);
	if (w[2])
		return pp_fail(err, errlen, -ENOTSUP,
			    "pid %d runs a free-threaded CPython build, which loopwatch does not "
			    "support; use --runtime generic",
			    (int)pi->pid);
	/* every field inside its struct, the code object's bytecode at its end, frames as small
	 * as CPython's: otherwise the map does not fit this build */
	if (w[x->ts_size] < 64 || w[x->ts_size] > 65536 || w[x->f_size] < 48 || w[x->f_size] > 512 ||
	    w[x->co_size] < 128 || w[x->co_size] > 1024 ||
	    w[x->ts_next] >= w[x->ts_size] || w[x->ts_frame] >= w[x->ts_size] ||
	    w[x->ts_tid] >= w[x->ts_size] || w[x->ts_native] >= w[x->ts_size] ||
	    w[x->f_back] >= w[x->f_size] || w[x->f_code] >= w[x->f_size] ||
	    w[x->f_instr] >= w[x->f_size] || w[x->f_owner] >= w[x->f_size] ||
	    w[x->f_localsplus] > w[x->f_size] || w[x->co_adaptive] >= w[x->co_size] ||
	    w[x->co_size] - w[x->co_adaptive] > 16 ||
	    w[x->co_filename] >= w[x->co_size] || w[x->co_qualname] >= w[x->co_size] ||
	    w[x->co_table] >= w[x->co_size] || w[x->co_firstlineno] >= w[x->co_size] ||
	    w[x->ascii_size] < 32 || w[x->ascii_size] > 64)
		return pp_fail(err, errlen, -ENOTSUP,
			    "_Py_DebugOffsets of pid %d (CPython %s) does not have the layout of "
			    "CPython 3.%d's (a patched build?): refusing rather than reporting "
			    "garbage; use --runtime generic",
			    (int)pi->pid, pi->version, pi->minor);
	l->rt_interp_head = (unsigned)w[x->interp_head];
	l->interp_threads_head = (unsigned)w[x->threads_head];
	l->ts_next = (unsigned)w[x->ts_next];
	l->ts_frame = (unsigned)w[x->ts_frame];
	l->ts_thread_id = (unsigned)w[x->ts_tid];
	l->ts_native_id = (unsigned)w[x->ts_native];
	l->f_back = (unsigned)w[x->f_back];
	l->f_code = (unsigned)w[x->f_code];
	l->f_instr = (unsigned)w[x->f_instr];
	l->f_localsplus = (unsigned)w[x->f_localsplus];
	l->f_owner = (unsigned)w[x->f_owner];
	l->co_filename = (unsigned)w[x->co_filename];
	l->co_name = (unsigned)w[x->co_name];
	l->co_qualname = (unsigned)w[x->co_qualname];
	l->co_table = (unsigned)w[x->co_table];
	l->co_firstlineno = (unsigned)w[x->co_firstlineno];
	l->code_basicsize = (unsigned)w[x->co_adaptive];
	l->str_ascii = (unsigned)w[x->ascii_size];
	if (w[x->ceval_gil] && w[x->gil_rt] && w[x->gil_locked] > w[x->gil_rt] &&
	    w[x->gil_holder] > w[x->gil_rt]) {
		/* interp->ceval.gil pointer; the GIL's fields are given from the interpreter
		 * state, relative to interp->_gil */
		l->gil_from_interp = 1;
		l->gil_off = (unsigned)w[x->ceval_gil];
		l->gil_locked = (unsigned)(w[x->gil_locked] - w[x->gil_rt]);
		l->gil_last_holder = (unsigned)(w[x->gil_holder] - w[x->gil_rt]);
	}
	pp_addcheck(pi, "_Py_DebugOffsets read");
	return 0;
}

int pp_check_layout(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem, char *err,
			size_t errlen)
{
	struct lw_pylayout *l = &pi->lay;
	uint64_t code_type;
	int64_t basicsize = 0;
	unsigned off;
	const char *table = pi->minor <= 9 ? "co_lnotab" : "co_linetable";

	if (pp_sym_addr(e, pi->bias, "PyCode_Type", &code_type))
		return pp_fail(err, errlen, -ENOEXEC, "PyCode_Type not found in %s", pi->elf);
	pi->code_type = code_type;
	if (lw_mem_read(mem, code_type + 32, &basicsize, sizeof(basicsize)))
		return pp_fail(err, errlen, -EFAULT,
			    "cannot read memory of pid %d (PyCode_Type at 0x%llx)", (int)pi->pid,
			    (unsigned long long)code_type);
	if (basicsize != (int64_t)l->code_basicsize)
		return pp_fail(err, errlen, -ENOTSUP,
			    "PyCodeObject in %s is %lld bytes, CPython %d.%d release builds have %u: "
			    "a patched or debug build? refusing rather than reporting garbage; use "
			    "--runtime generic",
			    pi->elf, (long long)basicsize, pi->major, pi->minor, l->code_basicsize);
	if (pp_member_offset(mem, code_type, "co_filename", &off) == 0)
		l->co_filename = off;
	else
		return pp_fail(err, errlen, -ENOTSUP, "PyCode_Type has no co_filename member in pid %d",
			    (int)pi->pid);
	if (pp_member_offset(mem, code_type, "co_name", &off) == 0)
		l->co_name = off;
	if (pp_member_offset(mem, code_type, "co_firstlineno", &off) == 0)
		l->co_firstlineno = off;
	if (pi->minor >= 11 && pp_member_offset(mem, code_type, "co_qualname", &off) == 0)
		l->co_qualname = off;
	if (pp_member_offset(mem, code_type, table, &off) == 0)
		l->co_table = off;
	pp_addcheck(pi, "PyCode_Type size and tp_members");
	return 0;
}

int pp_find_context_run(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem,
			    char *err, size_t errlen)
{
	uint64_t sym = 0, ctxtype, methods = 0, viaty = 0, vaddr;
	int have_sym = 0, i;

	if (lw_elf__find_symbol(e, "context_run", &sym, NULL) == 0) {
		sym += pi->bias;
		have_sym = 1;
	}
	if (pp_sym_addr(e, pi->bias, "PyContext_Type", &ctxtype) == 0 &&
	    lw_mem_read_u64(mem, ctxtype + 232, &methods) == 0 && methods) {
		for (i = 0; i < 16; i++) {
			uint64_t np = 0, meth = 0;
			int32_t flags = 0;
			char n[16];

			if (lw_mem_read_u64(mem, methods + (uint64_t)i * 32, &np) || !np)
				break;
			if (pp_rd_cstr(mem, np, n, sizeof(n)))
				break;
			if (strcmp(n, "run"))
				continue;
			lw_mem_read_u64(mem, methods + (uint64_t)i * 32 + 8, &meth);
			lw_mem_read(mem, methods + (uint64_t)i * 32 + 16, &flags, sizeof(flags));
			if (flags == 0x82)
				viaty = meth;
			break;
		}
	}
	if (have_sym && viaty && sym != viaty)
		return pp_fail(err, errlen, -ENOTSUP,
			    "context_run symbol (0x%llx) and PyContext_Type.run (0x%llx) disagree in "
			    "%s; refusing to probe",
			    (unsigned long long)sym, (unsigned long long)viaty, pi->elf);
	if (have_sym) {
		pi->ctxrun_addr = sym;
		snprintf(pi->ctxrun_how, sizeof(pi->ctxrun_how), "symbol in .symtab%s",
			 viaty ? ", matches PyContext_Type.tp_methods[\"run\"]" : "");
	} else if (viaty) {
		pi->ctxrun_addr = viaty;
		snprintf(pi->ctxrun_how, sizeof(pi->ctxrun_how),
			 "PyContext_Type.tp_methods[\"run\"].ml_meth (no .symtab)");
	} else {
		return pp_fail(err, errlen, -ENOENT,
			    "context_run not found in %s: no .symtab and the PyContext_Type lookup "
			    "failed; precise mode is unavailable, the default mode still works",
			    pi->elf);
	}
	vaddr = pi->ctxrun_addr - pi->bias;
	if (lw_elf__vaddr_to_offset(e, vaddr, &pi->ctxrun_off))
		return pp_fail(err, errlen, -ENOENT,
			    "context_run at 0x%llx is outside %s's loaded segments",
			    (unsigned long long)pi->ctxrun_addr, pi->elf);
	return 0;
}

