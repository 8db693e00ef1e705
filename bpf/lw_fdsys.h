/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * x86_64 syscalls whose first argument is a file descriptor: one list for both sides. The BPF
 * program describes that fd when a thread blocks in one of them (lw_sched.bpf.h, fd_syscall());
 * userspace reports it as the blocking call's "fd" (probe/syscalls.c, lw_syscall_fd_arg0()).
 * close, fstat and lseek are in it: they take an fd and can block (close flushing to NFS or
 * FUSE, lingering sockets; fstat on network file systems), and after a close only the kernel
 * still knows what the fd was.
 *
 * X(nr, name): nr from Debian 12's asm/unistd_64.h (linux-libc-dev 6.1); tests/unit checks
 * each name against the syscall table.
 */
#ifndef LW_FDSYS_H
#define LW_FDSYS_H

#define LW_FD_SYSCALLS(X)				\
	X(0, read)				\
	X(1, write)				\
	X(3, close)				\
	X(5, fstat)				\
	X(8, lseek)				\
	X(16, ioctl)				\
	X(17, pread64)				\
	X(18, pwrite64)				\
	X(19, readv)				\
	X(20, writev)				\
	X(40, sendfile)				\
	X(42, connect)				\
	X(43, accept)				\
	X(44, sendto)				\
	X(45, recvfrom)				\
	X(46, sendmsg)				\
	X(47, recvmsg)				\
	X(48, shutdown)				\
	X(49, bind)				\
	X(50, listen)				\
	X(51, getsockname)				\
	X(52, getpeername)				\
	X(54, setsockopt)				\
	X(55, getsockopt)				\
	X(72, fcntl)				\
	X(73, flock)				\
	X(74, fsync)				\
	X(75, fdatasync)				\
	X(77, ftruncate)				\
	X(78, getdents)				\
	X(81, fchdir)				\
	X(91, fchmod)				\
	X(93, fchown)				\
	X(138, fstatfs)				\
	X(187, readahead)				\
	X(190, fsetxattr)				\
	X(193, fgetxattr)				\
	X(196, flistxattr)				\
	X(199, fremovexattr)				\
	X(217, getdents64)				\
	X(221, fadvise64)				\
	X(232, epoll_wait)				\
	X(233, epoll_ctl)				\
	X(254, inotify_add_watch)				\
	X(255, inotify_rm_watch)				\
	X(275, splice)				\
	X(276, tee)				\
	X(277, sync_file_range)				\
	X(278, vmsplice)				\
	X(281, epoll_pwait)				\
	X(282, signalfd)				\
	X(285, fallocate)				\
	X(286, timerfd_settime)				\
	X(287, timerfd_gettime)				\
	X(288, accept4)				\
	X(289, signalfd4)				\
	X(295, preadv)				\
	X(296, pwritev)				\
	X(299, recvmmsg)				\
	X(301, fanotify_mark)				\
	X(306, syncfs)				\
	X(307, sendmmsg)				\
	X(326, copy_file_range)				\
	X(327, preadv2)				\
	X(328, pwritev2)				\
	X(426, io_uring_enter)				\
	X(441, epoll_pwait2)

#endif
