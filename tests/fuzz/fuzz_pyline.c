// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* CPython line tables (co_lnotab, 3.10 co_linetable, 3.11+ location tables): the bytes are read
 * from the target's memory. First byte: minor version; next four: the instruction offset. */
#include <stdint.h>
#include <string.h>

#include "target/pyline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t instr;
	int minor;

	if (size < 5)
		return 0;
	minor = 8 + data[0] % 6;
	memcpy(&instr, data + 1, 4);
	lw_pyline_lookup(minor, data + 5, size - 5, 1, instr);
	lw_pyline_lookup(minor, data + 5, size - 5, -5, instr % 4096);
	lw_pyline_lookup(minor, data + 5, size - 5, 0x7fffffff, 0xffffffffu);
	return 0;
}
