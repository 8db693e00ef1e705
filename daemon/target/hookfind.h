/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Probe sites found by what the code refers to (a message string, an interned identifier). */
#ifndef LW_HOOKFIND_H
#define LW_HOOKFIND_H

#include <stddef.h>
#include <stdint.h>

/* File offsets of the instructions of `path` that refer to the virtual address target (a
 * rip-relative operand or an absolute immediate), each confirmed by disassembling its whole
 * function (bounds from .eh_frame). Returns how many (<= max), or -errno. */
int lw_hook_find_refs(const char *path, uint64_t target, uint64_t *offs, int max);

/* Virtual address of the NUL-terminated string s stored in a loaded segment. 0 or -ENOENT. */
int lw_hook_find_string(const char *path, const char *s, uint64_t *vaddr);

/*
 * An entry probe the kernel emulates: the address of the first instruction of the function at
 * addr (its bytes: code, len) that x86 uprobes emulate (relative branch, nop, push of a
 * register), reached by straight-line code that leaves rdi, rsi and rsp untouched, within its
 * first six instructions. A probe at the entry of glibc's epoll_wait (a rip-relative cmp) is
 * stepped out of line: two traps per call; at its je, one. Returns 1 and *probe (addr itself
 * when the entry is emulated already), or 0 with *probe = addr when there is none.
 */
int lw_hook_emulated_entry(const uint8_t *code, size_t len, uint64_t addr, uint64_t *probe);

#endif
