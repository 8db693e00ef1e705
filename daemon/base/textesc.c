// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Escaping for text output: one rule for every string a target or a file controls. */
#include "base/textesc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid, printable UTF-8 sequence at p (1..4), or 0 when the byte at p must be
 * escaped (control, DEL, C1, invalid or overlong UTF-8, surrogates, bidi/line controls). */
static size_t ok_seq(const unsigned char *p)
{
	unsigned char c = p[0];
	uint32_t cp;
	size_t n, i;

	if (c < 0x20 || c == 0x7f)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;				/* overlong or out of range */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;				/* surrogates */
	if (cp >= 0x80 && cp <= 0x9f)
		return 0;				/* C1: 0x9b is CSI on some terminals */
	if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
	    cp == 0x200f || cp == 0x2028 || cp == 0x2029)
		return 0;				/* text direction and line separators */
	return n;
}

int lw_esc_needed(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s)
		return 0;
	while (*p) {
		size_t n = ok_seq(p);

		if (!n)
			return 1;
		p += n;
	}
	return 0;
}

/* feeds either a buffer (buf != NULL) or only a count */
static size_t esc_into(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;

	while (*p) {
		size_t n = ok_seq(p);

		if (n) {
			if (buf && len + n >= size)
				break;
			if (buf)
				memcpy(buf + len, p, n);
			len += n;
			p += n;
			continue;
		}
		/* one byte as \xNN; a multi-byte control is escaped byte by byte */
		if (buf && len + 4 >= size)
			break;
		if (buf) {
			buf[len] = '\\';
			buf[len + 1] = 'x';
			buf[len + 2] = hex[*p >> 4];
			buf[len + 3] = hex[*p & 15];
		}
		len += 4;
		p++;
	}
	if (buf)
		buf[len] = 0;
	return len;
}

char *lw_esc(const char *s, char *buf, size_t size)
{
	if (!size)
		return buf;
	if (!s) {
		buf[0] = 0;
		return buf;
	}
	esc_into(s, buf, size);
	return buf;
}

size_t lw_esc_len(const char *s)
{
	return s ? esc_into(s, NULL, 0) : 0;
}

char *lw_esc_dup(const char *s)
{
	size_t n;
	char *d;

	if (!s)
		return NULL;
	n = lw_esc_len(s);
	d = malloc(n + 1);
	if (d)
		esc_into(s, d, n + 1);
	return d;
}
