// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A libuv program whose timer callback blocks the loop: it sleeps 200 ms (argv[2] ms, announced),
 * then spins 150 ms on clock_gettime (argv[3] ms, announced). Prints "ready <pid>", waits for the go-file (argv[1]), runs the slow callback twice, and prints
 * its own measurements as JSON lines: the ground truth for loopwatch's tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static const char *gofile;
static int rounds;

static int sleep_ms = 200;	/* argv[2] when given */
static int spin_ms = 150;	/* argv[3] when given */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((noinline)) static void slow_handler(uv_timer_t *t)
{
	double t0 = now_ms(), t1, t2;
	volatile unsigned long x = 0;

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
	if (++rounds == 2) {
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, NULL);
	}
}

static void wait_go(uv_timer_t *t)
{
	if (access(gofile, F_OK))
		return;
	uv_timer_stop(t);
	uv_timer_start(t, slow_handler, 100, 400);
}

int main(int argc, char **argv)
{
	uv_timer_t t;

	if (argc < 2)
		return 2;
	gofile = argv[1];
	if (argc > 2)
		sleep_ms = atoi(argv[2]);
	if (argc > 3)
		spin_ms = atoi(argv[3]);
	uv_timer_init(uv_default_loop(), &t);
	uv_timer_start(&t, wait_go, 10, 10);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	printf("done\n");
	return 0;
}
