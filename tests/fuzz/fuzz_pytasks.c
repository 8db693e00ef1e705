// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The asyncio Task reader (pytasks.c) over a CPython process's memory that the target owns:
 * sets, weak references, dicts (combined, split, managed), Tasks, coroutine chains (cycles
 * included), futures, callbacks, gather children can all be garbage or change under the read.
 *
 * Input: byte 0 = minor version (8..15); the rest is XORed onto a well-formed image of a process
 * with Tasks (tests/unit/fake_asyncio.h), from byte offset 16-bit LE in bytes 1..2 of the
 * image: an all-zero input is the valid image, and every mutation is a corruption of it.
 * 3.14+: the same bytes from 3 on are also an AsyncioDebug section (lw_pytasks__parse_debug);
 * one that passes its checks is the layout of a second snapshot of the image. Every Task's
 * await chain (lw_pytasks__await_chain) is read too.
 */
#include <stdint.h>
#include <string.h>

#include "base/lw_util.h"
#include "target/pytasks.h"
#include "target/memread.h"
#include "../unit/fake_asyncio.h"

static struct fake_asyncio fa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_fakemem_region reg;
	struct lw_fakemem fm = { &reg, 1 };
	struct lw_reader mem = { lw_fakemem_read, &fm };
	struct lw_tasks t;
	char err[256];
	uint16_t at = 0;
	size_t i, len;

	if (size < 3)
		return 0;
	if (fake_asyncio_build(&fa, 8 + data[0] % 8))
		return 0;
	memcpy(&at, data + 1, 2);
	len = fa.brk - FA_BASE;
	for (i = 3; i < size; i++)
		fa.mem[(at + i - 3) % len] ^= data[i];
	reg.addr = FA_BASE;
	reg.data = fa.mem;
	reg.len = sizeof(fa.mem);
	if (lw_pytasks__snapshot(&fa.pi, &mem, &t, err, sizeof(err)) == 0) {
		for (i = 0; i < t.n; i++) {
			unsigned k;

			for (k = 0; k < t.v[i].nframes; k++)
				if (!t.v[i].frames[k].qualname || !t.v[i].frames[k].file)
					__builtin_trap();
			lw_tasks__find(&t, t.v[i].waiter);
		}
		lw_pytasks__free(&t);
	}
	for (i = 0; i < LW_ARRAY_SIZE(fa.tasks); i++) {
		struct lw_task_link links[4];

		if (lw_pytasks__await_chain(&fa.pi, NULL, &mem, fa.tasks[i], links, 4) > 4)
			__builtin_trap();
	}
	if (fa.t->task_node) {
		struct lw_tasklayout tl = *fa.t;
		char how[256];

		if (lw_pytasks__parse_debug(data + 3, size - 3, &fa.pi, &tl, how, sizeof(how)) == 0 &&
		    lw_pytasks__snapshot_lay(&fa.pi, &tl, &mem, &t, err, sizeof(err)) == 0) {
			if (t.n > LW_TASKS_MAX)
				__builtin_trap();
			lw_pytasks__free(&t);
		}
	}
	return 0;
}
