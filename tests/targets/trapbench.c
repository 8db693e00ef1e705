// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * make bench's trap micro-benchmark (issue 16, item 3's reference): what one uprobe trap costs
 * on this machine. Calls a no-op function over and over and reports the CPU time per call:
 *
 *   bare   nothing attached;
 *   push   a uprobe (with an empty BPF program, as loopwatch's probes are BPF programs) on the
 *          function's first instruction, a `push %rbp`, which the kernel emulates: one trap;
 *   step   the same on a function whose first instruction is a `mov`, which the kernel
 *          single-steps out of line: two traps (breakpoint, then the step);
 *   pair   entry uprobe on the `push` plus a return uprobe (precise mode's syscall-path pair).
 *
 *   trapbench ROUNDS SECONDS    (each variant runs SECONDS per round, rounds interleaved)
 *
 * Prints one line per variant and round: "<variant> <round> <ns CPU per call> <ns wall per
 * call>". The uprobes are attached to this process only (perf_event_open's uprobe PMU, pid =
 * self) and the BPF program is two instructions (r0 = 0; exit), loaded with the raw bpf()
 * call: no libbpf, no BPF object. x86-64 only. Needs root (CAP_BPF + CAP_PERFMON).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !defined(__x86_64__)
int main(void)
{
	fprintf(stderr, "trapbench: x86-64 only\n");
	return 3;
}
#else

/* the two no-op functions, instruction by instruction: the probed first instruction decides
 * whether the kernel emulates it (push) or single-steps it (mov) */
__asm__(".text\n"
	".globl lw_noop_push\n.type lw_noop_push,@function\n"
	"lw_noop_push:\n\tpush %rbp\n\tmov %rsp,%rbp\n\tpop %rbp\n\tret\n"
	".size lw_noop_push,.-lw_noop_push\n"
	".globl lw_noop_step\n.type lw_noop_step,@function\n"
	"lw_noop_step:\n\tmov %rdi,%rax\n\tret\n"
	".size lw_noop_step,.-lw_noop_step\n");
void lw_noop_push(void);
void lw_noop_step(void);

static double clk(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns of CPU and of wall time per call of f, calling it for about secs */
static void measure(void (*volatile f)(void), double secs, double *cpu_ns, double *wall_ns)
{
	double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_THREAD_CPUTIME_ID), w1;
	unsigned long long n = 0;
	int i;

	do {
		for (i = 0; i < 1000; i++)
			f();
		n += 1000;
		w1 = clk(CLOCK_MONOTONIC);
	} while (w1 - w0 < secs * 1e9);
	*cpu_ns = (clk(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
	*wall_ns = (w1 - w0) / (double)n;
}

/* the file offset of code address a in this executable, from /proc/self/maps */
static int file_offset(uintptr_t a, char *path, size_t pathlen, uint64_t *off)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4608];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, pgoff;
		char perms[8], p[4096] = "";

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &lo, &hi, perms, &pgoff, p) < 4)
			continue;
		if (a >= lo && a < hi && p[0] == '/') {
			snprintf(path, pathlen, "%s", p);
			*off = a - lo + pgoff;
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -1;
}

static int empty_prog(void)
{
	struct bpf_insn insns[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_KPROBE;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = 2;
	a.license = (uintptr_t)"GPL";
	return (int)syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof(a));
}

static int uprobe_pmu(int *retbit)
{
	char buf[64];
	int fd = open("/sys/bus/event_source/devices/uprobe/type", O_RDONLY), n, t;

	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	t = atoi(buf);
	*retbit = 0;
	fd = open("/sys/bus/event_source/devices/uprobe/format/retprobe", O_RDONLY);
	if (fd >= 0) {
		n = (int)read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (!strncmp(buf, "config:", 7))
				*retbit = atoi(buf + 7);
		}
	}
	return t;
}

/* a uprobe (return probe when ret) on f in this process running the empty program */
static int attach(void (*f)(void), int ret, int prog)
{
	struct perf_event_attr pa;
	char path[4096];
	uint64_t off;
	int type, retbit, fd;

	if (file_offset((uintptr_t)f, path, sizeof(path), &off))
		return -1;
	type = uprobe_pmu(&retbit);
	if (type < 0)
		return -1;
	memset(&pa, 0, sizeof(pa));
	pa.size = sizeof(pa);
	pa.type = (uint32_t)type;
	pa.config = ret ? 1ull << retbit : 0;
	pa.config1 = (uintptr_t)path;	/* uprobe_path */
	pa.config2 = off;		/* probe_offset */
	fd = (int)syscall(__NR_perf_event_open, &pa, getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog) || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "bare", "push", "step", "pair" };
	int rounds, r, i, k, prog;
	double secs;

	if (argc != 3) {
		fprintf(stderr, "usage: trapbench ROUNDS SECONDS\n");
		return 2;
	}
	rounds = atoi(argv[1]);
	secs = atof(argv[2]);
	prog = empty_prog();
	if (prog < 0) {
		fprintf(stderr, "trapbench: cannot load an empty BPF program: %s (run as root)\n",
			strerror(errno));
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < 4; k++) {
			int v = (k + r) % 4, fds[2] = { -1, -1 };
			double cpu, wall;

			if (v == 1 || v == 3)
				fds[0] = attach(lw_noop_push, 0, prog);
			if (v == 2)
				fds[0] = attach(lw_noop_step, 0, prog);
			if (v == 3)
				fds[1] = attach(lw_noop_push, 1, prog);
			if (v && (fds[0] < 0 || (v == 3 && fds[1] < 0))) {
				fprintf(stderr, "trapbench: cannot attach a uprobe to itself: %s\n",
					strerror(errno));
				return 1;
			}
			measure(v == 2 ? lw_noop_step : lw_noop_push, secs, &cpu, &wall);
			for (i = 0; i < 2; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			printf("%s %d %.1f %.1f\n", names[v], r + 1, cpu, wall);
			fflush(stdout);
		}
	}
	return 0;
}
#endif
