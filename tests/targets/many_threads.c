// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A process with many threads (issue 19: one target's threads filled the BPF threads map that
 * every target shares). Waits for the file GO, then starts N threads (64 KiB stacks) that each
 * make one epoll_wait (what makes loopwatch track a thread: a poll-family syscall) and sleep; prints "started N" and sleeps until killed. With "churn": the N
 * threads one after the other, each making its epoll_wait and ending before the next starts; then
 * it exits.
 *
 *   many_threads GO N [TAG [churn]]      (TAG: only there for a daemon's cmdline matcher)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int ep;

static void *once(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	epoll_wait(ep, &ev, 1, 0);
	return NULL;
}

static void *idle(void *arg)
{
	once(arg);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t a;
	int i, n, started = 0, churn = argc > 4 && !strcmp(argv[4], "churn");

	if (argc < 3) {
		fprintf(stderr, "usage: many_threads GO N [TAG]\n");
		return 2;
	}
	n = atoi(argv[2]);
	printf("ready\n");
	fflush(stdout);
	while (access(argv[1], F_OK) != 0)
		usleep(10000);
	ep = epoll_create1(0);
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, &a, churn ? once : idle, NULL) == 0) {
			started++;
			if (churn)
				pthread_join(t, NULL);
		}
	}
	printf("started %d\n", started);
	fflush(stdout);
	if (churn)
		return 0;
	for (;;)
		pause();
	return 0;
}
