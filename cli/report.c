// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatch report FILE...: read JSON Lines records back and print them for people. */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrec.h"
#include "lw_util.h"
#include "render.h"

int lw_cli_report(const struct lw_cli_opts *o)
{
	int i, bad = 0;

	if (o->nargs < 1) {
		fprintf(stderr, "loopwatch: report needs at least one FILE\nTry 'loopwatch --help'.\n");
		return 2;
	}
	for (i = 0; i < o->nargs; i++) {
		FILE *f = fopen(o->args[i], "re");
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		long skipped = 0;

		if (!f) {
			fprintf(stderr, "loopwatch: cannot read %s: %s\n", o->args[i], strerror(errno));
			bad = 1;
			continue;
		}
		while ((n = getline(&line, &cap, f)) > 0) {
			struct json_object *rec = json_tokener_parse(line);

			if (!rec || !lw_j_get_str(rec, "type")) {
				skipped++;
				json_object_put(rec);
				continue;
			}
			lw_render_text(stdout, rec);
			json_object_put(rec);
		}
		free(line);
		fclose(f);
		if (skipped)
			fprintf(stderr, "loopwatch: %s: skipped %ld lines that were not records\n",
				o->args[i], skipped);
	}
	return bad ? 1 : 0;
}
