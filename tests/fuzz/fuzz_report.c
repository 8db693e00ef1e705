// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Report files read back (JSON Lines written by loopwatch, loopwatchd, or anyone): any line may
 * be cut short, hold the wrong types, or not be a record at all. Everything `loopwatch report`
 * does with them: the text view of each record, the aggregation (runs, summaries, filters),
 * and the trace, folded and HTML exports. The first byte picks a filter.
 */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "report/export.h"
#include "base/lw_util.h"
#include "record/render.h"
#include "report/report_data.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	devnull = fopen("/dev/null", "w");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_rd_filter flt = { 0 };
	struct lw_export_opts eo = { .weight = LW_WEIGHT_WALL, .title = "fuzz" };
	struct lw_report_data *rd = NULL;
	char *text, *line, *save = NULL;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 1:
		flt.pid = 4242;
		break;
	case 2:
		flt.site = "Sensor.*";
		eo.weight = LW_WEIGHT_BLOCKED;
		break;
	case 3:
		flt.since_ns = 1795000000000000000ull;
		flt.until_ns = 1795600000000000000ull;
		eo.weight = LW_WEIGHT_CPU;
		break;
	}
	text = fuzz_text(data, size);
	if (!text)
		return 0;
	if (lw_rd__new(&rd)) {
		free(text);
		return 0;
	}
	/* the raw bytes (NULs, CRs, no final newline) through the bounded line reader too */
	if (data[0] & 4) {
		FILE *f = fmemopen((void *)(data + 1), size - 1, "r");

		if (f) {
			lw_rd__load_stream(rd, f, "fuzz");
			fclose(f);
		}
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct json_object *rec = json_tokener_parse(line);

		if (rec) {
			lw_render_text(devnull, rec);
			json_object_put(rec);
		}
		lw_rd__load_line(rd, line);
	}
	if (lw_rd__finish(rd, &flt) == 0) {
		lw_export_trace(devnull, rd);
		lw_export_folded(devnull, rd, eo.weight);
		lw_export_html(devnull, rd, &eo);
	}
	lw_rd__free(rd);
	free(text);
	return 0;
}
