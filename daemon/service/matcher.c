// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "service/matcher.h"
#include "base/lw_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HAVE_COMM = 1, HAVE_EXE = 2, HAVE_CMDLINE = 4, HAVE_CGROUP = 8, HAVE_UIDS = 16 };

#define CMDLINE_MAX (64 * 1024)

int lw_match_spec__empty(const struct lw_match_spec *m)
{
	return !m->exe && !m->comm && !m->cmdline && !m->unit && !m->cgroup && !m->pidfile &&
	       !m->user;
}

void lw_match_spec__clear(struct lw_match_spec *m)
{
	free(m->exe);
	free(m->comm);
	free(m->cmdline);
	free(m->unit);
	free(m->cgroup);
	free(m->pidfile);
	free(m->user);
	free(m->exclude_cmdline);
	memset(m, 0, sizeof(*m));
}

void lw_procview__init(struct lw_procview *v, const char *proc_root, pid_t pid)
{
	memset(v, 0, sizeof(*v));
	v->proc_root = proc_root ? proc_root : "/proc";
	v->pid = pid;
}

void lw_procview__set_comm(struct lw_procview *v, const char *comm)
{
	lw_strlcpy(v->comm, comm, sizeof(v->comm));
	v->have |= HAVE_COMM;
}

void lw_procview__release(struct lw_procview *v)
{
	free(v->cmdline);
	v->cmdline = NULL;
	v->have = 0;
}

int lw_procview__gone(const struct lw_procview *v)
{
	return v->gone;
}

/* a read failed: ENOENT/ESRCH mean the process went away */
static void read_failed(struct lw_procview *v, unsigned bit, int r)
{
	v->failed |= bit;
	if (r == -ENOENT || r == -ESRCH)
		v->gone = 1;
}

static int read_small(struct lw_procview *v, const char *what, size_t max, char **out,
		      size_t *len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%d/%s", v->proc_root, (int)v->pid, what);
	return lw_read_file(path, max, out, len);
}

/*
 * The procview's one read of /proc/PID/<what>: 1 and its text (the caller's to keep or free)
 * the first time; 0 when it was read already (bit in have) or its read failed, then or now
 * (bit in failed).
 */
static int read_once(struct lw_procview *v, unsigned bit, const char *what, size_t max,
		     char **buf, size_t *len)
{
	int r;

	*buf = NULL;
	*len = 0;
	if ((v->have | v->failed) & bit)
		return 0;
	r = read_small(v, what, max, buf, len);
	if (r) {
		read_failed(v, bit, r);
		return 0;
	}
	return 1;
}

const char *lw_procview__comm(struct lw_procview *v)
{
	char *buf;
	size_t len;

	if (read_once(v, HAVE_COMM, "comm", 64, &buf, &len)) {
		while (len && (buf[len - 1] == '\n'))
			buf[--len] = 0;
		lw_strlcpy(v->comm, buf, sizeof(v->comm));
		free(buf);
		v->have |= HAVE_COMM;
	}
	return (v->have & HAVE_COMM) ? v->comm : NULL;
}

const char *lw_procview__exe(struct lw_procview *v)
{
	char path[128];
	ssize_t n;

	if (v->have & HAVE_EXE)
		return v->exe;
	if (v->failed & HAVE_EXE)
		return NULL;
	snprintf(path, sizeof(path), "%s/%d/exe", v->proc_root, (int)v->pid);
	n = readlink(path, v->exe, sizeof(v->exe) - 1);
	if (n <= 0) {
		/* a kernel thread has no exe (ENOENT) but its /proc directory is there */
		read_failed(v, HAVE_EXE, n < 0 ? -errno : -ENOENT);
		if (v->gone) {
			snprintf(path, sizeof(path), "%s/%d", v->proc_root, (int)v->pid);
			v->gone = access(path, F_OK) != 0;
		}
		return NULL;
	}
	v->exe[n] = 0;
	/* an upgraded binary still running: "/usr/bin/python3.11 (deleted)" */
	if (n > 10 && strcmp(v->exe + n - 10, " (deleted)") == 0)
		v->exe[n - 10] = 0;
	v->have |= HAVE_EXE;
	return v->exe;
}

void lw_cmdline_join(char *buf, size_t len)
{
	size_t i;

	while (len && buf[len - 1] == 0)
		len--;
	for (i = 0; i < len; i++)
		if (buf[i] == 0)
			buf[i] = ' ';
	buf[len] = 0;
}

const char *lw_procview__cmdline(struct lw_procview *v)
{
	char *buf;
	size_t len;

	if (read_once(v, HAVE_CMDLINE, "cmdline", CMDLINE_MAX, &buf, &len)) {
		lw_cmdline_join(buf, len);
		v->cmdline = buf;
		v->have |= HAVE_CMDLINE;
	}
	return (v->have & HAVE_CMDLINE) ? v->cmdline : NULL;
}

int lw_cgroup_path(const char *text, char *out, size_t size)
{
	const char *line = text, *v1 = NULL;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > 3 && strncmp(line, "0::", 3) == 0) {
			line += 3;
			len -= 3;
			if (len >= size)
				return -ENOENT;
			memcpy(out, line, len);
			out[len] = 0;
			return 0;
		}
		if (!v1) {
			const char *p = memchr(line, ':', len);

			if (p && (size_t)(p - line) < len &&
			    strncmp(p + 1, "name=systemd:", 13) == 0)
				v1 = line;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (v1) {
		const char *p = strchr(v1, ':') + 1 + 13;
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len && len < size) {
			memcpy(out, p, len);
			out[len] = 0;
			return 0;
		}
	}
	return -ENOENT;
}

const char *lw_procview__cgroup(struct lw_procview *v)
{
	char *buf;
	size_t len;

	if (read_once(v, HAVE_CGROUP, "cgroup", 16384, &buf, &len)) {
		v->have |= lw_cgroup_path(buf, v->cgroup, sizeof(v->cgroup)) ? 0 : HAVE_CGROUP;
		v->failed |= (v->have & HAVE_CGROUP) ? 0 : HAVE_CGROUP;
		free(buf);
	}
	return (v->have & HAVE_CGROUP) ? v->cgroup : NULL;
}

int lw_match_glob(const char *pattern, const char *s)
{
	if (!pattern || !s)
		return 0;
	if (strpbrk(pattern, "*?["))
		return fnmatch(pattern, s, 0) == 0;
	return strcmp(pattern, s) == 0;
}

static int is_unit(const char *p, size_t cl, const char *unit)
{
	size_t ul = strlen(unit);

	if (cl == ul && strncmp(p, unit, ul) == 0)
		return 1;
	/* "api" = "api.service" */
	return !strchr(unit, '.') && cl == ul + 8 && strncmp(p, unit, ul) == 0 &&
	       strncmp(p + ul, ".service", 8) == 0;
}

/* The next component of a cgroup path at *p (its length in *cl); *p moves to the slash after
 * it, NULL after the last. */
static const char *next_part(const char **p, size_t *cl)
{
	const char *s = *p, *slash;

	while (*s == '/')
		s++;
	slash = strchr(s, '/');
	*cl = slash ? (size_t)(slash - s) : strlen(s);
	*p = slash;
	return s;
}

int lw_cgroup_has_unit(const char *cgpath, const char *unit)
{
	const char *p = cgpath;

	if (!*unit)
		return 0;
	while (p && *p) {
		size_t cl;
		const char *c = next_part(&p, &cl);

		if (is_unit(c, cl, unit))
			return 1;
	}
	return 0;
}

int lw_cgroup_system_unit(const char *cgpath, const char *unit)
{
	const char *p = cgpath;

	if (!*unit)
		return 0;
	while (p && *p) {
		size_t cl;
		const char *c = next_part(&p, &cl);

		if (!cl)
			return 0;
		/* slices nest; the first thing that is not one is the unit */
		if (cl > 6 && strncmp(c + cl - 6, ".slice", 6) == 0) {
			/* the user's manager and its units are not system services */
			if (cl == 10 && strncmp(c, "user.slice", 10) == 0)
				return 0;
			continue;
		}
		if (cl > 5 && strncmp(c, "user@", 5) == 0)
			return 0;
		return is_unit(c, cl, unit);
	}
	return 0;
}

int lw_parse_status_uids(const char *status_text, uid_t *ruid, uid_t *euid)
{
	const char *p = strstr(status_text, "\nUid:");
	unsigned long r, e;

	if (!p && strncmp(status_text, "Uid:", 4) == 0)
		p = status_text - 1;
	if (!p || sscanf(p + 5, " %lu %lu", &r, &e) != 2)
		return -EINVAL;
	*ruid = (uid_t)r;
	*euid = (uid_t)e;
	return 0;
}

int lw_procview__uids(struct lw_procview *v, uid_t *ruid, uid_t *euid)
{
	char *buf;
	size_t len;

	if (read_once(v, HAVE_UIDS, "status", 16384, &buf, &len)) {
		if (lw_parse_status_uids(buf, &v->ruid, &v->euid))
			v->failed |= HAVE_UIDS;
		else
			v->have |= HAVE_UIDS;
		free(buf);
	}
	if (!(v->have & HAVE_UIDS))
		return -ENOENT;
	*ruid = v->ruid;
	*euid = v->euid;
	return 0;
}

const char *lw_match_user_controlled(const struct lw_match_spec *m, char *buf, size_t size)
{
	if (lw_match_spec__empty(m) || m->cgroup || m->user || m->pidfile || (m->unit && !m->unit_any))
		return NULL;
	snprintf(buf, size, "%s%s%s%s%s%s%s", m->comm ? "comm" : "",
		 m->comm && (m->cmdline || m->exe || m->unit) ? ", " : "",
		 m->cmdline ? "cmdline" : "", m->cmdline && (m->exe || m->unit) ? ", " : "",
		 m->exe ? "exe" : "", m->exe && m->unit ? ", " : "",
		 m->unit ? "unit with unit_scope = any" : "");
	return buf;
}

int lw_cgroup_under(const char *cgpath, const char *prefix)
{
	size_t pl = strlen(prefix);

	while (pl > 1 && prefix[pl - 1] == '/')
		pl--;
	if (pl == 1 && prefix[0] == '/')
		return cgpath[0] == '/';
	if (strncmp(cgpath, prefix, pl))
		return 0;
	return cgpath[pl] == 0 || cgpath[pl] == '/';
}

int lw_pidfile_parse(const char *text, pid_t *pid)
{
	char *end;
	long v;

	while (*text == ' ' || *text == '\t')
		text++;
	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || v <= 0 || v > 4194304)
		return -EINVAL;
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	if (*end)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

int lw_pidfile_read(const char *path, pid_t *pid)
{
	int64_t mtime;

	return lw_pidfile_read_mtime(path, pid, &mtime);
}

int lw_pidfile_stale(int64_t mtime, int64_t start)
{
	return start > mtime + 2;
}

int64_t lw_proc_start_epoch(const char *proc_root, pid_t pid)
{
	unsigned long long ticks = lw_proc_starttime(proc_root, pid);
	long hz = sysconf(_SC_CLK_TCK);
	char path[128], *text = NULL, *p;
	long long btime = -1;

	if (!ticks || hz <= 0)
		return -1;
	snprintf(path, sizeof(path), "%s/stat", proc_root ? proc_root : "/proc");
	if (lw_read_file(path, 1 << 20, &text, NULL))
		return -1;
	p = strstr(text, "\nbtime ");
	if (p)
		btime = strtoll(p + 7, NULL, 10);
	free(text);
	return btime > 0 ? btime + (int64_t)(ticks / (unsigned long long)hz) : -1;
}

int lw_pidfile_read_mtime(const char *path, pid_t *pid, int64_t *mtime)
{
	char buf[64];
	struct stat st;
	ssize_t n;
	int fd, r;

	/* the file may live in a directory its service can write: never block on a FIFO, never
	 * read a device */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	*mtime = (int64_t)st.st_mtime;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	buf[n] = 0;
	r = lw_pidfile_parse(buf, pid);
out:
	close(fd);
	return r;
}

/* cheapest first: what the exec event told, one file, a link, then the longer reads */
pid_t lw_stat_ppid(const char *text)
{
	const char *p = text ? strrchr(text, ')') : NULL;
	char state;
	long ppid;

	if (!p || sscanf(p + 1, " %c %ld", &state, &ppid) != 2 || ppid < 0 || ppid > INT_MAX)
		return -1;
	return (pid_t)ppid;
}

/* workers_only: the parent matches the other matchers too */
static int parent_matches(const struct lw_match_spec *m, struct lw_procview *v)
{
	struct lw_match_spec pm = *m;
	struct lw_procview pv;
	char *text = NULL;
	pid_t ppid;
	int r;

	if (read_small(v, "stat", 4096, &text, NULL))
		return 0;
	ppid = lw_stat_ppid(text);
	free(text);
	if (ppid <= 1)
		return 0;
	pm.workers_only = 0;
	pm.pidfile = NULL;	/* the pid file names the master, if any */
	lw_procview__init(&pv, v->proc_root, ppid);
	r = lw_match(&pm, &pv);
	lw_procview__release(&pv);
	return r;
}

int lw_match(const struct lw_match_spec *m, struct lw_procview *v)
{
	const char *s;

	if (m->comm) {
		s = lw_procview__comm(v);
		if (!s || !lw_match_glob(m->comm, s))
			return 0;
	}
	if (m->pidfile) {
		pid_t p = 0;
		int64_t mtime = 0, start;

		if (lw_pidfile_read_mtime(m->pidfile, &p, &mtime) || p != v->pid)
			return 0;
		/* a stale file naming a pid that another process has now: not that one */
		start = lw_proc_start_epoch(v->proc_root, v->pid);
		if (start < 0 || lw_pidfile_stale(mtime, start))
			return 0;
	}
	if (m->exe) {
		s = lw_procview__exe(v);
		if (!s || !lw_match_glob(m->exe, s))
			return 0;
	}
	if (m->unit || m->cgroup) {
		s = lw_procview__cgroup(v);
		if (!s)
			return 0;
		if (m->unit && !(m->unit_any ? lw_cgroup_has_unit(s, m->unit) :
						     lw_cgroup_system_unit(s, m->unit)))
			return 0;
		if (m->cgroup && !lw_cgroup_under(s, m->cgroup))
			return 0;
	}
	if (m->user) {
		uid_t r, e;

		if (lw_procview__uids(v, &r, &e) || r != m->uid || e != m->uid)
			return 0;
	}
	if (m->cmdline) {
		s = lw_procview__cmdline(v);
		if (!s || !strstr(s, m->cmdline))
			return 0;
	}
	if (m->exclude_cmdline) {
		s = lw_procview__cmdline(v);
		if (!s || strstr(s, m->exclude_cmdline))
			return 0;
	}
	if (m->workers_only && !parent_matches(m, v))
		return 0;
	return 1;
}
