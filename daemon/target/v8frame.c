// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The line of an interpreted JS frame (see v8frame.h): frame -> BytecodeArray + bytecode
 * offset -> source-position table -> script offset -> Script line ends (or its source counted).
 */
#include "target/v8frame.h"
#include "target/elfsym.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V8_SPT_MAX (256u << 10)		/* a source-position table read at most */
#define V8_LINE_ENDS_MAX (1u << 22)	/* line ends searched at most */
#define V8_SOURCE_MAX (16u << 20)	/* source characters counted at most */
#define V8_CHUNK 65536u

/* ------------------------------------------------------------------ the metadata */

static int meta_get(struct lw_elf *e, const char *name, int32_t *out)
{
	char sym[160];
	uint64_t va;

	snprintf(sym, sizeof(sym), "v8dbg_%s", name);
	if (lw_elf__find_symbol(e, sym, &va, NULL))
		return -ENOENT;
	/* a value of 0 sits in .bss: no file bytes to read */
	if (lw_elf__read(e, va, out, sizeof(*out)))
		*out = 0;
	return 0;
}

int lw_v8meta__load(struct lw_elf *e, struct lw_v8meta *m, char *why, size_t whylen)
{
	/* field offsets (int32) and type numbers and string tags (uint16), by metadata name */
	static const struct {
		const char *name;
		size_t off;
		int u16;
	} F[] = {
#define MF(n, f) { n, offsetof(struct lw_v8meta, f), 0 }
#define MT(n, f) { n, offsetof(struct lw_v8meta, f), 1 }
		MF("off_fp_bytecode_array", fp_bytecode_array),
		MF("off_fp_bytecode_offset", fp_bytecode_offset),
		MF("off_fp_function", fp_function),
		MF("class_HeapObject__map__Map", map),
		MF("class_Map__instance_type__uint16_t", map_type),
		MF("class_FixedArrayBase__length__SMI", fab_length),
		MF("class_FixedArray__data__uintptr_t", fa_data),
		MF("class_BytecodeArray__data__uintptr_t", ba_data),
		MF("class_JSFunction__shared__SharedFunctionInfo", jsf_shared),
		MF("class_Script__source__Object", script_source),
		MF("class_Script__line_ends__Object", script_line_ends),
		MF("class_String__length__int32_t", str_length),
		MF("class_SeqOneByteString__chars__char", seq1_chars),
		MF("class_SeqTwoByteString__chars__char", seq2_chars),
		MF("class_ThinString__actual__String", thin_actual),
		MF("class_SlicedString__parent__String", sliced_parent),
		MF("class_SlicedString__offset__SMI", sliced_offset),
		MT("type_BytecodeArray__BYTECODE_ARRAY_TYPE", t_bytecode_array),
		MT("type_ByteArray__BYTE_ARRAY_TYPE", t_byte_array),
		MT("type_FixedArray__FIXED_ARRAY_TYPE", t_fixed_array),
		MT("type_SharedFunctionInfo__SHARED_FUNCTION_INFO_TYPE", t_sfi),
		MT("type_Script__SCRIPT_TYPE", t_script),
		MT("FirstNonstringType", first_nonstring),
		MT("StringRepresentationMask", repr_mask),
		MT("StringEncodingMask", enc_mask),
		MT("SeqStringTag", seq_tag),
		MT("ThinStringTag", thin_tag),
		MT("SlicedStringTag", sliced_tag),
		MT("OneByteStringTag", onebyte_tag),
#undef MF
#undef MT
	};

	int32_t v, tagged = 0, shift = 0, tag = 0, mask = 0, fa_parent, tba;
	size_t i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < sizeof(F) / sizeof(F[0]); i++) {
		if (meta_get(e, F[i].name, &v) || (F[i].u16 && (v < 0 || v > 0xffff))) {
			snprintf(why, whylen, "no V8 postmortem metadata v8dbg_%s in %s", F[i].name,
				 lw_elf__path(e));
			return -ENOENT;
		}
		if (F[i].u16)
			*(uint16_t *)((char *)m + F[i].off) = (uint16_t)v;
		else
			*(int32_t *)((char *)m + F[i].off) = v;
	}
	/* full 8-byte tagged pointers, 32-bit Smis in the upper half (no pointer compression) */
	if (meta_get(e, "TaggedSize", &tagged) || meta_get(e, "SmiShiftSize", &shift) ||
	    meta_get(e, "HeapObjectTag", &tag) || meta_get(e, "HeapObjectTagMask", &mask) ||
	    tagged != 8 || shift != 31 || tag != 1 || mask != 3) {
		snprintf(why, whylen, "V8 in %s stores tagged values in a layout not read here "
			 "(pointer compression or 31-bit Smis)", lw_elf__path(e));
		return -ENOENT;
	}
	/* the Script of a SharedFunctionInfo: script_or_debug_info (V8 9-11), script (12+) */
	if (meta_get(e, "class_SharedFunctionInfo__script_or_debug_info__HeapObject",
		     &m->sfi_script) &&
	    meta_get(e, "class_SharedFunctionInfo__script__Tagged_HeapObject_", &m->sfi_script)) {
		snprintf(why, whylen, "no V8 postmortem metadata for SharedFunctionInfo's script in "
			 "%s", lw_elf__path(e));
		return -ENOENT;
	}
	if (meta_get(e, "parent_BytecodeArray__FixedArrayBase", &fa_parent) == 0) {
		/* BytecodeArray is a FixedArrayBase (V8 9-11): source_position_table is its third
		 * field after the header (constant_pool, handler_table, source_position_table),
		 * a ByteArray */
		m->ba_length = m->fab_length;
		m->ba_spt = m->fab_length + 3 * 8;
		m->t_spt = m->t_byte_array;
		if (m->ba_data < m->ba_spt + 8 || m->ba_data > 128) {
			snprintf(why, whylen, "V8 in %s: unexpected BytecodeArray header size %d",
				 lw_elf__path(e), m->ba_data);
			return -ENOENT;
		}
		return 0;
	}
	/* V8 12+: a trusted object of its own (map, length, wrapper, source_position_table,
	 * handler_table, constant_pool, frame_size, parameter_size, max_arguments, incoming
	 * new target register, padding: bytecodes at 64), its positions a TrustedByteArray
	 * (length and bytes where a ByteArray has them) */
	if (meta_get(e, "class_BytecodeArray__length__SMI", &m->ba_length) ||
	    meta_get(e, "class_BytecodeArray__wrapper__Tagged_BytecodeWrapper_", &v) ||
	    meta_get(e, "type_TrustedByteArray__TRUSTED_BYTE_ARRAY_TYPE", &tba) ||
	    m->ba_length != 8 || v != 16 || m->ba_data != 64 || tba < 0 || tba > 0xffff) {
		snprintf(why, whylen, "V8 in %s has a BytecodeArray layout not read here (neither "
			 "V8 9-11's nor 12's and later's)", lw_elf__path(e));
		return -ENOENT;
	}
	m->ba_spt = v + 8;
	m->t_spt = (uint16_t)tba;
	return 0;
}

/* ------------------------------------------------------------------ the heap */

static int is_obj(uint64_t v)
{
	return (v & 3) == 1 && v > 4096 && v < (1ull << 47);
}

static int64_t smi(uint64_t v)
{
	return (int64_t)v >> 32;
}

static int is_smi(uint64_t v)
{
	return (v & 0xffffffffu) == 0;
}

static int rd64(const struct lw_reader *r, uint64_t obj, int32_t off, uint64_t *v)
{
	return lw_mem_read(r, obj - 1 + (uint64_t)(int64_t)off, v, sizeof(*v));
}

/* the instance type of the heap object obj (tagged), or -1 */
static int obj_type(const struct lw_v8meta *m, const struct lw_reader *r, uint64_t obj)
{
	uint64_t map;
	uint16_t t;

	if (!is_obj(obj) || rd64(r, obj, m->map, &map) || !is_obj(map) ||
	    lw_mem_read(r, map - 1 + (uint64_t)m->map_type, &t, sizeof(t)))
		return -1;
	return t;
}

int64_t lw_v8__spt_lookup(const uint8_t *t, size_t len, int32_t offset)
{
	/* entries: (code offset delta, its sign the statement bit; source position delta), each
	 * a zig-zag VLQ, from code offset -1 (the function entry) and position 0 */
	int64_t code = -1, pos = 0, found = -1;
	size_t i = 0;
	int k;

	while (i < len) {
		int64_t val[2];

		for (k = 0; k < 2; k++) {
			uint64_t u = 0;
			unsigned shift = 0;
			uint8_t b;

			do {
				if (i >= len || shift > 63)
					goto out;	/* cut short: what was whole before */
				b = t[i++];
				u |= (uint64_t)(b & 0x7f) << shift;
				shift += 7;
			} while (b & 0x80);
			val[k] = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
		}
		if (val[0] > INT32_MAX || val[0] < INT32_MIN)
			break;
		code += val[0] >= 0 ? val[0] : -(val[0] + 1);
		if (code > offset)
			break;
		pos = (int64_t)((uint64_t)pos + (uint64_t)val[1]);	/* garbage may wrap */
		found = pos;
	}
out:
	if (found < 0)
		return -1;
	/* SourcePosition: bit 0 external; script offset + 1 in bits 1-30 */
	if (found & 1)
		return -1;
	found = ((found >> 1) & ((1 << 30) - 1)) - 1;
	return found;
}

/* the 1-based line of script offset pos: in the Script's line ends (a FixedArray of Smis, the
 * offsets of the line terminators), binary-searched in the target */
static int line_in_ends(const struct lw_v8meta *m, const struct lw_reader *r, uint64_t ends,
			int64_t pos)
{
	uint64_t n, v;
	uint64_t lo = 0, hi;

	if (rd64(r, ends, m->fab_length, &n) || !is_smi(n) || smi(n) <= 0 ||
	    smi(n) > V8_LINE_ENDS_MAX)
		return 0;
	hi = (uint64_t)smi(n);
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (rd64(r, ends, m->fa_data + (int32_t)(mid * 8), &v) || !is_smi(v))
			return 0;
		if (smi(v) >= pos)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo >= (uint64_t)smi(n))
		return 0;	/* past the last line's end: not this script */
	return (int)lo + 1;
}

/* the 1-based line of script offset pos, counting line terminators in the source (a
 * sequential string, or a thin or sliced one over it) up to pos */
static int line_in_source(const struct lw_v8meta *m, const struct lw_reader *r, uint64_t str,
			  int64_t pos)
{
	uint8_t *buf;
	int64_t from = 0, done = 0, lines = 1;
	int depth, t, two, prev_cr = 0;
	uint32_t slen;

	for (depth = 0; depth < 4; depth++) {
		t = obj_type(m, r, str);
		if (t < 0 || t >= m->first_nonstring)
			return 0;
		if ((t & m->repr_mask) == m->thin_tag) {
			if (rd64(r, str, m->thin_actual, &str))
				return 0;
		} else if ((t & m->repr_mask) == m->sliced_tag) {
			uint64_t off;

			if (rd64(r, str, m->sliced_offset, &off) || !is_smi(off) || smi(off) < 0 ||
			    rd64(r, str, m->sliced_parent, &str))
				return 0;
			from += smi(off);
		} else {
			break;
		}
	}
	if (depth == 4 || (t & m->repr_mask) != m->seq_tag || from > V8_SOURCE_MAX)
		return 0;
	two = (t & m->enc_mask) != m->onebyte_tag;
	if (lw_mem_read(r, str - 1 + (uint64_t)m->str_length, &slen, sizeof(slen)) ||
	    from + pos > (int64_t)slen || from + pos > V8_SOURCE_MAX)
		return 0;
	buf = malloc(V8_CHUNK);
	if (!buf)
		return 0;
	while (done < pos) {
		size_t want = (size_t)(pos - done) < V8_CHUNK / 2 ? (size_t)(pos - done) : V8_CHUNK / 2;
		uint64_t at = str - 1 + (uint64_t)(two ? m->seq2_chars : m->seq1_chars) +
			      (uint64_t)(from + done) * (two ? 2 : 1);
		size_t i;

		if (lw_mem_read(r, at, buf, want * (two ? 2 : 1))) {
			free(buf);
			return 0;
		}
		for (i = 0; i < want; i++) {
			unsigned c = two ? (unsigned)(buf[2 * i] | buf[2 * i + 1] << 8) : buf[i];

			/* V8's line terminators: \n, \r (a \r\n once), U+2028, U+2029 */
			if (c == '\n' ? !prev_cr : (c == '\r' || c == 0x2028 || c == 0x2029))
				lines++;
			prev_cr = c == '\r';
		}
		done += (int64_t)want;
	}
	free(buf);
	return (int)lines;
}

/* The frame pointer of the interpreted frame ret returns to: V8's bytecode handlers build a
 * frame of their own whose saved frame pointer is the interpreter frame's, just below the
 * return address into the trampoline copy. The next slot holding ret from *cursor on. */
static int next_fp(const uint8_t *s, uint64_t base, size_t len, uint64_t ret, uint64_t *cursor,
		   uint64_t *fp)
{
	uint64_t a = *cursor > base ? *cursor : base + 8;

	a = (a + 7) & ~7ull;
	for (; a >= base + 8 && a - base + 8 <= len; a += 8) {
		uint64_t v, f;

		memcpy(&v, s + (a - base), 8);
		if (v != ret)
			continue;
		memcpy(&f, s + (a - 8 - base), 8);
		*cursor = a + 8;
		if (f > a && f - base <= len && !(f & 7)) {
			*fp = f;
			return 0;
		}
	}
	*cursor = base + len;
	return -ENOENT;
}

static int frame_line(const struct lw_v8meta *m, const struct lw_reader *heap,
		      const struct lw_reader *stk, uint64_t fp)
{
	uint64_t ba, raw, fn, sfi, script, ends, src, spt, spt_len, ba_len;
	uint8_t *t;
	int64_t off, pos;
	int line;

	if (lw_mem_read_u64(stk, fp + (uint64_t)(int64_t)m->fp_bytecode_array, &ba) ||
	    lw_mem_read_u64(stk, fp + (uint64_t)(int64_t)m->fp_bytecode_offset, &raw) ||
	    lw_mem_read_u64(stk, fp + (uint64_t)(int64_t)m->fp_function, &fn) || !is_smi(raw))
		return 0;
	if (obj_type(m, heap, ba) != m->t_bytecode_array || rd64(heap, ba, m->ba_length, &ba_len) ||
	    !is_smi(ba_len))
		return 0;
	/* the frame keeps the offset from the tagged BytecodeArray's address */
	off = smi(raw) - (m->ba_data - 1);
	if (off < 0 || off >= smi(ba_len))
		return 0;
	if (rd64(heap, ba, m->ba_spt, &spt) || obj_type(m, heap, spt) != m->t_spt ||
	    rd64(heap, spt, m->fab_length, &spt_len) || !is_smi(spt_len) || smi(spt_len) <= 0 ||
	    smi(spt_len) > V8_SPT_MAX)
		return 0;	/* no positions collected (lazy source positions), or not ours */
	t = malloc((size_t)smi(spt_len));
	if (!t)
		return 0;
	if (lw_mem_read(heap, spt - 1 + (uint64_t)m->fa_data, t, (size_t)smi(spt_len))) {
		free(t);
		return 0;
	}
	pos = lw_v8__spt_lookup(t, (size_t)smi(spt_len), (int32_t)off);
	free(t);
	if (pos < 0)
		return 0;
	if (obj_type(m, heap, fn) < 0 || rd64(heap, fn, m->jsf_shared, &sfi) ||
	    obj_type(m, heap, sfi) != m->t_sfi || rd64(heap, sfi, m->sfi_script, &script) ||
	    obj_type(m, heap, script) != m->t_script)
		return 0;
	line = 0;
	if (!rd64(heap, script, m->script_line_ends, &ends) &&
	    obj_type(m, heap, ends) == m->t_fixed_array)
		line = line_in_ends(m, heap, ends, pos);
	if (!line && !rd64(heap, script, m->script_source, &src))
		line = line_in_source(m, heap, src, pos);
	return line;
}

int lw_v8__interp_line(const struct lw_v8meta *m, const struct lw_reader *heap, const void *stack,
		       uint64_t base, size_t len, uint64_t ret, uint64_t *cursor)
{
	struct lw_fakemem_region reg = { .addr = base, .data = stack, .len = len };
	struct lw_fakemem fm = { .regions = &reg, .n = 1 };
	struct lw_reader stk = { .read = lw_fakemem_read, .ctx = &fm };
	uint64_t fp;
	int tries, line;

	if (!m || !stack || len < 16 || !ret)
		return 0;
	/* the first slot holding ret whose frame reads as an interpreter frame (a few tries: a
	 * stale copy of the address elsewhere on the stack is not a frame) */
	for (tries = 0; tries < 4 && !next_fp(stack, base, len, ret, cursor, &fp); tries++)
		if ((line = frame_line(m, heap, &stk, fp)) > 0)
			return line;
	return 0;
}
