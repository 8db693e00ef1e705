// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Everything loopwatch reads from a CPython process's memory, decoded in userspace: thread state
 * lists, frame chains, code objects and their line tables, str objects, dicts, type names, Task
 * names, callables. The target owns that memory: it can be garbage, change under a read, form
 * cycles. Here the fuzz input is the memory, mapped at a low address so that small integers in
 * it are pointers into it.
 *
 * Input: byte 0 = minor version (8..13); bytes 1..12 = six 16-bit offsets (runtime, tstate,
 * callable, task, dict, code) into the image; the image is the whole input.
 */
#include <stdint.h>
#include <string.h>

#include "base/lw_util.h"
#include "target/pycode.h"
#include "target/pyproc.h"
#include "target/pytasks.h"
#include "target/memread.h"

#define BASE 0x1000ull

static int on_thread(void *arg, pid_t tid, uint64_t tstate)
{
	(*(int *)arg)++;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lw_pyinfo pi;
	struct lw_fakemem_region reg = { .addr = BASE, .data = data, .len = size };
	struct lw_fakemem fm = { &reg, 1 };
	struct lw_reader mem = { lw_fakemem_read, &fm };
	const struct lw_pylayout *lay;
	struct lw_pystack st;
	struct lw_ident id;
	struct lw_pycache *pc;
	uint64_t at[6], v;
	uint16_t o;
	char buf[256];
	int i, n = 0;

	if (size < 13)
		return 0;
	lay = lw_pylayout_for(8 + data[0] % 6);
	if (!lay)
		return 0;
	for (i = 0; i < 6; i++) {
		memcpy(&o, data + 1 + 2 * i, 2);
		at[i] = BASE + o;
	}
	memset(&pi, 0, sizeof(pi));
	pi.major = 3;
	pi.minor = lay->minor;
	pi.lay = *lay;
	pi.runtime = at[0];
	pi.pthread_tid_off = 0x2d0;

	lw_py__threads(&pi, &mem, on_thread, &n);
	memset(&st, 0, sizeof(st));
	lw_py__walk(&pi, &mem, at[1], &st);
	memset(&id, 0, sizeof(id));
	lw_py__classify(&pi, &mem, at[2], &id);
	lw_py__callable_task(&pi, &mem, at[2]);
	lw_py__task_name(&pi, &mem, at[3], buf, sizeof(buf));
	lw_py__task_name(&pi, &mem, at[3], buf, 4);
	lw_pyobj__dict_get(&pi, &mem, at[4], "run", &v);
	lw_py__type_name(&mem, at[4], buf, sizeof(buf));
	lw_py__read_str(lay, &mem, at[5], buf, sizeof(buf));
	lw_py__read_str(lay, &mem, at[5], buf, 2);
	if (lw_pycache__new(lay, lay->minor, &pc) == 0) {
		const struct lw_pycode *c = lw_pycache__get(pc, &mem, at[5]);

		if (c) {
			lw_pycache__line(pc, c, 0);
			lw_pycache__line(pc, c, at[3]);
			lw_pycache__line(pc, c, UINT64_MAX);
		}
		/* the stack's frames, as the session decodes a BPF record */
		for (i = 0; i < (int)st.nframes && i < LW_MAX_PYFRAMES; i++) {
			c = lw_pycache__get(pc, &mem, st.frames[i].code);
			if (c)
				lw_pycache__line(pc, c, st.frames[i].instr);
		}
		lw_pycache__free(pc);
	}
	return 0;
}
