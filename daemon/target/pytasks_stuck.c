// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Stuck Tasks across periodic snapshots (see pytasks.h): a Task is at the same await while its
 * innermost frame (qualname, file, line) and the object it waits on stay the same; one pending
 * there for at least the threshold is reported once for that wait. A Task that moves on starts
 * again; one that is gone from the snapshot is forgotten. Pure bookkeeping: nothing is read here.
 */
#include "target/pytasks.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lw_stuck {
	struct lw_u64map *tasks;	/* Task address -> struct seen */
	uint64_t gen;
};

struct seen {
	uint64_t sig;		/* where it waits */
	uint64_t since_ns;	/* first seen there */
	uint64_t gen;		/* last snapshot it was in */
	int reported;
};

int lw_stuck__new(struct lw_stuck **out)
{
	struct lw_stuck *s = calloc(1, sizeof(*s));

	if (!s || lw_u64map__new(sizeof(struct seen), &s->tasks)) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void lw_stuck__free(struct lw_stuck *s)
{
	if (!s)
		return;
	lw_u64map__free(s->tasks, NULL);
	free(s);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t where(const struct lw_task *t)
{
	uint64_t h = mix(0, t->waiter);

	if (t->nframes) {
		h = mix(h, lw_hash_str(t->frames[0].qualname));
		h = mix(h, lw_hash_str(t->frames[0].file));
		h = mix(h, (uint64_t)(int64_t)t->frames[0].line);
	}
	return h | 1;	/* never 0: 0 is "not seen yet" */
}

int lw_stuck__update(struct lw_stuck *s, const struct lw_tasks *t, uint64_t now_ns,
		     uint64_t threshold_ns, struct lw_stuck_task *out, size_t max)
{
	size_t i, it = 0, n = 0;
	uint64_t key;
	struct seen *v;

	s->gen++;
	for (i = 0; i < t->n; i++) {
		const struct lw_task *tk = &t->v[i];
		uint64_t sig = where(tk);
		int created = 0;

		v = lw_u64map__put(s->tasks, tk->addr, &created);
		if (!v)
			return -ENOMEM;
		/* running now, or at another await than last time: its wait starts again */
		if (created || v->sig != sig || tk->state == LW_TASK_RUNNING) {
			v->sig = tk->state == LW_TASK_RUNNING ? 0 : sig;
			v->since_ns = now_ns;
			v->reported = 0;
		}
		v->gen = s->gen;
		if (v->sig && !v->reported && now_ns - v->since_ns >= threshold_ns && n < max) {
			out[n].task = tk->addr;
			out[n].pending_ns = now_ns - v->since_ns;
			out[n].t = tk;
			v->reported = 1;
			n++;
		}
	}
	/* forget the Tasks that are gone */
	while ((v = lw_u64map__next(s->tasks, &it, &key)))
		if (v->gen != s->gen)
			lw_u64map__del(s->tasks, key, NULL);
	return (int)n;
}
