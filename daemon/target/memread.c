// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "target/memread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct lw_memread {
	pid_t pid;
	int memfd;		/* /proc/PID/mem, opened on first fallback */
	int use_vm;		/* process_vm_readv works */
	uint64_t errors;
};

int lw_memread__open(pid_t pid, struct lw_memread **out)
{
	struct lw_memread *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->pid = pid;
	m->memfd = -1;
	m->use_vm = 1;
	*out = m;
	return 0;
}

void lw_memread__close(struct lw_memread *m)
{
	if (!m)
		return;
	if (m->memfd >= 0)
		close(m->memfd);
	free(m);
}

int lw_memread__read(struct lw_memread *m, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (!addr || !len)
		return -EFAULT;
	if (m->use_vm) {
		n = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == ENOSYS)
			m->use_vm = 0;
		else if (n < 0 && errno == ESRCH)
			return -ESRCH;
		else if (n >= 0 || errno == EFAULT) {
			m->errors++;
			return -EFAULT;
		}
		if (n < 0 && errno == EPERM) {
			m->errors++;
			return -EPERM;
		}
	}
	if (m->memfd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)m->pid);
		m->memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (m->memfd < 0) {
			m->errors++;
			return -errno;
		}
	}
	n = pread(m->memfd, buf, len, (off_t)addr);
	if (n != (ssize_t)len) {
		m->errors++;
		return -EFAULT;
	}
	return 0;
}

static int memread_cb(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return lw_memread__read(ctx, addr, buf, len);
}

struct lw_reader lw_memread__reader(struct lw_memread *m)
{
	struct lw_reader r = { memread_cb, m };

	return r;
}

uint64_t lw_memread__errors(const struct lw_memread *m)
{
	return m->errors;
}

int lw_fakemem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct lw_fakemem *fm = ctx;
	size_t i;

	for (i = 0; i < fm->n; i++) {
		const struct lw_fakemem_region *r = &fm->regions[i];

		if (addr >= r->addr && addr - r->addr <= r->len && len <= r->len - (addr - r->addr)) {
			memcpy(buf, (const char *)r->data + (addr - r->addr), len);
			return 0;
		}
	}
	return -EFAULT;
}
