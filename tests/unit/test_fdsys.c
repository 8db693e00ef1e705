// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fd-syscall list (bpf/lw_fdsys.h) that the BPF side and the "fd" of blocking_call records
 * share: each entry's number names that syscall in the table, and the calls that take an fd
 * first (close, fstat, lseek among them) are in it, those that do not are not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lw_fdsys.h"
#include "probe/syscalls.h"

static void test_numbers_match_names(void **state)
{
	char buf[32];
	unsigned n = 0;

#define CHECK_(nr, name)							\
	do {									\
		assert_string_equal(lw_syscall_name(nr, buf, sizeof(buf)), #name);	\
		assert_int_equal(lw_syscall_fd_arg0(nr), 1);			\
		n++;								\
	} while (0);
	LW_FD_SYSCALLS(CHECK_)
#undef CHECK_
	assert_true(n > 40);
}

static void test_membership(void **state)
{
	static const char *const fd_first[] = { "read", "write", "close", "fstat", "lseek",
						"recvfrom", "connect", "fsync", "flock", "ioctl",
						"epoll_wait", "splice" };
	static const char *const not_fd[] = { "open", "openat", "stat", "poll", "select",
					      "nanosleep", "futex", "mmap", "socket", "wait4" };
	size_t i;

	for (i = 0; i < sizeof(fd_first) / sizeof(fd_first[0]); i++)
		assert_int_equal(lw_syscall_fd_arg0((unsigned)lw_syscall_nr(fd_first[i])), 1);
	for (i = 0; i < sizeof(not_fd) / sizeof(not_fd[0]); i++)
		assert_int_equal(lw_syscall_fd_arg0((unsigned)lw_syscall_nr(not_fd[i])), 0);
	assert_int_equal(lw_syscall_fd_arg0(100000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers_match_names),
		cmocka_unit_test(test_membership),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
