// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The maps userspace keeps for the BPF side: a process's configuration and its share of the
 * ring buffer, thread states, what it reads back (threads, stacks, stack copies, loop
 * statistics, sites), forgetting a process, and the counters.
 */
#include "probe/bpfobj.h"
#include "probe/bpfobj_priv.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pid leaves the share it was counted in, if any; the share's fair entry goes with the last */
static void share_leave(struct lw_bpf *b, pid_t pid)
{
	uint32_t *s = lw_u64map__get(b->share_of, (uint64_t)pid), *n;
	__u32 k;

	if (!s)
		return;
	n = lw_u64map__get(b->share_refs, *s);
	k = LW_SHARE_KEY(*s);
	if (n && --*n == 0) {
		bpf_map_delete_elem(bpf_map__fd(b->skel->maps.fair), &k);
		lw_u64map__del(b->share_refs, *s, NULL);
	}
	lw_u64map__del(b->share_of, (uint64_t)pid, NULL);
}

int lw_bpf__set_proc(struct lw_bpf *b, pid_t pid, const struct lw_pycfg *cfg)
{
	struct lw_fair f = { 0 };
	__u32 k = (__u32)pid;
	uint32_t *s, *n;
	int created;

	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.procs), &k, cfg, BPF_ANY))
		return -errno;
	/* its share of the ring buffer (kept across updates of the configuration) */
	bpf_map_update_elem(bpf_map__fd(b->skel->maps.fair), &k, &f, BPF_NOEXIST);
	/* and its group's, shared with the other processes of its target */
	s = lw_u64map__get(b->share_of, (uint64_t)pid);
	if (s && *s == cfg->share)
		return 0;
	share_leave(b, pid);
	if (!cfg->share || !(s = lw_u64map__put(b->share_of, (uint64_t)pid, &created)))
		return 0;
	*s = cfg->share;
	n = lw_u64map__put(b->share_refs, cfg->share, &created);
	if (!n) {
		lw_u64map__del(b->share_of, (uint64_t)pid, NULL);
		return 0;
	}
	if (created)
		*n = 0;
	if ((*n)++ == 0) {
		k = LW_SHARE_KEY(cfg->share);
		bpf_map_update_elem(bpf_map__fd(b->skel->maps.fair), &k, &f, BPF_NOEXIST);
	}
	return 0;
}

int lw_bpf__del_proc(struct lw_bpf *b, pid_t pid)
{
	__u32 k = (__u32)pid;

	share_leave(b, pid);
	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.fair), &k);
	return bpf_map_delete_elem(bpf_map__fd(b->skel->maps.procs), &k) ? -errno : 0;
}

/* process pid's fair entry (all zero when it has none) */
static struct lw_fair fair_of(const struct lw_bpf *b, pid_t pid)
{
	struct lw_fair f = { 0 };
	__u32 k = (__u32)pid;

	if (b && bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.fair), &k, &f))
		memset(&f, 0, sizeof(f));
	return f;
}

uint64_t lw_bpf__fair_drops(const struct lw_bpf *b, pid_t pid)
{
	return fair_of(b, pid).drops;
}

uint64_t lw_bpf__thread_quota_drops(const struct lw_bpf *b, pid_t pid)
{
	return fair_of(b, pid).thread_drops;
}

int lw_bpf__set_tstate(struct lw_bpf *b, pid_t tid, uint64_t tstate)
{
	__u32 k = (__u32)tid;
	__u64 v = tstate;

	return bpf_map_update_elem(bpf_map__fd(b->skel->maps.tstates), &k, &v, BPF_ANY) ? -errno : 0;
}

void lw_bpf__del_tstate(struct lw_bpf *b, pid_t tid)
{
	__u32 k = (__u32)tid;

	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.tstates), &k);
}

void lw_bpf__count_tstate_drop(struct lw_bpf *b)
{
	b->tstate_drops++;
}

void lw_bpf__del_thread(struct lw_bpf *b, pid_t tid)
{
	__u32 k = (__u32)tid;

	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.tstates), &k);
	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.threads), &k);
	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.stacks), &k);
}

int lw_bpf__get_thread(struct lw_bpf *b, pid_t tid, struct lw_thread *out)
{
	__u32 k = (__u32)tid;

	return bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.threads), &k, out) ? -errno : 0;
}

uint64_t lw_bpf__busy_word(const struct lw_bpf *b, pid_t tid)
{
	return __atomic_load_n(&b->skel->bss->lw_busy[(uint32_t)tid & (LW_BUSY_SLOTS - 1)],
			       __ATOMIC_RELAXED);
}

int lw_bpf__get_stacks(struct lw_bpf *b, pid_t tid, struct lw_tstacks *out)
{
	__u32 k = (__u32)tid;

	return bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.stacks), &k, out) ? -errno : 0;
}

int lw_bpf__get_ustack(struct lw_bpf *b, pid_t tid, uint64_t ts_ns, struct lw_ustack *out)
{
	struct lw_ustack_key k = { .tid = (__u32)tid, .ts_ns = ts_ns };

	return bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.ustacks), &k, out) ? -errno : 0;
}

void lw_bpf__del_ustack(struct lw_bpf *b, pid_t tid, uint64_t ts_ns)
{
	struct lw_ustack_key k = { .tid = (__u32)tid, .ts_ns = ts_ns };

	bpf_map_delete_elem(bpf_map__fd(b->skel->maps.ustacks), &k);
}

size_t lw_bpf__ustack_times(struct lw_bpf *b, pid_t tid, uint64_t from, uint64_t to, uint64_t *ts,
			    size_t max)
{
	int fd = bpf_map__fd(b->skel->maps.ustacks);
	unsigned steps = 0, most = 4 * bpf_map__max_entries(b->skel->maps.ustacks);
	struct lw_ustack_key k, next;
	size_t n = 0;

	/* at most a few times the map's size: a key deleted under the walk restarts it */
	while (n < max && steps++ < most &&
	       !bpf_map_get_next_key(fd, steps == 1 ? NULL : &k, &next)) {
		k = next;
		if (next.tid == (__u32)tid && next.ts_ns >= from && next.ts_ns <= to)
			ts[n++] = next.ts_ns;
	}
	return n;
}

void lw_bpf__ustack_counters(const struct lw_bpf *b, uint64_t *copies, uint64_t *cut,
			     uint64_t *failed)
{
	*copies = b->skel->bss->ustack_copies;
	*cut = b->skel->bss->ustack_cut;
	*failed = b->skel->bss->ustack_failed;
}

int lw_bpf__get_loop_stats(struct lw_bpf *b, pid_t tid, struct lw_loop_stats *out)
{
	struct lw_thread *th = malloc(sizeof(*th));
	int r;

	if (!th)
		return -ENOMEM;
	r = lw_bpf__get_thread(b, tid, th);
	if (r == 0)
		*out = th->ls;
	free(th);
	return r;
}

int lw_bpf__for_each_site(struct lw_bpf *b, pid_t pid,
			  int (*fn)(void *arg, uint64_t site, const struct lw_hist *h), void *arg)
{
	int fd = bpf_map__fd(b->skel->maps.sites);
	struct lw_site_key key, next;
	struct lw_hist *h;
	int first = 1, r = 0;

	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = 0;
		key = next;
		if (next.tgid != (__u32)pid)
			continue;
		if (bpf_map_lookup_elem(fd, &next, h))
			continue;
		r = fn(arg, next.site, h);
		if (r)
			break;
	}
	free(h);
	return r;
}

/*
 * Walk map fd's keys (key_size bytes each) and drop those pick() chooses: collected first and
 * dropped after the walk, since deleting while walking restarts it. drop NULL: delete the key.
 */
struct key_walk {
	struct lw_bpf *b;
	pid_t pid;
	struct lw_thread *th;
};

static void drop_keys(int fd, size_t key_size, int (*pick)(int fd, const void *key,
							   struct key_walk *w),
		      void (*drop)(const void *key, struct key_walk *w), struct key_walk *w)
{
	unsigned char key[16], next[16], *del = NULL, *nd;
	size_t n = 0, i;
	int first = 1;

	if (key_size > sizeof(key))
		return;
	while (bpf_map_get_next_key(fd, first ? NULL : key, next) == 0) {
		first = 0;
		memcpy(key, next, key_size);
		if (!pick(fd, next, w))
			continue;
		nd = realloc(del, (n + 1) * key_size);
		if (!nd)
			break;
		del = nd;
		memcpy(del + n++ * key_size, next, key_size);
	}
	for (i = 0; i < n; i++) {
		if (drop)
			drop(del + i * key_size, w);
		else
			bpf_map_delete_elem(fd, del + i * key_size);
	}
	free(del);
}

/*
 * Thread states are set by userspace for every thread of a process (tid -> PyThreadState*), also
 * for threads that never reached a probe and so have no threads entry to be found by. Drop those
 * of pid's threads, and of any thread that no longer exists (issue 19's soak: 13 entries left
 * after 647 processes had come and gone, the map holds 8,192).
 */
static int tstate_gone(int fd, const void *key, struct key_walk *w)
{
	__u32 tid;
	char path[64];

	memcpy(&tid, key, sizeof(tid));
	snprintf(path, sizeof(path), "/proc/%d/task/%u", (int)w->pid, tid);
	if (access(path, F_OK) == 0)
		return 1;	/* pid's own thread */
	snprintf(path, sizeof(path), "/proc/%u", tid);
	return access(path, F_OK) != 0;	/* else: a live thread of another process */
}

static int site_of_pid(int fd, const void *key, struct key_walk *w)
{
	const struct lw_site_key *k = key;

	return k->tgid == (__u32)w->pid;
}

static int thread_of_pid(int fd, const void *key, struct key_walk *w)
{
	return w->th && bpf_map_lookup_elem(fd, key, w->th) == 0 && w->th->tgid == (__u32)w->pid;
}

static void forget_thread(const void *key, struct key_walk *w)
{
	__u32 tid;

	memcpy(&tid, key, sizeof(tid));
	lw_bpf__del_thread(w->b, (pid_t)tid);
}

_Static_assert(sizeof(struct lw_site_key) <= 16, "drop_keys' key buffers hold a site key");

void lw_bpf__forget_proc(struct lw_bpf *b, pid_t pid)
{
	struct key_walk w = { .b = b, .pid = pid, .th = malloc(sizeof(struct lw_thread)) };

	lw_bpf__del_proc(b, pid);
	drop_keys(bpf_map__fd(b->skel->maps.sites), sizeof(struct lw_site_key), site_of_pid, NULL,
		  &w);
	/* threads of the process (their state with loop statistics, stacks, thread states) */
	drop_keys(bpf_map__fd(b->skel->maps.threads), sizeof(__u32), thread_of_pid, forget_thread,
		  &w);
	free(w.th);
	drop_keys(bpf_map__fd(b->skel->maps.tstates), sizeof(__u32), tstate_gone, NULL, &w);
	for (__u32 c = 0; c < LW_RD_NCAUSES; c++) {
		struct lw_rderr_key k = { .tgid = (__u32)pid, .cause = c };

		bpf_map_delete_elem(bpf_map__fd(b->skel->maps.rderr), &k);
	}
}

uint64_t lw_bpf__proc_read_errors(const struct lw_bpf *b, pid_t pid, uint64_t by[LW_RD_NCAUSES])
{
	uint64_t total = 0;

	for (__u32 c = 0; c < LW_RD_NCAUSES; c++) {
		struct lw_rderr_key k = { .tgid = (__u32)pid, .cause = c };
		__u64 n = 0;

		if (bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.rderr), &k, &n))
			n = 0;
		by[c] = n;
		total += n;
	}
	return total;
}

void lw_bpf__counters(const struct lw_bpf *b, struct lw_bpf_counters *out)
{
	out->lost_events = b->skel->bss->lost_events;
	out->read_errors = b->skel->bss->read_errors;
	for (int i = 0; i < LW_RD_NCAUSES; i++)
		out->read_errors_by[i] = b->skel->bss->read_errors_by[i];
	out->depth_errors = b->skel->bss->depth_errors;
	out->thread_map_full = b->skel->bss->thread_map_full;
	out->samples = b->skel->bss->samples;
	out->sites_full = b->skel->bss->sites_full;
	out->fair_drops = b->skel->bss->fair_drops;
	out->thread_quota_drops = b->skel->bss->thread_quota_drops;
	out->tstate_quota_drops = b->tstate_drops;
	lw_bpf__ustack_counters(b, &out->ustack_copies, &out->ustack_cut, &out->ustack_failed);
}
