// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "base/lw_util.h"
#include "base/textesc.h"
#include "base/safefile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = LW_LOG_NOTICE;
static int log_journal;
static const char *log_ident = "loopwatch";

void lw_log_set_ident(const char *ident)
{
	log_ident = ident;
}

void lw_log_set_level(int level)
{
	log_level = level;
}

int lw_log_get_level(void)
{
	return log_level;
}

void lw_log_set_journal(int on)
{
	log_journal = on;
}

void lw_log(int level, const char *fmt, ...)
{
	char raw[1024], buf[4 * sizeof(raw)];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* a message may quote a target's names or a file's text: one line, no control characters */
	lw_esc(raw, buf, sizeof(buf));
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", level, buf);
	else
		fprintf(stderr, "%s: %s%s\n", log_ident,
			level <= LW_LOG_ERR ? "error: " : level == LW_LOG_WARN ? "warning: " : "", buf);
}

static int parse_scaled(const char *s, const char *const *units, const double *scale, size_t n,
			double bare_scale, uint64_t *out)
{
	char *end;
	double v, r;
	size_t i;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return end == s ? -EINVAL : -ERANGE;
	/* reject hex floats, "inf" and "nan" that strtod accepts */
	for (const char *p = s; p < end; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	if (!*end) {
		r = v * bare_scale;
	} else {
		for (i = 0; i < n; i++) {
			size_t ul = strlen(units[i]);

			if (strncmp(end, units[i], ul) == 0) {
				const char *t = end + ul;

				while (isspace((unsigned char)*t))
					t++;
				if (!*t)
					break;
			}
		}
		if (i == n)
			return -EINVAL;
		r = v * scale[i];
	}
	if (r >= 1.8e19)
		return -ERANGE;
	*out = (uint64_t)llround(r);
	return 0;
}

int lw_parse_duration(const char *s, uint64_t *ns)
{
	/* longest unit names first so "ms" is not read as "m" */
	static const char *const units[] = { "ns", "us", "µs", "ms", "s", "m", "h" };
	static const double scale[] = { 1, 1e3, 1e3, 1e6, 1e9, 60e9, 3600e9 };

	return parse_scaled(s, units, scale, LW_ARRAY_SIZE(units), 1e6, ns);
}

int lw_parse_size(const char *s, uint64_t *bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "K", "M", "G", "k", "m", "g", "B" };
	static const double scale[] = { 1024.0, 1048576.0, 1073741824.0, 1024.0, 1048576.0,
					1073741824.0, 1024.0, 1048576.0, 1073741824.0, 1 };

	return parse_scaled(s, units, scale, LW_ARRAY_SIZE(units), 1, bytes);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lw_now_mono(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t lw_now_real(void)
{
	return clock_ns(CLOCK_REALTIME);
}

uint64_t lw_mono_to_real(uint64_t mono_ns)
{
	uint64_t m = lw_now_mono(), r = lw_now_real();

	if (mono_ns > m)
		return r + (mono_ns - m);
	return r - (m - mono_ns);
}

char *lw_fmt_rfc3339(uint64_t real_ns, char *buf, size_t size)
{
	time_t sec = (time_t)(real_ns / 1000000000ull);
	unsigned us = (unsigned)((real_ns % 1000000000ull) / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
	return buf;
}

int lw_parse_rfc3339(const char *s, uint64_t *real_ns)
{
	struct tm tm = { 0 };
	unsigned frac = 0, digits = 0;
	const char *p;
	time_t t;

	if (!s)
		return -EINVAL;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 9) {
				frac = frac * 10 + (unsigned)(*p - '0');
				digits++;
			}
			p++;
		}
		while (digits < 9) {
			frac *= 10;
			digits++;
		}
	}
	if (*p != 'Z' || p[1])
		return -EINVAL;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*real_ns = (uint64_t)t * 1000000000ull + frac;
	return 0;
}

size_t lw_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = 0;
	}
	return n;
}

int lw_read_file(const char *path, size_t max, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf, *nb;
	ssize_t r;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= max)
				break;
			cap = cap * 2 > max ? max : cap * 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int lw_open_report(const char *path, int extra_flags)
{
	char err[8];

	(void)extra_flags;
	return lw_safe_append(path, 0640, LW_NO_UID, err, sizeof(err));
}

const char *lw_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

const char *lw_tail(const char *s, size_t width, char *buf, size_t n)
{
	size_t len = strlen(s);

	if (len <= width || width < 4 || n < width + 1)
		return s;
	snprintf(buf, n, "...%s", s + len - (width - 3));
	return buf;
}

int lw_col_width(size_t need, int min)
{
	return need > LW_COL_MAX ? LW_COL_MAX : need < (size_t)min ? min : (int)need;
}

int lw_parse_nspid(const char *status_text, long *ids, int max)
{
	const char *p = strstr(status_text, "\nNSpid:");
	char *end;
	int n = 0;

	if (!p)
		return 0;
	p += 7;
	while (n < max) {
		long v = strtol(p, &end, 10);

		if (end == p || v <= 0 || v > INT32_MAX)
			break;
		ids[n++] = v;
		p = end;
	}
	return n;
}

int lw_parse_proc_stat(const char *text, char *state, unsigned long *flags)
{
	/* "pid (comm) S ppid pgrp session tty tpgid flags ...": the last ')' ends comm */
	const char *p = strrchr(text, ')');

	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", state, flags) != 2)
		return -EINVAL;
	return 0;
}

int lw_parse_proc_starttime(const char *text, unsigned long long *ticks)
{
	/* after the command name (which may hold spaces and ')'): field 3 onwards */
	const char *p = strrchr(text, ')');
	char *end;
	int i;

	for (i = 3; p && i <= 22; i++) {
		p = strchr(p + 1, ' ');
		if (p && i == 22) {
			errno = 0;
			*ticks = strtoull(p + 1, &end, 10);
			if (end == p + 1 || errno)
				return -EINVAL;
			return 0;
		}
	}
	return -EINVAL;
}

unsigned long long lw_proc_starttime(const char *proc_root, pid_t pid)
{
	char path[128], *text = NULL;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root ? proc_root : "/proc", (int)pid);
	if (lw_read_file(path, 4096, &text, NULL))
		return 0;
	if (lw_parse_proc_starttime(text, &t))
		t = 0;
	free(text);
	return t;
}

int lw_write_file_atomic(const char *path, const char *buf, size_t len, char *err, size_t errlen)
{
	return lw_write_file_atomic_gid(path, buf, len, 0, err, errlen);
}

int lw_write_file_atomic_gid(const char *path, const char *buf, size_t len, gid_t gid, char *err,
			     size_t errlen)
{
	char tmp[4200];
	const char *base = lw_basename(path);
	size_t off = 0;
	int fd = -1, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp", (int)(base - path), path, base) >=
	    sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -ENAMETOOLONG;
	}
	/* a temp file left by a crash, or something planted there: never write through it */
	if (unlink(tmp) && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "cannot remove %s: %s", tmp, strerror(-r));
		return r;
	}
	fd = lw_safe_create(tmp, 0640, err, errlen);
	if (fd < 0)
		return fd;
	if (gid && fchown(fd, (uid_t)-1, gid)) {
		r = -errno;
		snprintf(err, errlen, "cannot give %s to group %u: %s", tmp, (unsigned)gid,
			 strerror(-r));
		goto fail;
	}
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
			goto fail;
		}
		off += (size_t)w;
	}
	r = close(fd);
	fd = -1;
	if (r) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
		goto fail;
	}
	if (rename(tmp, path)) {
		r = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

pid_t lw_ns_pid(const char *proc_root, pid_t pid)
{
	char path[128], *text = NULL;
	long ids[8];
	int n;

	snprintf(path, sizeof(path), "%s/%d/status", proc_root, (int)pid);
	if (lw_read_file(path, 1 << 16, &text, NULL))
		return pid;
	n = lw_parse_nspid(text, ids, 8);
	free(text);
	return n ? (pid_t)ids[n - 1] : pid;
}
