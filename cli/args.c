// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatch's command line: options into struct lw_cli_opts, usage text and usage errors. */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"

static const char usage_text[] =
	"Usage: loopwatch --pid PID [options]   trace one process until Ctrl-C, SIGTERM, --duration or its exit\n"
	"       loopwatch check --pid PID       what runtime was found and which probes would attach\n"
	"       loopwatch report [options] FILE...  read JSON Lines reports back: tables, exports\n"
	"       loopwatch status [SOCKET|CONFIG] [--format json]  what loopwatchd is tracing\n"
	"       loopwatch tasks --pid PID [--format json]  every asyncio Task: state, await stack, await tree\n"
	"       loopwatch --version | --help\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID               the process to trace (all its threads)\n"
	"  -t, --threshold DUR         slow-callback / slow-iteration threshold (default 100ms)\n"
	"  -b, --block-threshold DUR   report blocking syscalls inside callbacks from this long (default 10ms)\n"
	"  -d, --duration DUR          stop after this long\n"
	"  -o, --output FILE           also append JSON Lines records to FILE (- = stdout)\n"
	"      --format text|json      what goes to stdout (default text)\n"
	"      --precise               per-callback probes: every callback timed, per-site histograms\n"
	"      --runtime auto|python|node|libuv|generic   force a runtime (default auto)\n"
	"      --summary-interval DUR  also write a summary every DUR\n"
	"      --no-sampling           no CPU-clock sampling (no stacks for CPU-bound callbacks)\n"
	"      --iterations auto|fentry|syscall|sched  how loop iterations are seen: auto (default:\n"
	"                              fentry where the kernel loads it, else sched where it has\n"
	"                              uprobe_multi links (>= 6.6), else syscall), fentry (fexit on\n"
	"                              the kernel's poll functions: only poll calls pay), sched\n"
	"                              (nothing per syscall for other processes, one uprobe trap per\n"
	"                              poll that returns at once) or syscall (tp_btf/sys_exit, every\n"
	"                              syscall on the host pays the slow path)\n"
	"      --stuck-after DUR       asyncio: a Task pending at the same await this long is a\n"
	"                              stuck_task record (default 60s)\n"
	"      --stuck-every DUR       asyncio: how often Tasks are looked at for that (default 10s)\n"
	"      --rate-limit N[/DUR]    per site, at most N records per DUR, then one `suppressed`\n"
	"                              record (default 10/1m; 0 = no limit)\n"
	"      --ignore SITE           never report SITE (qualname, file:line, or a glob); counted still\n"
	"      --site-threshold SITE=DUR  report SITE only from DUR up (above --threshold)\n"
	"  -q, --quiet                 no live lines, summary only\n"
	"      --top                   a live view, redrawn every second (sites, loop utilization)\n"
	"  -v, --verbose               debug messages on stderr\n"
	"\n"
	"Report options (FILE: NAME.jsonl reads its rotated NAME.jsonl.N too):\n"
	"      --format text|json|trace|folded|html   tables, the tables as JSON, Chrome/Perfetto\n"
	"                              trace, folded stacks, or a self-contained HTML page\n"
	"  -o, --output FILE           write the report to FILE instead of stdout\n"
	"  -p, --pid PID               only this process\n"
	"      --since TIME            only records from TIME: RFC 3339, or ago: 10m, '1h ago'\n"
	"      --until TIME            only records up to TIME\n"
	"      --site PATTERN          only this site: qualname, file:line, or a glob\n"
	"      --weight wall|blocked|cpu  what folded stacks and the flame graph count (wall)\n"
	"      --by target|pid|run     text and json tables per target (its processes added up;\n"
	"                              the default when the records name one), per pid, or per\n"
	"                              run (each attach or daemon life of a pid on its own)\n"
	"\n"
	"Durations: 250us, 10ms, 1.5s, 2m (a bare number is milliseconds).\n"
	"Exit status: 0 success, 1 could not trace (the message says why), 2 bad usage.\n";

int lw_cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "loopwatch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'loopwatch --help'.\n");
	return EXIT_USAGE;
}

int lw_cli_parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 4194304)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

static int parse_dur_opt(const char *name, const char *arg, uint64_t *ns)
{
	int r = lw_parse_duration(arg, ns);

	if (r) {
		fprintf(stderr,
			"loopwatch: invalid %s '%s': expected a duration like 250us, 10ms, 1.5s or 2m\n"
			"Try 'loopwatch --help'.\n",
			name, arg);
		return -1;
	}
	return 0;
}

enum {
	OPT_FORMAT = 1000,
	OPT_PRECISE,
	OPT_RUNTIME,
	OPT_SUMMARY,
	OPT_NOSAMPLING,
	OPT_VERSION,
	OPT_RATE,
	OPT_IGNORE,
	OPT_SITE_THRESHOLD,
	OPT_TOP,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_SITE,
	OPT_WEIGHT,
	OPT_BY,
	OPT_ITERATIONS,
	OPT_STUCK_AFTER,
	OPT_STUCK_EVERY,
};

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "threshold", required_argument, NULL, 't' },
	{ "block-threshold", required_argument, NULL, 'b' },
	{ "duration", required_argument, NULL, 'd' },
	{ "output", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "precise", no_argument, NULL, OPT_PRECISE },
	{ "runtime", required_argument, NULL, OPT_RUNTIME },
	{ "summary-interval", required_argument, NULL, OPT_SUMMARY },
	{ "no-sampling", no_argument, NULL, OPT_NOSAMPLING },
	{ "iterations", required_argument, NULL, OPT_ITERATIONS },
	{ "rate-limit", required_argument, NULL, OPT_RATE },
	{ "ignore", required_argument, NULL, OPT_IGNORE },
	{ "site-threshold", required_argument, NULL, OPT_SITE_THRESHOLD },
	{ "top", no_argument, NULL, OPT_TOP },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "site", required_argument, NULL, OPT_SITE },
	{ "weight", required_argument, NULL, OPT_WEIGHT },
	{ "by", required_argument, NULL, OPT_BY },
	{ "stuck-after", required_argument, NULL, OPT_STUCK_AFTER },
	{ "stuck-every", required_argument, NULL, OPT_STUCK_EVERY },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

int lw_cli_parse(int argc, char **argv, struct lw_cli_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->threshold_ns = 100000000ull;
	o->block_threshold_ns = 10000000ull;
	o->format = "text";
	o->runtime = LW_RT_AUTO;
	o->rate = 10;
	o->window_ns = 60000000000ull;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:t:b:d:o:qvh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (lw_cli_parse_pid(optarg, &o->pid))
				return lw_cli_usage_error("invalid pid '%s': expected a positive process id",
						   optarg);
			break;
		case 't':
			if (parse_dur_opt("--threshold", optarg, &o->threshold_ns))
				return EXIT_USAGE;
			if (!o->threshold_ns)
				return lw_cli_usage_error("--threshold must be above zero");
			break;
		case 'b':
			if (parse_dur_opt("--block-threshold", optarg, &o->block_threshold_ns))
				return EXIT_USAGE;
			if (!o->block_threshold_ns)
				return lw_cli_usage_error("--block-threshold must be above zero");
			break;
		case 'd':
			if (parse_dur_opt("--duration", optarg, &o->duration_ns))
				return EXIT_USAGE;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_FORMAT:
			/* trace, folded and html are report formats: main() checks the command */
			if (strcmp(optarg, "text") && strcmp(optarg, "json") &&
			    strcmp(optarg, "trace") && strcmp(optarg, "folded") &&
			    strcmp(optarg, "html"))
				return lw_cli_usage_error("invalid --format '%s': expected text or json "
						   "(report also takes trace, folded or html)",
						   optarg);
			o->format = optarg;
			break;
		case OPT_SINCE:
			o->since = optarg;
			break;
		case OPT_UNTIL:
			o->until = optarg;
			break;
		case OPT_SITE:
			o->site = optarg;
			break;
		case OPT_STUCK_AFTER:
			if (parse_dur_opt("--stuck-after", optarg, &o->stuck_after_ns))
				return EXIT_USAGE;
			if (!o->stuck_after_ns)
				return lw_cli_usage_error("--stuck-after must be above zero");
			break;
		case OPT_STUCK_EVERY:
			if (parse_dur_opt("--stuck-every", optarg, &o->stuck_every_ns))
				return EXIT_USAGE;
			if (!o->stuck_every_ns)
				return lw_cli_usage_error("--stuck-every must be above zero");
			break;
		case OPT_BY:
			if (strcmp(optarg, "target") && strcmp(optarg, "pid") &&
			    strcmp(optarg, "run"))
				return lw_cli_usage_error("invalid --by '%s': expected target (one "
							  "table per loopwatchd target, its processes "
							  "added up), pid or run (one table per run of "
							  "each process)", optarg);
			o->by = optarg;
			break;
		case OPT_WEIGHT:
			if (strcmp(optarg, "wall") && strcmp(optarg, "blocked") &&
			    strcmp(optarg, "cpu"))
				return lw_cli_usage_error("invalid --weight '%s': expected wall, "
						   "blocked or cpu", optarg);
			o->weight = optarg;
			break;
		case OPT_PRECISE:
			o->precise = 1;
			break;
		case OPT_RUNTIME:
			if (strcmp(optarg, "auto") == 0)
				o->runtime = LW_RT_AUTO;
			else if (strcmp(optarg, "python") == 0)
				o->runtime = LW_RT_PYTHON;
			else if (strcmp(optarg, "node") == 0)
				o->runtime = LW_RT_NODE;
			else if (strcmp(optarg, "libuv") == 0)
				o->runtime = LW_RT_LIBUV;
			else if (strcmp(optarg, "generic") == 0)
				o->runtime = LW_RT_GENERIC;
			else
				return lw_cli_usage_error("invalid --runtime '%s': expected auto, python, node, "
						   "libuv or generic", optarg);
			break;
		case OPT_SUMMARY:
			if (parse_dur_opt("--summary-interval", optarg, &o->summary_interval_ns))
				return EXIT_USAGE;
			break;
		case OPT_NOSAMPLING:
			o->no_sampling = 1;
			break;
		case OPT_ITERATIONS:
			if (strcmp(optarg, "syscall") && strcmp(optarg, "sched") &&
			    strcmp(optarg, "fentry") && strcmp(optarg, "auto"))
				return lw_cli_usage_error("invalid --iterations '%s': expected auto, "
							  "fentry, syscall or sched", optarg);
			o->iterations = optarg;
			break;
		case OPT_RATE: {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (end == optarg || n > 1000000 || (*end && *end != '/') ||
			    (*end == '/' && (lw_parse_duration(end + 1, &o->window_ns) || !o->window_ns)))
				return lw_cli_usage_error("invalid --rate-limit '%s': expected N or N/DURATION, "
						   "e.g. 10/1m", optarg);
			o->rate = (unsigned)n;
			break;
		}
		case OPT_IGNORE:
			if (o->nrules == LW_ARRAY_SIZE(o->rules))
				return lw_cli_usage_error("too many --ignore/--site-threshold options");
			o->rules[o->nrules].pattern = optarg;
			o->rules[o->nrules].ignore = 1;
			o->rules[o->nrules].threshold_ns = 0;
			o->nrules++;
			break;
		case OPT_SITE_THRESHOLD: {
			struct lw_site_rule r;

			if (o->nrules == LW_ARRAY_SIZE(o->rules))
				return lw_cli_usage_error("too many --ignore/--site-threshold options");
			if (lw_site_rule_parse(optarg, &r))
				return lw_cli_usage_error("invalid --site-threshold '%s': expected SITE=DURATION, "
						   "e.g. Ledger.flush=500ms", optarg);
			/* keep argv's storage: the parsed pattern is a copy we no longer need */
			o->rules[o->nrules] = r;
			o->nrules++;
			break;
		}
		case 'q':
			o->quiet = 1;
			break;
		case OPT_TOP:
			o->top = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			o->help = 1;
			break;
		case OPT_VERSION:
			o->version = 1;
			break;
		case ':':
			return lw_cli_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return lw_cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

void lw_cli_free(struct lw_cli_opts *o)
{
	size_t i;

	for (i = 0; i < o->nrules; i++)
		if (!o->rules[i].ignore)
			free(o->rules[i].pattern);	/* --site-threshold copies; --ignore uses argv */
	o->nrules = 0;
}

void lw_cli_print_usage(FILE *f)
{
	fputs(usage_text, f);
}
