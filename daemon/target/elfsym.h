/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ELF files of a target: symbols, address <-> file offset, build-id, symbolization (libelf). */
#ifndef LW_ELFSYM_H
#define LW_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct lw_elf;

/* Open an ELF file (path may go through /proc/PID/root). 0 or -errno (-ENOEXEC: not ELF). */
int lw_elf__open(const char *path, struct lw_elf **out);
/* Same from an open fd (taken over, closed on failure too); name is kept for messages.
 * Both refuse what is not a regular file (-EINVAL) or is larger than 4 GiB (-EFBIG), and
 * lw_elf__open opens O_NONBLOCK: a FIFO a target put at a path cannot block the reader. */
int lw_elf__open_fd(int fd, const char *name, struct lw_elf **out);
/* Same from memory (fuzzing, tests); the buffer must outlive the object. */
int lw_elf__open_mem(const void *buf, size_t len, struct lw_elf **out);
void lw_elf__close(struct lw_elf *e);

const char *lw_elf__path(const struct lw_elf *e);
/* The libelf handle (for libdw and friends); owned by e. */
struct Elf;
struct Elf *lw_elf__elf(struct lw_elf *e);
int lw_elf__type(const struct lw_elf *e);		/* ET_EXEC, ET_DYN, ... */
int lw_elf__has_symtab(const struct lw_elf *e);	/* a .symtab section with symbols */

/*
 * Find a symbol by exact name: .symtab first, then .dynsym; defined symbols only. Versioned
 * duplicates at different addresses: the global, default-version one wins; two different
 * global definitions -> -ENOTUNIQ. Returns 0 (vaddr, size set; size may be NULL) or -ENOENT.
 */
int lw_elf__find_symbol(struct lw_elf *e, const char *name, uint64_t *vaddr, uint64_t *size);

/* Virtual address -> file offset through the PT_LOAD that holds it (uprobes want offsets). */
int lw_elf__vaddr_to_offset(const struct lw_elf *e, uint64_t vaddr, uint64_t *off);
/* File offset -> virtual address (to get the load bias from a /proc/PID/maps line). */
int lw_elf__offset_to_vaddr(const struct lw_elf *e, uint64_t off, uint64_t *vaddr);

/* Copy len bytes of the file image at vaddr (initialised data/rodata only). 0 or -errno. */
int lw_elf__read(const struct lw_elf *e, uint64_t vaddr, void *buf, size_t len);

/* Search initialised read-only data for "<prefix><digits>.<digits>..." (a version string);
 * copies the match into buf. 0 or -ENOENT. */
int lw_elf__find_version_string(const struct lw_elf *e, const char *prefix, char *buf, size_t size);

/* DT_NEEDED entries: i-th name, or NULL past the end. */
const char *lw_elf__needed(const struct lw_elf *e, size_t i);

/* GNU build-id as hex (buf >= 41), and .gnu_debuglink file name. 0 or -ENOENT. */
int lw_elf__build_id(const struct lw_elf *e, char *buf, size_t size);
int lw_elf__debuglink(const struct lw_elf *e, char *buf, size_t size);

/* Section exists? (".PyRuntime", ".symtab", ".note.stapsdt", ...) and its address/size */
int lw_elf__section(const struct lw_elf *e, const char *name, uint64_t *addr, uint64_t *size);

/* Where a pointer to vaddr is stored: the first R_X86_64_RELATIVE relocation with that addend
 * (how a PIC object's static data points at its own strings). 0 and *where, or -ENOENT. */
int lw_elf__find_pointer_to(const struct lw_elf *e, uint64_t vaddr, uint64_t *where);

/* A USDT probe (.note.stapsdt) provider:name: its address and its semaphore's address (0 when
 * none), both as virtual addresses of this file. 0 or -ENOENT. */
int lw_elf__usdt(const struct lw_elf *e, const char *provider, const char *name, uint64_t *pc,
		 uint64_t *semaphore);

/* Name of the function containing vaddr (nearest preceding FUNC symbol within its size, or the
 * nearest preceding one when sizes are 0). 0 with *name and *off set, or -ENOENT. */
int lw_elf__symbolize(struct lw_elf *e, uint64_t vaddr, const char **name, uint64_t *off);

#endif
