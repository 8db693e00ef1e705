// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "report/report_priv.h"

/* ---- sites */

int lw_rd_site_matches(const char *pattern, const char *qualname, const char *file, int64_t line)
{
	return lw_site_matches(pattern, qualname, file, (long)line);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t site_hash(const char *q, const char *f, int64_t line, const char *sc, const char *t)
{
	uint64_t h = 1469598103934665603ull;

	h = mix(h, (uint64_t)(uintptr_t)q);
	h = mix(h, (uint64_t)(uintptr_t)f);
	h = mix(h, (uint64_t)line);
	h = mix(h, (uint64_t)(uintptr_t)sc);
	return mix(h, (uint64_t)(uintptr_t)t);
}

static int site_is(const struct lw_rd_site *s, const char *q, const char *f, int64_t line,
		   const char *sc, const char *t)
{
	return s->qualname == q && s->file == f && s->line == line && s->syscall == sc &&
	       s->target == t;
}

/* the site's index, created when missing; -ENOMEM */
static long acc_get(struct site_acc *a, const char *q, const char *f, int64_t line, const char *sc,
		    const char *t)
{
	uint64_t h = site_hash(q, f, line, sc, t);
	size_t *pi, i, need = a->n + 1;
	int created;

	if (!a->map && lw_u64map__new(sizeof(size_t), &a->map))
		return -ENOMEM;
	pi = lw_u64map__get(a->map, h);
	if (pi && site_is(&a->v[*pi - 1], q, f, line, sc, t))
		return (long)(*pi - 1);
	if (pi)	/* a hash collision: look the slow way */
		for (i = 0; i < a->n; i++)
			if (site_is(&a->v[i], q, f, line, sc, t))
				return (long)i;
	if (need > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		struct lw_rd_site *nv = realloc(a->v, ncap * sizeof(*nv));
		struct dvec *nd;
		struct site_x *ni;

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		nd = realloc(a->vals, ncap * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		a->vals = nd;
		ni = realloc(a->xs, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		a->xs = ni;
		a->cap = ncap;
	}
	memset(&a->v[a->n], 0, sizeof(a->v[a->n]));
	memset(&a->vals[a->n], 0, sizeof(a->vals[a->n]));
	memset(&a->xs[a->n], 0, sizeof(a->xs[a->n]));
	a->v[a->n].qualname = q;
	a->v[a->n].file = f;
	a->v[a->n].line = line;
	a->v[a->n].syscall = sc;
	a->v[a->n].target = t;
	if (!pi) {
		pi = lw_u64map__put(a->map, h, &created);
		if (!pi)
			return -ENOMEM;
		*pi = a->n + 1;
	}
	return (long)a->n++;
}

void lw_rd_acc_free(struct site_acc *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->vals[i].v);
	free(a->vals);
	free(a->xs);
	free(a->v);
	lw_u64map__free(a->map, NULL);
	memset(a, 0, sizeof(*a));
}

static void x_bounds(struct site_x *x, unsigned sources, double p50, double p99)
{
	if (!sources || p50 < x->p50_lo)
		x->p50_lo = p50;
	if (!sources || p50 > x->p50_hi)
		x->p50_hi = p50;
	if (!sources || p99 < x->p99_lo)
		x->p99_lo = p99;
	if (!sources || p99 > x->p99_hi)
		x->p99_hi = p99;
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* a summary's row into the table */
int lw_rd_acc_add_row(struct site_acc *a, const struct lw_rd_site *row)
{
	long i = acc_get(a, row->qualname, row->file, row->line, row->syscall, row->target);
	struct lw_rd_site *s;

	if (i < 0)
		return (int)i;
	s = &a->v[i];
	x_bounds(&a->xs[i], s->sources, row->p50_ms, row->p99_ms);
	if (!s->sources) {
		s->p50_ms = row->p50_ms;
		s->p99_ms = row->p99_ms;
	} else {
		/* used only when the histograms cannot say: weighted p50, worst p99 */
		double c = (double)s->count + (double)row->count;

		s->p50_ms = c > 0 ? (s->p50_ms * (double)s->count +
				     row->p50_ms * (double)row->count) / c : 0;
		if (row->p99_ms > s->p99_ms)
			s->p99_ms = row->p99_ms;
	}
	s->count += row->count;
	s->total_ms += row->total_ms;
	if (row->max_ms > s->max_ms)
		s->max_ms = row->max_ms;
	if (row->hist.count != row->count)
		a->xs[i].inexact = 1;
	lw_hist_merge(&s->hist, &row->hist);
	s->sources++;
	return 0;
}

int lw_rd_acc_add_value(struct site_acc *a, const char *q, const char *f, int64_t line,
			const char *sc, const char *t, double ms)
{
	long i = acc_get(a, q, f, line, sc, t);
	struct dvec *dv;

	if (i < 0)
		return (int)i;
	dv = &a->vals[i];
	if (lw_rd_grow((void **)&dv->v, &dv->cap, dv->n + 1, sizeof(*dv->v)))
		return -ENOMEM;
	dv->v[dv->n++] = ms;
	return 0;
}

int lw_rd_acc_add_supp(struct site_acc *a, const struct rd_supp *sp)
{
	long i = acc_get(a, sp->qualname, sp->file, sp->line, NULL, NULL);
	struct lw_rd_site *s;

	if (i < 0)
		return (int)i;
	s = &a->v[i];
	s->count += sp->count;
	s->total_ms += sp->total_ms;
	if (sp->max_ms > s->max_ms)
		s->max_ms = sp->max_ms;
	a->xs[i].inexact = 1;
	return 0;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank */
static double vquant(const double *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p * (double)n);

	if (!n)
		return 0;
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static int site_cmp(const void *a, const void *b)
{
	const struct lw_rd_site *x = a, *y = b;

	if (x->total_ms != y->total_ms)
		return x->total_ms < y->total_ms ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->max_ms < y->max_ms ? 1 : x->max_ms > y->max_ms ? -1 : 0;
}

/* the table's rows, final numbers, by total time; the accumulator is emptied */
void lw_rd_acc_finish(struct site_acc *a, struct lw_rd_site **out, size_t *nout)
{
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		struct lw_rd_site *s = &a->v[i];
		struct dvec *dv = &a->vals[i];
		struct site_x *x = &a->xs[i];
		int summaries = (int)s->sources;

		if (dv->n) {
			double vmax = 0;

			qsort(dv->v, dv->n, sizeof(*dv->v), dcmp);
			x_bounds(x, s->sources, vquant(dv->v, dv->n, 0.5),
				 vquant(dv->v, dv->n, 0.99));
			for (j = 0; j < dv->n; j++) {
				lw_hist_add(&s->hist, lw_rd_ms_to_ns(dv->v[j]));
				s->total_ms += dv->v[j];
				if (dv->v[j] > vmax)
					vmax = dv->v[j];
			}
			s->count += dv->n;
			if (vmax > s->max_ms)
				s->max_ms = vmax;
			s->sources++;
		}
		if (!summaries && dv->n) {
			s->p50_ms = vquant(dv->v, dv->n, 0.5);
			s->p99_ms = vquant(dv->v, dv->n, 0.99);
		} else if (s->sources > 1) {
			if (!x->inexact && s->hist.count) {
				s->hist.max_ns = lw_rd_ms_to_ns(s->max_ms);
				s->p50_ms = (double)lw_hist_quantile(&s->hist, 0.5) / 1e6;
				s->p99_ms = (double)lw_hist_quantile(&s->hist, 0.99) / 1e6;
			}
			s->p50_ms = clampd(s->p50_ms, x->p50_lo, x->p50_hi);
			s->p99_ms = clampd(s->p99_ms, x->p99_lo, x->p99_hi);
		}
		if (s->hist.count)
			s->hist.max_ns = lw_rd_ms_to_ns(s->max_ms);
		if (s->p99_ms > s->max_ms)
			s->p99_ms = s->max_ms;
		if (s->p50_ms > s->p99_ms)
			s->p50_ms = s->p99_ms;
	}
	if (a->n)
		qsort(a->v, a->n, sizeof(*a->v), site_cmp);
	*out = a->v;
	*nout = a->n;
	a->v = NULL;
	for (i = 0; i < a->n; i++)
		free(a->vals[i].v);
	a->n = 0;
	lw_rd_acc_free(a);
}

