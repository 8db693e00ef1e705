// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Folded stacks ("outer;inner;leaf VALUE", one per line, VALUE in microseconds) for
 * flamegraph.pl, speedscope and inferno; the names every export gives frames and callbacks.
 *
 * Nothing is counted twice: a blocking call made inside a slow callback takes its time out of
 * the callback's (wall: its duration; blocked: the callback's time in the same syscall), and
 * goes on the call's own stack with a leaf "[syscall target]".
 */
#include "report/export.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"
#include "base/u64map.h"

#define MAX_STACK_CHARS 8192
#define NEST_SYSCALLS 8

int lw_weight_parse(const char *s, enum lw_weight *w)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "wall") == 0)
		*w = LW_WEIGHT_WALL;
	else if (strcmp(s, "blocked") == 0)
		*w = LW_WEIGHT_BLOCKED;
	else if (strcmp(s, "cpu") == 0)
		*w = LW_WEIGHT_CPU;
	else
		return -EINVAL;
	return 0;
}

const char *lw_weight_name(enum lw_weight w)
{
	return w == LW_WEIGHT_BLOCKED ? "blocked" : w == LW_WEIGHT_CPU ? "cpu" : "wall";
}

/* copy s, replacing what would break a folded line or a label: ';', control characters */
static void clean_into(char *dst, size_t size, const char *s)
{
	size_t i = 0;

	if (!size)
		return;
	for (; s && *s && i + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;

		dst[i++] = c == ';' ? ':' : c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	dst[i] = 0;
}

void lw_ex_frame_name(const struct lw_rd_frame *fr, char *buf, size_t size)
{
	char raw[1024];

	if (fr->file && fr->line >= 0)
		snprintf(raw, sizeof(raw), "%s (%s:%lld)", fr->function ? fr->function : "?",
			 lw_basename(fr->file), (long long)fr->line);
	else if (fr->file)
		snprintf(raw, sizeof(raw), "%s (%s)", fr->function ? fr->function : "?",
			 lw_basename(fr->file));
	else
		snprintf(raw, sizeof(raw), "%s", fr->function ? fr->function : "?");
	clean_into(buf, size, raw);
}

int lw_ex_native_name(const struct lw_rd_native *n, int with_offset, char *buf, size_t size)
{
	unsigned long long off = (unsigned long long)n->offset;

	if (n->symbol && with_offset)
		snprintf(buf, size, n->module ? "%s+0x%llx (%s)" : "%s+0x%llx", n->symbol, off,
			 n->module);
	else if (n->symbol)
		snprintf(buf, size, n->module ? "%s (%s)" : "%s", n->symbol, n->module);
	else if (n->module)
		snprintf(buf, size, "%s+0x%llx", n->module, off);
	else
		return 0;
	return 1;
}

void lw_ex_callback_name(const struct lw_rd_callback *cb, int has, char *buf, size_t size)
{
	char raw[1024];

	if (!has || !cb->qualname)
		snprintf(raw, sizeof(raw), "<unidentified callback>");
	else if (cb->task_name)
		snprintf(raw, sizeof(raw), "%s [%s]", cb->qualname, cb->task_name);
	else
		snprintf(raw, sizeof(raw), "%s", cb->qualname);
	clean_into(buf, size, raw);
}

void lw_ex_callback_repr(const struct lw_rd_callback *cb, int has, char *buf, size_t size)
{
	const char *kind = cb->kind ? cb->kind : "other", *q = cb->qualname ? cb->qualname : "?";
	char where[600] = "?";

	if (!has || !cb->qualname) {
		snprintf(buf, size, "<unidentified callback>");
		return;
	}
	if (cb->file)
		snprintf(where, sizeof(where), "%s:%lld", cb->file, (long long)cb->line);
	if (strcmp(kind, "task") == 0 && cb->task_name)
		snprintf(buf, size, "<Task name='%s' coro=<%s() defined at %s>>", cb->task_name, q,
			 where);
	else if (strcmp(kind, "task") == 0)
		snprintf(buf, size, "<Task coro=<%s() defined at %s>>", q, where);
	else if (strcmp(kind, "other") == 0)
		snprintf(buf, size, "<Handle %s>", q);
	else
		snprintf(buf, size, "<Handle %s() at %s>", q, where);
}

void lw_ex_blocking_name(const struct lw_rd_event *e, char *buf, size_t size)
{
	char raw[1024];

	if (e->target)
		snprintf(raw, sizeof(raw), "%s %s", e->syscall ? e->syscall : "syscall", e->target);
	else
		snprintf(raw, sizeof(raw), "%s", e->syscall ? e->syscall : "syscall");
	clean_into(buf, size, raw);
}

char *lw_ex_ts(uint64_t ns, char *buf, size_t size)
{
	return lw_fmt_rfc3339(ns, buf, size);
}

/* ---- building stacks */

struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *ns;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns) {
			b->oom = 1;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static void sb_frame(struct sbuf *b, const char *name)
{
	if (b->len)
		sb_add(b, ";");
	sb_add(b, name);
}

/* the event's stack, outermost first, into b (emptied first) */
static void stack_of(const struct lw_rd_event *e, struct sbuf *b)
{
	char name[1200];
	size_t i;

	b->len = 0;
	if (b->s)
		b->s[0] = 0;
	if (e->nstack) {
		for (i = e->nstack; i-- > 0 && b->len < MAX_STACK_CHARS;) {
			lw_ex_frame_name(&e->stack[i], name, sizeof(name));
			sb_frame(b, name);
		}
		return;
	}
	if (e->nnative) {
		for (i = e->nnative; i-- > 0 && b->len < MAX_STACK_CHARS;) {
			const struct lw_rd_native *n = &e->native[i];
			char raw[1100];

			if (!lw_ex_native_name(n, 0, raw, sizeof(raw)))
				continue;
			clean_into(name, sizeof(name), raw);
			sb_frame(b, name);
		}
		return;
	}
	lw_ex_callback_name(&e->cb, e->has_callback, name, sizeof(name));
	sb_frame(b, e->has_callback ? name : "[unknown]");
}

struct fvec {
	struct lw_folded *v;
	size_t n, cap;
	int oom;
};

static void fv_add(struct fvec *fv, const struct sbuf *b, const char *leaf, double ms)
{
	struct lw_folded *x;
	char name[1200];
	size_t len;
	uint64_t us;

	if (!(ms > 0) || fv->oom || b->oom || !b->len)
		return;
	us = (uint64_t)llround(ms * 1000.0);
	if (!us)
		return;
	if (fv->n == fv->cap) {
		size_t ncap = fv->cap ? fv->cap * 2 : 256;
		struct lw_folded *nv = realloc(fv->v, ncap * sizeof(*nv));

		if (!nv) {
			fv->oom = 1;
			return;
		}
		fv->v = nv;
		fv->cap = ncap;
	}
	name[0] = 0;
	if (leaf)
		clean_into(name, sizeof(name), leaf);
	len = b->len + (leaf ? strlen(name) + 1 : 0) + 1;
	x = &fv->v[fv->n];
	x->stack = malloc(len);
	if (!x->stack) {
		fv->oom = 1;
		return;
	}
	if (leaf)
		snprintf(x->stack, len, "%s;%s", b->s, name);
	else
		memcpy(x->stack, b->s, b->len + 1);
	x->value_us = us;
	fv->n++;
}

/* what the blocking calls nested in one slow callback add up to */
struct nested {
	double total_ms;
	struct {
		const char *syscall;
		double ms;
	} sc[NEST_SYSCALLS];
};

static int folded_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lw_folded *)a)->stack, ((const struct lw_folded *)b)->stack);
}

void lw_folded_free(struct lw_folded *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].stack);
	free(v);
}

int lw_folded_build(const struct lw_report_data *d, enum lw_weight w, struct lw_folded **out,
		    size_t *nout)
{
	struct lw_u64map *nest = NULL;
	struct fvec fv = { 0 };
	struct sbuf b = { 0 };
	size_t i, j, k;
	char leaf[1200];

	*out = NULL;
	*nout = 0;
	if (lw_u64map__new(sizeof(struct nested), &nest))
		return -ENOMEM;
	/* first the nested calls, per callback */
	for (i = 0; i < d->nev; i++) {
		const struct lw_rd_event *e = d->ev[i];
		struct nested *n;
		int created;

		if (e->type != LW_RD_BLOCKING_CALL || !e->parent)
			continue;
		n = lw_u64map__put(nest, (uint64_t)(uintptr_t)e->parent, &created);
		if (!n) {
			fv.oom = 1;
			break;
		}
		n->total_ms += e->duration_ms;
		for (k = 0; k < NEST_SYSCALLS; k++)
			if (!n->sc[k].syscall || n->sc[k].syscall == e->syscall) {
				n->sc[k].syscall = e->syscall;
				n->sc[k].ms += e->duration_ms;
				break;
			}
	}
	for (i = 0; i < d->nev && !fv.oom; i++) {
		const struct lw_rd_event *e = d->ev[i];
		const struct nested *n = lw_u64map__get(nest, (uint64_t)(uintptr_t)e);

		stack_of(e, &b);
		if (e->type == LW_RD_BLOCKING_CALL) {
			if (w == LW_WEIGHT_CPU)
				continue;
			lw_ex_blocking_name(e, leaf + 1, sizeof(leaf) - 2);
			leaf[0] = '[';
			strcat(leaf, "]");
			fv_add(&fv, &b, leaf, e->duration_ms);
			continue;
		}
		if (w == LW_WEIGHT_CPU) {
			fv_add(&fv, &b, NULL, e->cpu_ms);
		} else if (w == LW_WEIGHT_WALL) {
			fv_add(&fv, &b, NULL, e->duration_ms - (n ? n->total_ms : 0));
		} else {
			for (j = 0; j < e->nblocked; j++) {
				const struct lw_rd_blocked *bl = &e->blocked[j];
				double ms = bl->ms;

				for (k = 0; n && k < NEST_SYSCALLS; k++)
					if (n->sc[k].syscall && n->sc[k].syscall == bl->syscall) {
						ms -= n->sc[k].ms;
						break;
					}
				snprintf(leaf, sizeof(leaf), "[%s]",
					 bl->syscall ? bl->syscall : "blocked");
				fv_add(&fv, &b, leaf, ms);
			}
			fv_add(&fv, &b, "[GIL wait]", e->gil_ms);
		}
	}
	free(b.s);
	lw_u64map__free(nest, NULL);
	if (fv.oom || b.oom) {
		lw_folded_free(fv.v, fv.n);
		return -ENOMEM;
	}
	/* merge identical stacks */
	if (fv.n)
		qsort(fv.v, fv.n, sizeof(*fv.v), folded_cmp);
	for (i = 0, j = 0; i < fv.n; i++) {
		if (j && strcmp(fv.v[j - 1].stack, fv.v[i].stack) == 0) {
			fv.v[j - 1].value_us += fv.v[i].value_us;
			free(fv.v[i].stack);
			continue;
		}
		fv.v[j++] = fv.v[i];
	}
	*out = fv.v;
	*nout = j;
	return 0;
}

int lw_export_folded(FILE *f, const struct lw_report_data *d, enum lw_weight w)
{
	struct lw_folded *v;
	size_t n, i;
	int r = lw_folded_build(d, w, &v, &n);

	if (r)
		return r;
	for (i = 0; i < n; i++)
		fprintf(f, "%s %llu\n", v[i].stack, (unsigned long long)v[i].value_us);
	lw_folded_free(v, n);
	return ferror(f) ? -EIO : 0;
}
