/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* x86_64 syscall numbers -> names, and what their first argument is. */
#ifndef LW_SYSCALLS_H
#define LW_SYSCALLS_H

/* "read", "epoll_wait", ...; "syscall_<nr>" in buf for unknown numbers. Never NULL. */
const char *lw_syscall_name(unsigned nr, char *buf, unsigned size);
/* nr of a name, or -1 */
int lw_syscall_nr(const char *name);
/* 1 when the syscall's first argument is a file descriptor (read, write, recvfrom, connect,
 * fsync, ioctl, flock, ...; also epoll_wait's epfd), else 0. */
int lw_syscall_fd_arg0(unsigned nr);

#endif
