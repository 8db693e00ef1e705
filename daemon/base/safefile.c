// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Safe opening of written and read-back files, and the check of the directories they live in. */
#include "base/safefile.h"
#include "base/lw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int owner_ok(uid_t uid, uid_t owner)
{
	return uid == 0 || uid == geteuid() || uid == getuid() || (owner != LW_NO_UID && uid == owner);
}

static const char *kind_of(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" :
	       S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" : "not a regular file";
}

/* the checks on what was opened; closes fd and returns -errno on refusal */
static int check_fd(int fd, const char *path, uid_t owner, char *err, size_t errlen)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st)) {
		int r = -errno;

		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is %s, not a regular file: remove it or choose another path",
			 path, kind_of(st.st_mode));
		close(fd);
		return -EINVAL;
	}
	if (!owner_ok(st.st_uid, owner)) {
		snprintf(err, errlen, "%s belongs to uid %u, not to root or to us: remove it or choose "
			 "another path", path, (unsigned)st.st_uid);
		close(fd);
		return -EPERM;
	}
	if (st.st_nlink > 1) {
		snprintf(err, errlen, "%s has %lu hard links: remove it or choose another path", path,
			 (unsigned long)st.st_nlink);
		close(fd);
		return -EPERM;
	}
	/* opened O_NONBLOCK so that a FIFO could not hang the open; a regular file blocks */
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

static int open_checked(const char *path, int flags, mode_t mode, uid_t owner, char *err,
			size_t errlen)
{
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);

	if (fd < 0) {
		int r = -errno;
		struct stat st;

		/* O_CREAT on a link in a sticky directory says EACCES: name what is there */
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			r = -ELOOP;
		else if (r == -ENXIO && lstat(path, &st) == 0 && S_ISFIFO(st.st_mode))
			r = -EINVAL;
		if (r == -ELOOP)
			snprintf(err, errlen, "%s is a symbolic link: loopwatch does not write or read "
				 "through one; remove it or choose another path", path);
		else if (r == -EINVAL)
			snprintf(err, errlen, "%s is a FIFO, not a regular file: remove it or choose "
				 "another path", path);
		else if (r == -ENXIO)
			snprintf(err, errlen, "%s is a socket or device, not a regular file: remove it "
				 "or choose another path", path);
		else
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	return check_fd(fd, path, owner, err, errlen);
}

int lw_safe_append(const char *path, mode_t mode, uid_t owner, char *err, size_t errlen)
{
	return open_checked(path, O_WRONLY | O_CREAT | O_APPEND, mode, owner, err, errlen);
}

int lw_safe_replace(const char *path, mode_t mode, uid_t owner, char *err, size_t errlen)
{
	int fd = open_checked(path, O_WRONLY | O_CREAT, mode, owner, err, errlen);

	if (fd >= 0 && ftruncate(fd, 0)) {
		int r = -errno;

		snprintf(err, errlen, "cannot truncate %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

int lw_safe_create(const char *path, mode_t mode, char *err, size_t errlen)
{
	return open_checked(path, O_WRONLY | O_CREAT | O_EXCL, mode, LW_NO_UID, err, errlen);
}

int lw_safe_read(const char *path, uid_t owner, char *err, size_t errlen)
{
	return open_checked(path, O_RDONLY, 0, owner, err, errlen);
}

int lw_check_dir_stat(const char *path, mode_t mode, uid_t uid, uid_t owner, int last, char *err,
		      size_t errlen)
{
	if (!S_ISDIR(mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		return -ENOTDIR;
	}
	if (uid != 0 && (owner == LW_NO_UID || uid != owner)) {
		snprintf(err, errlen, "%s belongs to uid %u: only root%s may own it (chown root %s)",
			 path, (unsigned)uid, owner != LW_NO_UID ? " or the service user" : "", path);
		return -EPERM;
	}
	if (last && (mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "%s is writable by %s (mode %04o): anyone there could replace "
			 "loopwatch's files (chmod go-w %s)", path,
			 mode & S_IWOTH ? "others" : "its group", (unsigned)(mode & 07777), path);
		return -EPERM;
	}
	if (!last && (mode & S_IWOTH) && !(mode & S_ISVTX)) {
		snprintf(err, errlen, "%s is writable by others and not sticky (mode %04o): anyone "
			 "could rename what is below it (chmod o-w %s)", path,
			 (unsigned)(mode & 07777), path);
		return -EPERM;
	}
	/* a group-writable directory above is the admin's choice (Ubuntu's /var/log is 0775
	 * root:syslog): accepted */
	return 0;
}

int lw_check_private_dir(const char *path, uid_t owner, char *err, size_t errlen)
{
	char *real = realpath(path, NULL), *p;
	struct stat st;
	int r = 0, last = 1;

	if (!real) {
		r = -errno;
		snprintf(err, errlen, "cannot resolve %s: %s", path, strerror(-r));
		return r;
	}
	/* from the directory itself up to / (links resolved: the real places are checked) */
	for (;; last = 0) {
		if (stat(real[0] ? real : "/", &st)) {
			r = -errno;
			snprintf(err, errlen, "cannot stat %s: %s", real[0] ? real : "/", strerror(-r));
			break;
		}
		r = lw_check_dir_stat(real[0] ? real : "/", st.st_mode, st.st_uid, owner,
				      last, err, errlen);
		if (r || !real[0] || (real[0] == '/' && !real[1]))
			break;
		p = strrchr(real, '/');
		if (!p)
			break;
		*p = 0;
	}
	free(real);
	return r;
}
