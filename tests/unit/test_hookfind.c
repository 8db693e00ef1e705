// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* target/hookfind.c's choice of an entry probe the kernel emulates (issue 16: glibc's
 * epoll_wait begins with a rip-relative cmp that uprobes single-step, a second trap per poll). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "target/hookfind.h"

#define BASE 0x108ee0ull

static uint64_t probe_of(const uint8_t *code, size_t len, int *found)
{
	uint64_t p = 0;

	*found = lw_hook_emulated_entry(code, len, BASE, &p);
	return p - BASE;
}

static void test_glibc_wrappers(void **state)
{
	/* Debian 12 glibc 2.36 epoll_wait: cmpb $0,__libc_single_threaded(%rip); mov %ecx,%r10d;
	 * je: the je runs on both paths and is emulated */
	static const uint8_t epoll_wait[] = { 0x80, 0x3d, 0xf1, 0x26, 0x0d, 0x00, 0x00, 0x41, 0x89,
					      0xca, 0x74, 0x14, 0xb8, 0xe8, 0x00, 0x00, 0x00 };
	/* poll: cmpb ...; je */
	static const uint8_t poll[] = { 0x80, 0x3d, 0xb1, 0xf3, 0x0d, 0x00, 0x00, 0x74, 0x17, 0xb8,
					0x07, 0x00, 0x00, 0x00 };
	/* ppoll: push %r12 first: the entry is emulated already */
	static const uint8_t ppoll[] = { 0x41, 0x54, 0x49, 0x89, 0xca };
	/* endbr64; push %rbp */
	static const uint8_t endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5 };
	int found;

	(void)state;
	assert_int_equal(probe_of(epoll_wait, sizeof(epoll_wait), &found), 10);
	assert_true(found);
	assert_int_equal(probe_of(poll, sizeof(poll), &found), 7);
	assert_true(found);
	assert_int_equal(probe_of(ppoll, sizeof(ppoll), &found), 0);
	assert_true(found);
	assert_int_equal(probe_of(endbr, sizeof(endbr), &found), 4);
	assert_true(found);
}

static void test_refused(void **state)
{
	/* mov %rsi,%rdi before the branch: the probe would read another first argument */
	static const uint8_t clobber[] = { 0x48, 0x89, 0xf7, 0x74, 0x10 };
	/* sub $0x28,%rsp before it */
	static const uint8_t stack[] = { 0x48, 0x83, 0xec, 0x28, 0x74, 0x10 };
	/* a syscall comes first: past it the call is over */
	static const uint8_t sys[] = { 0xb8, 0xe8, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x74, 0x10 };
	/* a return first (a stub) */
	static const uint8_t ret[] = { 0xc3, 0x90 };
	/* cut short: nothing decodes */
	static const uint8_t cut[] = { 0x80, 0x3d, 0xf1 };
	/* seven plain instructions: too far from the entry */
	static const uint8_t far[] = { 0x31, 0xc0, 0x31, 0xc0, 0x31, 0xc0, 0x31, 0xc0, 0x31, 0xc0,
				       0x31, 0xc0, 0x31, 0xc0, 0x74, 0x10 };
	int found;

	(void)state;
	assert_int_equal(probe_of(clobber, sizeof(clobber), &found), 0);
	assert_false(found);
	assert_int_equal(probe_of(stack, sizeof(stack), &found), 0);
	assert_false(found);
	assert_int_equal(probe_of(sys, sizeof(sys), &found), 0);
	assert_false(found);
	assert_int_equal(probe_of(ret, sizeof(ret), &found), 0);
	assert_false(found);
	assert_int_equal(probe_of(cut, sizeof(cut), &found), 0);
	assert_false(found);
	assert_int_equal(probe_of(far, sizeof(far), &found), 0);
	assert_false(found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glibc_wrappers),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
