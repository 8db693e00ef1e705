/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The line of the work in a JS function V8 still interprets (Ignition): read from the
 * interpreter's own frame, as V8's stack walker reads it. With --interpreted-frames-native-stack
 * each interpreted function runs in its own copy of the interpreter's entry trampoline, whose
 * return address a native stack holds; relative to that frame's frame pointer V8 keeps the
 * JSFunction, the BytecodeArray and the current bytecode offset (a Smi). The BytecodeArray's
 * source-position table maps the offset to a character position in the Script, whose line
 * ends (or source, counted) give the line.
 *
 * Field offsets differ per V8 version: they come from the postmortem metadata (v8dbg_* symbols,
 * what llnode reads) that Node ships in its executable and in Debian's libnode.so. One offset is
 * not in it, BytecodeArray::source_position_table: the third field after FixedArrayBase's
 * header in V8 9 to 11 (Node 16 to 21; bytecode-array.tq), where BytecodeArray is still a
 * FixedArrayBase; in V8 12 and later (Node 22+: a trusted object, bytecode-array.h) the field
 * after its wrapper, where the metadata's length, wrapper and bytecodes offsets are those of
 * that layout (8, 16, 64). Checked by the field's type (a ByteArray, a TrustedByteArray) at
 * every read.
 *
 * Every read of the target is bounded and may fail (then no line: the caller keeps the
 * function's first line); every object's type is checked through its map; nothing is written.
 */
#ifndef LW_V8FRAME_H
#define LW_V8FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "target/memread.h"

struct lw_elf;

struct lw_v8meta {
	int32_t fp_bytecode_array, fp_bytecode_offset;	/* from the frame pointer */
	int32_t map, map_type;			/* HeapObject::map, Map::instance_type */
	int32_t fab_length, fa_data;		/* FixedArrayBase::length, elements */
	int32_t ba_length, ba_spt, ba_data;	/* BytecodeArray: length, positions, bytecodes */
	int32_t fp_function, jsf_shared;	/* the frame's JSFunction -> SharedFunctionInfo */
	int32_t sfi_script;			/* SharedFunctionInfo::script_or_debug_info
						 * (V8 12+: script) */
	int32_t script_source, script_line_ends;
	int32_t str_length, seq1_chars, seq2_chars, thin_actual, sliced_parent, sliced_offset;
	uint16_t t_bytecode_array, t_byte_array, t_fixed_array, t_sfi, t_script;
	uint16_t t_spt;				/* the positions' type: ByteArray (V8 9-11),
						 * TrustedByteArray (V8 12+) */
	uint16_t first_nonstring, repr_mask, enc_mask, seq_tag, thin_tag, sliced_tag, onebyte_tag;
};

/* The metadata of the ELF file that holds V8 (node, or libnode.so): 0, or -ENOENT with why
 * set (no metadata, a layout this reader does not know: pointer compression, a BytecodeArray
 * neither V8 9-11's nor 12+'s). */
int lw_v8meta__load(struct lw_elf *e, struct lw_v8meta *m, char *why, size_t whylen);

/*
 * The line being run by the interpreted frame that ret (a return address into its trampoline
 * copy) returns to. stack: len bytes of the thread's stack copied from base (the frames are
 * found there, never in the live stack, which has moved on); heap: the target's memory.
 * *cursor: where to search the copy from (0 at first; moved past the frame found, so frames
 * asked innermost first are found in order). The line (>= 1), or 0 when unknown.
 */
int lw_v8__interp_line(const struct lw_v8meta *m, const struct lw_reader *heap, const void *stack,
		       uint64_t base, size_t len, uint64_t ret, uint64_t *cursor);

/* The character position -> line step alone, for tests: the bytecode offset's script offset
 * in a source-position table (VLQ pairs), -1 when none. */
int64_t lw_v8__spt_lookup(const uint8_t *t, size_t len, int32_t offset);

#endif
