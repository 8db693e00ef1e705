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
#include <stdint.h>
#include <sys/types.h>

/* One target's matchers; NULL = not set. Strings are owned (lw_match_spec__clear frees them). */
struct lw_match_spec {
	char *exe;	/* executable path, exact or a glob ("/usr/bin/python3*") */
	char *comm;	/* command name (/proc/PID/comm), exact or a glob; 15 characters */
	char *cmdline;	/* substring of the command line, arguments joined by spaces */
	char *unit;	/* systemd unit ("api.service"): the system unit the process runs in (the
			 * first cgroup component below the slices), or with unit_any any component
			 * (user@UID.service's own units included) */
	int unit_any;	/* unit_scope = any */
	char *cgroup;	/* cgroup v2 path prefix, whole components ("/system.slice/x") */
	char *pidfile;	/* a file holding the pid */
	char *user;	/* user = NAME or UID as written; uid is what it resolved to */
	uid_t uid;	/* the process's real and effective uid must both be this */
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
	uid_t ruid, euid;
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
/* The real and effective uid (/proc/PID/status). 0, or -errno. */
int lw_procview__uids(struct lw_procview *v, uid_t *ruid, uid_t *euid);

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
/* The system unit: the first component that is not a slice is the unit ("/system.slice/
 * api.service/x" yes; "/user.slice/user-1000.slice/user@1000.service/app.slice/api.service" and
 * "/system.slice/docker-1.scope/api.service" no). */
int lw_cgroup_system_unit(const char *cgpath, const char *unit);
/* The uids of a "Uid:" line of a /proc status text. 0 or -EINVAL. */
int lw_parse_status_uids(const char *status_text, uid_t *ruid, uid_t *euid);
/* Which of m's matchers any local user can satisfy with a process of their own ("comm, cmdline,
 * exe"): NULL when one matcher is not (unit, cgroup, user, pidfile). */
const char *lw_match_user_controlled(const struct lw_match_spec *m, char *buf, size_t size);
/* cgpath is prefix or lies below it, component by component ("/a/b" is under "/a", not "/a/bc") */
int lw_cgroup_under(const char *cgpath, const char *prefix);
/* The pid in a pid file's text (leading blanks, one decimal, a newline). 0 or -EINVAL. */
int lw_pidfile_parse(const char *text, pid_t *pid);
/* Read a pid file. 0, -ENOENT, -EINVAL or another -errno. */
int lw_pidfile_read(const char *path, pid_t *pid);
/* The same, and when the file was last written (seconds since the epoch) */
int lw_pidfile_read_mtime(const char *path, pid_t *pid, int64_t *mtime);
/* A pid file written before its process started is stale (left by an earlier process whose
 * pid was reused): start and mtime in seconds since the epoch, 2 s of slack for clock steps. */
int lw_pidfile_stale(int64_t mtime, int64_t start);
/* When pid started, in seconds since the epoch (boot time + /proc/PID/stat field 22); -1 when
 * unknown */
int64_t lw_proc_start_epoch(const char *proc_root, pid_t pid);
/* The parent pid in the text of /proc/PID/stat (after the last ')'), or -1 */
pid_t lw_stat_ppid(const char *text);
/* /proc/PID/cmdline (NUL-separated) as one line: NULs become spaces, a trailing one dropped */
void lw_cmdline_join(char *buf, size_t len);

#endif
