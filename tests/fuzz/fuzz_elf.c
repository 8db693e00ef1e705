// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The ELF reader on arbitrary bytes: loopwatch opens binaries and debug files that other users
 * control (a container's /usr/bin/python3, /usr/lib/debug/.build-id/...). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "target/elfsym.h"
#include "base/lw_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_elf *e;
	uint64_t va = 0, sz = 0, off = 0, where, pc, sem;
	char buf[256];
	const char *name;
	size_t i;

	if (lw_elf__open_mem(data, size, &e))
		return 0;
	lw_elf__type(e);
	lw_elf__has_symtab(e);
	lw_elf__find_symbol(e, "context_run", &va, &sz);
	lw_elf__find_symbol(e, "_PyRuntime", &va, &sz);
	lw_elf__find_symbol(e, "", &va, &sz);
	lw_elf__vaddr_to_offset(e, va, &off);
	lw_elf__offset_to_vaddr(e, off, &va);
	lw_elf__read(e, va, buf, sizeof(buf));
	lw_elf__find_version_string(e, "3.", buf, sizeof(buf));
	for (i = 0; i < 64 && lw_elf__needed(e, i); i++)
		;
	lw_elf__build_id(e, buf, sizeof(buf));
	lw_elf__debuglink(e, buf, sizeof(buf));
	lw_elf__section(e, ".text", &va, &sz);
	lw_elf__section(e, ".data", &va, &sz);
	lw_elf__find_pointer_to(e, va, &where);
	lw_elf__usdt(e, "python", "function__entry", &pc, &sem);
	for (i = 0; i < 8; i++) {
		uint64_t a = va + i * 0x40;

		lw_elf__symbolize(e, a, &name, &off);
	}
	lw_elf__close(e);
	return 0;
}
