// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatchd: the service (config-driven attach, report files). Work in progress. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "loopwatchd: not implemented yet\n");
	return 1;
}
