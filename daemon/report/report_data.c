// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "report/report_priv.h"

/* ---- interned strings */

static uint64_t str_hash(const char *s)
{
	return lw_hash_str(s);
}

static int pool_grow(struct rd_pool *p)
{
	size_t ncap = p->cap ? p->cap * 2 : 1024, i;
	char **ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < p->cap; i++) {
		size_t j;

		if (!p->slot[i])
			continue;
		j = str_hash(p->slot[i]) & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = p->slot[i];
	}
	free(p->slot);
	p->slot = ns;
	p->cap = ncap;
	return 0;
}

/* the pooled copy of s; NULL for NULL (and, with *oom set, on allocation failure) */
const char *lw_rd_pool_get(struct rd_pool *p, const char *s, int *oom)
{
	size_t j;

	if (!s)
		return NULL;
	if ((p->n + 1) * 2 > p->cap && pool_grow(p)) {
		*oom = 1;
		return NULL;
	}
	j = str_hash(s) & (p->cap - 1);
	while (p->slot[j]) {
		if (strcmp(p->slot[j], s) == 0)
			return p->slot[j];
		j = (j + 1) & (p->cap - 1);
	}
	p->slot[j] = strdup(s);
	if (!p->slot[j]) {
		*oom = 1;
		return NULL;
	}
	p->n++;
	return p->slot[j];
}

static void pool_free(struct rd_pool *p)
{
	size_t i;

	for (i = 0; i < p->cap; i++)
		free(p->slot[i]);
	free(p->slot);
	memset(p, 0, sizeof(*p));
}

int lw_rd_grow(void **p, size_t *cap, size_t need, size_t elsz)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elsz);
	if (!np)
		return -ENOMEM;
	memset((char *)np + *cap * elsz, 0, (ncap - *cap) * elsz);
	*p = np;
	*cap = ncap;
	return 0;
}

int lw_rd__new(struct lw_report_data **out)
{
	struct lw_report_data *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->priv = calloc(1, sizeof(*d->priv));
	if (!d->priv) {
		free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static void free_sites(struct lw_rd_site *s)
{
	free(s);
}

void lw_rd__free(struct lw_report_data *d)
{
	struct lw_rd_priv *p;
	size_t i;

	if (!d)
		return;
	p = d->priv;
	for (i = 0; p && i < p->nevs; i++) {
		free(p->evs[i].blocked);
		free(p->evs[i].stack);
		free(p->evs[i].native);
	}
	for (i = 0; p && i < p->nsums; i++) {
		free_sites(p->sums[i].sites);
		free_sites(p->sums[i].bsites);
		free(p->sums[i].loops);
	}
	for (i = 0; i < d->npids; i++) {
		free(d->pids[i].sites);
		free(d->pids[i].bsites);
		free(d->pids[i].loops);
	}
	free(d->pids);
	free(d->ev);
	free(d->files);
	if (p) {
		free(p->items);
		free(p->evs);
		free(p->starts);
		free(p->ends);
		free(p->sums);
		free(p->supps);
		free(p->runs);
		pool_free(&p->pool);
		free(p);
	}
	free(d);
}

