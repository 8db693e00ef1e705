// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Roll-ups of the per-pid results: by target (a loopwatchd file holds many processes of one
 * target, and a recycled worker is a new pid each time) */
#include "report/report_priv.h"

static const struct lw_rd_pid *pid_entry(const struct lw_report_data *d, pid_t pid)
{
	size_t i;

	for (i = 0; i < d->npids; i++)
		if (d->pids[i].pid == pid)
			return &d->pids[i];
	return NULL;
}

int lw_rd_entry_has(const struct lw_report_data *d, const struct lw_rd_pid *p,
		    const struct lw_rd_event *e)
{
	const struct lw_rd_pid *ep;

	if (p->run_id)
		return e->run_id == p->run_id;
	if (p->pid)
		return e->pid == p->pid;
	ep = pid_entry(d, e->pid);
	return ep && ep->target_name && p->target_name && !strcmp(ep->target_name, p->target_name);
}

void lw_rd_rollup_free(struct lw_rd_pid *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].sites);
		free(v[i].bsites);
	}
	free(v);
}

static int same_group(const struct lw_rd_pid *a, const struct lw_rd_pid *b)
{
	if (!a->target_name || !b->target_name)
		return a == b;
	return strcmp(a->target_name, b->target_name) == 0;
}

int lw_rd_rollup_targets(const struct lw_report_data *d, struct lw_rd_pid **out, size_t *nout)
{
	struct lw_rd_pid *v = calloc(d->npids ? d->npids : 1, sizeof(*v));
	size_t i, j, n = 0;
	char *done = calloc(d->npids ? d->npids : 1, 1);

	if (!v || !done) {
		free(v);
		free(done);
		return -ENOMEM;
	}
	for (i = 0; i < d->npids; i++) {
		struct site_acc sa = { 0 }, ba = { 0 };
		struct lw_rd_pid *g;
		int r = 0;

		if (done[i])
			continue;
		g = &v[n++];
		*g = d->pids[i];
		g->sites = g->bsites = NULL;
		g->nsites = g->nbsites = 0;
		g->nprocs = 0;
		g->run_id = 0;
		g->run_seq = 0;
		g->runs = g->precise_runs = g->default_runs = 0;
		g->slow_callbacks = g->blocking_calls = g->lost_events = g->suppressed = 0;
		g->summaries_used = g->record_sets = 0;
		g->nevents = 0;
		g->scope = LW_RD_SCOPE_NONE;
		for (j = i; j < d->npids && !r; j++) {
			const struct lw_rd_pid *p = &d->pids[j];
			size_t k;

			if (done[j] || !same_group(&d->pids[i], p))
				continue;
			done[j] = 1;
			g->nprocs++;
			if (g->nprocs > 1) {
				g->pid = 0;
				g->loops = NULL;	/* per process threads: not added up */
				g->nloops = 0;
				if (p->comm && g->comm && strcmp(p->comm, g->comm))
					g->comm = NULL;
			}
			g->runs += p->runs;
			g->precise_runs += p->precise_runs;
			g->default_runs += p->default_runs;
			if (p->first_ns && (!g->first_ns || p->first_ns < g->first_ns))
				g->first_ns = p->first_ns;
			if (p->last_ns > g->last_ns)
				g->last_ns = p->last_ns;
			g->slow_callbacks += p->slow_callbacks;
			g->blocking_calls += p->blocking_calls;
			g->lost_events += p->lost_events;
			g->suppressed += p->suppressed;
			g->summaries_used += p->summaries_used;
			g->record_sets += p->record_sets;
			g->scope |= p->scope;
			g->nevents += p->nevents;
			for (k = 0; k < p->nsites && !r; k++)
				r = lw_rd_acc_add_row(&sa, &p->sites[k]);
			for (k = 0; k < p->nbsites && !r; k++)
				r = lw_rd_acc_add_row(&ba, &p->bsites[k]);
		}
		if (r) {
			lw_rd_acc_free(&sa);
			lw_rd_acc_free(&ba);
			free(done);
			lw_rd_rollup_free(v, n - 1);
			return r;
		}
		lw_rd_acc_finish(&sa, &g->sites, &g->nsites);
		lw_rd_acc_finish(&ba, &g->bsites, &g->nbsites);
		lw_rd_acc_free(&sa);
		lw_rd_acc_free(&ba);
	}
	free(done);
	*out = v;
	*nout = n;
	return 0;
}
