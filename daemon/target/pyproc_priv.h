// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Private to pyproc*.c: what finding the runtime (pyproc_find.c) and the rest share. */
#ifndef LW_PYPROC_PRIV_H
#define LW_PYPROC_PRIV_H

#include "target/pyproc.h"
#include "target/elfsym.h"
#include "target/procmaps.h"

/* pyproc.c */
int pp_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void pp_addcheck(struct lw_pyinfo *pi, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pyproc_find.c */
int pp_rd_cstr(struct lw_reader *mem, uint64_t addr, char *buf, size_t size);
int pp_sym_addr(struct lw_elf *e, uint64_t bias, const char *name, uint64_t *out);
int pp_member_offset(struct lw_reader *mem, uint64_t type, const char *name, unsigned *off);
int pp_find_python_elf(const char *proc_root, struct lw_pyinfo *pi, struct lw_maps *maps,
		       const char *exe_map, struct lw_elf **elf, char *err, size_t errlen);
int pp_load_bias(struct lw_elf *e, struct lw_maps *maps, const char *path, uint64_t *bias);
int pp_detect_version(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem,
		      char *err, size_t errlen);
int pp_refuse_builds(struct lw_pyinfo *pi, struct lw_elf *e, char *err, size_t errlen);
int pp_check_debug_offsets(struct lw_pyinfo *pi, struct lw_reader *mem, char *err, size_t errlen);
int pp_check_layout(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem, char *err,
		    size_t errlen);
int pp_find_context_run(struct lw_pyinfo *pi, struct lw_elf *e, struct lw_reader *mem,
			char *err, size_t errlen);

#endif
