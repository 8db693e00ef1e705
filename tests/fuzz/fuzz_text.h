/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Harnesses whose first input byte picks what to do: the rest, as a NUL-terminated string. */
#ifndef LW_FUZZ_TEXT_H
#define LW_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* data[1..size) as a malloc'd string (free it), or NULL when size is 0 or memory is short */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return NULL;
	text = malloc(size);
	if (!text)
		return NULL;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	return text;
}

#endif
