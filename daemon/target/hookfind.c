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

/* Does the kernel's x86 uprobe code emulate this instruction (one trap) rather than step it
 * out of line (a second, debug trap)? Relative jmp/call/jcc, nop, push of a register
 * (arch/x86/kernel/uprobes.c: branch_setup_xol_ops, push_setup_xol_ops). Prefixed forms
 * other than REX are left alone. */
static int insn_emulated(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	uint8_t op0 = x->opcode[0], op1 = x->opcode[1];

	if (x->prefix[0] || x->prefix[1] || x->prefix[2] || x->prefix[3])
		return 0;
	if (op0 == 0xeb || op0 == 0xe9 || op0 == 0xe8 || op0 == 0x90 || (op0 >= 0x70 && op0 <= 0x7f))
		return 1;
	if (op0 == 0x0f && op1 >= 0x80 && op1 <= 0x8f)
		return 1;
	return op0 >= 0x50 && op0 <= 0x57 && in->size <= 2;	/* push reg, REX.B for r8-r15 */
}

/* Does it end straight-line code (a branch, return, syscall, trap, indirect transfer)? */
static int insn_transfers(const cs_insn *in)
{
	int i;

	for (i = 0; i < in->detail->groups_count; i++)
		switch (in->detail->groups[i]) {
		case CS_GRP_JUMP:
		case CS_GRP_CALL:
		case CS_GRP_RET:
		case CS_GRP_INT:
		case CS_GRP_IRET:
			return 1;
		}
	return in->id == X86_INS_SYSCALL || in->id == X86_INS_SYSENTER || in->id == X86_INS_HLT ||
	       in->id == X86_INS_UD2;
}

int lw_hook_emulated_entry(const uint8_t *code, size_t len, uint64_t addr, uint64_t *probe)
{
	static const x86_reg keep[] = { X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL,
					X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL,
					X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL };
	csh cs;
	cs_insn *in;
	size_t n = 0;
	int found = 0;

	*probe = addr;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return 0;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	in = cs_malloc(cs);
	while (in && n++ < 6 && cs_disasm_iter(cs, &code, &len, &addr, in)) {
		cs_regs rd, wr;
		uint8_t nrd = 0, nwr = 0, i, k;

		if (insn_emulated(in)) {
			*probe = in->address;
			found = 1;
			break;
		}
		/* only over straight-line code that leaves the probe's inputs (the first two
		 * arguments) and the stack pointer as they were at entry */
		if (insn_transfers(in) || cs_regs_access(cs, in, rd, &nrd, wr, &nwr) != CS_ERR_OK)
			break;
		for (i = 0; i < nwr; i++)
			for (k = 0; k < LW_ARRAY_SIZE(keep); k++)
				if (wr[i] == (uint16_t)keep[k])
					goto out;
	}
out:
	if (in)
		cs_free(in, 1);
	cs_close(&cs);
	return found;
}
