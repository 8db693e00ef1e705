// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The /proc/PID/maps parser: paths in it are chosen by the target (file names with spaces,
 * newlines, " (deleted)"), and a process can map its own memfd names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"
#include "target/procmaps.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_maps *m;
	char *text = malloc(size + 1);
	size_t i, n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (lw_maps__parse(text, size, &m) == 0) {
		n = lw_maps__count(m);
		for (i = 0; i < n; i++) {
			const struct lw_map *x = lw_maps__get(m, i);

			lw_maps__find_addr(m, x->start);
			lw_maps__find_addr(m, x->end - 1);
			lw_maps__first_of(m, x->path);
		}
		lw_maps__skipped(m);
		lw_maps__find_lib(m, "libpython3");
		lw_maps__find_addr(m, 0x400000);
		lw_maps__free(m);
	}
	free(text);
	return 0;
}
