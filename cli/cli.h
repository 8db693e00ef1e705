/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The loopwatch command's subcommands (main.c dispatches; options: args.h). */
#ifndef LW_CLI_H
#define LW_CLI_H

#include "args.h"

int lw_cli_report(const struct lw_cli_opts *o);
int lw_cli_status(const struct lw_cli_opts *o);

#endif
