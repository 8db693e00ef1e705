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
#include "base/textesc.h"
#include "record/render.h"
#include "record/sinks.h"
#include "top.h"

#define EXIT_NOTRACE 1

static int cmd_check(const struct lw_cli_opts *o)
{
	enum lw_iter_mode im;
	struct lw_session_opts so = { 0 };
	char why[640] = "";
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
	if (lw_bpf__parse_iter_mode(o->iterations, &im, err, sizeof(err)))
		return lw_cli_usage_error("%s", err);
	/* which iteration probe a trace would use here, and why (fentry or its fallback) */
	if (lw_bpf__resolve_iter_mode(&im, why, sizeof(why), err, sizeof(err))) {
		fprintf(stderr, "loopwatch: %s\n", err);
		return EXIT_NOTRACE;
	}
	r = lw_session__probe(o->pid, &so, &d, err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: %s\n", err[0] ? err : strerror(-r));
		return EXIT_NOTRACE;
	}
	{
		struct json_object *it = json_object_new_object();

		json_object_object_add(it, "mode", json_object_new_string(lw_bpf__iter_mode_name(im)));
		json_object_object_add(it, "probe", json_object_new_string(lw_bpf__iter_probe_of(im)));
		json_object_object_add(it, "why", json_object_new_string(why));
		json_object_object_add(it, "host_cost",
				       json_object_new_string(lw_bpf__host_cost_of(im)));
		json_object_object_add(it, "target_cost",
				       json_object_new_string(lw_bpf__target_cost_of(im)));
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
			char vb[2048];

			/* names and paths of the target's own: escaped for the terminal */
			printf("  %-20s %s\n", k, lw_esc(v ? json_object_get_string(v) : "-", vb, sizeof(vb)));
		}
		printf("  %-20s %s%s; perf cpu-clock sampler\n", "would attach",
		       lw_bpf__iter_probe_of(im), lw_bpf__wake_hook() ? "; sched_wakeup" : "");
		printf("  %-20s %s: %s\n", "iteration probe", lw_bpf__iter_mode_name(im), why);
		printf("  %-20s %s\n", "cost to other procs", lw_bpf__host_cost_of(im));
		printf("  %-20s %s\n", "cost to this one", lw_bpf__target_cost_of(im));
		if (o->precise)
			printf("  %-20s %s\n", "precise", im != LW_ITER_SCHED ?
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
	struct lw_text_sink text = { stdout, o->quiet, o->summary_interval_ns != 0, 0 };
	enum lw_stop_reason why;
	char err[1024] = "";
	int r, rc, json_stdout = strcmp(o->format, "json") == 0;
	const char *reason;

	if (o->output) {
		r = lw_jsonl__open(o->output, NULL, &out, err, sizeof(err));
		if (r) {
			/* a refusal (a link, a FIFO, someone else's file) says why in err */
			fprintf(stderr, "loopwatch: cannot open output file %s: %s\n", o->output,
				r == -ELOOP || r == -EPERM || r == -EINVAL ? err : strerror(-r));
			return EXIT_NOTRACE;
		}
	}
	/* --top draws from one-second summaries */
	eo.summary_interval_ns = o->top ? 1000000000ull : o->summary_interval_ns;
	eo.no_sampling = o->no_sampling;
	eo.iterations = o->iterations;
	eo.no_precise = !o->precise;
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
		lw_jsonl__open("-", NULL, &jstdout, NULL, 0);
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
	so.stuck_every_ns = o->stuck_every_ns;
	so.stuck_after_ns = o->stuck_after_ns;
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
	if (jstdout && lw_jsonl__errors(jstdout))
		fprintf(stderr, "loopwatch: %llu records could not be written to standard output (%s)\n",
			(unsigned long long)lw_jsonl__errors(jstdout), lw_jsonl__last_error(jstdout));
	rc = (out && lw_jsonl__errors(out)) || (jstdout && lw_jsonl__errors(jstdout)) ? EXIT_NOTRACE : 0;
	lw_engine__free(e);
	lw_jsonl__close(out);
	lw_jsonl__close(jstdout);
	if (top)
		lw_top__draw(top);
	lw_top__free(top);
	/* the text (or --top) on standard output: a full disk or a closed pipe is a failure too */
	errno = 0;
	if (fflush(stdout) || ferror(stdout) || text.error) {
		if (!rc)
			fprintf(stderr, "loopwatch: cannot write to standard output: %s\n",
				strerror(text.error ? text.error : errno ? errno : EIO));
		rc = EXIT_NOTRACE;
	}
	return rc;
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
	if (cmd && strcmp(cmd, "check") && strcmp(cmd, "report") && strcmp(cmd, "status") &&
	    strcmp(cmd, "tasks"))
		return lw_cli_usage_error("unknown command '%s' (expected check, report, status or tasks)", cmd);
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
		lw_cli_print_usage(stdout);
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
	} else if (cmd && strcmp(cmd, "tasks") == 0) {
		r = lw_cli_tasks(&o);
	} else if (!o.pid) {
		r = lw_cli_usage_error("--pid PID is required");
	} else {
		r = cmd_trace(&o);
	}
	lw_cli_free(&o);
	return r;
}
