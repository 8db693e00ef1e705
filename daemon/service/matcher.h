/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which processes a loopwatchd target names: matchers on the executable, the command name, the
 * command line, the systemd unit, the cgroup and a pid file. Every matcher a target sets must
 * hold. Facts about a process are read from /proc lazily, only those a matcher asks for, so that
 * the exec of an unrelated process (the daemon sees every exec on the host) costs little.
 */
#ifndef LW_MATCHER_H
#define LW_MATCHER_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* One target's matchers; NULL = not set. Strings are owned (lw_match_spec__clear frees them). */
struct lw_match_spec {
	char *exe;	/* executable path, exact or a glob ("/usr/bin/python3*") */
	char *comm;	/* command name (/proc/PID/comm), exact or a glob; 15 characters */
	char *cmdline;	/* substring of the command line, arguments joined by spaces */
	char *unit;	/* systemd unit: a component of the cgroup path ("api.service") */
	char *cgroup;	/* cgroup v2 path prefix, whole components ("/system.slice/x") */
	char *pidfile;	/* a file holding the pid */
	char *exclude_cmdline;	/* not a process whose command line has this substring (a
				 * pre-fork server's master: "gunicorn: master") */
	int workers_only;	/* only processes whose parent matches too: a pre-fork server's
				 * workers, not its master (whose command line they share) */
};

/* no positive matcher (exclude_cmdline alone selects nothing) */
int lw_match_spec__empty(const struct lw_match_spec *m);
void lw_match_spec__clear(struct lw_match_spec *m);

/*
 * What is known about one process, read on demand. Stack-allocate it, lw_procview__init() it,
 * lw_procview__release() it. The fields are private to matcher.c.
 */
struct lw_procview {
	const char *proc_root;
	pid_t pid;
	unsigned have;		/* bits of what was read */
	unsigned failed;	/* bits of what could not be read */
	int gone;		/* the process no longer exists */
	char comm[16];
	char exe[PATH_MAX];
	char cgroup[1024];
	char *cmdline;		/* arguments joined by spaces (malloc'd) */
};

void lw_procview__init(struct lw_procview *v, const char *proc_root, pid_t pid);
/* The command name is known already (an exec event carries it) */
void lw_procview__set_comm(struct lw_procview *v, const char *comm);
void lw_procview__release(struct lw_procview *v);
/* NULL when it cannot be read (the process is gone, a kernel thread, no permission) */
const char *lw_procview__comm(struct lw_procview *v);
const char *lw_procview__exe(struct lw_procview *v);
const char *lw_procview__cmdline(struct lw_procview *v);
const char *lw_procview__cgroup(struct lw_procview *v);
int lw_procview__gone(const struct lw_procview *v);

/* 1 when every matcher of m holds for the process, 0 when one does not (or cannot be read). */
int lw_match(const struct lw_match_spec *m, struct lw_procview *v);

/* ---- the pure parts (unit-tested) */

/* pattern is a glob when it has * ? or [; otherwise an exact comparison */
int lw_match_glob(const char *pattern, const char *s);
/* The cgroup v2 path ("0::/system.slice/x.service") from the text of /proc/PID/cgroup; on a
 * v1-only host the name=systemd hierarchy's path. 0 or -ENOENT. */
int lw_cgroup_path(const char *text, char *out, size_t size);
/* A component of the cgroup path is the unit; "api" stands for "api.service". */
int lw_cgroup_has_unit(const char *cgpath, const char *unit);
/* cgpath is prefix or lies below it, component by component ("/a/b" is under "/a", not "/a/bc") */
int lw_cgroup_under(const char *cgpath, const char *prefix);
/* The pid in a pid file's text (leading blanks, one decimal, a newline). 0 or -EINVAL. */
int lw_pidfile_parse(const char *text, pid_t *pid);
/* Read a pid file. 0, -ENOENT, -EINVAL or another -errno. */
int lw_pidfile_read(const char *path, pid_t *pid);
/* The parent pid in the text of /proc/PID/stat (after the last ')'), or -1 */
pid_t lw_stat_ppid(const char *text);
/* /proc/PID/cmdline (NUL-separated) as one line: NULs become spaces, a trailing one dropped */
void lw_cmdline_join(char *buf, size_t len);

#endif
