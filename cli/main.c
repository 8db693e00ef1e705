// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loopwatch: trace one process in the foreground, `check` it, or read reports back. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe/bpfobj.h"
#include "probe/engine.h"
#include "record/noise.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "record/render.h"
#include "record/sinks.h"
#include "top.h"

#define EXIT_NOTRACE 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: loopwatch --pid PID [options]   trace one process until Ctrl-C, SIGTERM, --duration or its exit\n"
	"       loopwatch check --pid PID       what runtime was found and which probes would attach\n"
	"       loopwatch report [options] FILE...  read JSON Lines reports back: tables, exports\n"
	"       loopwatch status [SOCKET|CONFIG] [--format json]  what loopwatchd is tracing\n"
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
	{ "rate-limit", required_argument, NULL, OPT_RATE },
	{ "ignore", required_argument, NULL, OPT_IGNORE },
	{ "site-threshold", required_argument, NULL, OPT_SITE_THRESHOLD },
	{ "top", no_argument, NULL, OPT_TOP },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "site", required_argument, NULL, OPT_SITE },
	{ "weight", required_argument, NULL, OPT_WEIGHT },
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

static int cmd_check(const struct lw_cli_opts *o)
{
	enum lw_iter_mode im;
	struct lw_session_opts so = { 0 };
	struct json_object *d = NULL;
	char err[1024] = "";
	int r;

	if (!o->pid)
		return lw_cli_usage_error("check needs --pid PID");
	so.threshold_ns = o->threshold_ns;
	so.block_threshold_ns = o->block_threshold_ns;
	so.precise = o->precise;
	so.runtime = o->runtime;
	so.proc_root = "/proc";
	if (lw_bpf__parse_iter_mode(NULL, &im, err, sizeof(err)))
		return lw_cli_usage_error("%s", err);
	r = lw_session__probe(o->pid, &so, &d, err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", err[0] ? err : strerror(-r));
		return EXIT_NOTRACE;
	}
	{
		struct json_object *it = json_object_new_object();

		json_object_object_add(it, "mode", json_object_new_string(lw_bpf__iter_mode_name(im)));
		json_object_object_add(it, "probe", json_object_new_string(lw_bpf__iter_probe_of(im)));
		json_object_object_add(it, "host_cost",
				       json_object_new_string(lw_bpf__host_cost_of(im)));
		if (strcmp(o->format, "json") == 0)
			json_object_object_add(d, "iterations", it);
		else
			json_object_put(it);
	}
	if (strcmp(o->format, "json") == 0) {
		printf("%s\n", lw_j_line(d));
	} else {
		struct json_object_iterator it = json_object_iter_begin(d), end = json_object_iter_end(d);

		printf("pid %d:\n", (int)o->pid);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			struct json_object *v = json_object_iter_peek_value(&it);
			const char *k = json_object_iter_peek_name(&it);

			if (strcmp(k, "pid") == 0)
				continue;
			printf("  %-20s %s\n", k, v ? json_object_get_string(v) : "-");
		}
		printf("  %-20s %s; sched_wakeup; perf cpu-clock sampler\n", "would attach",
		       lw_bpf__iter_probe_of(im));
		printf("  %-20s %s\n", "cost to other procs", lw_bpf__host_cost_of(im));
		if (o->precise)
			printf("  %-20s %s\n", "precise", im == LW_ITER_SYSCALL ?
			       "uprobe + uretprobe on context_run" :
			       "uprobe on context_run (entry only: one trap per callback)");
	}
	json_object_put(d);
	return 0;
}

/* --top: redraw once a second (the engine's timer ticks every 20 ms) */
static void top_tick(void *ctx, uint64_t now)
{
	lw_top__maybe_draw(ctx, now);
}

static int cmd_trace(const struct lw_cli_opts *o)
{
	struct lw_engine_opts eo = { 0 };
	struct lw_session_opts so = { 0 };
	struct lw_engine *e = NULL;
	struct lw_jsonl *out = NULL, *jstdout = NULL;
	struct lw_top *top = NULL;
	struct lw_text_sink text = { stdout, o->quiet, o->summary_interval_ns != 0 };
	enum lw_stop_reason why;
	char err[1024] = "";
	int r, json_stdout = strcmp(o->format, "json") == 0;
	const char *reason;

	if (o->output) {
		r = lw_jsonl__open(o->output, NULL, &out);
		if (r) {
			fprintf(stderr, "loopwatch: cannot open output file %s: %s\n", o->output,
				strerror(-r));
			return EXIT_NOTRACE;
		}
	}
	/* --top draws from one-second summaries */
	eo.summary_interval_ns = o->top ? 1000000000ull : o->summary_interval_ns;
	eo.no_sampling = o->no_sampling;
	eo.noise.rate = o->rate;
	eo.noise.window_ns = o->window_ns;
	eo.noise.threshold_ns = o->threshold_ns;
	eo.noise.rules = (struct lw_site_rule *)o->rules;
	eo.noise.nrules = o->nrules;
	r = lw_engine__new(&eo, &e, err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", err[0] ? err : strerror(-r));
		lw_jsonl__close(out);
		return EXIT_NOTRACE;
	}
	if (o->top) {
		if (lw_top__new(stdout, &top)) {
			lw_engine__free(e);
			lw_jsonl__close(out);
			return EXIT_NOTRACE;
		}
		lw_engine__add_sink(e, lw_top_sink, top);
		lw_engine__on_timer(e, top_tick, top);
	} else if (json_stdout && !(o->output && strcmp(o->output, "-") == 0)) {
		lw_jsonl__open("-", NULL, &jstdout);
		lw_engine__add_sink(e, lw_sink_jsonl, jstdout);
	} else if (!json_stdout) {
		lw_engine__add_sink(e, lw_sink_text, &text);
	}
	if (out)
		lw_engine__add_sink(e, lw_sink_jsonl, out);
	so.threshold_ns = o->threshold_ns;
	so.block_threshold_ns = o->block_threshold_ns;
	so.precise = o->precise;
	so.runtime = o->runtime;
	so.proc_root = "/proc";
	r = lw_engine__attach(e, o->pid, &so, err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", err[0] ? err : strerror(-r));
		lw_engine__free(e);
		lw_jsonl__close(out);
		lw_jsonl__close(jstdout);
		return EXIT_NOTRACE;
	}
	why = lw_engine__run(e, o->duration_ns ? lw_now_mono() + o->duration_ns : 0, 1);
	reason = why == LW_STOP_DURATION ? "duration" :
		 why == LW_STOP_SIGNAL ? "signal" : "target_exited";
	lw_engine__finish(e, reason);
	if (out && lw_jsonl__errors(out))
		fprintf(stderr, "loopwatch: %llu records could not be written to %s (%s)\n",
			(unsigned long long)lw_jsonl__errors(out), o->output, lw_jsonl__last_error(out));
	lw_engine__free(e);
	lw_jsonl__close(out);
	lw_jsonl__close(jstdout);
	if (top)
		lw_top__draw(top);
	lw_top__free(top);
	return 0;
}

int main(int argc, char **argv)
{
	struct lw_cli_opts o;
	const char *cmd = NULL;
	int r;

	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	if (cmd && strcmp(cmd, "check") && strcmp(cmd, "report") && strcmp(cmd, "status"))
		return lw_cli_usage_error("unknown command '%s' (expected check, report or status)", cmd);
	r = lw_cli_parse(argc, argv, &o);
	if (r) {
		lw_cli_free(&o);
		return r;
	}
	lw_log_set_level(o.verbose ? LW_LOG_DEBUG : LW_LOG_NOTICE);
	if (!o.help && !o.version && !(cmd && strcmp(cmd, "report") == 0)) {
		/* options only `report` takes */
		const char *only = strcmp(o.format, "text") && strcmp(o.format, "json") ?
				   "--format" : o.since ? "--since" : o.until ? "--until" :
				   o.site ? "--site" : o.weight ? "--weight" : NULL;

		if (only && strcmp(only, "--format") == 0)
			r = lw_cli_usage_error("invalid --format '%s': expected text or json (%s is a "
					"format of 'loopwatch report')", o.format, o.format);
		else if (only)
			r = lw_cli_usage_error("%s is an option of 'loopwatch report'", only);
		if (only) {
			lw_cli_free(&o);
			return r;
		}
	}
	if (o.help) {
		fputs(usage_text, stdout);
		r = 0;
	} else if (o.version) {
		printf("loopwatch %s\n", LW_VERSION);
		r = 0;
	} else if (cmd && strcmp(cmd, "report") == 0) {
		r = lw_cli_report(&o);
	} else if (cmd && strcmp(cmd, "status") == 0) {
		r = lw_cli_status(&o);
	} else if (o.nargs > 0) {
		r = lw_cli_usage_error("unexpected argument '%s'", o.args[0]);
	} else if (cmd && strcmp(cmd, "check") == 0) {
		r = cmd_check(&o);
	} else if (!o.pid) {
		r = lw_cli_usage_error("--pid PID is required");
	} else {
		r = cmd_trace(&o);
	}
	lw_cli_free(&o);
	return r;
}

void lw_cli_free(struct lw_cli_opts *o)
{
	size_t i;

	for (i = 0; i < o->nrules; i++)
		if (!o->rules[i].ignore)
			free(o->rules[i].pattern);	/* --site-threshold copies; --ignore uses argv */
	o->nrules = 0;
}
