// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "service/config.h"
#include "base/lw_util.h"

static struct lw_config *parse_ok(const char *text)
{
	struct lw_config *c = NULL;
	char err[4096] = "";
	int r = lw_config__parse(text, "t.conf", &c, err, sizeof(err));

	if (r)
		fprintf(stderr, "unexpected errors:\n%s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(c);
	return c;
}

/* the config must fail with an error that contains each of the needles */
static void parse_bad(const char *text, const char *const *needles)
{
	struct lw_config *c = (struct lw_config *)1;
	char err[4096] = "";
	int r = lw_config__parse(text, "t.conf", &c, err, sizeof(err));
	size_t i;

	assert_int_equal(r, -EINVAL);
	assert_null(c);
	for (i = 0; needles[i]; i++) {
		if (!strstr(err, needles[i]))
			fprintf(stderr, "'%s' not in:\n%s\n", needles[i], err);
		assert_non_null(strstr(err, needles[i]));
	}
}

static void test_interface_example(void **state)
{
	/* the example of interface.md, as written there */
	static const char text[] = "[report]\n"
				   "dir = /var/log/loopwatch          ; where report files go\n"
				   "formats = jsonl, prometheus       ; any of: jsonl, prometheus, "
				   "trace, folded\n"
				   "rotate_size = 64M                 ; rotate a JSONL file past "
				   "this size, keep rotate_keep old ones\n"
				   "rotate_keep = 5\n"
				   "summary_interval = 60s\n"
				   "\n"
				   "[defaults]\n"
				   "threshold = 100ms\n"
				   "block_threshold = 10ms\n"
				   "mode = default                    ; default | precise\n"
				   "\n"
				   "[target api]                      ; one section per target; "
				   "its name labels its reports\n"
				   "cmdline = gunicorn                ; matchers, all must hold: "
				   "exe, comm, cmdline (substring),\n"
				   "exe = /usr/bin/python3.11         ; unit (systemd unit name), "
				   "cgroup (path prefix), pidfile\n"
				   "threshold = 50ms                  ; per-target overrides of "
				   "[defaults]\n";
	struct lw_config *c = parse_ok(text);

	(void)state;
	assert_string_equal(c->report_dir, "/var/log/loopwatch");
	assert_int_equal(c->formats, LW_FMT_JSONL | LW_FMT_PROM);
	assert_int_equal(c->rotate_size, 64ull << 20);
	assert_int_equal(c->rotate_keep, 5);
	assert_int_equal(c->summary_interval_ns, 60000000000ull);
	assert_int_equal(c->defaults.threshold_ns, 100000000ull);
	assert_int_equal(c->ntargets, 1);
	assert_string_equal(c->targets[0].name, "api");
	assert_int_equal(c->targets[0].line, 13);
	assert_string_equal(c->targets[0].match.cmdline, "gunicorn");
	assert_string_equal(c->targets[0].match.exe, "/usr/bin/python3.11");
	assert_null(c->targets[0].match.comm);
	assert_int_equal(c->targets[0].tune.threshold_ns, 50000000ull);
	/* inherited */
	assert_int_equal(c->targets[0].tune.block_threshold_ns, 10000000ull);
	assert_int_equal(c->targets[0].tune.precise, 0);
	assert_string_equal(c->control_socket, LW_CONFIG_DEFAULT_SOCKET);
	assert_int_equal(lw_config__target(c, "api"), 0);
	assert_int_equal(lw_config__target(c, "nope"), -1);
	lw_config__free(c);
}

static void test_defaults_and_inheritance(void **state)
{
	struct lw_config *c;
	char buf[64];

	(void)state;
	/* [defaults] after the targets still applies to them */
	c = parse_ok("[target a]\ncomm = a\n[target b]\ncomm = b\nmode = default\nasyncio_hooks = "
		     "yes\n"
		     "[defaults]\nmode = precise\nblock_threshold = 3ms\nasyncio_hooks = off\n");
	assert_string_equal(c->report_dir, LW_CONFIG_DEFAULT_DIR);
	assert_int_equal(c->formats, LW_FMT_JSONL | LW_FMT_PROM);
	assert_int_equal(c->summary_interval_ns, 60000000000ull);
	assert_int_equal(c->targets[0].tune.precise, 1);
	assert_int_equal(c->targets[0].tune.block_threshold_ns, 3000000ull);
	assert_int_equal(c->targets[0].tune.threshold_ns, 100000000ull);
	assert_int_equal(c->targets[0].tune.no_hooks, 1);
	assert_int_equal(c->targets[1].tune.precise, 0);
	assert_int_equal(c->targets[1].tune.no_hooks, 0);
	assert_int_equal(c->log_level, LW_LOG_NOTICE);
	assert_null(c->iterations);	/* $LOOPWATCH_ITERATIONS, else syscall */
	/* the stuck-Task inventory: 60 s at one await, looked at every 10 s */
	assert_int_equal(c->targets[0].tune.stuck_after_ns, 60000000000ull);
	assert_int_equal(c->targets[0].tune.stuck_every_ns, 10000000000ull);
	lw_config__free(c);
	c = parse_ok("[defaults]\nstuck_after = 5m\nstuck_every = 30s\n"
		     "[target a]\ncomm = a\nstuck_after = 2s\n[target b]\ncomm = b\n");
	assert_int_equal(c->targets[0].tune.stuck_after_ns, 2000000000ull);
	assert_int_equal(c->targets[0].tune.stuck_every_ns, 30000000000ull);
	assert_int_equal(c->targets[1].tune.stuck_after_ns, 300000000000ull);
	lw_config__free(c);
	{
		static const char *const n1[] = { "t.conf:2", "stuck_after", "above zero", NULL };
		static const char *const n2[] = { "t.conf:2", "stuck_every", "at least 100ms", NULL };

		parse_bad("[defaults]\nstuck_after = 0\n", n1);
		parse_bad("[defaults]\nstuck_every = 10ms\n", n2);
	}
	/* an empty file is valid: no targets */
	c = parse_ok("");
	assert_int_equal(c->ntargets, 0);
	lw_config__free(c);
	c = parse_ok("; only comments\n# and these\n\n");
	assert_int_equal(c->ntargets, 0);
	lw_config__free(c);
	c = parse_ok("[report]\nformats = trace,folded prom jsonl\n[daemon]\ncontrol_socket = none\n"
		     "log_level = debug\niterations = syscall\n");
	assert_int_equal(c->formats, LW_FMT_TRACE | LW_FMT_FOLDED | LW_FMT_PROM | LW_FMT_JSONL);
	assert_null(c->control_socket);
	assert_int_equal(c->log_level, LW_LOG_DEBUG);
	assert_string_equal(c->iterations, "syscall");
	assert_string_equal(lw_config__formats_str(c->formats, buf, sizeof(buf)),
			    "jsonl, prometheus, trace, folded");
	lw_config__free(c);
}

static void test_matchers_and_names(void **state)
{
	struct lw_config *c;

	(void)state;
	c = parse_ok("[target web-1.api_x]\n"
		     "exe = /usr/bin/python3*\n"
		     "comm = gunicorn\n"
		     "cmdline = app:main --workers 4\n"
		     "unit = api.service\n"
		     "cgroup = /system.slice/api.service\n"
		     "pidfile = /run/api.pid\n");
	assert_string_equal(c->targets[0].name, "web-1.api_x");
	assert_string_equal(c->targets[0].match.exe, "/usr/bin/python3*");
	assert_string_equal(c->targets[0].match.cmdline, "app:main --workers 4");
	assert_string_equal(c->targets[0].match.unit, "api.service");
	assert_string_equal(c->targets[0].match.cgroup, "/system.slice/api.service");
	assert_string_equal(c->targets[0].match.pidfile, "/run/api.pid");
	lw_config__free(c);
}

/* issue 19: user =, unit_scope =, report_group = */
static void test_user_unit_scope_group(void **state)
{
	struct lw_config *c;

	(void)state;
	c = parse_ok("[report]\nreport_group = nogroup\n\n"
		     "[target a]\nunit = api\nuser = nobody\n\n"
		     "[target b]\nunit = worker\nunit_scope = any\nuser = 1234\n\n"
		     "[target c]\nuser = root\n");
	assert_string_equal(c->report_group, "nogroup");
	assert_int_equal(c->report_gid, 65534);
	assert_int_equal(c->targets[0].match.uid, 65534);
	assert_false(c->targets[0].match.unit_any);
	assert_int_equal(c->targets[1].match.uid, 1234);
	assert_true(c->targets[1].match.unit_any);
	assert_int_equal(c->targets[2].match.uid, 0);
	assert_string_equal(c->targets[2].match.user, "root");
	lw_config__free(c);
	parse_bad("[target a]\nuser = no-such-user-here\n",
		  (const char *const[]){ "t.conf:2", "no user 'no-such-user-here'", NULL });
	parse_bad("[target a]\nunit = x\nunit_scope = users\n",
		  (const char *const[]){ "t.conf:3", "expected system", NULL });
	parse_bad("[report]\nreport_group = no-such-group-here\n",
		  (const char *const[]){ "t.conf:2", "no group", NULL });
}

static void test_layout_tolerance(void **state)
{
	struct lw_config *c;

	(void)state;
	/* indented keys (inih would take them for continuation lines), CRLF, a BOM, blanks */
	c = parse_ok("\xef\xbb\xbf[report]\r\n    dir = /srv/lw\r\n\tformats = jsonl\r\n"
		     "  [ target  t1 ]  \n   comm = x ; a comment\n   threshold = 5\n");
	assert_string_equal(c->report_dir, "/srv/lw");
	assert_int_equal(c->formats, LW_FMT_JSONL);
	assert_string_equal(c->targets[0].name, "t1");
	assert_string_equal(c->targets[0].match.comm, "x");
	assert_int_equal(c->targets[0].tune.threshold_ns, 5000000ull);
	lw_config__free(c);
}

static void test_errors_name_line_and_key(void **state)
{
	(void)state;
	parse_bad("[report]\ndir = /x\nbogus = 1\n",
		  (const char *const[]){ "t.conf:3:", "unknown key 'bogus' in [report]",
					 "expected one of dir, formats", NULL });
	parse_bad("[defaults]\nthreshold = 5 parsecs\n",
		  (const char *const[]){ "t.conf:2:", "invalid threshold '5 parsecs'",
					 "250us, 10ms", NULL });
	parse_bad("[defaults]\nthreshold = 0\n",
		  (const char *const[]){ "t.conf:2:", "above zero", NULL });
	parse_bad("[report]\nformats = prometheus, trace\n",
		  (const char *const[]){ "t.conf:2:", "add jsonl", NULL });
	parse_bad("[report]\nformats = jsonl, xml\n",
		  (const char *const[]){ "t.conf:2:", "unknown format 'xml'", NULL });
	parse_bad("[report]\ndir = relative/path\n",
		  (const char *const[]){ "t.conf:2:", "absolute path", NULL });
	parse_bad("[report]\nsummary_interval = 10ms\n",
		  (const char *const[]){ "t.conf:2:", "at least 100ms", NULL });
	parse_bad("[report]\ntop_sites = 0\n",
		  (const char *const[]){ "t.conf:2:", "1 to 1000", "site=\"other\"", NULL });
	parse_bad("[target loopwatchd]\ncomm = x\n",
		  (const char *const[]){ "t.conf:1:", "'loopwatchd' is reserved", "host-wide",
					 NULL });
	parse_bad("[report]\nrotate_keep = -1\n",
		  (const char *const[]){ "t.conf:2:", "rotate_keep", NULL });
	parse_bad("[report]\nrotate_size = lots\n",
		  (const char *const[]){ "t.conf:2:", "64M", NULL });
	parse_bad("[defaults]\nmode = turbo\n",
		  (const char *const[]){ "t.conf:2:", "default or precise", NULL });
	parse_bad("[defaults]\nasyncio_hooks = maybe\n",
		  (const char *const[]){ "t.conf:2:", "yes or no", NULL });
	parse_bad("[daemon]\ncontrol_socket = relative.sock\n",
		  (const char *const[]){ "t.conf:2:", "control_socket", NULL });
	parse_bad("[daemon]\nlog_level = loud\n",
		  (const char *const[]){ "t.conf:2:", "log_level", NULL });
	parse_bad("[daemon]\niterations = fast\n",
		  (const char *const[]){ "t.conf:2:", "iterations", "sched", "syscall", NULL });
	parse_bad("[reprot]\ndir = /x\n",
		  (const char *const[]){ "t.conf:1:", "unknown section [reprot]", NULL });
	parse_bad("dir = /x\n",
		  (const char *const[]){ "t.conf:1:", "outside any section", NULL });
	parse_bad("[report]\ndir /x\n",
		  (const char *const[]){ "t.conf:2:", "expected KEY = VALUE", NULL });
	parse_bad("[report\n", (const char *const[]){ "t.conf:1:", "without ']'", NULL });
	parse_bad("[report]\ndir = /a\ndir = /b\n",
		  (const char *const[]){ "t.conf:3:", "duplicate key 'dir'", "line 2", NULL });
	parse_bad("[report]\ndir =\n", (const char *const[]){ "t.conf:2:", "empty value", NULL });
	parse_bad("[target]\ncomm = x\n",
		  (const char *const[]){ "t.conf:1:", "needs a name", NULL });
	parse_bad("[target a b]\ncomm = x\n",
		  (const char *const[]){ "t.conf:1:", "invalid target name 'a b'", NULL });
	parse_bad("[target ../etc]\ncomm = x\n",
		  (const char *const[]){ "t.conf:1:", "invalid target name", NULL });
	parse_bad("[target a]\ncomm = x\n[target a]\ncomm = y\n",
		  (const char *const[]){ "t.conf:3:", "duplicate section [target a]", "line 1",
					 NULL });
	parse_bad("[target a]\nthreshold = 5ms\n",
		  (const char *const[]){ "t.conf:1:", "[target a] has no matcher", NULL });
	parse_bad("[target a]\ncomm = averyveryverylongname\n",
		  (const char *const[]){ "t.conf:2:", "15 characters", NULL });
	parse_bad("[target a]\nunit = /system.slice/x\n",
		  (const char *const[]){ "t.conf:2:", "unit name", NULL });
	parse_bad("[target a]\ncgroup = system.slice\n",
		  (const char *const[]){ "t.conf:2:", "cgroup path", NULL });
	parse_bad("[target a]\npidfile = x.pid\n",
		  (const char *const[]){ "t.conf:2:", "absolute path", NULL });
	parse_bad("[target a]\ncomm = x\nformats = jsonl\n",
		  (const char *const[]){ "t.conf:3:", "'formats' belongs in [report]", NULL });
	parse_bad("[report]\ncomm = x\n",
		  (const char *const[]){ "t.conf:2:", "'comm' belongs in [target NAME]", NULL });
}

static void test_noise_keys(void **state)
{
	struct lw_config *c;

	(void)state;
	c = parse_ok("[defaults]\nrate_limit = 3/30s\nignore = Noisy.tick, health.py:*\n"
		     "site_threshold = Cache.*=50ms, app.py:42=1s\n");
	assert_int_equal(c->rate_limit, 3);
	assert_int_equal(c->rate_window_ns, 30000000000ull);
	assert_string_equal(c->ignore, "Noisy.tick, health.py:*");
	assert_string_equal(c->site_threshold, "Cache.*=50ms, app.py:42=1s");
	lw_config__free(c);
	c = parse_ok("[defaults]\nrate_limit = 20\n");
	assert_int_equal(c->rate_limit, 20);
	assert_int_equal(c->rate_window_ns, 60000000000ull);
	lw_config__free(c);
	c = parse_ok("[defaults]\nthreshold = 50ms\n");
	assert_int_equal(c->rate_limit, 0);	/* unset: the daemon's default */
	assert_null(c->ignore);
	lw_config__free(c);
	parse_bad("[defaults]\nrate_limit = lots\n",
		  (const char *const[]){ "t.conf:2:", "10/1m", NULL });
	parse_bad("[defaults]\nrate_limit = 0\n", (const char *const[]){ "t.conf:2:", NULL });
	parse_bad("[defaults]\nrate_limit = 5/10ms\n",
		  (const char *const[]){ "t.conf:2:", "at least 1s", NULL });
	parse_bad("[defaults]\nsite_threshold = Cache.warm\n",
		  (const char *const[]){ "t.conf:2:", "'Cache.warm' is not SITE=DURATION", NULL });
	parse_bad("[defaults]\nsite_threshold = a=1s, b=soon\n",
		  (const char *const[]){ "t.conf:2:", "'b=soon'", NULL });
	parse_bad("[target a]\ncomm = x\nrate_limit = 5\n",
		  (const char *const[]){ "t.conf:3:", "'rate_limit' belongs in [defaults]", NULL });
}

static void test_all_errors_reported(void **state)
{
	char line[400];

	(void)state;
	/* several problems: every one is listed, each with its line */
	parse_bad(
		"[report]\nbogus = 1\n[defaults]\nthreshold = x\n[target t]\nmode = fast\n",
		(const char *const[]){ "t.conf:2:", "t.conf:4:", "t.conf:6:", "t.conf:5:", NULL });
	/* a line longer than libinih reads is an error of its own, not a silent truncation */
	memset(line, 'a', sizeof(line));
	memcpy(line, "[target t]\ncmdline = ", 21);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = 0;
	parse_bad(line, (const char *const[]){ "t.conf:2:", "line too long", NULL });
}

static void test_nul_byte(void **state)
{
	struct lw_config *c = NULL;
	char err[512];
	char path[] = "/tmp/lwtest-conf-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[report]\ndir = /x\n\0\n", 20), 20);
	close(fd);
	/* not silently cut at the NUL: refused */
	assert_int_equal(lw_config__load(path, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, "NUL"));
	unlink(path);
}

static void test_load_file(void **state)
{
	struct lw_config *c = (struct lw_config *)1;
	char err[1024] = "";
	char path[] = "/tmp/lwtest-conf-XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "[target t]\ncomm = x\nthreshold = nope\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(lw_config__load(path, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	/* the message names the real file */
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":3:"));
	unlink(path);
	assert_int_equal(lw_config__load(path, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "--config"));
	assert_int_equal(lw_config__load("/tmp", &c, err, sizeof(err)), -EISDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interface_example),
		cmocka_unit_test(test_defaults_and_inheritance),
		cmocka_unit_test(test_matchers_and_names),
		cmocka_unit_test(test_user_unit_scope_group),
		cmocka_unit_test(test_layout_tolerance),
		cmocka_unit_test(test_errors_name_line_and_key),
		cmocka_unit_test(test_noise_keys),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
