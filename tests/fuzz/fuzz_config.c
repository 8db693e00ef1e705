// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatchd's config file (/etc/loopwatch/loopwatch.conf): errors must be messages, never
 * crashes, whatever an admin or a config-management template writes there. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/config.h"
#include "base/lw_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lw_log_set_level(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_config *c = NULL;
	char *text = malloc(size + 1), err[4096];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (lw_config__parse(text, "fuzz.conf", &c, err, sizeof(err)) == 0) {
		lw_config__target(c, "app");
		lw_config__free(c);
	}
	free(text);
	return 0;
}
