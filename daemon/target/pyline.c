// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython line tables. Written from the format descriptions in CPython's
 * Objects/lnotab_notes.txt and Objects/locations.md; every read is bounded by len.
 */
#include "target/pyline.h"

/* <= 3.9: (byte delta, signed line delta) pairs; the line changes at each address */
static int lnotab(const uint8_t *t, size_t len, int first, uint64_t addr)
{
	uint64_t a = 0;
	int64_t line = first;	/* co_firstlineno comes from the target: may be anything */
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		a += t[i];
		if (a > addr)
			break;
		line += (int8_t)t[i + 1];
	}
	return (line < 0 || line > (1 << 30)) ? -1 : (int)line;
}

/* 3.10: entries (byte length, signed line delta or -128 = none) covering [start, end) */
static int linetable310(const uint8_t *t, size_t len, int first, uint64_t addr)
{
	uint64_t end = 0;
	int64_t line = first;
	int cur = -1;
	size_t i = 0;

	while (end <= addr) {
		int8_t ld;

		if (i + 1 >= len)
			return -1;
		end += t[i];
		ld = (int8_t)t[i + 1];
		i += 2;
		if (ld == -128) {
			cur = -1;
		} else {
			line += ld;
			cur = (line < 0 || line > (1 << 30)) ? -1 : (int)line;
		}
	}
	return cur;
}

/* 3.11+ varints: 6 bits a byte, least significant first, 0x40 = more */
static int varint(const uint8_t *t, size_t len, size_t *i, uint32_t *out)
{
	uint32_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (*i >= len || shift > 30)
			return -1;
		b = t[(*i)++];
		v |= (uint32_t)(b & 63) << shift;
		shift += 6;
	} while (b & 64);
	*out = v;
	return 0;
}

static int svarint(const uint8_t *t, size_t len, size_t *i, int64_t *out)
{
	uint32_t u;

	if (varint(t, len, i, &u))
		return -1;
	*out = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	return 0;
}

/* 3.11+ location table: entries 1cccclll, covering lll+1 code units, code cccc */
static int locations(const uint8_t *t, size_t len, int first, uint64_t addr)
{
	uint64_t end = 0;
	int64_t line = first;
	int cur = -1;
	size_t i = 0;

	while (end <= addr) {
		uint8_t h;
		unsigned code;
		int64_t delta = 0;

		if (i >= len || !(t[i] & 0x80))
			return -1;
		h = t[i++];
		code = (h >> 3) & 15;
		end += ((uint64_t)(h & 7) + 1) * 2;
		if (code == 13 || code == 14) {
			if (svarint(t, len, &i, &delta))
				return -1;
		} else if (code >= 10 && code <= 12) {
			delta = code - 10;
		}
		line += delta;
		/* skip the rest of the entry (column data) */
		while (i < len && !(t[i] & 0x80))
			i++;
		if (code == 15)
			cur = -1;
		else
			cur = (line < 0 || line > (1 << 30)) ? -1 : (int)line;
	}
	return cur;
}

int lw_pyline_lookup(int minor, const uint8_t *table, size_t len, int firstlineno, uint32_t instr)
{
	uint64_t addr = (uint64_t)instr * 2;	/* byte offset */

	if (!table)
		return -1;
	if (minor <= 9)
		return lnotab(table, len, firstlineno, addr);
	if (minor == 10)
		return linetable310(table, len, firstlineno, addr);
	return locations(table, len, firstlineno, addr);
}
