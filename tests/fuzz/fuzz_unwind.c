// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The CFI unwinder (target/unwind.c): a mapped file's unwind tables (.eh_frame, .debug_frame,
 * parsed by libdw), the registers and the stack copy all come from the target and can be
 * garbage. Here the fuzz input is all three: the file is mapped r-x at 0x10000 of a fake
 * /proc tree (proc/1/maps, proc/1/root/f.so) and the stack copy is served alone (no live
 * memory).
 *
 * Input: bytes 0-1 = stack length (LE u16, capped at what follows the registers); bytes
 * 2..137 = 17 registers (LE u64, DWARF order); then the stack copy; the rest is the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lw_util.h"
#include "target/unwind.h"

#define MAP_AT 0x10000ull

static char root[64], proc[80], maps[128], file[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char d[128];

	lw_log_set_level(0);
	snprintf(root, sizeof(root), "/tmp/lwfuzz-unwind-XXXXXX");
	if (!mkdtemp(root))
		abort();
	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(d, sizeof(d), "%s/1/root", proc);
	mkdir(proc, 0700);
	snprintf(maps, sizeof(maps), "%s/1", proc);
	mkdir(maps, 0700);
	mkdir(d, 0700);
	snprintf(maps, sizeof(maps), "%s/1/maps", proc);
	snprintf(file, sizeof(file), "%s/1/root/f.so", proc);
	return 0;
}

static int put(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t regs[LW_UNW_NREGS];
	struct lw_uframe fr[32];
	enum lw_unwind_stop why;
	struct lw_unwind *u = NULL;
	size_t slen, flen;
	char line[160];
	int n;

	if (size < 2 + sizeof(regs))
		return 0;
	slen = (size_t)data[0] | (size_t)data[1] << 8;
	memcpy(regs, data + 2, sizeof(regs));
	data += 2 + sizeof(regs);
	size -= 2 + sizeof(regs);
	if (slen > size)
		slen = size;
	flen = size - slen;
	n = snprintf(line, sizeof(line), "%llx-%llx r-xp 00000000 00:00 1 /f.so\n",
		     (unsigned long long)MAP_AT,
		     (unsigned long long)(MAP_AT + ((flen + 4095) & ~4095ull) + 4096));
	if (put(maps, line, (size_t)n) || put(file, data + slen, flen))
		return 0;
	if (lw_unwind__new(proc, 1, NULL, &u))
		return 0;
	n = lw_unwind__run(u, regs, data, slen, fr, 32, &why);
	if (n > 32 || (n > 0 && !lw_unwind_stop_str(why) && why != LW_UNW_COMPLETE))
		abort();
	/* the same unwinder again: cached tables */
	lw_unwind__run(u, regs, data, slen, fr, 32, &why);
	lw_unwind__free(u);
	return 0;
}
