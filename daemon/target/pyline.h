/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython line-number tables, decoded in userspace (pure functions, no target access).
 *
 *   <= 3.9  co_lnotab:   (byte delta, signed line delta) pairs, byte offsets
 *   3.10    co_linetable: (byte delta, signed line delta) pairs, -128 = no line, [start, end)
 *   3.11+   co_linetable: the location table (PEP 626 / 657 "locations")
 *
 * The table bytes come from another process: every function is bounded by len and never reads
 * past it, whatever the bytes are.
 */
#ifndef LW_PYLINE_H
#define LW_PYLINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Line number of the instruction at code-unit offset `instr` (a code unit is 2 bytes), given
 * the table bytes, the code object's co_firstlineno and the Python minor version (8..13).
 * Returns the line (>= 0), or -1 when the table says "no line" or the offset is past the table.
 */
int lw_pyline_lookup(int minor, const uint8_t *table, size_t len, int firstlineno, uint32_t instr);

#endif
