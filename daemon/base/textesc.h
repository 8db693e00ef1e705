/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Text that came from a target or a file, made safe to print on a terminal or in a log line:
 * C0 controls (newline, ESC, BEL, CR...), DEL, C1 controls (U+0080..U+009F), the bidirectional
 * overrides (U+202A..U+202E, U+2066..U+2069, U+200E/F, U+2028/9) and every byte that is not
 * part of valid UTF-8 are written as \xNN (one per byte). Everything else is kept as is. */
#ifndef LW_TEXTESC_H
#define LW_TEXTESC_H

#include <stddef.h>

/* Does s need escaping? (NULL: no) */
int lw_esc_needed(const char *s);
/* Escape s into buf (always NUL-terminated when size > 0; cut at a whole escape). Returns buf. */
char *lw_esc(const char *s, char *buf, size_t size);
/* A malloc'd escaped copy of s (NULL when s is NULL or out of memory) */
char *lw_esc_dup(const char *s);
/* The length of the escaped form of s, without the NUL */
size_t lw_esc_len(const char *s);

#endif
