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
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
	snprintf(sock_path, sizeof(sock_path), "/tmp/lw-fdinfo-%d.sock", (int)getpid());
	us = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, sock_path);
	assert_int_equal(bind(us, (struct sockaddr *)&su, sizeof(su)), 0);
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
	/* a unix socket bound to a path (made before the first lookup: the socket tables are
	 * read at most once a second) */
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

/* write text to DIR/NAME */
static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* opens of net/tcp under the watched directories since the last call */
static int tcp_opens(int in)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;
	ssize_t len;

	while ((len = read(in, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + len) {
			struct inotify_event *e = (struct inotify_event *)p;

			if ((e->mask & IN_OPEN) && e->len && !strcmp(e->name, "tcp"))
				n++;
			p += sizeof(*e) + e->len;
		}
	}
	return n;
}

/*
 * Issue 19: a flood of blocking calls on sockets made the daemon read the socket tables
 * (/proc/PID/net, up to 32 MiB each) once per record. A fake proc tree (two processes in one
 * network namespace, a third in another): 1,000 lookups read each namespace's tcp table once (opens counted by inotify,
 * not by the code under test); a socket made since is "socket" until a second has passed,
 * then found by one more read.
 */
static void test_net_read_once_per_namespace(void **state)
{
	char root[] = "/tmp/lw-fdnet-XXXXXX", d[512], b[256];
	int in, i, pid;

	(void)state;
	assert_non_null(mkdtemp(root));
	in = inotify_init1(IN_NONBLOCK);
	assert_true(in >= 0);
	for (pid = 4242; pid <= 4244; pid++) {
		snprintf(d, sizeof(d), "%s/%d", root, pid);
		assert_int_equal(mkdir(d, 0755), 0);
		snprintf(d, sizeof(d), "%s/%d/fd", root, pid);
		assert_int_equal(mkdir(d, 0755), 0);
		snprintf(d, sizeof(d), "%s/%d/fd/7", root, pid);
		assert_int_equal(symlink("socket:[2222]", d), 0);
		snprintf(d, sizeof(d), "%s/%d/fd/8", root, pid);
		assert_int_equal(symlink("socket:[8888]", d), 0);
		snprintf(d, sizeof(d), "%s/%d/ns", root, pid);
		assert_int_equal(mkdir(d, 0755), 0);
		snprintf(d, sizeof(d), "%s/%d/ns/net", root, pid);
		assert_int_equal(symlink(pid == 4244 ? "net:[2]" : "net:[1]", d), 0);
		snprintf(d, sizeof(d), "%s/%d/net", root, pid);
		assert_int_equal(mkdir(d, 0755), 0);
		put(d, "tcp", tcp4);
		put(d, "tcp6", tcp6);
		put(d, "udp", udp4);
		put(d, "udp6", "");
		put(d, "unix", unixt);
		assert_true(inotify_add_watch(in, d, IN_OPEN) >= 0);
	}
	for (i = 0; i < 1000; i++) {
		assert_int_equal(lw_fd_describe(root, 4242 + i % 2, 7, b, sizeof(b)), 0);
		assert_string_equal(b, "tcp 127.0.0.1:5432");
	}
	assert_int_equal(tcp_opens(in), 1);
	assert_int_equal(lw_fd_describe(root, 4244, 7, b, sizeof(b)), 0);
	assert_string_equal(b, "tcp 127.0.0.1:5432");
	assert_int_equal(tcp_opens(in), 1);	/* another namespace: its own read */
	/* a socket made since the read: not looked for again within the second */
	snprintf(d, sizeof(d), "%s/4242/net", root);
	put(d, "tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 0100007F:9C41 0100007F:0050 01 00000000:00000000 00:00000000 00000000  1000        0 8888 1 0000000000000000 20 4 30 10 -1\n");
	(void)tcp_opens(in);
	assert_int_equal(lw_fd_describe(root, 4242, 8, b, sizeof(b)), 0);
	assert_string_equal(b, "socket");
	assert_int_equal(tcp_opens(in), 0);
	usleep(1100 * 1000);
	assert_int_equal(lw_fd_describe(root, 4242, 8, b, sizeof(b)), 0);
	assert_string_equal(b, "tcp 127.0.0.1:80");
	assert_int_equal(tcp_opens(in), 1);
	/* the unix table is in the same read */
	assert_int_equal(lw_fd_describe(root, 4243, 7, b, sizeof(b)), 0);
	assert_string_equal(b, "socket");	/* 2222 is gone from the new table */
	close(in);
	snprintf(d, sizeof(d), "rm -rf %s", root);
	assert_int_equal(system(d), 0);
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
		cmocka_unit_test(test_net_read_once_per_namespace),
		cmocka_unit_test(test_syscalls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
