// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* V8's jitdump (jit-PID.dump, written by the target with node --perf-prof): the records fed as
 * nativesym.c feeds them, in two reads cut where the first two bytes say; the CODE_LOAD names
 * handed to a perf map; lines looked up at and around each code object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"
#include "target/jitdump.h"
#include "target/nativesym.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

/* a read of exactly len bytes (ASan sees any byte past it) */
static size_t feed(struct lw_jitdump *jd, const uint8_t *data, size_t len, int at_start,
		   uint64_t file_left, struct lw_jitdump_names *names)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t got;

	if (!buf)
		return 0;
	memcpy(buf, data, len);
	got = lw_jitdump__feed(jd, buf, len, at_start, file_left, names);
	free(buf);
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_jitdump jd = { 0 };
	struct lw_jitdump_names names = { 0 };
	struct lw_nativesym *s = NULL;
	size_t cut, off, i;
	int first;

	if (size < 3)
		return 0;
	cut = (size_t)(data[0] | data[1] << 8);
	first = data[2];
	data += 3;
	size -= 3;
	cut = size ? cut % (size + 1) : 0;
	/* the first read: what the file held then; the second from where it stopped */
	off = feed(&jd, data, cut, 1, cut, &names);
	if (off <= size)
		off += feed(&jd, data + off, size - off, off == 0, size - off, &names);
	if (names.len && !lw_nativesym__new("/proc", 1, &s)) {
		char *text = malloc(names.len + 1);

		if (text) {
			memcpy(text, names.text, names.len);
			text[names.len] = 0;
			lw_nativesym__load_perf_map(s, text);
			free(text);
		}
		lw_nativesym__free(s);
	}
	for (i = 0; i < jd.n && i < 64; i++) {
		const struct lw_jitdump_code *c = &jd.codes[i];

		lw_jitdump__line(&jd, c->start, first);
		lw_jitdump__line(&jd, c->start + c->size - 1, first);
		lw_jitdump__line(&jd, c->start + c->size, first);
		if (c->n)
			lw_jitdump__line(&jd, c->start + c->off[c->n - 1], first);
	}
	lw_jitdump__line(&jd, 0, first);
	lw_jitdump__line(&jd, UINT64_MAX, first);
	free(names.text);
	lw_jitdump__clear(&jd);
	return 0;
}
