// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fd -> what it is: parsers on fixed texts, and the live lookup on fds this test opens. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "target/fdinfo.h"
#include "probe/syscalls.h"

static const char tcp4[] =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0\n"
	"   1: 0100007F:9C40 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0000000000000000 20 4 30 10 -1\n";
static const char tcp6[] =
	"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 100 0 0 10 0\n";
static const char udp4[] =
	"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	" 1: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 4444 2 0000000000000000 0\n"
	" 2: 0100000A:8000 0200000A:0035 01 00000000:00000000 00:00000000 00000000   104        0 5555 2 0000000000000000 0\n";
static const char unixt[] =
	"Num       RefCount Protocol Flags    Type St Inode Path\n"
	"0000000000000000: 00000002 00000000 00010000 0001 01 6666 /run/x.sock\n"
	"0000000000000000: 00000003 00000000 00000000 0001 03 7777\n";

static void test_parsers(void **state)
{
	char b[128];

	(void)state;
	assert_int_equal(lw_fd_parse_inet(tcp4, strlen(tcp4), 0, "tcp", 2222, b, sizeof(b)), 0);
	assert_string_equal(b, "tcp 127.0.0.1:5432");
	assert_int_equal(lw_fd_parse_inet(tcp4, strlen(tcp4), 0, "tcp", 1111, b, sizeof(b)), 0);
	assert_string_equal(b, "tcp listen 0.0.0.0:80");
	assert_int_equal(lw_fd_parse_inet(tcp6, strlen(tcp6), 1, "tcp", 3333, b, sizeof(b)), 0);
	assert_string_equal(b, "tcp listen [::1]:80");
	assert_int_equal(lw_fd_parse_inet(udp4, strlen(udp4), 0, "udp", 4444, b, sizeof(b)), 0);
	assert_string_equal(b, "udp local 0.0.0.0:5353");
	assert_int_equal(lw_fd_parse_inet(udp4, strlen(udp4), 0, "udp", 5555, b, sizeof(b)), 0);
	assert_string_equal(b, "udp 10.0.0.2:53");
	assert_int_equal(lw_fd_parse_inet(tcp4, strlen(tcp4), 0, "tcp", 9, b, sizeof(b)), -ENOENT);
	assert_int_equal(lw_fd_parse_unix(unixt, strlen(unixt), 6666, b, sizeof(b)), 0);
	assert_string_equal(b, "/run/x.sock");
	assert_int_equal(lw_fd_parse_unix(unixt, strlen(unixt), 7777, b, sizeof(b)), 0);
	assert_string_equal(b, "");
	/* junk */
	assert_int_equal(lw_fd_parse_inet("x\n 0: zz:1 yy:2 01 a b c d e 2222\n", 34, 0, "tcp", 2222,
					  b, sizeof(b)), -EINVAL);
	assert_int_equal(lw_fd_parse_inet("", 0, 0, "tcp", 1, b, sizeof(b)), -ENOENT);
	assert_int_equal(lw_fd_parse_unix("garbage", 7, 1, b, sizeof(b)), -ENOENT);
}

static void test_live(void **state)
{
	char b[256], want[256], path[] = "/tmp/lw-fdinfo-XXXXXX", sock_path[108];
	struct sockaddr_in sa;
	struct sockaddr_un su;
	socklen_t sl = sizeof(sa);
	int p[2], fd, ls, cs, us;

	(void)state;
	/* a pipe */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(lw_fd_describe("/proc", getpid(), p[0], b, sizeof(b)), 0);
	assert_string_equal(b, "pipe");
	/* a file */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(lw_fd_describe("/proc", getpid(), fd, b, sizeof(b)), 0);
	assert_string_equal(b, path);
	unlink(path);
	/* a TCP connection on loopback: the peer is the listener's port */
	ls = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(want, sizeof(want), "tcp 127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(lw_fd_describe("/proc", getpid(), cs, b, sizeof(b)), 0);
	assert_string_equal(b, want);
	snprintf(want, sizeof(want), "tcp listen 127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(lw_fd_describe("/proc", getpid(), ls, b, sizeof(b)), 0);
	assert_string_equal(b, want);
	/* a unix socket bound to a path */
	snprintf(sock_path, sizeof(sock_path), "/tmp/lw-fdinfo-%d.sock", (int)getpid());
	us = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, sock_path);
	assert_int_equal(bind(us, (struct sockaddr *)&su, sizeof(su)), 0);
	snprintf(want, sizeof(want), "unix %s", sock_path);
	assert_int_equal(lw_fd_describe("/proc", getpid(), us, b, sizeof(b)), 0);
	assert_string_equal(b, want);
	unlink(sock_path);
	/* gone */
	assert_int_equal(lw_fd_describe("/proc", getpid(), 987654, b, sizeof(b)), -ENOENT);
	assert_string_equal(b, "");
	close(p[0]);
	close(p[1]);
	close(fd);
	close(ls);
	close(cs);
	close(us);
}

static void test_syscalls(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(lw_syscall_name(0, b, sizeof(b)), "read");
	assert_string_equal(lw_syscall_name(1, b, sizeof(b)), "write");
	assert_string_equal(lw_syscall_name(202, b, sizeof(b)), "futex");
	assert_string_equal(lw_syscall_name(230, b, sizeof(b)), "clock_nanosleep");
	assert_string_equal(lw_syscall_name(232, b, sizeof(b)), "epoll_wait");
	assert_string_equal(lw_syscall_name(42, b, sizeof(b)), "connect");
	assert_string_equal(lw_syscall_name(45, b, sizeof(b)), "recvfrom");
	assert_string_equal(lw_syscall_name(257, b, sizeof(b)), "openat");
	assert_string_equal(lw_syscall_name(100000, b, sizeof(b)), "syscall_100000");
	assert_int_equal(lw_syscall_nr("epoll_pwait"), 281);
	assert_int_equal(lw_syscall_nr("nope"), -1);
	assert_true(lw_syscall_fd_arg0(0));
	assert_true(lw_syscall_fd_arg0(45));
	assert_false(lw_syscall_fd_arg0(230));
	assert_false(lw_syscall_fd_arg0(257));	/* openat: a dirfd, not the file */
	assert_false(lw_syscall_fd_arg0(9));	/* mmap: an address */
	assert_false(lw_syscall_fd_arg0(100000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_live),
		cmocka_unit_test(test_syscalls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
