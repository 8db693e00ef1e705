/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Opening the files loopwatch writes (and reads back) without trusting the place they are in:
 * never through a symbolic link (O_NOFOLLOW), never a FIFO or a device (opened O_NONBLOCK, then
 * fstat must say a regular file, so a FIFO planted at the path cannot hang us), never a file
 * with other hard links, and only a file owned by root, by the effective or real uid, or by
 * `owner` when it is not (uid_t)-1. None of this relies on fs.protected_symlinks / _fifos.
 */
#ifndef LW_SAFEFILE_H
#define LW_SAFEFILE_H

#include <stddef.h>
#include <sys/types.h>

#define LW_NO_UID ((uid_t)-1)

/* Open path for appending, creating it with mode when missing. Returns an fd (blocking,
 * O_CLOEXEC) or -errno with the cause and the fix in err. */
int lw_safe_append(const char *path, mode_t mode, uid_t owner, char *err, size_t errlen);
/* The same checks, then the file emptied (ftruncate after the checks, never O_TRUNC): for an
 * output that replaces what was there. */
int lw_safe_replace(const char *path, mode_t mode, uid_t owner, char *err, size_t errlen);
/* Create path exclusively (O_EXCL: it must not exist, not even as a dangling link). */
int lw_safe_create(const char *path, mode_t mode, char *err, size_t errlen);
/* Open path for reading with the same checks. -ENOENT (err set) when it does not exist. */
int lw_safe_read(const char *path, uid_t owner, char *err, size_t errlen);

/* A directory loopwatchd writes into must be one only root (or `owner`) can change: the
 * directory itself owned by root or owner and not writable by group or others, and every
 * directory above it owned by root or owner and not writable by others unless sticky (/tmp;
 * group-writable ones above are accepted: Ubuntu's /var/log is 0775 root:syslog).
 * 0, or -EPERM/-ENOTDIR/-errno with the cause and the fix in err. */
int lw_check_private_dir(const char *path, uid_t owner, char *err, size_t errlen);

/* lw_check_private_dir's check of one stat result (for tests and for callers that stat
 * themselves): 0 or -EPERM with a reason in err. last: the directory itself (no sticky pass). */
int lw_check_dir_stat(const char *path, mode_t mode, uid_t uid, uid_t owner, int last, char *err,
		      size_t errlen);

#endif
