// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Report files read back (JSON Lines written by loopwatch, loopwatchd, or anyone): any line may
 * be cut short, hold the wrong types, or not be a record at all. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lw_util.h"
#include "render.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	devnull = fopen("/dev/null", "w");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *save = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct json_object *rec = json_tokener_parse(line);

		if (!rec)
			continue;
		lw_render_text(devnull, rec);
		json_object_put(rec);
	}
	free(text);
	return 0;
}
