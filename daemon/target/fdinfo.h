/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What a file descriptor of another process refers to, for blocking_call records. */
#ifndef LW_FDINFO_H
#define LW_FDINFO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Describe fd `fd` of process `pid` into buf:
 *   a file or device        -> its path ("/tmp/fifo", "/dev/null"; " (deleted)" kept)
 *   a TCP socket            -> "tcp 127.0.0.1:5432" (the peer; "tcp listen 0.0.0.0:80" when
 *                              listening; IPv6 as "tcp [::1]:80")
 *   a UDP socket            -> "udp 10.0.0.1:53" (peer if connected, else "udp local 0.0.0.0:5353")
 *   a unix socket           -> "unix /run/x.sock" (its path or the peer's when known), "unix" if unnamed
 *   a pipe                  -> "pipe"
 *   anything else           -> the readlink text ("anon_inode:[eventfd]")
 * proc_root is normally "/proc" (tests pass a fake tree). Returns 0, or -errno when the fd
 * is gone (buf then holds "").
 */
int lw_fd_describe(const char *proc_root, pid_t pid, int fd, char *buf, size_t size);

/*
 * The daemon's parser of these tables, on one table's text (fuzzed): find the socket with
 * inode `ino` in the text of
 * /proc/PID/net/tcp|tcp6|udp|udp6 (`v6` says which format) and format it as above into buf,
 * with proto "tcp" or "udp". Return 0 when found, -ENOENT when not, -EINVAL on junk.
 */
int lw_fd_parse_inet(const char *text, size_t len, int v6, const char *proto, unsigned long ino,
		     char *buf, size_t size);
/* ... /proc/PID/net/unix: the path bound to inode `ino` ("" when unnamed). */
int lw_fd_parse_unix(const char *text, size_t len, unsigned long ino, char *buf, size_t size);

/* Format what the BPF side read about an fd (struct lw_fdinfo, from bpf/loopwatch.h) the same
 * way. Returns 0, or -ENOENT when it holds nothing. */
struct lw_fdinfo;
int lw_fd_format(const struct lw_fdinfo *fi, char *buf, size_t size);

#endif
