/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Probe sites found by what the code refers to (a message string, an interned identifier). */
#ifndef LW_HOOKFIND_H
#define LW_HOOKFIND_H

#include <stdint.h>

/* File offsets of the instructions of `path` that refer to the virtual address target (a
 * rip-relative operand or an absolute immediate), each confirmed by disassembling its whole
 * function (bounds from .eh_frame). Returns how many (<= max), or -errno. */
int lw_hook_find_refs(const char *path, uint64_t target, uint64_t *offs, int max);

/* Virtual address of the NUL-terminated string s stored in a loaded segment. 0 or -ENOENT. */
int lw_hook_find_string(const char *path, const char *s, uint64_t *vaddr);

#endif
