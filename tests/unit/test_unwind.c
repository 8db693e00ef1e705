// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The CFI unwinder on a real stack: a child of this test blocks in clock_nanosleep (Debian's
 * libc, no frame pointers) under three functions built without frame pointers; the test stops
 * it (ptrace), takes its registers and a copy of the top of its stack, and unwinds that copy
 * alone (no live memory reads). Also: a copy too short, a pc in no module, the cost per stack.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "target/nativesym.h"
#include "target/unwind.h"

#define NOFP __attribute__((noinline, used, optimize("omit-frame-pointer")))

static volatile int sink;

NOFP void unw_leaf_c(int n)
{
	struct timespec ts = { 100, 0 };
	volatile char pad[64];

	pad[n & 63] = (char)n;
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	sink = pad[(n + 1) & 63];
}

NOFP void unw_mid_b(int n)
{
	volatile long pad[12];

	pad[n % 12] = n;
	unw_leaf_c(n + 1);
	sink = (int)pad[(n + 3) % 12];
}

NOFP void unw_top_a(int n)
{
	volatile long pad[5];

	pad[n % 5] = n;
	unw_mid_b(n + 1);
	sink = (int)pad[(n + 2) % 5];
}

/* Spins on clock_gettime: most of its time in the vDSO */
NOFP void unw_spin(int n)
{
	struct timespec ts;
	volatile long pad[7];

	pad[n % 7] = n;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		sink = (int)(ts.tv_nsec & 0xffff) + (int)pad[(n + 1) % 7];
	}
}

struct snap {
	pid_t pid;
	uint64_t regs[LW_UNW_NREGS];
	unsigned char *stack;
	size_t len;
};

static int stop_and_copy(struct snap *s, size_t want);
static int copy_regs_stack(struct snap *s, const struct user_regs_struct *rp, size_t want);

/* Start the child, wait until it sleeps, stop it and copy registers and stack */
static __attribute__((noinline)) int take_snapshot(struct snap *s, size_t want)
{
	s->pid = fork();
	if (s->pid == 0) {
		unw_top_a(1);
		_exit(0);
	}
	if (s->pid < 0)
		return -1;
	return stop_and_copy(s, want);
}

/* The same of a program run by argv (its stdout and stderr: /dev/null) */
static int take_snapshot_exec(struct snap *s, size_t want, char *const argv[])
{
	s->pid = fork();
	if (s->pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	if (s->pid < 0)
		return -1;
	return stop_and_copy(s, want);
}

static int stop_and_copy(struct snap *s, size_t want)
{
	struct user_regs_struct r;
	char path[64], buf[256];
	int status, i;
	FILE *f;

	/* asleep in clock_nanosleep (230) */
	for (i = 0; i < 500; i++) {
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)s->pid);
		f = fopen(path, "r");
		buf[0] = 0;
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		if (strncmp(buf, "230 ", 4) == 0)
			break;
		usleep(10000);
	}
	if (ptrace(PTRACE_SEIZE, s->pid, 0, 0) || ptrace(PTRACE_INTERRUPT, s->pid, 0, 0) ||
	    waitpid(s->pid, &status, __WALL) != s->pid ||
	    ptrace(PTRACE_GETREGS, s->pid, 0, &r))
		return -1;
	return copy_regs_stack(s, &r, want);
}

/* The registers r of the stopped child, and the top of its stack */
static int copy_regs_stack(struct snap *s, const struct user_regs_struct *rp, size_t want)
{
	struct user_regs_struct r = *rp;
	struct iovec local, remote;
	char path[64], buf[256];
	FILE *f;

	s->regs[0] = r.rax;
	s->regs[1] = r.rdx;
	s->regs[2] = r.rcx;
	s->regs[3] = r.rbx;
	s->regs[4] = r.rsi;
	s->regs[5] = r.rdi;
	s->regs[6] = r.rbp;
	s->regs[7] = r.rsp;
	s->regs[8] = r.r8;
	s->regs[9] = r.r9;
	s->regs[10] = r.r10;
	s->regs[11] = r.r11;
	s->regs[12] = r.r12;
	s->regs[13] = r.r13;
	s->regs[14] = r.r14;
	s->regs[15] = r.r15;
	s->regs[16] = r.rip;
	s->stack = calloc(1, want);
	local.iov_base = s->stack;
	remote.iov_base = (void *)(uintptr_t)r.rsp;
	/* as the BPF side does: the whole size or up to the top of the main thread's stack,
	 * else halves of it */
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->pid);
	f = fopen(path, "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		unsigned long long lo, hi;

		if (strstr(buf, "[stack]") && sscanf(buf, "%llx-%llx", &lo, &hi) == 2 &&
		    r.rsp >= lo && r.rsp < hi && hi - r.rsp < want)
			want = hi - r.rsp;
	}
	if (f)
		fclose(f);
	for (s->len = want; s->len >= 256; s->len /= 2) {
		local.iov_len = remote.iov_len = s->len;
		if (process_vm_readv(s->pid, &local, 1, &remote, 1, 0) == (ssize_t)s->len)
			break;
	}
	return s->len >= 256 ? 0 : -1;
}

static void drop_snapshot(struct snap *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, __WALL);
	}
	free(s->stack);
}

static int names_of(pid_t pid, const struct lw_uframe *f, int n, char names[][64])
{
	struct lw_nativesym *ns = NULL;
	struct lw_native_frame nf;
	int i;

	assert_int_equal(lw_nativesym__new("/proc", pid, &ns), 0);
	for (i = 0; i < n; i++) {
		names[i][0] = 0;
		if (lw_nativesym__resolve(ns, f[i].pc - (f[i].activation ? 0 : 1), &nf) == 0 &&
		    nf.symbol)
			snprintf(names[i], 64, "%s", nf.symbol);
	}
	lw_nativesym__free(ns);
	return n;
}

static int find(char names[][64], int n, const char *want)
{
	size_t l = strlen(want);

	/* "name" or a compiler's clone of it ("name.constprop.0") */
	for (int i = 0; i < n; i++)
		if (strncmp(names[i], want, l) == 0 && (!names[i][l] || names[i][l] == '.'))
			return i;
	return -1;
}

static void test_unwind_copy(void **state)
{
	struct snap s = { 0 };
	struct lw_unwind *u = NULL;
	struct lw_uframe fr[64];
	enum lw_unwind_stop why;
	char names[64][64];
	struct timespec c0, c1;
	int n, c, b, a, m;

	(void)state;
	/* under valgrind the child's real registers are valgrind's, not the program's: nothing
	 * to unwind (make valgrind); the ASan build runs this test */
	if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload")) {
		printf("unwind: skipped under valgrind\n");
		skip();
	}
	assert_int_equal(take_snapshot(&s, 16384), 0);
	assert_int_equal(lw_unwind__new("/proc", s.pid, NULL, &u), 0);
	clock_gettime(CLOCK_MONOTONIC, &c0);
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	clock_gettime(CLOCK_MONOTONIC, &c1);
	printf("unwind: first stack (maps read, modules reported, tables parsed) %.0f us\n",
	       ((c1.tv_sec - c0.tv_sec) * 1e9 + (c1.tv_nsec - c0.tv_nsec)) / 1e3);
	assert_true(n > 4);
	names_of(s.pid, fr, n, names);
	for (int i = 0; i < n; i++)
		printf("  #%d %#llx %s\n", i, (unsigned long long)fr[i].pc, names[i]);
	printf("  stop: %d, %zu bytes copied\n", (int)why, s.len);
	/* innermost: libc's sleep; then the three no-FP functions in order, then this test */
	assert_true(strstr(names[0], "clock_nanosleep") != NULL);
	c = find(names, n, "unw_leaf_c");
	b = find(names, n, "unw_mid_b");
	a = find(names, n, "unw_top_a");
	m = find(names, n, "take_snapshot");
	assert_true(c > 0);
	assert_int_equal(b, c + 1);
	assert_int_equal(a, b + 1);
	assert_int_equal(m, a + 1);
	assert_true(find(names, n, "main") > m);
	assert_int_equal(why, LW_UNW_COMPLETE);
	for (int i = 0; i <= m; i++)
		assert_true(names[i][0]);
	assert_int_equal(lw_unwind__live_reads(u), 0);

	/* cost per stack, the tables parsed (docs/benchmarks.md) */
	{
		struct timespec t0, t1;
		int iters = 2000;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < iters; i++)
			lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("unwind: %d frames, %.1f us per stack (%zu bytes copied)\n", n,
		       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters / 1e3,
		       s.len);
	}

	/* a copy of 128 bytes only: stops early and says why */
	n = lw_unwind__run(u, s.regs, s.stack, 128, fr, 64, &why);
	assert_true(n >= 1);
	assert_int_equal(why, LW_UNW_SHORT_COPY);
	assert_string_equal(lw_unwind_stop_str(why), "stack copy too short");

	/* too few frames asked for */
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 3, &why);
	assert_int_equal(n, 3);
	assert_int_equal(why, LW_UNW_MAX_FRAMES);

	/* a pc in no module, and no frame-pointer chain to fall back on (libdwfl follows rbp
	 * where there is no CFI: with this test built with frame pointers it would go on) */
	s.regs[LW_UNW_RIP] = 0x1234;
	s.regs[LW_UNW_RBP] = 0;
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	assert_int_equal(n, 1);
	assert_int_equal(why, LW_UNW_NO_INFO);
	assert_string_equal(lw_unwind_stop_str(why), "no unwind info");

	lw_unwind__free(u);
	drop_snapshot(&s);
}

/*
 * Debian's python3.11 (no frame pointers, an ET_EXEC executable) asleep in time.sleep, with a
 * second executable mapping of its own file (as node has of its builtins): the whole stack,
 * from libc's clock_nanosleep through the eval loop to _start, from the copy alone; and the
 * cost per stack of a real interpreter's stack (docs/benchmarks.md). Before the unwinder
 * reported a file once per base, libdwfl's failed second report of the executable left no
 * module for its pcs: the stack stopped at the first frame of python3.11, "no unwind info".
 */
static void test_unwind_python(void **state)
{
	static char *const argv[] = {
		"/usr/bin/python3.11", "-c",
		"import mmap, time\n"
		"f = open('/usr/bin/python3.11', 'rb')\n"
		"m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC)\n"
		"def inner():\n    time.sleep(100)\n"
		"def outer():\n    inner()\n"
		"outer()\n", NULL };
	struct snap s = { 0 };
	struct lw_unwind *u = NULL;
	struct lw_uframe fr[64];
	enum lw_unwind_stop why;
	char names[64][64];
	struct timespec t0, t1;
	int n, iters = 1000;

	(void)state;
	if (access(argv[0], X_OK)) {
		printf("unwind: %s missing: skipped\n", argv[0]);
		skip();
	}
	if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload")) {
		printf("unwind: skipped under valgrind\n");
		skip();
	}
	assert_int_equal(take_snapshot_exec(&s, 16384, argv), 0);
	assert_int_equal(lw_unwind__new("/proc", s.pid, NULL, &u), 0);
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	names_of(s.pid, fr, n, names);
	for (int i = 0; i < n; i++)
		printf("  #%d %#llx %s\n", i, (unsigned long long)fr[i].pc, names[i]);
	assert_true(strstr(names[0], "clock_nanosleep") != NULL);
	assert_true(find(names, n, "_PyEval_EvalFrameDefault") > 0);
	assert_true(find(names, n, "Py_BytesMain") > 0);
	assert_string_equal(names[n - 1], "_start");
	assert_int_equal(why, LW_UNW_COMPLETE);
	assert_int_equal(lw_unwind__live_reads(u), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < iters; i++)
		lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("unwind: python3.11, %d frames, %.1f us per stack (%zu bytes copied)\n", n,
	       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters / 1e3, s.len);
	lw_unwind__free(u);
	drop_snapshot(&s);
}

/*
 * A process's last records are unwound after it has exited (an event loop that ends with its
 * slow iteration): a pc in no module then makes the unwinder read the maps again (at most once
 * a second), and a process that is gone has none. The modules read before must stay: the stack
 * copy unwinds as it did while the process lived. Before, the unwinder threw its tables away
 * for the empty re-read and every later stack of the process failed (-ENOENT), so the record
 * kept the frame-pointer walk's frames (garbage past the first function without them).
 */
static void test_unwind_after_exit(void **state)
{
	struct snap s = { 0 };
	struct lw_unwind *u = NULL;
	struct lw_uframe fr[64], again[64];
	enum lw_unwind_stop why;
	uint64_t regs[LW_UNW_NREGS];
	int n, m;

	(void)state;
	if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload")) {
		printf("unwind: skipped under valgrind\n");
		skip();
	}
	assert_int_equal(take_snapshot(&s, 16384), 0);
	assert_int_equal(lw_unwind__new("/proc", s.pid, NULL, &u), 0);
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	assert_true(n > 4);
	assert_int_equal(why, LW_UNW_COMPLETE);
	/* the process exits; its maps are gone */
	kill(s.pid, SIGKILL);
	waitpid(s.pid, NULL, __WALL);
	s.pid = 0;
	usleep(1100 * 1000);	/* past the re-read's rate limit */
	memcpy(regs, s.regs, sizeof(regs));
	regs[LW_UNW_RIP] = 0x1234;	/* in no module: the maps are read again, and are empty */
	regs[LW_UNW_RBP] = 0;
	m = lw_unwind__run(u, regs, s.stack, s.len, again, 64, &why);
	assert_int_equal(m, 1);
	assert_int_equal(why, LW_UNW_NO_INFO);
	/* the stack taken while it lived: the same frames, complete */
	m = lw_unwind__run(u, s.regs, s.stack, s.len, again, 64, &why);
	assert_int_equal(m, n);
	assert_int_equal(why, LW_UNW_COMPLETE);
	for (int i = 0; i < n; i++)
		assert_int_equal(again[i].pc, fr[i].pc);
	lw_unwind__free(u);
	drop_snapshot(&s);
}

/* The child's [vdso] mapping */
static int vdso_range(pid_t pid, unsigned long long *lo, unsigned long long *hi)
{
	char path[64], buf[256];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(buf, sizeof(buf), f))
		if (strstr(buf, "[vdso]") && sscanf(buf, "%llx-%llx", lo, hi) == 2)
			rc = 0;
	if (f)
		fclose(f);
	return rc;
}

/*
 * A thread stopped inside the vDSO (a loop spinning on clock_gettime, as the C targets'
 * handlers do): the vDSO has no file, yet eu-stack names its frame (__vdso_clock_gettime, from
 * the vDSO's own symbol table in the process's memory). The symbolizer names it the same way,
 * module "[vdso]"; the unwinder goes on from it through libc's clock_gettime to the spinning
 * function and main, complete. Before, the frame was "[vdso]+0xb46" with no name.
 */
static void test_unwind_vdso(void **state)
{
	struct snap s = { 0 };
	struct user_regs_struct r;
	struct lw_unwind *u = NULL;
	struct lw_nativesym *ns = NULL;
	struct lw_native_frame nf;
	struct lw_uframe fr[64];
	enum lw_unwind_stop why;
	char names[64][64];
	unsigned long long lo = 0, hi = 0, nf_off;
	int n, i, status, in_vdso = 0;

	(void)state;
	if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload")) {
		printf("unwind: skipped under valgrind\n");
		skip();
	}
	s.pid = fork();
	if (s.pid == 0) {
		/* never left spinning by a failed assertion of the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		unw_spin(3);
		_exit(0);
	}
	assert_true(s.pid > 0);
	usleep(20000);
	assert_int_equal(vdso_range(s.pid, &lo, &hi), 0);
	assert_int_equal(ptrace(PTRACE_SEIZE, s.pid, 0, 0), 0);
	assert_int_equal(lw_nativesym__new("/proc", s.pid, &ns), 0);
	/* stop it until it is stopped inside the vDSO */
	for (i = 0; i < 2000 && !in_vdso; i++) {
		assert_int_equal(ptrace(PTRACE_INTERRUPT, s.pid, 0, 0), 0);
		assert_int_equal(waitpid(s.pid, &status, __WALL), s.pid);
		assert_int_equal(ptrace(PTRACE_GETREGS, s.pid, 0, &r), 0);
		/* in the vDSO's clock_gettime, past its prologue: rbp its frame (the test below
		 * rebuilds the entry state from it). Not in a helper it calls: the vDSO exports no
		 * symbol for those (kernel 6.18: a pvclock read below __vdso_gettimeofday; a
		 * fresh-clone CI run stopped there, "-+0x7bd") */
		in_vdso = r.rip >= lo && r.rip < hi && r.rbp > r.rsp && r.rbp - r.rsp < 256 &&
			  lw_nativesym__resolve(ns, r.rip, &nf) == 0 && nf.symbol &&
			  strstr(nf.symbol, "clock_gettime");
		if (!in_vdso) {
			assert_int_equal(ptrace(PTRACE_CONT, s.pid, 0, 0), 0);
			usleep(200);
		}
	}
	printf("unwind: stopped in the vDSO after %d tries\n", i);
	assert_true(in_vdso);
	assert_int_equal(copy_regs_stack(&s, &r, 16384), 0);

	assert_int_equal(lw_nativesym__resolve(ns, r.rip, &nf), 0);
	printf("unwind: vDSO pc %#llx: %s+%#llx (%s)\n", (unsigned long long)r.rip,
	       nf.symbol ? nf.symbol : "-", (unsigned long long)nf.offset, nf.module);
	assert_string_equal(nf.module, "[vdso]");
	assert_non_null(nf.symbol);
	assert_non_null(strstr(nf.symbol, "clock_gettime"));
	nf_off = nf.offset;
	lw_nativesym__free(ns);

	assert_int_equal(lw_unwind__new("/proc", s.pid, NULL, &u), 0);
	n = lw_unwind__run(u, s.regs, s.stack, s.len, fr, 64, &why);
	names_of(s.pid, fr, n, names);
	for (i = 0; i < n; i++)
		printf("  #%d %#llx %s\n", i, (unsigned long long)fr[i].pc, names[i]);
	assert_non_null(strstr(names[0], "clock_gettime"));
	assert_true(find(names, n, "unw_spin") > 0);
	assert_true(find(names, n, "test_unwind_vdso") > find(names, n, "unw_spin"));
	assert_int_equal(why, LW_UNW_COMPLETE);

	/*
	 * The same call at the vDSO function's first instruction, before its `push %rbp`, with
	 * the caller's rbp (code built without frame pointers uses it as it likes), unwound
	 * after the process has exited (a batch job whose last iteration was slow): the vDSO's
	 * own CFI, from its image read while the process lived, gives the same callers. Before,
	 * the vDSO was no module and libdwfl guessed by the frame pointer: no callers, or wrong
	 * ones read from the live process (CI: a tick's stack 'unreadable').
	 */
	{
		uint64_t regs[LW_UNW_NREGS], ra = 0, caller_rbp = 0, rbp = s.regs[LW_UNW_RBP];
		struct lw_uframe again[64];
		int m;

		/* stopped in its body: rbp is its frame, the return address above the saved rbp */
		assert_true(rbp > s.regs[LW_UNW_RSP] && rbp + 16 <= s.regs[LW_UNW_RSP] + s.len);
		memcpy(&ra, s.stack + (rbp + 8 - s.regs[LW_UNW_RSP]), 8);
		memcpy(&caller_rbp, s.stack + (rbp - s.regs[LW_UNW_RSP]), 8);
		assert_true(n > 1);
		assert_int_equal(ra, fr[1].pc);
		memcpy(regs, s.regs, sizeof(regs));
		regs[LW_UNW_RIP] = r.rip - nf_off;
		regs[LW_UNW_RSP] = rbp + 8;
		regs[LW_UNW_RBP] = caller_rbp;	/* as the caller left it: not a frame chain */
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, __WALL);
		s.pid = 0;
		m = lw_unwind__run_at(u, regs, s.stack, s.regs[LW_UNW_RSP], s.len, again, 64, &why);
		printf("unwind: from the vDSO function's entry after exit: %d frames (%d before)\n",
		       m, n);
		assert_int_equal(why, LW_UNW_COMPLETE);
		assert_int_equal(m, n);
		for (i = 1; i < n; i++)
			assert_int_equal(again[i].pc, fr[i].pc);
	}
	lw_unwind__free(u);
	drop_snapshot(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unwind_copy),
		cmocka_unit_test(test_unwind_python),
		cmocka_unit_test(test_unwind_after_exit),
		cmocka_unit_test(test_unwind_vdso),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
