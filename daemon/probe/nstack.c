// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/nstack.h"
#include "probe/bpfobj.h"
#include "target/unwind.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NSTACK_RECENT 4
#define NSTACK_HELD 64

/* a copy taken out of the LRU ahead of its unwinding (lw_nstack__hold) */
struct held_copy {
	uint32_t tid;
	uint64_t ts_ns;
	struct lw_ustack *u;		/* its header and len bytes of data only */
};

struct lw_nstack {
	struct lw_bpf *b;
	struct lw_unwind *u;
	struct lw_ustack *buf;		/* 16 KiB: not on the stack */
	uint64_t unwound, incomplete;
	/* the stack copies of the last stacks unwound, for readers of the frames' contents
	 * (V8's interpreter frames: lw_nstack__copy_of) */
	struct lw_ustack *recent[NSTACK_RECENT];
	uint64_t recent_ts[NSTACK_RECENT];
	unsigned recent_next;
	struct held_copy held[NSTACK_HELD];
	unsigned nheld;
};

int lw_nstack__new(struct lw_bpf *b, const char *proc_root, pid_t pid,
		   const struct lw_reader *live, struct lw_nstack **out)
{
	struct lw_nstack *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	n->b = b;
	n->buf = malloc(sizeof(*n->buf));
	r = n->buf ? lw_unwind__new(proc_root, pid, live, &n->u) : -ENOMEM;
	if (r) {
		free(n->buf);
		free(n);
		return r;
	}
	*out = n;
	return 0;
}

void lw_nstack__free(struct lw_nstack *n)
{
	if (!n)
		return;
	lw_nstack__release(n);
	lw_unwind__free(n->u);
	free(n->buf);
	for (unsigned i = 0; i < NSTACK_RECENT; i++)
		free(n->recent[i]);
	free(n);
}

void lw_nstack__counts(const struct lw_nstack *n, uint64_t *unwound, uint64_t *incomplete)
{
	*unwound = n ? n->unwound : 0;
	*incomplete = n ? n->incomplete : 0;
}

const char *lw_nstack_incomplete(const struct lw_pystack *st)
{
	if (!st || !(st->flags & LW_STACK_NATIVE_CFI))
		return NULL;
	if (st->flags & LW_STACK_NATIVE_SHORT)
		return lw_unwind_stop_str(LW_UNW_SHORT_COPY);
	if (st->flags & LW_STACK_NATIVE_UNREAD)
		return lw_unwind_stop_str(LW_UNW_UNREADABLE);
	if (st->flags & LW_STACK_NATIVE_TRUNC)
		return lw_unwind_stop_str(LW_UNW_MAX_FRAMES);
	if (st->flags & LW_STACK_NATIVE_NOINFO)
		return lw_unwind_stop_str(LW_UNW_NO_INFO);
	if (st->flags & LW_STACK_NATIVE_LOST)
		return "stack copy lost";
	return NULL;
}

/* keep the copy just unwound (its registers, flags and the bytes copied) */
static void keep_copy(struct lw_nstack *n, uint64_t ts_ns)
{
	unsigned k = n->recent_next++ % NSTACK_RECENT;

	if (!n->recent[k] && !(n->recent[k] = malloc(sizeof(*n->recent[k]))))
		return;
	memcpy(n->recent[k], n->buf, offsetof(struct lw_ustack, data) + n->buf->len);
	n->recent_ts[k] = ts_ns;
}

const struct lw_ustack *lw_nstack__copy_of(const struct lw_nstack *n, const struct lw_pystack *st)
{
	unsigned i;

	if (!n || !st || !(st->flags & LW_STACK_NATIVE_CFI) || (st->flags & LW_STACK_NATIVE_LOST))
		return NULL;
	for (i = 0; i < NSTACK_RECENT; i++)
		if (n->recent[i] && n->recent_ts[i] == st->ts_ns)
			return n->recent[i];
	return NULL;
}

/* tid's copy taken at ts_ns into n->buf: a held one, else from the LRU */
static int load_copy(struct lw_nstack *n, uint32_t tid, uint64_t ts_ns)
{
	unsigned i;

	for (i = 0; i < n->nheld; i++)
		if (n->held[i].tid == tid && n->held[i].ts_ns == ts_ns) {
			memcpy(n->buf, n->held[i].u,
			       offsetof(struct lw_ustack, data) + n->held[i].u->len);
			return 0;
		}
	return lw_bpf__get_ustack(n->b, (pid_t)tid, ts_ns, n->buf);
}

size_t lw_nstack__hold(struct lw_nstack *n, uint32_t tid, const uint64_t *ts, size_t count,
		       uint64_t keep_ts)
{
	size_t i, got = 0;

	if (!n)
		return 0;
	for (i = 0; i < count && n->nheld < NSTACK_HELD; i++) {
		struct held_copy *h = &n->held[n->nheld];
		size_t sz;

		if (lw_bpf__get_ustack(n->b, (pid_t)tid, ts[i], n->buf) ||
		    n->buf->len > LW_USTACK_MAX)
			continue;
		sz = offsetof(struct lw_ustack, data) + n->buf->len;
		if (!(h->u = malloc(sz)))
			break;
		memcpy(h->u, n->buf, sz);
		h->tid = tid;
		h->ts_ns = ts[i];
		n->nheld++;
		got++;
		if (ts[i] != keep_ts)
			lw_bpf__del_ustack(n->b, (pid_t)tid, ts[i]);
	}
	return got;
}

void lw_nstack__release(struct lw_nstack *n)
{
	if (!n)
		return;
	while (n->nheld)
		free(n->held[--n->nheld].u);
}

static int refine_loaded(struct lw_nstack *n, struct lw_pystack *st);

int lw_nstack__refine(struct lw_nstack *n, uint32_t tid, struct lw_pystack *st)
{
	if (!n || !st || !(st->flags & LW_STACK_VALID) || (st->flags & LW_STACK_NATIVE_CFI))
		return 0;
	if (load_copy(n, tid, st->ts_ns)) {
		/* copied, but gone before this record was unwound (evicted from the LRU by later
		 * copies): the frame-pointer walk is all there is, and code built without frame
		 * pointers makes it wrong past the first frame. Said, not passed off as whole. */
		if (!(st->flags & LW_STACK_USTACK))
			return 0;
		st->flags |= LW_STACK_NATIVE_CFI | LW_STACK_NATIVE_LOST;
		n->incomplete++;
		return 1;
	}
	return refine_loaded(n, st);
}

/* st unwound from the copy in n->buf (its own) */
static int refine_loaded(struct lw_nstack *n, struct lw_pystack *st)
{
	struct lw_uframe fr[LW_MAX_NATIVE];
	enum lw_unwind_stop why;
	uint32_t nfp, i, k;
	int got;

	if (n->buf->len > LW_USTACK_MAX)
		return 0;
	got = lw_unwind__run_at(n->u, (const uint64_t *)n->buf->regs, n->buf->data,
				n->buf->regs[7] - ((n->buf->flags & LW_USTACK_REDZONE) ? LW_USTACK_RED : 0),
				n->buf->len, fr, LW_MAX_NATIVE, &why);
	if (got <= 0)
		return 0;
	n->unwound++;
	keep_copy(n, st->ts_ns);
	/* frame pointers that go on where CFI stopped (code without unwind tables, e.g. a JIT's):
	 * keep their frames past the CFI's last one when that one is among them */
	nfp = st->nnative < LW_MAX_NATIVE ? st->nnative : LW_MAX_NATIVE;
	k = nfp;
	if (why == LW_UNW_NO_INFO || why == LW_UNW_UNREADABLE || why == LW_UNW_SHORT_COPY)
		for (i = 0; i < nfp; i++)
			if (st->native[i] == fr[got - 1].pc) {
				k = i + 1;
				break;
			}
	for (i = 0; i < (uint32_t)got; i++)
		st->native[i] = fr[i].pc;
	if (k < nfp) {
		uint64_t rest[LW_MAX_NATIVE];
		uint32_t m = nfp - k;

		memcpy(rest, &st->native[k], m * sizeof(*rest));
		for (i = 0; i < m && (uint32_t)got < LW_MAX_NATIVE; i++)
			st->native[got++] = rest[i];
		why = (uint32_t)got >= LW_MAX_NATIVE ? LW_UNW_MAX_FRAMES : LW_UNW_COMPLETE;
	}
	st->nnative = (uint32_t)got;
	for (i = (uint32_t)got; i < LW_MAX_NATIVE; i++)
		st->native[i] = 0;
	st->flags |= LW_STACK_NATIVE_CFI;
	switch (why) {
	case LW_UNW_COMPLETE:
		break;
	case LW_UNW_SHORT_COPY:
		st->flags |= LW_STACK_NATIVE_SHORT;
		break;
	case LW_UNW_UNREADABLE:
		st->flags |= LW_STACK_NATIVE_UNREAD;
		break;
	case LW_UNW_MAX_FRAMES:
		st->flags |= LW_STACK_NATIVE_TRUNC;
		break;
	default:
		st->flags |= LW_STACK_NATIVE_NOINFO;
		break;
	}
	if (why != LW_UNW_COMPLETE)
		n->incomplete++;
	return 1;
}

int lw_nstack__from_copy(struct lw_nstack *n, uint32_t tid, uint64_t ts_ns, struct lw_pystack *raw,
			 struct lw_pystack *st)
{
	uint64_t base, fp;
	uint32_t k = 0;
	size_t len;

	if (!n || load_copy(n, tid, ts_ns) || n->buf->len > LW_USTACK_MAX || n->buf->len < 16 ||
	    !n->buf->regs[16])
		return -ENOENT;
	memset(raw, 0, offsetof(struct lw_pystack, native));
	raw->flags = LW_STACK_VALID | LW_STACK_USTACK;
	raw->syscall = (uint32_t)-1;
	raw->ts_ns = ts_ns;
	/* the walk bpf_get_stack does from the registers (the pc, then each frame's return
	 * address above the saved frame pointer it points at), over the copy only */
	base = n->buf->regs[7] - ((n->buf->flags & LW_USTACK_REDZONE) ? LW_USTACK_RED : 0);
	len = n->buf->len;
	raw->native[k++] = n->buf->regs[16];
	for (fp = n->buf->regs[6]; k < LW_MAX_NATIVE && fp >= base && fp - base <= len - 16;) {
		uint64_t next, ret;

		memcpy(&next, n->buf->data + (fp - base), 8);
		memcpy(&ret, n->buf->data + (fp - base) + 8, 8);
		if (!ret)
			break;
		raw->native[k++] = ret;
		if (next <= fp)
			break;
		fp = next;
	}
	raw->nnative = k;
	memset(raw->native + k, 0, (LW_MAX_NATIVE - k) * sizeof(raw->native[0]));
	*st = *raw;
	refine_loaded(n, st);
	return 0;
}

void lw_nstack__refine_record(struct lw_nstack *n, struct lw_rec_hdr *h, size_t size)
{
	switch (h->type) {
	case LW_REC_CALLBACK:
		if (size >= sizeof(struct lw_rec_callback)) {
			lw_nstack__refine(n, h->tid, &((struct lw_rec_callback *)h)->block_stack);
			lw_nstack__refine(n, h->tid, &((struct lw_rec_callback *)h)->cpu_stack);
		}
		break;
	case LW_REC_TICK:
		if (size >= sizeof(struct lw_rec_tick)) {
			lw_nstack__refine(n, h->tid, &((struct lw_rec_tick *)h)->block_stack);
			lw_nstack__refine(n, h->tid, &((struct lw_rec_tick *)h)->cpu_stack);
		}
		break;
	case LW_REC_BLOCK:
		if (size >= sizeof(struct lw_rec_block))
			lw_nstack__refine(n, h->tid, &((struct lw_rec_block *)h)->stack);
		break;
	default:
		break;
	}
}
