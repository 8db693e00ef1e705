// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Small /proc files and files other processes write: status (NSpid), stat (a comm with spaces
 * and parentheses), a JIT's perf map (/tmp/perf-PID.map, written by the target), cgroup, and
 * pid files. First byte: which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "base/lw_util.h"
#include "service/matcher.h"
#include "target/nativesym.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, state, cg[512];
	unsigned long flags;
	long ids[8];
	pid_t pid;

	text = fuzz_text(data, size);
	if (!text)
		return 0;
	switch (data[0] % 5) {
	case 0:
		lw_parse_nspid(text, ids, 8);
		lw_parse_nspid(text, ids, 1);
		break;
	case 1:
		lw_parse_proc_stat(text, &state, &flags);
		break;
	case 2: {
		struct lw_nativesym *s;
		struct lw_native_frame f;

		if (lw_nativesym__new("/nonexistent", 1, &s) == 0) {
			if (lw_nativesym__load_perf_map(s, text) > 0) {
				lw_nativesym__jit_lookup(s, 0, &f);
				lw_nativesym__jit_lookup(s, 0x7f0000001000ull, &f);
				lw_nativesym__jit_lookup(s, UINT64_MAX, &f);
			}
			lw_nativesym__free(s);
		}
		break;
	}
	case 3:
		if (lw_cgroup_path(text, cg, sizeof(cg)) == 0) {
			lw_cgroup_has_unit(cg, "app.service");
			lw_cgroup_under(cg, "/system.slice");
		}
		break;
	case 4:
		lw_pidfile_parse(text, &pid);
		break;
	}
	free(text);
	return 0;
}
