// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Load generator for the echo-server benchmark: C connections to 127.0.0.1:PORT, each sending
 * a 64-byte request and waiting for the echo before the next (bounded load: at most C requests
 * in flight). Runs for SECONDS and prints "requests N seconds S rate R".
 *
 *   echo_client PORT CONNECTIONS SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct pollfd *pf;
	int *got, port, n, i, one = 1;
	double secs, t0, end;
	long long reqs = 0;
	char req[64], buf[4096];

	if (argc != 4) {
		fprintf(stderr, "usage: echo_client PORT CONNECTIONS SECONDS\n");
		return 2;
	}
	port = atoi(argv[1]);
	n = atoi(argv[2]);
	secs = atof(argv[3]);
	if (port <= 0 || n <= 0 || secs <= 0)
		return 2;
	pf = calloc((size_t)n, sizeof(*pf));
	got = calloc((size_t)n, sizeof(*got));
	memset(req, 'x', sizeof(req));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			perror("connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pf[i].fd = fd;
		pf[i].events = POLLIN;
	}
	t0 = now();
	end = t0 + secs;
	for (i = 0; i < n; i++)
		if (write(pf[i].fd, req, sizeof(req)) != (ssize_t)sizeof(req))
			return 1;
	while (now() < end) {
		int r = poll(pf, (nfds_t)n, 100);

		if (r < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n && r > 0; i++) {
			ssize_t k;

			if (!(pf[i].revents & POLLIN))
				continue;
			k = read(pf[i].fd, buf, sizeof(buf));
			if (k <= 0)
				return 1;
			got[i] += (int)k;
			while (got[i] >= (int)sizeof(req)) {
				got[i] -= (int)sizeof(req);
				reqs++;
				if (write(pf[i].fd, req, sizeof(req)) != (ssize_t)sizeof(req))
					return 1;
			}
		}
	}
	secs = now() - t0;
	printf("requests %lld seconds %.3f rate %.1f\n", reqs, secs, (double)reqs / secs);
	return 0;
}
