// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/fdinfo.h"
#include "base/lw_util.h"
#include "target/procmaps.h"

#include <linux/types.h>
#include "loopwatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* one line of /proc/net/{tcp,udp}{,6}: "sl local rem st txq:rxq tr:when retr uid timeout inode" */
struct inet_row {
	char local[64];
	char rem[64];
	unsigned st;
	unsigned long ino;
};

static int parse_hex_u32(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (n != 8)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[i];
		unsigned d = (c >= '0' && c <= '9') ? (unsigned)(c - '0') :
			     (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10) :
			     (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10) : 16;

		if (d > 15)
			return -1;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

/* "0100007F:1538" (v4) or 32 hex digits + ":PORT" (v6) -> "127.0.0.1:5432" / "[::1]:80" */
static int fmt_addr(const char *s, int v6, char *buf, size_t size)
{
	const char *colon = strchr(s, ':');
	char host[INET6_ADDRSTRLEN];
	unsigned long port;
	char *end;

	if (!colon)
		return -EINVAL;
	port = strtoul(colon + 1, &end, 16);
	if (*end || port > 65535 || end == colon + 1)
		return -EINVAL;
	if (!v6) {
		uint32_t a;
		struct in_addr ia;

		if (parse_hex_u32(s, (size_t)(colon - s), &a))
			return -EINVAL;
		ia.s_addr = a;	/* the kernel prints the u32 as it is in memory */
		if (!inet_ntop(AF_INET, &ia, host, sizeof(host)))
			return -EINVAL;
		snprintf(buf, size, "%s:%lu", host, port);
	} else {
		struct in6_addr ia;
		int w;

		if (colon - s != 32)
			return -EINVAL;
		for (w = 0; w < 4; w++) {
			uint32_t word;

			if (parse_hex_u32(s + w * 8, 8, &word))
				return -EINVAL;
			memcpy(&ia.s6_addr[w * 4], &word, 4);
		}
		if (!inet_ntop(AF_INET6, &ia, host, sizeof(host)))
			return -EINVAL;
		snprintf(buf, size, "[%s]:%lu", host, port);
	}
	return 0;
}

/* the next line of [*p, end) into line (NUL-terminated; one too long for it comes back empty);
 * 0 at the end */
static int next_line(const char **p, const char *end, char *line, size_t cap)
{
	const char *nl;
	size_t ll;

	if (*p >= end)
		return 0;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	ll = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	if (ll >= cap)
		ll = 0;
	memcpy(line, *p, ll);
	line[ll] = 0;
	*p = nl ? nl + 1 : end;
	return 1;
}

static int inet_parse_line(const char *line, struct inet_row *r)
{
	unsigned sl;

	return sscanf(line, " %u: %63s %63s %x %*s %*s %*s %*s %*s %lu", &sl, r->local, r->rem,
		      &r->st, &r->ino) == 5 ? 0 : -1;
}

static int inet_format(const struct inet_row *r, int v6, const char *proto, char *buf,
		       size_t size)
{
	char addr[96];

	/* TCP LISTEN (0x0A), or an unconnected UDP socket (peer 0.0.0.0:0 / [::]:0) */
	if (strcmp(proto, "tcp") == 0 && r->st == 0x0A) {
		if (fmt_addr(r->local, v6, addr, sizeof(addr)))
			return -EINVAL;
		snprintf(buf, size, "tcp listen %s", addr);
		return 0;
	}
	if (fmt_addr(r->rem, v6, addr, sizeof(addr)))
		return -EINVAL;
	if (strcmp(addr, "0.0.0.0:0") == 0 || strcmp(addr, "[::]:0") == 0) {
		if (fmt_addr(r->local, v6, addr, sizeof(addr)))
			return -EINVAL;
		snprintf(buf, size, "%s local %s", proto, addr);
		return 0;
	}
	snprintf(buf, size, "%s %s", proto, addr);
	return 0;
}

/* Num RefCount Protocol Flags Type St Inode [Path] */
static int unix_parse_line(const char *line, unsigned long *inode, char *path)
{
	int n = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %255s", inode, path);

	if (n < 1)
		return -1;
	if (n < 2)
		path[0] = 0;
	return 0;
}

/*
 * /proc/PID/net/{tcp,tcp6,udp,udp6,unix}, read at most once a second per network namespace
 * (issue 19: they were read, up to 32 MiB each, for every blocking call on a socket that the
 * kernel side could not name, so a target flooding such calls made the daemon re-read a huge
 * socket table each time). Each read keeps the sockets' descriptions sorted by inode (at most
 * NET_MAX_SOCKS a namespace, NET_SLOTS namespaces, the least recently read replaced); a socket
 * made since the last read is "socket" until the next.
 */
#define NET_SLOTS 4
#define NET_MAX_SOCKS 65536
#define NET_REREAD_NS 1000000000ull

struct net_sock {
	unsigned long ino;
	int bad;		/* its row's addresses could not be read */
	char desc[120];		/* "tcp 127.0.0.1:5432", "unix /run/x.sock", "unix" */
};

struct net_snap {
	char key[PATH_MAX];	/* proc_root and the namespace ("net:[4026531992]") */
	uint64_t read_ns;	/* when read (monotonic); 0: an empty slot */
	struct net_sock *socks;
	size_t n, cap;
};

static struct net_snap net_snaps[NET_SLOTS];
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;

static struct net_sock *snap_new_sock(struct net_snap *sn)
{
	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 64;
		struct net_sock *ns;

		if (sn->cap >= NET_MAX_SOCKS)
			return NULL;
		if (cap > NET_MAX_SOCKS)
			cap = NET_MAX_SOCKS;
		ns = realloc(sn->socks, cap * sizeof(*ns));
		if (!ns)
			return NULL;
		sn->socks = ns;
		sn->cap = cap;
	}
	return &sn->socks[sn->n];
}

static void snap_add(struct net_snap *sn, const char *text, size_t len, int v6, const char *proto)
{
	const char *p = text, *end = text + len;
	char line[512];
	int first = 1;

	while (next_line(&p, end, line, sizeof(line))) {
		struct net_sock *ns;

		if (first || !line[0]) {
			first = 0;
			continue;
		}
		ns = snap_new_sock(sn);
		if (!ns)
			return;
		if (proto) {
			struct inet_row r;

			if (inet_parse_line(line, &r))
				continue;
			ns->ino = r.ino;
			ns->bad = inet_format(&r, v6, proto, ns->desc, sizeof(ns->desc)) != 0;
		} else {
			char path[256];

			if (unix_parse_line(line, &ns->ino, path))
				continue;
			ns->bad = 0;
			if (path[0])
				snprintf(ns->desc, sizeof(ns->desc), "unix %.114s", path);
			else
				lw_strlcpy(ns->desc, "unix", sizeof(ns->desc));
		}
		sn->n++;
	}
}

static int sock_cmp(const void *a, const void *b)
{
	const struct net_sock *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* the socket ino's description into buf: 0, -ENOENT, or -EINVAL for a row that is junk */
static int sock_desc(const struct net_sock *ns, char *buf, size_t size)
{
	if (!ns)
		return -ENOENT;
	if (ns->bad)
		return -EINVAL;
	lw_strlcpy(buf, ns->desc, size);
	return 0;
}

/* the first socket with inode ino in one table's text, parsed as the daemon parses them */
static int parse_one(const char *text, size_t len, int v6, const char *proto, unsigned long ino,
		     char *buf, size_t size)
{
	struct net_snap sn = { .n = 0 };
	struct net_sock *hit = NULL;
	size_t i;
	int r;

	if (size)
		buf[0] = 0;
	snap_add(&sn, text, len, v6, proto);
	for (i = 0; i < sn.n && !hit; i++)
		if (sn.socks[i].ino == ino)
			hit = &sn.socks[i];
	r = sock_desc(hit, buf, size);
	if (r == 0 && !proto)	/* the path alone: "unix /run/x.sock" -> "/run/x.sock" */
		lw_strlcpy(buf, hit->desc[4] ? hit->desc + 5 : "", size);
	free(sn.socks);
	return r;
}

int lw_fd_parse_inet(const char *text, size_t len, int v6, const char *proto, unsigned long ino,
		     char *buf, size_t size)
{
	return parse_one(text, len, v6, proto, ino, buf, size);
}

int lw_fd_parse_unix(const char *text, size_t len, unsigned long ino, char *buf, size_t size)
{
	return parse_one(text, len, 0, NULL, ino, buf, size);
}

static void snap_read(struct net_snap *sn, const char *proc_root, pid_t pid)
{
	static const struct {
		const char *file, *proto;
		int v6;
	} files[] = { { "tcp", "tcp", 0 }, { "tcp6", "tcp", 1 }, { "udp", "udp", 0 },
		      { "udp6", "udp", 1 }, { "unix", NULL, 0 } };
	char path[PATH_MAX];
	size_t i;

	sn->n = 0;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *text = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%d/net/%s", proc_root, (int)pid, files[i].file);
		if (lw_read_file(path, 32 << 20, &text, &len))
			continue;
		snap_add(sn, text, len, files[i].v6, files[i].proto);
		free(text);
	}
	qsort(sn->socks, sn->n, sizeof(*sn->socks), sock_cmp);
}

/* the socket with inode ino as process pid's network namespace shows it, into buf */
static int net_describe(const char *proc_root, pid_t pid, unsigned long ino, char *buf,
			size_t size)
{
	char key[PATH_MAX], path[PATH_MAX], ns[64];
	struct net_snap *sn = NULL, *oldest = &net_snaps[0];
	struct net_sock k = { .ino = ino }, *hit;
	uint64_t now = lw_now_mono();
	ssize_t n;
	int i, r;

	snprintf(path, sizeof(path), "%s/%d/ns/net", proc_root, (int)pid);
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n > 0) {
		ns[n] = 0;
		snprintf(key, sizeof(key), "%s %s", proc_root, ns);
	} else {	/* no namespace to tell by: the process's own */
		snprintf(key, sizeof(key), "%s pid %d", proc_root, (int)pid);
	}
	pthread_mutex_lock(&net_lock);
	for (i = 0; i < NET_SLOTS; i++) {
		if (net_snaps[i].read_ns && strcmp(net_snaps[i].key, key) == 0) {
			sn = &net_snaps[i];
			break;
		}
		if (net_snaps[i].read_ns < oldest->read_ns)
			oldest = &net_snaps[i];
	}
	if (!sn) {
		sn = oldest;
		sn->read_ns = 0;
		lw_strlcpy(sn->key, key, sizeof(sn->key));
	}
	if (!sn->read_ns || now - sn->read_ns >= NET_REREAD_NS) {
		snap_read(sn, proc_root, pid);
		sn->read_ns = now ? now : 1;
	}
	hit = sn->n ? bsearch(&k, sn->socks, sn->n, sizeof(k), sock_cmp) : NULL;
	r = sock_desc(hit, buf, size);
	pthread_mutex_unlock(&net_lock);
	return r;
}

int lw_fd_describe(const char *proc_root, pid_t pid, int fd, char *buf, size_t size)
{
	char path[128], link[512];
	unsigned long ino;
	ssize_t n;

	if (!size)
		return -EINVAL;
	buf[0] = 0;
	snprintf(path, sizeof(path), "%s/%d/fd/%d", proc_root, (int)pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	if (strncmp(link, "pipe:", 5) == 0) {
		lw_strlcpy(buf, "pipe", size);
		return 0;
	}
	if (sscanf(link, "socket:[%lu]", &ino) == 1) {
		if (net_describe(proc_root, pid, ino, buf, size))
			lw_strlcpy(buf, "socket", size);
		return 0;
	}
	/* a file: as the target sees it (a chroot's fd links show the reader's view) */
	if (link[0] == '/')
		lw_maps__target_path(proc_root, pid, link, buf, size);
	else
		lw_strlcpy(buf, link, size);
	return 0;
}

int lw_fd_format(const struct lw_fdinfo *fi, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	size_t o = 0;
	uint32_t i, n;

	if (!size)
		return -EINVAL;
	buf[0] = 0;
	switch (fi->kind) {
	case LW_FD_FILE:
	case LW_FD_FIFO:
		n = fi->ncomp < LW_FD_COMPS ? fi->ncomp : LW_FD_COMPS;
		if (!n)
			return -ENOENT;
		if (fi->truncated)
			o += (size_t)snprintf(buf, size, "...");
		for (i = n; i-- > 0 && o < size;) {
			char comp[LW_FD_COMPLEN + 1];

			memcpy(comp, fi->comp[i], LW_FD_COMPLEN);
			comp[LW_FD_COMPLEN] = 0;
			o += (size_t)snprintf(buf + o, size - o, "/%s", comp);
		}
		return 0;
	case LW_FD_PIPE:
		lw_strlcpy(buf, "pipe", size);
		return 0;
	case LW_FD_INET: {
		const char *proto = fi->proto == 6 ? "tcp" : fi->proto == 17 ? "udp" : "ip";
		int af = fi->family == 10 ? AF_INET6 : AF_INET;
		int listening = fi->proto == 6 && fi->state == 10;
		const uint8_t *a = listening || (!fi->dport) ? fi->saddr : fi->daddr;
		unsigned port = listening || !fi->dport ? fi->sport : fi->dport;

		if (!inet_ntop(af, a, host, sizeof(host)))
			return -EINVAL;
		snprintf(buf, size, af == AF_INET6 ? "%s%s%s [%s]:%u" : "%s%s%s %s:%u", proto,
			 listening ? " listen" : "", !listening && !fi->dport ? " local" : "", host, port);
		return 0;
	}
	case LW_FD_UNIX: {
		char path[LW_FD_COMPLEN * 4 + 1];

		memcpy(path, fi->comp, sizeof(path) - 1);
		path[sizeof(path) - 1] = 0;
		if (fi->ncomp && path[0])
			snprintf(buf, size, "unix %s", path);
		else
			lw_strlcpy(buf, "unix", size);
		return 0;
	}
	case LW_FD_SOCKET:
		lw_strlcpy(buf, "socket", size);
		return 0;
	default:
		return -ENOENT;
	}
}
