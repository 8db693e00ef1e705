// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "service/matcher.h"

static void test_glob(void **state)
{
	(void)state;
	assert_true(lw_match_glob("/usr/bin/python3.11", "/usr/bin/python3.11"));
	assert_false(lw_match_glob("/usr/bin/python3", "/usr/bin/python3.11"));
	assert_true(lw_match_glob("/usr/bin/python3*", "/usr/bin/python3.11"));
	assert_true(lw_match_glob("python3.1?", "python3.11"));
	assert_true(lw_match_glob("gunicorn*", "gunicorn: worker"));
	assert_false(lw_match_glob("[ab]pi", "cpi"));
	assert_false(lw_match_glob(NULL, "x"));
	assert_false(lw_match_glob("x", NULL));
}

static void test_cgroup_path(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(lw_cgroup_path("0::/system.slice/api.service\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/system.slice/api.service");
	/* hybrid: the unified line wins wherever it is */
	assert_int_equal(lw_cgroup_path("12:cpu,cpuacct:/x\n1:name=systemd:/system.slice/"
					"a.service\n"
					"0::/system.slice/b.service\n",
					out, sizeof(out)),
			 0);
	assert_string_equal(out, "/system.slice/b.service");
	/* v1 only: the name=systemd hierarchy */
	assert_int_equal(lw_cgroup_path("12:cpu:/x\n1:name=systemd:/system.slice/a.service\n", out,
					sizeof(out)), 0);
	assert_string_equal(out, "/system.slice/a.service");
	assert_int_equal(lw_cgroup_path("0::/\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(lw_cgroup_path("", out, sizeof(out)), -ENOENT);
	assert_int_equal(lw_cgroup_path("garbage", out, sizeof(out)), -ENOENT);
	assert_int_equal(lw_cgroup_path("0::/a/very/long/path\n", out, 5), -ENOENT);
}

static void test_units(void **state)
{
	static const char *cg = "/system.slice/api.service";
	static const char *user =
		"/user.slice/user-1000.slice/user@1000.service/app.slice/worker.service";

	(void)state;
	assert_true(lw_cgroup_has_unit(cg, "api.service"));
	assert_true(lw_cgroup_has_unit(cg, "api"));
	assert_true(lw_cgroup_has_unit(cg, "system.slice"));
	assert_false(lw_cgroup_has_unit(cg, "ap"));
	assert_false(lw_cgroup_has_unit(cg, "api.socket"));
	assert_false(lw_cgroup_has_unit(cg, "pi.service"));
	assert_false(lw_cgroup_has_unit(cg, ""));
	assert_true(lw_cgroup_has_unit(user, "worker.service"));
	assert_true(lw_cgroup_has_unit(user, "user@1000.service"));
	assert_false(lw_cgroup_has_unit(user, "worker.slice"));
	/* a unit's own sub-cgroups */
	assert_true(lw_cgroup_has_unit("/system.slice/api.service/workers/w1", "api"));
}

/* issue 19: `unit = api` must not match a user's own api.service (or a cgroup a delegated
 * service or container made and named so) */
static void test_system_units(void **state)
{
	(void)state;
	assert_true(lw_cgroup_system_unit("/system.slice/api.service", "api"));
	assert_true(lw_cgroup_system_unit("/system.slice/api.service", "api.service"));
	assert_true(lw_cgroup_system_unit("/system.slice/api.service/workers/w1", "api"));
	assert_true(lw_cgroup_system_unit("/system.slice/system-getty.slice/getty@tty1.service",
					  "getty@tty1.service"));
	assert_true(lw_cgroup_system_unit("/init.scope", "init.scope"));
	assert_true(lw_cgroup_system_unit("/api.service", "api"));
	assert_false(lw_cgroup_system_unit(
		"/user.slice/user-65534.slice/user@65534.service/app.slice/api.service", "api"));
	assert_false(lw_cgroup_system_unit("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"));
	assert_false(lw_cgroup_system_unit("/system.slice/docker-1.scope/api.service", "api"));
	assert_false(lw_cgroup_system_unit("/system.slice/user@1000.service", "user@1000.service"));
	assert_false(lw_cgroup_system_unit("/system.slice/apix.service", "api"));
	assert_false(lw_cgroup_system_unit("/system.slice", "system.slice"));
	assert_false(lw_cgroup_system_unit("/", "api"));
	assert_false(lw_cgroup_system_unit("/system.slice/api.service", ""));
}

static void test_status_uids(void **state)
{
	uid_t r = 7, e = 7;

	(void)state;
	assert_int_equal(lw_parse_status_uids("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\n", &r, &e), 0);
	assert_int_equal(r, 1000);
	assert_int_equal(e, 0);
	assert_int_equal(lw_parse_status_uids("Uid:\t5\t6\t6\t6\n", &r, &e), 0);
	assert_int_equal(r, 5);
	assert_int_equal(e, 6);
	assert_int_equal(lw_parse_status_uids("Name:\tx\n", &r, &e), -EINVAL);
	assert_int_equal(lw_parse_status_uids("Name:\tx\nUid:\tjunk\n", &r, &e), -EINVAL);
}

static void test_user_controlled(void **state)
{
	struct lw_match_spec m;
	char buf[128];

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_null(lw_match_user_controlled(&m, buf, sizeof(buf)));
	m.cmdline = "app.py";
	assert_string_equal(lw_match_user_controlled(&m, buf, sizeof(buf)), "cmdline");
	m.comm = "python3";
	m.exe = "/usr/bin/python3.11";
	assert_string_equal(lw_match_user_controlled(&m, buf, sizeof(buf)), "comm, cmdline, exe");
	m.unit = "api";
	m.unit_any = 1;
	assert_string_equal(lw_match_user_controlled(&m, buf, sizeof(buf)),
			    "comm, cmdline, exe, unit with unit_scope = any");
	m.unit_any = 0;
	assert_null(lw_match_user_controlled(&m, buf, sizeof(buf)));
	m.unit = NULL;
	m.user = "api";
	assert_null(lw_match_user_controlled(&m, buf, sizeof(buf)));
	m.user = NULL;
	m.cgroup = "/system.slice/api.service";
	assert_null(lw_match_user_controlled(&m, buf, sizeof(buf)));
}

static void test_cgroup_prefix(void **state)
{
	(void)state;
	assert_true(lw_cgroup_under("/system.slice/api.service", "/system.slice/api.service"));
	assert_true(lw_cgroup_under("/system.slice/api.service/w1", "/system.slice/api.service"));
	assert_true(lw_cgroup_under("/system.slice/api.service", "/system.slice/"));
	assert_false(lw_cgroup_under("/system.slice/api.services", "/system.slice/api.service"));
	assert_false(lw_cgroup_under("/system.slice", "/system.slice/api.service"));
	assert_true(lw_cgroup_under("/anything", "/"));
}

static void test_pidfile_parse(void **state)
{
	pid_t p = 0;

	(void)state;
	assert_int_equal(lw_pidfile_parse("1234\n", &p), 0);
	assert_int_equal(p, 1234);
	assert_int_equal(lw_pidfile_parse("  77  \r\n", &p), 0);
	assert_int_equal(p, 77);
	assert_int_equal(lw_pidfile_parse("", &p), -EINVAL);
	assert_int_equal(lw_pidfile_parse("0\n", &p), -EINVAL);
	assert_int_equal(lw_pidfile_parse("-5\n", &p), -EINVAL);
	assert_int_equal(lw_pidfile_parse("12 13\n", &p), -EINVAL);
	assert_int_equal(lw_pidfile_parse("12abc", &p), -EINVAL);
	assert_int_equal(lw_pidfile_parse("99999999999999999999", &p), -EINVAL);
}

static void test_cmdline_join(void **state)
{
	char a[] = "python3\0app.py\0--port\0" "8080\0";
	char b[] = "";
	char c[] = "nginx: worker process\0\0\0";

	(void)state;
	lw_cmdline_join(a, sizeof(a) - 1);
	assert_string_equal(a, "python3 app.py --port 8080");
	lw_cmdline_join(b, 0);
	assert_string_equal(b, "");
	lw_cmdline_join(c, sizeof(c) - 1);
	assert_string_equal(c, "nginx: worker process");
}

/* ---- a fake /proc: ROOT/PID/{comm,cmdline,cgroup,exe} */

struct fakeproc {
	char root[64];
	char pidfile[128];
	char fifo[128];
};

static void put(const char *dir, const char *name, const char *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int setup_proc(void **state)
{
	struct fakeproc *f = calloc(1, sizeof(*f));
	char dir[128], link[192];

	strcpy(f->root, "/tmp/lwtest-proc-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(dir, sizeof(dir), "%s/4242", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	put(dir, "comm", "python3.11\n", 11);
	put(dir, "cmdline", "/usr/bin/python3.11\0/srv/api/app.py\0--port\0" "8080\0", 49);
	put(dir, "cgroup", "0::/system.slice/api.service\n", 29);
	put(dir, "status", "Name:\tpython3.11\nUid:\t1000\t1000\t1000\t1000\n", 42);
	{
		/* started 1000 s after a boot 2000 s ago (100 ticks a second), comm with ") " */
		char stat[512], bt[64];
		int n = snprintf(stat, sizeof(stat), "4242 (py) 3) S 1 4242 4242 0 -1 4194560 "
				 "1 0 0 0 0 0 0 0 20 0 1 0 %llu 1000 100\n",
				 100000ull * (unsigned long long)sysconf(_SC_CLK_TCK) / 100);
		int m = snprintf(bt, sizeof(bt), "cpu 1 2 3\nbtime %lld\nprocesses 9\n",
				 (long long)time(NULL) - 2000);

		put(dir, "stat", stat, (size_t)n);
		put(f->root, "stat", bt, (size_t)m);
	}
	snprintf(link, sizeof(link), "%s/exe", dir);
	assert_int_equal(symlink("/usr/bin/python3.11 (deleted)", link), 0);
	/* a kernel thread: no exe, empty cmdline */
	snprintf(dir, sizeof(dir), "%s/2", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	put(dir, "comm", "kthreadd\n", 9);
	put(dir, "cmdline", "", 0);
	/* 4242 started by init, 4243 a worker it forked (the same command line) */
	/* (4242's stat, written above, names init as its parent) */
	snprintf(dir, sizeof(dir), "%s/4243", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	put(dir, "comm", "python3.11\n", 11);
	put(dir, "cmdline", "/usr/bin/python3.11\0/srv/api/app.py\0--port\0" "8080\0", 49);
	put(dir, "stat", "4243 (py) x) R 4242 4242 4242 0", 31);
	put(dir, "cgroup", "0::/system.slice/api.service\n", 29);
	snprintf(link, sizeof(link), "%s/exe", dir);
	assert_int_equal(symlink("/usr/bin/python3.11", link), 0);
	snprintf(f->pidfile, sizeof(f->pidfile), "%s/api.pid", f->root);
	put(f->root, "api.pid", "4242\n", 5);
	snprintf(f->fifo, sizeof(f->fifo), "%s/fifo.pid", f->root);
	assert_int_equal(mkfifo(f->fifo, 0600), 0);
	*state = f;
	return 0;
}

static int teardown_proc(void **state)
{
	struct fakeproc *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int matches(struct fakeproc *f, pid_t pid, const struct lw_match_spec *m)
{
	struct lw_procview v;
	int r;

	lw_procview__init(&v, f->root, pid);
	r = lw_match(m, &v);
	lw_procview__release(&v);
	return r;
}

static void test_procview(void **state)
{
	struct fakeproc *f = *state;
	struct lw_procview v;

	lw_procview__init(&v, f->root, 4242);
	assert_string_equal(lw_procview__comm(&v), "python3.11");
	assert_string_equal(lw_procview__exe(&v), "/usr/bin/python3.11");
	assert_string_equal(lw_procview__cmdline(&v), "/usr/bin/python3.11 /srv/api/app.py --port "
						      "8080");
	assert_string_equal(lw_procview__cgroup(&v), "/system.slice/api.service");
	assert_false(lw_procview__gone(&v));
	lw_procview__release(&v);
	/* the exec event's comm is taken as is */
	lw_procview__init(&v, f->root, 4242);
	lw_procview__set_comm(&v, "other");
	assert_string_equal(lw_procview__comm(&v), "other");
	lw_procview__release(&v);
	/* a kernel thread: no exe, not gone */
	lw_procview__init(&v, f->root, 2);
	assert_null(lw_procview__exe(&v));
	assert_false(lw_procview__gone(&v));
	assert_string_equal(lw_procview__cmdline(&v), "");
	lw_procview__release(&v);
	/* a process that went away */
	lw_procview__init(&v, f->root, 999);
	assert_null(lw_procview__comm(&v));
	assert_true(lw_procview__gone(&v));
	assert_null(lw_procview__exe(&v));
	lw_procview__release(&v);
}

static void test_match(void **state)
{
	struct fakeproc *f = *state;
	struct lw_match_spec m;

	memset(&m, 0, sizeof(m));
	/* no matcher holds trivially (the config refuses such a target) */
	assert_true(matches(f, 4242, &m));
	m.exe = "/usr/bin/python3.11";
	assert_true(matches(f, 4242, &m));
	m.cmdline = "app.py --port";
	assert_true(matches(f, 4242, &m));
	/* exclude_cmdline: a substring that leaves a process out */
	m.exclude_cmdline = "--port 8080";
	assert_false(matches(f, 4242, &m));
	m.exclude_cmdline = "master";
	assert_true(matches(f, 4242, &m));
	m.exclude_cmdline = NULL;
	/* workers_only: a process whose parent matches too */
	m.workers_only = 1;
	assert_false(matches(f, 4242, &m));	/* the master: its parent is init */
	assert_true(matches(f, 4243, &m));
	m.workers_only = 0;
	assert_true(matches(f, 4243, &m));
	m.comm = "python3*";
	m.unit = "api";
	m.cgroup = "/system.slice";
	m.pidfile = f->pidfile;
	assert_true(matches(f, 4242, &m));
	/* every matcher must hold */
	m.cmdline = "worker.py";
	assert_false(matches(f, 4242, &m));
	m.cmdline = NULL;
	m.unit = "db.service";
	assert_false(matches(f, 4242, &m));
	m.unit = NULL;
	m.cgroup = "/user.slice";
	assert_false(matches(f, 4242, &m));
	m.cgroup = NULL;
	m.exe = "/usr/bin/python3.12";
	assert_false(matches(f, 4242, &m));
	m.exe = NULL;
	/* a pid file older than the process it names is stale (the pid was reused): issue 19 */
	{
		struct timeval tv[2] = { { time(NULL) - 1500, 0 }, { time(NULL) - 1500, 0 } };

		assert_int_equal(utimes(f->pidfile, tv), 0);
		assert_false(matches(f, 4242, &m));
		tv[0].tv_sec = tv[1].tv_sec = time(NULL) - 900;
		assert_int_equal(utimes(f->pidfile, tv), 0);
		assert_true(matches(f, 4242, &m));
	}
	assert_true(lw_pidfile_stale(100, 103));
	assert_false(lw_pidfile_stale(100, 102));
	assert_false(lw_pidfile_stale(100, 50));
	/* the pid file names another process; an unreadable one, a FIFO (never blocks) */
	assert_false(matches(f, 2, &m));
	m.pidfile = "/nonexistent/x.pid";
	assert_false(matches(f, 4242, &m));
	m.pidfile = f->fifo;
	assert_false(matches(f, 4242, &m));
	m.pidfile = NULL;
	/* a kernel thread never matches an exe matcher; a gone process nothing */
	m.comm = NULL;
	m.exe = "/*";
	assert_false(matches(f, 2, &m));
	m.exe = NULL;
	m.comm = "*";
	assert_false(matches(f, 999, &m));
	/* user =: real and effective uid */
	m.comm = NULL;
	m.user = "u";
	m.uid = 1000;
	assert_true(matches(f, 4242, &m));
	m.uid = 0;
	assert_false(matches(f, 4242, &m));
	assert_false(matches(f, 2, &m));	/* no status file: no match */
	m.user = NULL;
	/* unit: the system unit by default, any component with unit_scope = any */
	m.unit = "system.slice";
	assert_false(matches(f, 4242, &m));
	m.unit_any = 1;
	assert_true(matches(f, 4242, &m));
}

static void test_stat_ppid(void **state)
{
	(void)state;
	assert_int_equal(lw_stat_ppid("4243 (a b) c) S 4242 1 1 0"), 4242);
	assert_int_equal(lw_stat_ppid("1 (init) S 0 1 1"), 0);
	assert_int_equal(lw_stat_ppid("1 (init"), -1);
	assert_int_equal(lw_stat_ppid("1 (x) S -5"), -1);
	assert_int_equal(lw_stat_ppid(NULL), -1);
}

static void test_spec_clear(void **state)
{
	struct lw_match_spec m;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_true(lw_match_spec__empty(&m));
	m.comm = strdup("x");
	m.pidfile = strdup("/run/x.pid");
	assert_false(lw_match_spec__empty(&m));
	lw_match_spec__clear(&m);
	assert_true(lw_match_spec__empty(&m));
	m.exclude_cmdline = strdup("master");
	assert_true(lw_match_spec__empty(&m));	/* excluding alone selects nothing */
	lw_match_spec__clear(&m);
	assert_true(lw_match_spec__empty(&m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_cgroup_path),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_system_units),
		cmocka_unit_test(test_status_uids),
		cmocka_unit_test(test_user_controlled),
		cmocka_unit_test(test_cgroup_prefix),
		cmocka_unit_test(test_pidfile_parse),
		cmocka_unit_test(test_cmdline_join),
		cmocka_unit_test_setup_teardown(test_procview, setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_match, setup_proc, teardown_proc),
		cmocka_unit_test(test_stat_ppid),
		cmocka_unit_test(test_spec_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
