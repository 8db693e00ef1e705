// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/fdinfo.h"
#include "base/lw_util.h"
#include "target/procmaps.h"

#include <linux/types.h>
#include "loopwatch.h"

#include <arpa/inet.h>
#include <errno.h>
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

int lw_fd_parse_inet(const char *text, size_t len, int v6, const char *proto, unsigned long ino,
		     char *buf, size_t size)
{
	const char *p = text, *end = text + len;
	int first = 1;

	if (size)
		buf[0] = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[512], addr[96];
		struct inet_row r;
		unsigned sl;
		int n;

		if (first || ll == 0 || ll >= sizeof(line)) {
			first = 0;
			p = nl ? nl + 1 : end;
			continue;
		}
		memcpy(line, p, ll);
		line[ll] = 0;
		p = nl ? nl + 1 : end;
		n = sscanf(line, " %u: %63s %63s %x %*s %*s %*s %*s %*s %lu", &sl, r.local, r.rem, &r.st,
			   &r.ino);
		if (n != 5)
			continue;
		if (r.ino != ino)
			continue;
		/* TCP LISTEN (0x0A), or an unconnected UDP socket (peer 0.0.0.0:0 / [::]:0) */
		if (strcmp(proto, "tcp") == 0 && r.st == 0x0A) {
			if (fmt_addr(r.local, v6, addr, sizeof(addr)))
				return -EINVAL;
			snprintf(buf, size, "tcp listen %s", addr);
			return 0;
		}
		if (fmt_addr(r.rem, v6, addr, sizeof(addr)))
			return -EINVAL;
		if (strcmp(addr, "0.0.0.0:0") == 0 || strcmp(addr, "[::]:0") == 0) {
			if (fmt_addr(r.local, v6, addr, sizeof(addr)))
				return -EINVAL;
			snprintf(buf, size, "%s local %s", proto, addr);
			return 0;
		}
		snprintf(buf, size, "%s %s", proto, addr);
		return 0;
	}
	return -ENOENT;
}

int lw_fd_parse_unix(const char *text, size_t len, unsigned long ino, char *buf, size_t size)
{
	const char *p = text, *end = text + len;
	int first = 1;

	if (size)
		buf[0] = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[512], path[256] = "";
		unsigned long inode;
		int n;

		if (first || ll == 0 || ll >= sizeof(line)) {
			first = 0;
			p = nl ? nl + 1 : end;
			continue;
		}
		memcpy(line, p, ll);
		line[ll] = 0;
		p = nl ? nl + 1 : end;
		/* Num RefCount Protocol Flags Type St Inode [Path] */
		n = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %255s", &inode, path);
		if (n < 1 || inode != ino)
			continue;
		lw_strlcpy(buf, n == 2 ? path : "", size);
		return 0;
	}
	return -ENOENT;
}

static int search_file(const char *path, int v6, const char *proto, unsigned long ino, char *buf,
		       size_t size)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (lw_read_file(path, 32 << 20, &text, &len))
		return -ENOENT;
	r = lw_fd_parse_inet(text, len, v6, proto, ino, buf, size);
	free(text);
	return r;
}

int lw_fd_describe(const char *proc_root, pid_t pid, int fd, char *buf, size_t size)
{
	char path[128], link[512], file[160];
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
		static const struct {
			const char *file, *proto;
			int v6;
		} inet[] = { { "tcp", "tcp", 0 }, { "tcp6", "tcp", 1 }, { "udp", "udp", 0 },
			     { "udp6", "udp", 1 } };
		size_t i;
		char *text = NULL;
		size_t len = 0;

		for (i = 0; i < sizeof(inet) / sizeof(inet[0]); i++) {
			snprintf(file, sizeof(file), "%s/%d/net/%s", proc_root, (int)pid, inet[i].file);
			if (search_file(file, inet[i].v6, inet[i].proto, ino, buf, size) == 0)
				return 0;
		}
		snprintf(file, sizeof(file), "%s/%d/net/unix", proc_root, (int)pid);
		if (lw_read_file(file, 32 << 20, &text, &len) == 0) {
			char up[256];
			int r = lw_fd_parse_unix(text, len, ino, up, sizeof(up));

			free(text);
			if (r == 0) {
				if (up[0])
					snprintf(buf, size, "unix %s", up);
				else
					lw_strlcpy(buf, "unix", size);
				return 0;
			}
		}
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
