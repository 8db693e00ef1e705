// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Finding probe sites by what the code refers to. Some events only have a home inside a static
 * function of a stripped binary (asyncio's "exception was never retrieved" in _asyncio's
 * FutureObj_finalize, CPython's unawaited-coroutine warning inlined into its callers). The code
 * of those paths, and only it, refers to a marker: a message string or an interned identifier.
 * Candidates are found by scanning the executable segments for an instruction that encodes the
 * marker's address (rip-relative displacement or absolute imm32); each is then confirmed by
 * disassembling (capstone) the whole function around it, its bounds taken from .eh_frame
 * (libdw), so that a probe is only ever placed on an instruction boundary.
 */
#include "target/hookfind.h"
#include "target/elfsym.h"
#include "base/lw_util.h"

#include <capstone/capstone.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES 64

struct seg {
	uint64_t vaddr, off, size;
	const uint8_t *bytes;
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Does this instruction reference target, as a rip-relative memory operand or an immediate? */
static int insn_refs(const cs_insn *in, uint64_t target)
{
	const cs_x86 *x = &in->detail->x86;
	int i;

	for (i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP &&
		    in->address + in->size + (uint64_t)op->mem.disp == target)
			return 1;
		if (op->type == X86_OP_IMM && (uint64_t)op->imm == target)
			return 1;
	}
	return 0;
}

/* Disassemble [start, end) and return the instruction address that references target at
 * exactly `near` (a candidate found by scanning) or within a few bytes before it. */
static int confirm(csh cs, const struct seg *sg, uint64_t start, uint64_t end, uint64_t cand,
		   uint64_t target, uint64_t *insn_addr)
{
	const uint8_t *code;
	size_t size;
	uint64_t addr;
	cs_insn *in = cs_malloc(cs);
	int found = 0;

	if (!in)
		return 0;
	if (start < sg->vaddr || end > sg->vaddr + sg->size || end <= start) {
		cs_free(in, 1);
		return 0;
	}
	code = sg->bytes + (start - sg->vaddr);
	size = (size_t)(end - start);
	addr = start;
	while (cs_disasm_iter(cs, &code, &size, &addr, in)) {
		if (in->address + in->size <= cand)
			continue;
		if (in->address > cand)
			break;
		/* the instruction that contains the candidate bytes */
		if (insn_refs(in, target)) {
			*insn_addr = in->address;
			found = 1;
		}
		break;
	}
	cs_free(in, 1);
	return found;
}

int lw_hook_find_refs(const char *path, uint64_t target, uint64_t *offs, int max)
{
	struct lw_elf *e = NULL;
	Elf *elf;
	Dwarf_CFI *cfi = NULL;
	csh cs = 0;
	size_t fsize = 0, i, nph;
	const uint8_t *img;
	int n = 0, r;

	r = lw_elf__open(path, &e);
	if (r)
		return r;
	elf = lw_elf__elf(e);
	img = (const uint8_t *)elf_rawfile(elf, &fsize);
	if (!img || elf_getphdrnum(elf, &nph)) {
		r = -ENOEXEC;
		goto out;
	}
	cfi = dwarf_getcfi_elf(elf);
	if (!cfi) {
		r = -ENOENT;	/* no .eh_frame: no safe function bounds, no probes */
		goto out;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		r = -ENOSYS;
		goto out;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	for (i = 0; i < nph && n < max; i++) {
		GElf_Phdr ph;
		struct seg sg;
		uint64_t j;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset)
			continue;
		sg.vaddr = ph.p_vaddr;
		sg.off = ph.p_offset;
		sg.size = ph.p_filesz;
		sg.bytes = img + ph.p_offset;
		for (j = 0; j + 4 <= sg.size && n < max; j++) {
			uint32_t v = rd32(sg.bytes + j);
			uint64_t va = sg.vaddr + j, insn = 0;
			int hit = 0;

			/* rip-relative disp32 ending an instruction without immediate (lea, mov) */
			if (va + 4 + (uint64_t)(int64_t)(int32_t)v == target)
				hit = 1;
			/* absolute imm32 (non-PIE executables below 4 GiB) */
			else if (target < 0x100000000ull && v == (uint32_t)target)
				hit = 1;
			if (hit) {
				Dwarf_Frame *fr = NULL;
				Dwarf_Addr start, end;

				if (dwarf_cfi_addrframe(cfi, va, &fr) == 0) {
					if (dwarf_frame_info(fr, &start, &end, NULL) >= 0 &&
					    confirm(cs, &sg, start, end, va, target, &insn)) {
						int k, dup = 0;

						for (k = 0; k < n; k++)
							dup |= offs[k] == insn - sg.vaddr + sg.off;
						if (!dup)
							offs[n++] = insn - sg.vaddr + sg.off;
					}
					free(fr);
				}
			}
		}
	}
	r = n;
out:
	if (cs)
		cs_close(&cs);
	if (cfi)
		dwarf_cfi_end(cfi);
	lw_elf__close(e);
	return r;
}

int lw_hook_find_string(const char *path, const char *s, uint64_t *vaddr)
{
	struct lw_elf *e = NULL;
	Elf *elf;
	size_t fsize = 0, i, nph, len = strlen(s) + 1;
	const char *img;
	int r = -ENOENT;

	if (lw_elf__open(path, &e))
		return -ENOENT;
	elf = lw_elf__elf(e);
	img = elf_rawfile(elf, &fsize);
	if (!img || elf_getphdrnum(elf, &nph))
		goto out;
	for (i = 0; i < nph && r; i++) {
		GElf_Phdr ph;
		const char *seg, *p;
		size_t left;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset)
			continue;
		seg = img + ph.p_offset;
		left = ph.p_filesz;
		p = seg;
		while (left >= len && (p = memmem(p, left, s, len))) {
			/* a whole string: NUL before it (or the segment start) */
			if (p == seg || p[-1] == 0) {
				*vaddr = ph.p_vaddr + (uint64_t)(p - seg);
				r = 0;
				break;
			}
			p++;
			left = ph.p_filesz - (size_t)(p - seg);
		}
	}
out:
	lw_elf__close(e);
	return r;
}
