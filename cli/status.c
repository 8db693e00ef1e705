// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch status [SOCKET | CONFIG]: ask the running loopwatchd what it is doing, over its
 * control socket (control.h). Without an argument the socket is the one /etc/loopwatch's config
 * names ([daemon] control_socket), else /run/loopwatch/control.sock.
 */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/config.h"
#include "service/control.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/textesc.h"

#define EXIT_NODAEMON 1
#define STATUS_TIMEOUT_MS 5000

/* the socket a config file names; 0, or -errno with err filled */
static int socket_from_config(const char *path, char *out, size_t size, char *err, size_t errlen)
{
	struct lw_config *c = NULL;
	int r = lw_config__load(path, &c, err, errlen);

	if (r)
		return r;
	if (!c->control_socket) {
		snprintf(err, errlen, "%s sets [daemon] control_socket = none: the daemon has no "
			 "control socket to ask", path);
		lw_config__free(c);
		return -ENOENT;
	}
	lw_strlcpy(out, c->control_socket, size);
	lw_config__free(c);
	return 0;
}

static int find_socket(const struct lw_cli_opts *o, char *out, size_t size, char *err,
		       size_t errlen)
{
	struct stat st;

	if (o->nargs > 1) {
		snprintf(err, errlen,
			 "status takes one argument at most: the control socket or the "
			 "daemon's config file");
		return -EINVAL;
	}
	if (o->nargs == 1) {
		const char *a = o->args[0];

		if (stat(a, &st) == 0 && S_ISREG(st.st_mode))
			return socket_from_config(a, out, size, err, errlen);
		lw_strlcpy(out, a, size);	/* a socket (or a path that will say why not) */
		return 0;
	}
	if (stat(LW_CONFIG_DEFAULT_PATH, &st) == 0 &&
	    socket_from_config(LW_CONFIG_DEFAULT_PATH, out, size, err, errlen) == 0)
		return 0;
	lw_strlcpy(out, LW_CONFIG_DEFAULT_SOCKET, size);
	return 0;
}

static const char *num_str(struct json_object *o, const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", (long long)lw_j_get_int(o, key, 0));
	return buf;
}

static void fmt_age(double s, char *buf, size_t size)
{
	if (s < 120)
		snprintf(buf, size, "%.0fs", s);
	else if (s < 7200)
		snprintf(buf, size, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(buf, size, "%.1fh", s / 3600);
	else
		snprintf(buf, size, "%.1fd", s / 86400);
}

/* "N cause, M cause" for the non-zero counts of object o; 0 when all are zero */
static int counts_line(struct json_object *o, char *buf, size_t size)
{
	size_t len = 0;
	int n = 0;

	buf[0] = 0;
	if (!o || !json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach(o, k, v) {
		int64_t x = json_object_get_int64(v);

		if (x <= 0 || len + 1 >= size)
			continue;
		snprintf(buf + len, size - len, "%s%lld %s", n ? ", " : "", (long long)x, k);
		len = strlen(buf);
		n++;
	}
	return n;
}

static void print_target(FILE *f, struct json_object *t)
{
	struct json_object *procs = lw_j_get(t, "processes"), *pend = lw_j_get(t, "pending");
	size_t i, np = procs ? json_object_array_length(procs) : 0;
	size_t npend = pend ? json_object_array_length(pend) : 0;
	const char *err = lw_j_get_str(t, "last_error");
	struct json_object *ex = lw_j_get(t, "exited");
	size_t nex = ex && json_object_is_type(ex, json_type_array) ? json_object_array_length(ex)
								     : 0;
	struct json_object *last = lw_j_get(t, "not_attached_last");
	size_t nlast = last && json_object_is_type(last, json_type_array) ?
		       json_object_array_length(last) : 0;
	char a[32], b[32], c[32], d[32], e[32], line[512];

	fprintf(f,
		"target %s: %zu process%s, threshold %.0f ms, block threshold %.0f ms, %s mode\n",
		lw_j_get_str(t, "name"), np, np == 1 ? "" : "es",
		lw_j_get_num(t, "threshold_ms", 0), lw_j_get_num(t, "block_threshold_ms", 0),
		lw_j_get_str(t, "mode") ? lw_j_get_str(t, "mode") : "default");
	fprintf(f,
		"  records %s: slow callbacks %s, slow ticks %s, blocking calls %s (rate-limited "
		"ones included); live alerts %s; write errors %s\n",
		num_str(t, "records", a, sizeof(a)), num_str(t, "slow_callbacks", b, sizeof(b)),
		num_str(t, "slow_ticks", c, sizeof(c)), num_str(t, "blocking_calls", d, sizeof(d)),
		num_str(t, "live_alerts", e, sizeof(e)),
		lw_j_get_int(t, "write_errors", 0) ? num_str(t, "write_errors", a, sizeof(a))
						   : "0");
	if (lw_j_get_str(t, "jsonl") || lw_j_get_str(t, "prom"))
		fprintf(f, "  reports %s%s%s\n",
			lw_j_get_str(t, "jsonl") ? lw_j_get_str(t, "jsonl") : "",
			lw_j_get_str(t, "jsonl") && lw_j_get_str(t, "prom") ? ", " : "",
			lw_j_get_str(t, "prom") ? lw_j_get_str(t, "prom") : "");
	if (err && err[0])
		fprintf(f, "  last write error: %s\n", err);
	if (np)
		fprintf(f, "  %8s  %-16s %9s %10s %10s %9s\n", "PID", "COMM", "ATTACHED", "SLOW CB",
			"SLOW TICK", "BLOCKING");
	for (i = 0; i < np; i++) {
		struct json_object *p = json_object_array_get_idx(procs, i);

		fmt_age(lw_j_get_num(p, "attached_s", 0), a, sizeof(a));
		fprintf(f, "  %8lld  %-16s %9s %10lld %10lld %9lld\n",
			(long long)lw_j_get_int(p, "pid", 0),
			lw_j_get_str(p, "comm") ? lw_j_get_str(p, "comm") : "?", a,
			(long long)lw_j_get_int(p, "slow_callbacks", 0),
			(long long)lw_j_get_int(p, "slow_ticks", 0),
			(long long)lw_j_get_int(p, "blocking_calls", 0));
	}
	if (nex)
		fprintf(f, "  exited in the last hour (final counts):\n"
			   "  %8s  %-16s %9s %10s %10s %9s  %s\n", "PID", "COMM", "ENDED", "SLOW CB",
			"SLOW TICK", "BLOCKING", "WHY");
	for (i = 0; i < nex; i++) {
		struct json_object *p = json_object_array_get_idx(ex, i);

		fmt_age(lw_j_get_num(p, "ended_s_ago", 0), a, sizeof(a));
		fprintf(f, "  %8lld  %-16s %5s ago %10lld %10lld %9lld  %s\n",
			(long long)lw_j_get_int(p, "pid", 0),
			lw_j_get_str(p, "comm") ? lw_j_get_str(p, "comm") : "?", a,
			(long long)lw_j_get_int(p, "slow_callbacks", 0),
			(long long)lw_j_get_int(p, "slow_ticks", 0),
			(long long)lw_j_get_int(p, "blocking_calls", 0),
			lw_j_get_str(p, "reason") ? lw_j_get_str(p, "reason") : "?");
	}
	if (counts_line(lw_j_get(t, "not_attached"), line, sizeof(line)))
		fprintf(f, "  matched but not attached: %s\n", line);
	for (i = 0; i < nlast; i++) {
		struct json_object *p = json_object_array_get_idx(last, i);

		fprintf(f, "  %8lld  not attached (%s): %s\n", (long long)lw_j_get_int(p, "pid", 0),
			lw_j_get_str(p, "cause") ? lw_j_get_str(p, "cause") : "?",
			lw_j_get_str(p, "error") ? lw_j_get_str(p, "error") : "");
	}
	for (i = 0; i < npend; i++) {
		struct json_object *p = json_object_array_get_idx(pend, i);
		const char *why = lw_j_get_str(p, "error");

		fprintf(f, "  %8lld  pending (attempt %lld)%s%s\n",
			(long long)lw_j_get_int(p, "pid", 0),
			(long long)lw_j_get_int(p, "tries", 0) + 1, why ? ": " : "",
			why ? why : "");
	}
}

static void print_text(FILE *f, struct json_object *s)
{
	struct json_object *targets = lw_j_get(s, "targets"), *errs = lw_j_get(s, "errors");
	size_t i, nt = targets ? json_object_array_length(targets) : 0;
	size_t ne = errs ? json_object_array_length(errs) : 0;
	char up[32];

	fmt_age(lw_j_get_num(s, "uptime_s", 0), up, sizeof(up));
	fprintf(f, "loopwatchd %s, pid %lld, up %s, config %s\n",
		lw_j_get_str(s, "version") ? lw_j_get_str(s, "version") : "?",
		(long long)lw_j_get_int(s, "pid", 0), up,
		lw_j_get_str(s, "config") ? lw_j_get_str(s, "config") : "?");
	fprintf(f, "reports in %s (%s), summaries every %.0f s\n",
		lw_j_get_str(s, "report_dir") ? lw_j_get_str(s, "report_dir") : "?",
		lw_j_get_str(s, "formats") ? lw_j_get_str(s, "formats") : "?",
		lw_j_get_num(s, "summary_interval_s", 0));
	fprintf(f,
		"%lld processes traced, %lld records written, %lld lost events, %lld suppressed, "
		"%lld execs seen\n",
		(long long)lw_j_get_int(s, "processes", 0),
		(long long)lw_j_get_int(s, "records", 0),
		(long long)lw_j_get_int(s, "lost_events", 0),
		(long long)lw_j_get_int(s, "suppressed", 0),
		(long long)lw_j_get_int(s, "execs_seen", 0));
	{
		char line[512];

		if (counts_line(lw_j_get(s, "bpf_losses"), line, sizeof(line)))
			fprintf(f, "dropped in the kernel: %s\n", line);
		if (counts_line(lw_j_get(s, "not_attached"), line, sizeof(line)))
			fprintf(f, "matched but not attached: %s\n", line);
	}
	if (!nt)
		fprintf(f, "no targets configured: add a [target NAME] section to the config\n");
	for (i = 0; i < nt; i++) {
		fputc('\n', f);
		print_target(f, json_object_array_get_idx(targets, i));
	}
	if (ne) {
		fprintf(f, "\nlast errors (%lld in all):\n",
			(long long)lw_j_get_int(s, "errors_total", 0));
		for (i = 0; i < ne; i++) {
			struct json_object *e = json_object_array_get_idx(errs, i);

			fprintf(f, "  %s  %s\n", lw_j_get_str(e, "ts") ? lw_j_get_str(e, "ts") : "",
				lw_j_get_str(e, "message") ? lw_j_get_str(e, "message") : "");
		}
	}
}

int lw_cli_status(const struct lw_cli_opts *o)
{
	char path[256], err[1024] = "";
	struct json_object *s = NULL;
	char *reply = NULL;
	const char *msg;
	int r, rc = EXIT_NODAEMON;

	r = find_socket(o, path, sizeof(path), err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: status: %s\n", err);
		return r == -EINVAL ? EXIT_USAGE : EXIT_NODAEMON;
	}
	r = lw_control_request(path, "status", STATUS_TIMEOUT_MS, &reply, err, sizeof(err));
	if (r) {
		fprintf(stderr, "loopwatch: status: %s\n", err);
		goto out;
	}
	s = json_tokener_parse(reply);
	if (!s || !json_object_is_type(s, json_type_object)) {
		fprintf(stderr,
			"loopwatch: status: the answer on %s is not loopwatchd's (not a JSON "
			"object)\n",
			path);
		goto out;
	}
	msg = lw_j_get_str(s, "error");
	if (msg) {
		char emsg[1024];

		fprintf(stderr, "loopwatch: status: loopwatchd says: %s\n",
			lw_esc(msg, emsg, sizeof(emsg)));
		goto out;
	}
	if (strcmp(o->format, "json") == 0) {
		printf("%s\n", lw_j_line(s));
	} else {
		/* comm, names and errors come from targets: escaped for the terminal */
		struct json_object *e = lw_j_escaped(s);

		print_text(stdout, e);
		json_object_put(e);
	}
	rc = 0;
out:
	json_object_put(s);
	free(reply);
	return rc;
}
