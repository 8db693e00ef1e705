// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "base/u64map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint64_t key;
	void *val;		/* NULL: empty; TOMB: deleted */
};

static char tomb;
#define TOMB ((void *)&tomb)

struct lw_u64map {
	size_t vsize;
	size_t cap;		/* power of two */
	size_t used;		/* live + tombstones */
	size_t live;
	struct slot *s;
};

int lw_u64map__new(size_t value_size, struct lw_u64map **out)
{
	struct lw_u64map *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->vsize = value_size;
	m->cap = 16;
	m->s = calloc(m->cap, sizeof(*m->s));
	if (!m->s) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void lw_u64map__free(struct lw_u64map *m, void (*free_value)(void *))
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->cap; i++) {
		if (m->s[i].val && m->s[i].val != TOMB) {
			if (free_value)
				free_value(m->s[i].val);
			free(m->s[i].val);
		}
	}
	free(m->s);
	free(m);
}

static size_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return (size_t)k;
}

static struct slot *find(const struct lw_u64map *m, uint64_t key)
{
	size_t i = mix(key) & (m->cap - 1), n;

	for (n = 0; n < m->cap; n++) {
		struct slot *s = &m->s[i];

		if (!s->val)
			return NULL;
		if (s->val != TOMB && s->key == key)
			return s;
		i = (i + 1) & (m->cap - 1);
	}
	return NULL;
}

void *lw_u64map__get(const struct lw_u64map *m, uint64_t key)
{
	struct slot *s = find(m, key);

	return s ? s->val : NULL;
}

static int grow(struct lw_u64map *m)
{
	size_t nc = m->live * 4 > m->cap ? m->cap * 2 : m->cap, i;
	struct slot *ns = calloc(nc, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->s[i].val || m->s[i].val == TOMB)
			continue;
		j = mix(m->s[i].key) & (nc - 1);
		while (ns[j].val)
			j = (j + 1) & (nc - 1);
		ns[j] = m->s[i];
	}
	free(m->s);
	m->s = ns;
	m->cap = nc;
	m->used = m->live;
	return 0;
}

void *lw_u64map__put(struct lw_u64map *m, uint64_t key, int *created)
{
	struct slot *s = find(m, key);
	size_t i;

	if (created)
		*created = 0;
	if (s)
		return s->val;
	if ((m->used + 1) * 4 > m->cap * 3 && grow(m))
		return NULL;
	i = mix(key) & (m->cap - 1);
	while (m->s[i].val && m->s[i].val != TOMB)
		i = (i + 1) & (m->cap - 1);
	if (!m->s[i].val)
		m->used++;
	m->s[i].val = calloc(1, m->vsize ? m->vsize : 1);
	if (!m->s[i].val) {
		m->s[i].val = TOMB;
		return NULL;
	}
	m->s[i].key = key;
	m->live++;
	if (created)
		*created = 1;
	return m->s[i].val;
}

int lw_u64map__del(struct lw_u64map *m, uint64_t key, void (*free_value)(void *))
{
	struct slot *s = find(m, key);

	if (!s)
		return -ENOENT;
	if (free_value)
		free_value(s->val);
	free(s->val);
	s->val = TOMB;
	m->live--;
	return 0;
}

size_t lw_u64map__count(const struct lw_u64map *m)
{
	return m->live;
}

void *lw_u64map__next(const struct lw_u64map *m, size_t *it, uint64_t *key)
{
	while (*it < m->cap) {
		struct slot *s = &m->s[(*it)++];

		if (s->val && s->val != TOMB) {
			if (key)
				*key = s->key;
			return s->val;
		}
	}
	return NULL;
}

uint64_t lw_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ull;
	}
	return h;
}
