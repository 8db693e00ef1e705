// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The line of an interpreted JS frame (target/v8frame.c): a Node process's stack copy and heap,
 * both the target's, decoded through V8's layout (Node 20's metadata values): the frame's
 * slots, the BytecodeArray, its source-position table, the Script's line ends and source.
 * Garbage, cycles through thin/sliced strings and absurd lengths must stay bounded.
 *
 * Input: bytes 0..7 = the return address searched for, 8..9 = the bytecode offset looked up in
 * the image taken as a position table; the whole input is the memory image at BASE (heap and
 * stack copy alike), so that small integers in it point into it.
 */
#include <stdint.h>
#include <string.h>

#include "base/lw_util.h"
#include "target/v8frame.h"
#include "target/memread.h"

#define BASE 0x1000ull

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct lw_v8meta m = {
		.fp_bytecode_array = -32, .fp_bytecode_offset = -40, .fp_function = -16,
		.map = 0, .map_type = 12, .fab_length = 8, .fa_data = 16, .ba_length = 8, .ba_spt = 32,
		.ba_data = 54, .jsf_shared = 24, .sfi_script = 32, .script_source = 8,
		.script_line_ends = 56, .str_length = 12, .seq1_chars = 16, .seq2_chars = 16,
		.thin_actual = 16, .sliced_parent = 16, .sliced_offset = 24,
		.t_bytecode_array = 191, .t_byte_array = 190, .t_spt = 190, .t_fixed_array = 175, .t_sfi = 262,
		.t_script = 167, .first_nonstring = 128, .repr_mask = 7, .enc_mask = 8,
		.seq_tag = 0, .thin_tag = 5, .sliced_tag = 3, .onebyte_tag = 8,
	};
	struct lw_fakemem_region reg = { .addr = BASE, .data = data, .len = size };
	struct lw_fakemem fm = { &reg, 1 };
	struct lw_reader mem = { lw_fakemem_read, &fm };
	uint64_t ret, cursor = 0;
	uint16_t off;

	if (size < 10)
		return 0;
	memcpy(&ret, data, 8);
	memcpy(&off, data + 8, 2);
	(void)lw_v8__spt_lookup(data + 10, size - 10, off);
	(void)lw_v8__interp_line(&m, &mem, data, BASE, size, ret, &cursor);
	return 0;
}
