// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * make bench's host-tax workloads: a process loopwatch does NOT trace, bound by syscalls or by
 * context switches. Runs for SECONDS and prints "<operations> <seconds> <operations per second>".
 *
 *   hostload rw SECONDS        1-byte read from /dev/zero + 1-byte write to /dev/null (2 syscalls)
 *   hostload getppid SECONDS   getppid() (the cheapest syscall there is)
 *   hostload pingpong SECONDS  two processes bounce a byte over two pipes (one round trip =
 *                              2 writes, 2 reads, 2 sleeps and 2 wakes)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long n = 0;
	double secs, t0, t1, end;
	char c = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: hostload rw|getppid|pingpong SECONDS\n");
		return 2;
	}
	secs = atof(argv[2]);
	t0 = now();
	end = t0 + secs;
	if (!strcmp(argv[1], "rw")) {
		int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);

		if (in < 0 || out < 0) {
			perror("open");
			return 1;
		}
		for (;;) {
			for (int i = 0; i < 1024; i++) {
				if (read(in, &c, 1) != 1 || write(out, &c, 1) != 1)
					return 1;
			}
			n += 1024;
			if (now() >= end)
				break;
		}
	} else if (!strcmp(argv[1], "getppid")) {
		for (;;) {
			for (int i = 0; i < 4096; i++)
				syscall(SYS_getppid);	/* not cached by any libc */
			n += 4096;
			if (now() >= end)
				break;
		}
	} else if (!strcmp(argv[1], "pingpong")) {
		int ab[2], ba[2];
		pid_t child;

		if (pipe(ab) || pipe(ba)) {
			perror("pipe");
			return 1;
		}
		child = fork();
		if (child < 0) {
			perror("fork");
			return 1;
		}
		if (child == 0) {
			close(ab[1]);
			close(ba[0]);
			while (read(ab[0], &c, 1) == 1)
				if (write(ba[1], &c, 1) != 1)
					_exit(1);
			_exit(0);
		}
		for (;;) {
			for (int i = 0; i < 256; i++) {
				if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
					return 1;
			}
			n += 256;
			if (now() >= end)
				break;
		}
		close(ab[1]);
		waitpid(child, NULL, 0);
	} else {
		fprintf(stderr, "hostload: unknown workload %s\n", argv[1]);
		return 2;
	}
	t1 = now();
	printf("%llu %.3f %.1f\n", n, t1 - t0, (double)n / (t1 - t0));
	return 0;
}
