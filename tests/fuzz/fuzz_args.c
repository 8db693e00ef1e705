// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Values of options and config keys: durations, sizes, time stamps (report --since), site
 * rules and globs. First byte: which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "base/lw_util.h"
#include "service/matcher.h"
#include "record/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *sep;
	uint64_t v;

	text = fuzz_text(data, size);
	if (!text)
		return 0;
	switch (data[0] % 5) {
	case 0:
		lw_parse_duration(text, &v);
		break;
	case 1:
		lw_parse_size(text, &v);
		break;
	case 2:
		if (lw_parse_rfc3339(text, &v) == 0) {
			char buf[40];

			lw_fmt_rfc3339(v, buf, sizeof(buf));
		}
		break;
	case 3: {
		struct lw_site_rule r = { 0 };

		if (lw_site_rule_parse(text, &r) == 0) {
			lw_site_matches(r.pattern, "Cache.refresh", "/srv/app/cache.py", 42);
			lw_site_matches(r.pattern, "x", "", -1);
			free(r.pattern);
		}
		break;
	}
	case 4:
		/* "pattern\nsubject" */
		sep = strchr(text, '\n');
		if (sep) {
			*sep = 0;
			lw_match_glob(text, sep + 1);
			lw_site_matches(text, sep + 1, sep + 1, 7);
		}
		break;
	}
	free(text);
	return 0;
}
