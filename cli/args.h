/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* loopwatch's command line: the options of every subcommand, parsed in one place (args.c). */
#ifndef LW_CLI_ARGS_H
#define LW_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "record/noise.h"
#include "probe/session.h"

#define EXIT_USAGE 2

struct lw_cli_opts {
	pid_t pid;
	uint64_t threshold_ns;
	uint64_t block_threshold_ns;
	uint64_t duration_ns;
	uint64_t stuck_every_ns, stuck_after_ns;	/* 0 = the defaults (10 s, 60 s) */
	uint64_t summary_interval_ns;
	const char *output;
	const char *format;		/* "text" or "json"; report also trace, folded, html */
	int precise;
	enum lw_runtime runtime;
	int no_sampling;
	const char *iterations;		/* --iterations syscall|sched (NULL: $LOOPWATCH_ITERATIONS) */
	int quiet;
	int top;
	int verbose;
	int help;
	int version;
	char **args;			/* non-option arguments (report files) */
	int nargs;
	/* noise control */
	unsigned rate;			/* records per site per window (--rate-limit N/DUR) */
	uint64_t window_ns;
	struct lw_site_rule rules[64];	/* --ignore, --site-threshold */
	size_t nrules;
	/* report: what to read back (checked by lw_cli_report) */
	const char *since;		/* --since TIME */
	const char *until;		/* --until TIME */
	const char *site;		/* --site PATTERN */
	const char *weight;		/* --weight blocked|cpu|wall */
	const char *by;			/* --by target|pid (NULL: target when a file names one) */
};

/* 0, or the exit status for bad usage (2) after printing why */
int lw_cli_parse(int argc, char **argv, struct lw_cli_opts *o);
int lw_cli_parse_pid(const char *s, pid_t *pid);
void lw_cli_free(struct lw_cli_opts *o);

/* "loopwatch: MESSAGE" and the --help hint on stderr; returns the exit status for bad usage */
int lw_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the --help text */
void lw_cli_print_usage(FILE *f);

#endif
