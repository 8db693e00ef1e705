// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * asyncio Task layouts per version, generic readers of Python objects (dicts, sets, attributes,
 * ints) and the page cache a snapshot reads through (see pytasks.c, pytasks.h).
 */
#include "target/pytasks_priv.h"
#include "base/lw_util.h"
#include "target/elfsym.h"
#include "target/procmaps.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MAX_SET_SLOTS (1u << 20)	/* LW_TASKS_MAX Tasks fit in 2^19 slots */
#define MAX_DICT_ENTRIES 200000

static const struct lw_tasklayout tlays[] = {
	{ .minor = 8, .interp_modules = 56, .ht_cached_keys = 872, .fut_state = 72,
	  .func_closure_rel = 32,
	  .task_waiter = 104, .must_cancel = 136, .must_cancel_bit = -1, .num_cancels = 0,
	  .gen_frame = 16, .gen_frame_inline = 0, .f_stacktop = 72 },
	{ .minor = 9, .interp_modules = 856, .ht_cached_keys = 864, .fut_state = 80,
	  .func_closure_rel = 32,
	  .task_waiter = 144, .must_cancel = 176, .must_cancel_bit = -1, .num_cancels = 0,
	  .gen_frame = 16, .gen_frame_inline = 0, .f_stacktop = 72 },
	{ .minor = 10, .interp_modules = 856, .ht_cached_keys = 872, .fut_state = 88,
	  .func_closure_rel = 24,
	  .task_waiter = 152, .must_cancel = 184, .must_cancel_bit = -1, .num_cancels = 0,
	  .gen_frame = 16, .gen_frame_inline = 0,
	  .f_valuestack = 64, .f_stackdepth = 80, .f_state = 108 },
	{ .minor = 11, .interp_modules = 888, .ht_cached_keys = 872, .fut_state = 88,
	  .func_closure_rel = 24,
	  .task_waiter = 128, .must_cancel = 160, .must_cancel_bit = -1, .num_cancels = 168,
	  .gen_frame = 80, .gen_frame_inline = 1, .gen_frame_state = 75,
	  .suspended_min = -1, .suspended_max = -1, .if_stacktop = 64 },
	{ .minor = 12, .interp_modules = 944, .ht_cached_keys = 880, .fut_state = 88,
	  .func_closure_rel = 24,
	  .task_waiter = 128, .must_cancel = 160, .must_cancel_bit = -1, .num_cancels = 168,
	  .gen_frame = 72, .gen_frame_inline = 1, .gen_frame_state = 67,
	  .suspended_min = -1, .suspended_max = -1, .if_stacktop = 64 },
	{ .minor = 13, .interp_modules = 7656, .ht_cached_keys = 880, .fut_state = 96,
	  .func_closure_rel = 24,
	  .task_waiter = 112, .must_cancel = 100, .must_cancel_bit = 2, .num_cancels = 104,
	  .gen_frame = 72, .gen_frame_inline = 1, .gen_frame_state = 67,
	  .suspended_min = -2, .suspended_max = -1, .if_stacktop = 64 },
	/* 3.14 (3.14.10, Debian sid): FutureObj_HEAD grew fut_awaited_by @96, fut_state @104,
	 * fut_is_task, fut_awaited_by_is_set; the Task bit fields share the word at 108 (must_cancel
	 * bit 2 of byte 110), num_cancels @112, fut_waiter @120, task_node @152 (TaskObj is 168).
	 * The frame's stackpointer is a _PyStackRef pointer @64. Per-thread lists and the
	 * thread-state fields from _asyncio's AsyncioDebug section (they replace these at run
	 * time, lw_pytasks__debug_offsets); the rest checked with ctypes on live objects. */
	{ .minor = 14, .interp_modules = 7688, .ht_cached_keys = 880, .fut_state = 104,
	  .func_closure_rel = 24,
	  .task_waiter = 120, .must_cancel = 110, .must_cancel_bit = 2, .num_cancels = 112,
	  .gen_frame = 72, .gen_frame_inline = 1, .gen_frame_state = 67,
	  .suspended_min = -2, .suspended_max = -1, .if_stacktop = 64, .if_stackptr = 1,
	  .yf_depth = 1,
	  .task_node = 152, .ts_tasks_head = 880, .ts_running_loop = 864, .ts_running_task = 872,
	  .interp_tasks_head = 10880, .fut_awaited_by = 96, .fut_awaited_by_is_set = 109 },
	/* 3.15 (3.15.2, Debian sid; _asyncio built into the interpreter): Task as 3.14; frame
	 * states renumbered (suspended 1, yield-from 2, yield-from locked 3) and a suspended
	 * `await` keeps what it awaits one slot below the top of its stack. */
	{ .minor = 15, .interp_modules = 7592, .ht_cached_keys = 888, .fut_state = 104,
	  .func_closure_rel = 24,
	  .task_waiter = 120, .must_cancel = 110, .must_cancel_bit = 2, .num_cancels = 112,
	  .gen_frame = 72, .gen_frame_inline = 1, .gen_frame_state = 67,
	  .suspended_min = 1, .suspended_max = 3, .if_stacktop = 64, .if_stackptr = 1,
	  .yf_depth = 2,
	  .task_node = 152, .ts_tasks_head = 1048, .ts_running_loop = 1024,
	  .ts_running_task = 1032, .interp_tasks_head = 10856, .fut_awaited_by = 96,
	  .fut_awaited_by_is_set = 109 },
};

const struct lw_tasklayout *lw_tasklayout_for(int minor)
{
	size_t i;

	for (i = 0; i < LW_ARRAY_SIZE(tlays); i++)
		if (tlays[i].minor == minor)
			return &tlays[i];
	return NULL;
}

/* _Py_AsyncioModuleDebugOffsets (3.14, 3.15): three groups of u64, each opened by its size */
enum {
	AD_TASK_SIZE, AD_TASK_NAME, AD_TASK_AWAITED_BY, AD_TASK_IS_TASK, AD_TASK_AWAITED_BY_IS_SET,
	AD_TASK_CORO, AD_TASK_NODE,
	AD_INTERP_SIZE, AD_INTERP_TASKS_HEAD,
	AD_TS_SIZE, AD_TS_RUNNING_LOOP, AD_TS_RUNNING_TASK, AD_TS_TASKS_HEAD,
	AD_N
};

__attribute__((format(printf, 4, 5)))
static int ad_fail(char *how, size_t howlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(how, howlen, fmt, ap);
	va_end(ap);
	return r;
}

int lw_pytasks__parse_debug(const void *buf, size_t len, const struct lw_pyinfo *pi,
			    struct lw_tasklayout *out, char *how, size_t howlen)
{
	uint64_t ad[AD_N];
	int i;

	if (len < sizeof(ad))
		return ad_fail(how, howlen, -EINVAL, "the AsyncioDebug section is short");
	memcpy(ad, buf, sizeof(ad));
	/* every offset inside its struct, and the Task's coroutine and name where pyoffsets has
	 * them (from the runtime's own _Py_DebugOffsets) */
	for (i = AD_TASK_NAME; i <= AD_TASK_NODE; i++)
		if (ad[i] + (i == AD_TASK_IS_TASK || i == AD_TASK_AWAITED_BY_IS_SET ? 1 : 8) >
		    ad[AD_TASK_SIZE])
			break;
	if (i <= AD_TASK_NODE || ad[AD_TASK_SIZE] > 4096 || ad[AD_INTERP_SIZE] > (1u << 22) ||
	    ad[AD_INTERP_TASKS_HEAD] + 16 > ad[AD_INTERP_SIZE] || ad[AD_TS_SIZE] > 65536 ||
	    ad[AD_TS_TASKS_HEAD] + 16 > ad[AD_TS_SIZE] || ad[AD_TS_RUNNING_LOOP] + 8 > ad[AD_TS_SIZE] ||
	    ad[AD_TS_RUNNING_TASK] + 8 > ad[AD_TS_SIZE] || ad[AD_TASK_CORO] != pi->lay.task_coro ||
	    ad[AD_TASK_NAME] != pi->lay.task_name)
		return ad_fail(how, howlen, -EINVAL, "the AsyncioDebug section does not fit the "
			       "CPython layout loopwatch knows (a patched or free-threaded build?)");
	out->task_node = (unsigned)ad[AD_TASK_NODE];
	out->fut_awaited_by = (unsigned)ad[AD_TASK_AWAITED_BY];
	out->fut_awaited_by_is_set = (unsigned)ad[AD_TASK_AWAITED_BY_IS_SET];
	out->interp_tasks_head = (unsigned)ad[AD_INTERP_TASKS_HEAD];
	out->ts_tasks_head = (unsigned)ad[AD_TS_TASKS_HEAD];
	out->ts_running_loop = (unsigned)ad[AD_TS_RUNNING_LOOP];
	out->ts_running_task = (unsigned)ad[AD_TS_RUNNING_TASK];
	return 0;
}

int lw_pytasks__debug_offsets(const char *proc_root, const struct lw_pyinfo *pi,
			      struct lw_tasklayout *out, char *how, size_t howlen)
{
	const struct lw_tasklayout *t = lw_tasklayout_for(pi->minor);
	const struct lw_map *m = NULL;
	struct lw_maps *maps = NULL;
	struct lw_elf *e = NULL;
	uint64_t ad[AD_N], sec = 0, secsz = 0;
	char via[PATH_MAX];
	const char *file;
	int fd, r;

	if (!t)
		return ad_fail(how, howlen, -ENOTSUP, "no Task layout for this version");
	*out = *t;
	if (!t->task_node)
		return ad_fail(how, howlen, -ENOENT, "no AsyncioDebug before 3.14");
	r = lw_maps__load(proc_root, pi->pid, &maps);
	if (r)
		return ad_fail(how, howlen, r, "%s/PID/maps not readable", proc_root);
	/* a shared _asyncio extension, else the interpreter's own file (built in) */
	m = lw_maps__find_lib(maps, "_asyncio.");
	file = m ? m->path : pi->elf;	/* named as the target sees it */
	if (m) {
		fd = lw_maps__open_mapped(proc_root, pi->pid, m, via, sizeof(via));
		r = fd < 0 ? fd : lw_elf__open_fd(fd, via, &e);
	} else {
		r = lw_elf__open(pi->elf_host, &e);
	}
	if (r) {
		r = ad_fail(how, howlen, -ENOENT, "%s not readable as ELF", file);
		goto out;
	}
	if (lw_elf__section(e, ".AsyncioDebug", &sec, &secsz) &&
	    lw_elf__section(e, "AsyncioDebug", &sec, &secsz)) {
		r = ad_fail(how, howlen, -ENOENT, "%s has no AsyncioDebug section: the table's "
			    "offsets are used", file);
		goto out;
	}
	if (secsz < sizeof(ad) || lw_elf__read(e, sec, ad, sizeof(ad))) {
		r = ad_fail(how, howlen, -EINVAL, "the AsyncioDebug section of %s is short", file);
		goto out;
	}
	r = lw_pytasks__parse_debug(ad, sizeof(ad), pi, out, how, howlen);
	if (r == 0)
		snprintf(how, howlen, "AsyncioDebug of %s", file);
out:
	if (e)
		lw_elf__close(e);
	lw_maps__free(maps);
	return r;
}

/* ---- generic object readers ---- */

static int type_flags(struct lw_reader *mem, uint64_t type, uint64_t *flags)
{
	return lw_mem_read_u64(mem, type + 168, flags);
}

static int dict_walk(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t keys,
		     uint64_t values, size_t max, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	uint64_t entries, esize, koff, voff, i, n;
	int64_t nentries = 0;
	uint8_t *buf = NULL;
	uint64_t *vals = NULL;
	int count = 0, r = 0;

	if (pi->minor >= 11) {
		uint8_t hdr[3];	/* dk_log2_size, dk_log2_index_bytes, dk_kind */

		if (lw_mem_read(mem, keys + 8, hdr, sizeof(hdr)) || hdr[0] > 30 || hdr[1] > 33 ||
		    hdr[2] > 2 || lw_mem_read(mem, keys + 24, &nentries, sizeof(nentries)))
			return -EFAULT;
		entries = keys + 32 + (1ull << hdr[1]);
		esize = hdr[2] == 0 ? 24 : 16;	/* DICT_KEYS_GENERAL has the hash */
		koff = hdr[2] == 0 ? 8 : 0;
		voff = koff + 8;
	} else {
		int64_t size = 0;
		unsigned ix;

		if (lw_mem_read(mem, keys + 8, &size, sizeof(size)) || size <= 0 || size > (1ll << 30) ||
		    lw_mem_read(mem, keys + 32, &nentries, sizeof(nentries)))
			return -EFAULT;
		ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffll ? 4 : 8;
		entries = keys + 40 + (uint64_t)size * ix;
		esize = 24;
		koff = 8;
		voff = 16;
	}
	if (nentries < 0 || nentries > MAX_DICT_ENTRIES)
		return -EFAULT;
	n = (uint64_t)nentries;
	if (n > max)
		n = max;
	if (!n)
		return 0;
	buf = malloc(n * esize);
	if (!buf)
		return -ENOMEM;
	if (lw_mem_read(mem, entries, buf, n * esize)) {
		free(buf);
		return -EFAULT;
	}
	if (values) {
		vals = malloc(n * 8);
		if (!vals || lw_mem_read(mem, values + (pi->minor >= 13 ? 8 : 0), vals, n * 8)) {
			free(vals);
			free(buf);
			return -EFAULT;
		}
	}
	for (i = 0; i < n && !r; i++) {
		uint64_t k, v;

		memcpy(&k, buf + i * esize + koff, 8);
		if (vals)
			v = vals[i];
		else
			memcpy(&v, buf + i * esize + voff, 8);
		if (!k || !v)
			continue;
		count++;
		r = fn(arg, k, v);
	}
	free(vals);
	free(buf);
	return r < 0 ? r : count;
}

int lw_pyobj__dict_items(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t dict,
			 size_t max, int (*fn)(void *arg, uint64_t key, uint64_t value), void *arg)
{
	uint64_t keys = 0, values = 0;

	if (lw_mem_read_u64(mem, dict + 32, &keys) || !keys || lw_mem_read_u64(mem, dict + 40, &values))
		return -EFAULT;
	return dict_walk(pi, mem, keys, values, max, fn, arg);
}

struct getkey {
	const struct lw_pyinfo *pi;
	struct lw_reader *mem;
	const char *key;
	uint64_t value;
	int found;
};

static int getkey_cb(void *arg, uint64_t k, uint64_t v)
{
	struct getkey *g = arg;
	char name[128];

	if (lw_py__read_str(&g->pi->lay, g->mem, k, name, sizeof(name)) || strcmp(name, g->key))
		return 0;
	g->value = v;
	g->found = 1;
	return 1;
}

int lw_pyobj__dict_get(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t dict,
		       const char *key, uint64_t *value)
{
	struct getkey g = { pi, mem, key, 0, 0 };
	int r = lw_pyobj__dict_items(pi, mem, dict, MAX_DICT_ENTRIES, getkey_cb, &g);

	if (r < 0)
		return r;
	if (!g.found)
		return -ENOENT;
	*value = g.value;
	return 0;
}

int lw_pyobj__set_items(struct lw_reader *mem, uint64_t set, size_t max,
			int (*fn)(void *arg, uint64_t key), void *arg)
{
	int64_t mask = 0, used = 0;
	uint64_t table = 0, i, n;
	uint64_t *slots;
	int count = 0, r = 0;

	if (lw_mem_read(mem, set + 24, &used, 8) || lw_mem_read(mem, set + 32, &mask, 8) ||
	    lw_mem_read_u64(mem, set + 40, &table) || !table)
		return -EFAULT;
	if (mask < 0 || (uint64_t)mask + 1 > MAX_SET_SLOTS || ((uint64_t)mask & ((uint64_t)mask + 1)) ||
	    used < 0 || used > mask + 1)
		return -EFAULT;
	n = (uint64_t)mask + 1;
	slots = malloc(n * 16);
	if (!slots)
		return -ENOMEM;
	if (lw_mem_read(mem, table, slots, n * 16)) {
		free(slots);
		return -EFAULT;
	}
	for (i = 0; i < n && !r && (size_t)count < max; i++) {
		uint64_t k = slots[2 * i];

		/* the dummy entry has hash -1 */
		if (!k || slots[2 * i + 1] == UINT64_MAX)
			continue;
		count++;
		r = fn(arg, k);
	}
	free(slots);
	return r < 0 ? r : count;
}

int lw_pyobj__attr(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t obj,
		   const char *name, uint64_t *value)
{
	const struct lw_tasklayout *t = lw_tasklayout_for(pi->minor);
	uint64_t type = 0, flags = 0, dict = 0, values = 0, keys = 0;
	int64_t dictoff = 0;
	struct getkey g = { pi, mem, name, 0, 0 };
	int r;

	if (!t || lw_mem_read_u64(mem, obj + 8, &type) || !type || type_flags(mem, type, &flags))
		return -EFAULT;
	if (pi->minor >= 11 && (flags & (1u << 4))) {	/* Py_TPFLAGS_MANAGED_DICT */
		uint64_t w = 0;

		if (lw_mem_read_u64(mem, obj - 24, &w))
			return -EFAULT;
		if (pi->minor == 11) {
			dict = w;
			if (!dict && lw_mem_read_u64(mem, obj - 32, &values))
				return -EFAULT;
		} else if (pi->minor == 12) {
			if (w & 1)
				values = w + 1;	/* (char *)values + 1 */
			else
				dict = w;
		} else {
			dict = w;
			if (!dict && (flags & (1u << 2))) {	/* Py_TPFLAGS_INLINE_VALUES */
				int64_t bs = 0;
				uint8_t valid = 0;

				if (lw_mem_read(mem, type + 32, &bs, 8) || bs <= 0 || bs > 65536)
					return -EFAULT;
				values = obj + (uint64_t)bs;
				if (lw_mem_read(mem, values + 3, &valid, 1) || !valid)
					return -ENOENT;
			}
		}
		if (!dict && !values)
			return -ENOENT;
		if (!dict && (lw_mem_read_u64(mem, type + t->ht_cached_keys, &keys) || !keys))
			return -EFAULT;
	} else {
		if (lw_mem_read(mem, type + 288, &dictoff, 8) || dictoff <= 0 || dictoff > 65536)
			return -ENOENT;
		if (lw_mem_read_u64(mem, obj + (uint64_t)dictoff, &dict) || !dict)
			return -ENOENT;
	}
	if (dict)
		r = lw_pyobj__dict_items(pi, mem, dict, MAX_DICT_ENTRIES, getkey_cb, &g);
	else
		r = dict_walk(pi, mem, keys, values, 64, getkey_cb, &g);
	if (r < 0)
		return r;
	if (!g.found)
		return -ENOENT;
	*value = g.value;
	return 0;
}

int lw_pyobj__long(const struct lw_pyinfo *pi, struct lw_reader *mem, uint64_t obj, int64_t *v)
{
	int64_t hdr = 0, nd;
	uint32_t d[3] = { 0, 0, 0 };
	uint64_t u = 0;
	int neg, i;

	if (lw_mem_read(mem, obj + 16, &hdr, 8))
		return -EFAULT;
	if (pi->minor >= 12) {
		nd = (int64_t)((uint64_t)hdr >> 3);
		neg = (hdr & 3) == 2;
	} else {
		neg = hdr < 0;
		nd = neg ? -hdr : hdr;
	}
	if (nd > 3 || nd < 0)
		return -ERANGE;
	if (nd && lw_mem_read(mem, obj + 24, d, (size_t)nd * 4))
		return -EFAULT;
	for (i = (int)nd - 1; i >= 0; i--)
		u = (u << 30) | (d[i] & 0x3fffffff);
	*v = neg ? -(int64_t)u : (int64_t)u;
	return 0;
}

/* ---- a page cache over the target's memory, for one snapshot ----
 * A Task costs some 50 small reads (its fields, its coroutines and frames, their code objects);
 * one system call each makes 10,000 Tasks take seconds. Tasks, coroutines and frames live close
 * together in the heap: reading whole pages once turns those into a few page reads per Task,
 * and gives one view of each page for the whole snapshot. A page that cannot be read whole
 * (the end of a mapping) falls back to the exact read. */
#define PC_PAGE 4096ull
#define PC_MIN_SLOTS 256u
#define PC_MAX_PAGES 16384u	/* at most 64 MiB of pages, then start again */


void pt_pc_clear(struct pagecache *pc)
{
	size_t i;

	for (i = 0; i < pc->nslots; i++)
		free(pc->slots[i].data);
	free(pc->slots);
	pc->slots = NULL;
	pc->nslots = 0;
	pc->npages = 0;
}

static size_t pc_hash(uint64_t page, size_t nslots)
{
	uint64_t h = page / PC_PAGE;

	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & (nslots - 1);
}

static int pc_grow(struct pagecache *pc)
{
	size_t n = pc->nslots ? pc->nslots * 2 : PC_MIN_SLOTS, i;
	struct pcslot *v = calloc(n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < pc->nslots; i++) {
		size_t k;

		if (!pc->slots[i].page)
			continue;
		for (k = pc_hash(pc->slots[i].page - 1, n); v[k].page; k = (k + 1) & (n - 1))
			;
		v[k] = pc->slots[i];
	}
	free(pc->slots);
	pc->slots = v;
	pc->nslots = n;
	return 0;
}

static struct pcslot *pc_page(struct pagecache *pc, uint64_t page)
{
	size_t i;

	if (pc->npages >= PC_MAX_PAGES)
		pt_pc_clear(pc);
	if ((pc->npages + 1) * 2 > pc->nslots && pc_grow(pc))
		return NULL;
	for (i = pc_hash(page, pc->nslots);; i = (i + 1) & (pc->nslots - 1)) {
		struct pcslot *sl = &pc->slots[i];

		if (sl->page == page + 1)
			return sl;
		if (!sl->page) {
			sl->page = page + 1;
			sl->data = malloc(PC_PAGE);
			pc->reads++;
			if (sl->data && pc->under->read(pc->under->ctx, page, sl->data, PC_PAGE)) {
				free(sl->data);
				sl->data = NULL;
			}
			pc->npages++;
			return sl;
		}
	}
}

int pt_pc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct pagecache *pc = ctx;
	uint64_t a = addr;
	size_t done = 0;

	if (!addr || addr + len < addr)
		return -EFAULT;
	if (len > 4 * PC_PAGE)	/* big reads (set tables, dict entries) go straight */
		return pc->under->read(pc->under->ctx, addr, buf, len);
	while (done < len) {
		uint64_t page = a & ~(PC_PAGE - 1), off = a - page;
		size_t n = (size_t)(PC_PAGE - off) < len - done ? (size_t)(PC_PAGE - off) : len - done;
		struct pcslot *sl = pc_page(pc, page);

		if (!sl || !sl->data)
			return pc->under->read(pc->under->ctx, addr, buf, len);
		memcpy((uint8_t *)buf + done, sl->data + off, n);
		done += n;
		a += n;
	}
	return 0;
}

