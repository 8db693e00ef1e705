// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A plain epoll loop (no runtime at all): a timerfd whose handler sleeps 200 ms (argv[2] ms,
 * announced), then spins 150 ms on clock_gettime (argv[3] ms, announced). Prints "ready <pid>",
 * waits for the go-file (argv[1]), handles the timer twice and prints its own measurements as
 * JSON lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int sleep_ms = 200;	/* argv[2] when given */
static int spin_ms = 150;	/* argv[3] when given */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((noinline)) static void on_timer(int fd)
{
	double t0 = now_ms(), t1, t2;
	volatile unsigned long x = 0;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	if (sleep_ms != 200) {
		/* announced: a test takes eu-stack's stack of this sleep */
		printf("{\"event\": \"blocking\"}\n");
		fflush(stdout);
	}
	usleep(sleep_ms * 1000);
	t1 = now_ms();
	if (spin_ms != 150) {
		/* announced: a test samples eu-stack's stacks of this spin */
		printf("{\"event\": \"spinning\"}\n");
		fflush(stdout);
	}
	while (now_ms() - t1 < spin_ms)
		x++;
	t2 = now_ms();
	printf("{\"event\": \"slow\", \"sleep_ms\": %.3f, \"spin_ms\": %.3f, \"total_ms\": %.3f}\n",
	       t1 - t0, t2 - t1, t2 - t0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, 400000000 }, { 0, 100000000 } };
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0), handled = 0;

	if (argc < 2 || ep < 0 || tfd < 0)
		return 2;
	if (argc > 2)
		sleep_ms = atoi(argv[2]);
	if (argc > 3)
		spin_ms = atoi(argv[3]);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (access(argv[1], F_OK))
		usleep(10000);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	timerfd_settime(tfd, 0, &its, NULL);
	while (handled < 2) {
		struct epoll_event out;

		if (epoll_wait(ep, &out, 1, 1000) == 1) {
			on_timer(out.data.fd);
			handled++;
		}
	}
	/* back to the poll once more, as a long-running loop would: that ends the iteration */
	{
		struct epoll_event out;

		epoll_wait(ep, &out, 1, 50);
	}
	printf("done\n");
	return 0;
}
