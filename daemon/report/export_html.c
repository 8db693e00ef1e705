// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One self-contained HTML page: no scripts, fonts or stylesheets from anywhere else (the SVGs are
 * inline, tooltips are SVG <title>s). Sections, by id: summary, sites (tables with an SVG
 * histogram per site), blocking, flamegraph (an SVG flame graph of the folded stacks), timeline
 * (slow callbacks and the blocking calls in them, a lane per thread), slowest.
 */
#include "report/export.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/lw_util.h"

#define FG_WIDTH 1200
#define FG_ROW 18
#define FG_MIN_PX 0.3
#define TL_WIDTH 1200
#define TL_LABEL 170
#define TL_LANE 34
#define TL_MAX_EVENTS 20000
#define HIST_W 180
#define HIST_H 30

void lw_ex_html_str(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
				fputc(' ', f);
			else
				fputc(*s, f);
		}
	}
}

static const char css[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;"
	"background:#f4f5f7}\n"
	"header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}"
	"header p{margin:4px 0 0;color:#c5cad6}\n"
	"section{background:#fff;margin:18px 28px;padding:14px 20px;border-radius:6px;"
	"box-shadow:0 1px 3px rgba(0,0,0,.12)}\n"
	"h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}\n"
	".cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#eef1f6;border-radius:5px;"
	"padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}\n"
	"table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;"
	"padding:4px 8px;border-bottom:1px solid #e3e6ec;vertical-align:middle}"
	"th{background:#f0f2f5}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	".muted{color:#6b7385}.site{font-family:ui-monospace,monospace}.nw{white-space:nowrap}\n"
	"svg.flamegraph,svg.timeline{display:block;max-width:100%;height:auto}\n"
	".util{display:inline-block;height:10px;background:#e8590c;border-radius:2px;"
	"vertical-align:middle}\n"
	"svg text{font:11px ui-monospace,monospace;fill:#1d2330}svg .frame rect{stroke:#fff;"
	"stroke-width:.5}\n"
	"svg.hist rect.bar{fill:#e8590c}svg.hist rect.bg{fill:#f6f0ea}\n"
	"svg.timeline rect.cb{fill:#e8590c}svg.timeline rect.blk{fill:#1c7ed6}"
	"svg.timeline line.tick{stroke:#d5d9e0}svg.timeline rect.lane{fill:#f7f8fa}\n"
	".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;"
	"vertical-align:middle}\n"
	"footer{margin:18px 28px;color:#6b7385;font-size:12px}\n";

static void fmt_ms(char *buf, size_t size, double ms)
{
	if (ms >= 1000)
		snprintf(buf, size, "%.3f s", ms / 1000);
	else if (ms >= 1)
		snprintf(buf, size, "%.1f ms", ms);
	else
		snprintf(buf, size, "%.3f ms", ms);
}

static void td_ms(FILE *f, double ms)
{
	char b[32];

	fmt_ms(b, sizeof(b), ms);
	fprintf(f, "<td class=\"n nw\">%s</td>", b);
}

static void site_label(FILE *f, const char *q, const char *file, int64_t line)
{
	fputs("<span class=\"site\">", f);
	lw_ex_html_str(f, q ? q : "?");
	fputs("</span>", f);
	if (file) {
		fputs(" <span class=\"muted\" title=\"", f);
		lw_ex_html_str(f, file);
		fputs("\">", f);
		lw_ex_html_str(f, lw_basename(file));
		fprintf(f, ":%lld</span>", (long long)line);
	}
}

/* ---- summary */

static void html_summary(FILE *f, const struct lw_report_data *d)
{
	uint64_t slow = 0, blk = 0, lost = 0;
	size_t i, j, nslow = 0, nblk = 0;
	char a[40], b[40];

	for (i = 0; i < d->npids; i++) {
		slow += d->pids[i].slow_callbacks;
		blk += d->pids[i].blocking_calls;
		lost += d->pids[i].lost_events;
	}
	for (i = 0; i < d->nev; i++) {
		if (d->ev[i]->type == LW_RD_SLOW_CALLBACK)
			nslow++;
		else
			nblk++;
	}
	fputs("<section id=\"summary\"><h2>Summary</h2>\n<div class=\"cards\">", f);
	fprintf(f, "<div class=\"card\"><b>%zu</b>process%s</div>", d->npids,
		d->npids == 1 ? "" : "es");
	fprintf(f, "<div class=\"card\"><b>%llu</b>slow callbacks</div>", (unsigned long long)slow);
	fprintf(f, "<div class=\"card\"><b>%llu</b>blocking calls</div>", (unsigned long long)blk);
	fprintf(f, "<div class=\"card\"><b>%zu</b>records in range</div>", nslow + nblk);
	fprintf(f, "<div class=\"card\"><b>%llu</b>lost events</div>", (unsigned long long)lost);
	if (d->first_ns) {
		fprintf(f, "<div class=\"card\"><b>%.1f s</b>%s … %s</div>",
			(double)(d->last_ns - d->first_ns) / 1e9,
			lw_ex_ts(d->first_ns, a, sizeof(a)), lw_ex_ts(d->last_ns, b, sizeof(b)));
	}
	fputs("</div>\n", f);
	fputs("<h3>Processes</h3><table class=\"pids\"><tr><th>pid</th><th>command</th>"
	      "<th>runtime</th><th>runs</th><th class=\"n\">slow callbacks</th>"
	      "<th class=\"n\">blocking calls</th><th>loop threads (utilization)</th></tr>\n", f);
	for (i = 0; i < d->npids; i++) {
		const struct lw_rd_pid *p = &d->pids[i];

		fprintf(f, "<tr><td>%d</td><td>", (int)p->pid);
		lw_ex_html_str(f, p->comm ? p->comm : "?");
		if (p->target_name) {
			fputs(" <span class=\"muted\">target ", f);
			lw_ex_html_str(f, p->target_name);
			fputs("</span>", f);
		}
		fputs("</td><td>", f);
		lw_ex_html_str(f, p->runtime ? p->runtime : "?");
		fputc(' ', f);
		lw_ex_html_str(f, p->runtime_version ? p->runtime_version : "");
		fprintf(f, "</td><td>%u (%u default, %u precise)</td><td class=\"n\">%llu</td>"
			   "<td class=\"n\">%llu</td><td>", p->runs, p->default_runs,
			p->precise_runs, (unsigned long long)p->slow_callbacks,
			(unsigned long long)p->blocking_calls);
		for (j = 0; j < p->nloops; j++) {
			const struct lw_rd_loop *l = &p->loops[j];

			fprintf(f, "%s%d ", j ? "<br>" : "", (int)l->tid);
			lw_ex_html_str(f, l->comm ? l->comm : "");
			fprintf(f, " <span class=\"util\" style=\"width:%dpx\"></span> %.1f%%",
				(int)lround(l->utilization * 100), l->utilization * 100);
		}
		if (!p->nloops)
			fputs("<span class=\"muted\">no summary</span>", f);
		fputs("</td></tr>\n", f);
	}
	fputs("</table></section>\n", f);
}

/* ---- sites */

static void html_hist(FILE *f, const struct lw_hist *h)
{
	uint32_t lo = LW_HIST_SLOTS, hi = 0, i, maxc = 0;
	double bw;
	char a[32], b[32];

	for (i = 0; i < LW_HIST_SLOTS; i++)
		if (h->slots[i]) {
			if (lo == LW_HIST_SLOTS)
				lo = i;
			hi = i;
			if (h->slots[i] > maxc)
				maxc = h->slots[i];
		}
	if (lo == LW_HIST_SLOTS) {
		fputs("<span class=\"muted\">—</span>", f);
		return;
	}
	/* a little context on both sides */
	lo = lo >= 2 ? lo - 2 : 0;
	hi = hi + 2 < LW_HIST_SLOTS ? hi + 2 : LW_HIST_SLOTS - 1;
	bw = (double)HIST_W / (double)(hi - lo + 1);
	fprintf(f, "<svg class=\"hist\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
		   "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\"/>",
		HIST_W, HIST_H, HIST_W, HIST_H, HIST_W, HIST_H);
	for (i = lo; i <= hi; i++) {
		double bh;

		if (!h->slots[i])
			continue;
		bh = (double)h->slots[i] / (double)maxc * (HIST_H - 2);
		if (bh < 1.5)
			bh = 1.5;
		fmt_ms(a, sizeof(a), (double)lw_hist_slot_low(i) / 1e6);
		fmt_ms(b, sizeof(b), (double)lw_hist_slot_high(i) / 1e6);
		fprintf(f, "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
			   "height=\"%.2f\"><title>%s … %s: %u</title></rect>",
			(double)(i - lo) * bw + 0.5, HIST_H - bh, bw > 2 ? bw - 1 : bw, bh, a,
			i == LW_HIST_SLOTS - 1 ? "∞" : b, h->slots[i]);
	}
	fputs("</svg>", f);
}

static const char *scope_text(enum lw_rd_scope s)
{
	if (s == LW_RD_SCOPE_ALL)
		return "every callback (precise mode)";
	if (s == LW_RD_SCOPE_MIXED)
		return "every callback in precise runs, slow ones in default runs";
	return "slow callbacks";
}

static void html_sites(FILE *f, const struct lw_report_data *d, size_t max)
{
	size_t i, j;

	fputs("<section id=\"sites\"><h2>Slowest callback sites</h2>\n", f);
	if (!d->npids)
		fputs("<p class=\"muted\">No records in range.</p>\n", f);
	for (i = 0; i < d->npids; i++) {
		const struct lw_rd_pid *p = &d->pids[i];

		fprintf(f, "<h3>pid %d ", (int)p->pid);
		lw_ex_html_str(f, p->comm ? p->comm : "");
		fprintf(f, " <span class=\"muted\">%s</span></h3>\n", scope_text(p->scope));
		fputs("<table class=\"sites\"><tr><th>site</th><th class=\"n\">count</th>"
		      "<th class=\"n\">total</th><th class=\"n\">p50</th><th class=\"n\">p99</th>"
		      "<th class=\"n\">max</th><th>histogram</th></tr>\n", f);
		for (j = 0; j < p->nsites && j < max; j++) {
			const struct lw_rd_site *s = &p->sites[j];

			fputs("<tr class=\"site-row\"><td>", f);
			site_label(f, s->qualname, s->file, s->line);
			fprintf(f, "</td><td class=\"n\">%llu</td>", (unsigned long long)s->count);
			td_ms(f, s->total_ms);
			td_ms(f, s->p50_ms);
			td_ms(f, s->p99_ms);
			td_ms(f, s->max_ms);
			fputs("<td>", f);
			html_hist(f, &s->hist);
			fputs("</td></tr>\n", f);
		}
		if (!p->nsites)
			fputs("<tr><td colspan=\"7\" class=\"muted\">none</td></tr>\n", f);
		if (p->nsites > max)
			fprintf(f, "<tr><td colspan=\"7\" class=\"muted\">… %zu more</td></tr>\n",
				p->nsites - max);
		fputs("</table>\n", f);
	}
	fputs("</section>\n", f);
	fputs("<section id=\"blocking\"><h2>Blocking call sites</h2>\n", f);
	for (i = 0; i < d->npids; i++) {
		const struct lw_rd_pid *p = &d->pids[i];

		fprintf(f, "<h3>pid %d ", (int)p->pid);
		lw_ex_html_str(f, p->comm ? p->comm : "");
		fputs("</h3>\n<table class=\"blocking-sites\"><tr><th>syscall</th><th>target</th>"
		      "<th>at</th><th class=\"n\">count</th><th class=\"n\">total</th>"
		      "<th class=\"n\">p99</th><th class=\"n\">max</th></tr>\n", f);
		for (j = 0; j < p->nbsites && j < max; j++) {
			const struct lw_rd_site *s = &p->bsites[j];

			fputs("<tr><td class=\"site\">", f);
			lw_ex_html_str(f, s->syscall ? s->syscall : "?");
			fputs("</td><td class=\"site\">", f);
			lw_ex_html_str(f, s->target ? s->target : "—");
			fputs("</td><td>", f);
			site_label(f, s->qualname, s->file, s->line);
			fprintf(f, "</td><td class=\"n\">%llu</td>", (unsigned long long)s->count);
			td_ms(f, s->total_ms);
			td_ms(f, s->p99_ms);
			td_ms(f, s->max_ms);
			fputs("</tr>\n", f);
		}
		if (!p->nbsites)
			fputs("<tr><td colspan=\"7\" class=\"muted\">none</td></tr>\n", f);
		fputs("</table>\n", f);
	}
	fputs("</section>\n", f);
}

/* ---- flame graph */

struct fnode {
	const char *name;		/* points into a folded stack (NUL-terminated copy) */
	uint64_t value;
	size_t child, next;		/* indexes + 1; 0: none */
	int depth;
};

struct ftree {
	struct fnode *v;
	size_t n, cap;
	int maxdepth;
};

static long ft_add(struct ftree *t, const char *name, int depth)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct fnode *nv = realloc(t->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	t->v[t->n].name = name;
	t->v[t->n].depth = depth;
	if (depth > t->maxdepth)
		t->maxdepth = depth;
	return (long)t->n++;
}

/* stacks are ';'-split in place (their frames then point into them) */
static int ft_build(struct ftree *t, struct lw_folded *v, size_t n)
{
	size_t i;

	if (ft_add(t, "all", 0) < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t cur = 0;
		char *s = v[i].stack, *tok, *save = NULL;
		int depth = 0;

		t->v[0].value += v[i].value_us;
		for (tok = strtok_r(s, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
			size_t c = t->v[cur].child, last = 0;
			long k;

			depth++;
			while (c && strcmp(t->v[c - 1].name, tok)) {
				last = c;
				c = t->v[c - 1].next;
			}
			if (!c) {
				k = ft_add(t, tok, depth);
				if (k < 0)
					return -ENOMEM;
				c = (size_t)k + 1;
				if (last)
					t->v[last - 1].next = c;
				else
					t->v[cur].child = c;
			}
			cur = c - 1;
			t->v[cur].value += v[i].value_us;
		}
	}
	return 0;
}

static void frame_color(const char *name, char *buf, size_t size)
{
	uint64_t h = 1469598103934665603ull;
	const char *s;

	for (s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	if (name[0] == '[' && strncmp(name, "[GIL", 4) == 0)
		snprintf(buf, size, "rgb(%d,%d,%d)", 150 + (int)(h % 40), 110 + (int)(h / 40 % 40),
			 210);
	else if (name[0] == '[')	/* a syscall leaf */
		snprintf(buf, size, "rgb(%d,%d,%d)", 60 + (int)(h % 50), 140 + (int)(h / 50 % 50),
			 220);
	else
		snprintf(buf, size, "rgb(%d,%d,%d)", 215 + (int)(h % 40), 90 + (int)(h / 40 % 110),
			 40 + (int)(h / 4400 % 40));
}

static void fg_draw(FILE *f, const struct ftree *t, size_t node, double x, double scale,
		    int height, uint64_t total)
{
	const struct fnode *nd = &t->v[node];
	double w = (double)nd->value * scale, cx = x;
	double y = (double)height - (double)(nd->depth + 1) * FG_ROW;
	char color[40], dur[32];
	size_t c;

	if (w < FG_MIN_PX)
		return;
	frame_color(nd->name, color, sizeof(color));
	fmt_ms(dur, sizeof(dur), (double)nd->value / 1000.0);
	fputs("<g class=\"frame\"><title>", f);
	lw_ex_html_str(f, nd->name);
	fprintf(f, " — %s (%.1f%%)</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" "
		   "height=\"%d\" fill=\"%s\"/>", dur,
		total ? 100.0 * (double)nd->value / (double)total : 0, x, y, w, FG_ROW - 1, color);
	if (w > 28) {
		size_t room = (size_t)((w - 6) / 6.7), len = strlen(nd->name);
		char label[400];

		if (room >= sizeof(label))
			room = sizeof(label) - 1;
		if (len <= room) {
			memcpy(label, nd->name, len + 1);
		} else if (room > 2) {
			memcpy(label, nd->name, room - 2);
			strcpy(label + room - 2, "..");
		} else {
			label[0] = 0;
		}
		if (label[0]) {
			fprintf(f, "<text x=\"%.2f\" y=\"%.0f\">", x + 3, y + FG_ROW - 5);
			lw_ex_html_str(f, label);
			fputs("</text>", f);
		}
	}
	fputs("</g>\n", f);
	for (c = nd->child; c; c = t->v[c - 1].next) {
		fg_draw(f, t, c - 1, cx, scale, height, total);
		cx += (double)t->v[c - 1].value * scale;
	}
}

static int html_flamegraph(FILE *f, const struct lw_report_data *d, enum lw_weight w)
{
	struct ftree t = { 0 };
	struct lw_folded *v;
	size_t n;
	int r = lw_folded_build(d, w, &v, &n), height;

	if (r)
		return r;
	fprintf(f, "<section id=\"flamegraph\"><h2>Where loop time went</h2>\n"
		   "<p class=\"muted\">Flame graph of the slow callbacks' stacks (outermost at the "
		   "bottom), weighted by %s time%s. Leaves in [brackets] are blocking syscalls."
		   "</p>\n",
		lw_weight_name(w),
		w == LW_WEIGHT_WALL ? "; blocking calls are split out of their callbacks" : "");
	r = ft_build(&t, v, n);
	if (!r) {
		height = (t.maxdepth + 1) * FG_ROW + 4;
		fprintf(f, "<svg class=\"flamegraph\" xmlns=\"http://www.w3.org/2000/svg\" "
			   "width=\"100%%\" viewBox=\"0 0 %d %d\">\n", FG_WIDTH, height);
		if (t.v[0].value)
			fg_draw(f, &t, 0, 0, (double)FG_WIDTH / (double)t.v[0].value, height,
				t.v[0].value);
		else
			fprintf(f, "<text x=\"10\" y=\"14\">no samples</text>\n");
		fputs("</svg>\n", f);
	}
	fputs("</section>\n", f);
	free(t.v);
	lw_folded_free(v, n);
	return r;
}

/* ---- timeline */

struct tl_lane {
	pid_t pid, tid;
};

static int lane_cmp(const void *a, const void *b)
{
	const struct tl_lane *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int dur_desc(const void *a, const void *b)
{
	const struct lw_rd_event *x = *(const struct lw_rd_event *const *)a;
	const struct lw_rd_event *y = *(const struct lw_rd_event *const *)b;

	if (x->duration_ms != y->duration_ms)
		return x->duration_ms < y->duration_ms ? 1 : -1;
	return x < y ? -1 : x > y;
}

static int html_timeline(FILE *f, const struct lw_report_data *d)
{
	const struct lw_rd_event **shown = NULL;
	struct tl_lane *lanes = NULL;
	size_t nl = 0, i, j, nshown = d->nev;
	uint64_t t0 = UINT64_MAX, t1 = 0, span, step;
	double scale, plot = TL_WIDTH - TL_LABEL - 10;
	int height;
	char buf[64];

	fputs("<section id=\"timeline\"><h2>Timeline</h2>\n", f);
	if (!d->nev) {
		fputs("<p class=\"muted\">No slow callbacks or blocking calls in range.</p>"
		      "<svg class=\"timeline\" width=\"10\" height=\"10\"></svg></section>\n", f);
		return 0;
	}
	shown = malloc(d->nev * sizeof(*shown));
	lanes = calloc(d->nev, sizeof(*lanes));
	if (!shown || !lanes) {
		free(shown);
		free(lanes);
		return -ENOMEM;
	}
	memcpy(shown, d->ev, d->nev * sizeof(*shown));
	if (nshown > TL_MAX_EVENTS) {
		qsort(shown, nshown, sizeof(*shown), dur_desc);
		nshown = TL_MAX_EVENTS;
	}
	for (i = 0; i < nshown; i++) {
		const struct lw_rd_event *e = shown[i];
		pid_t tid = e->tid ? e->tid : e->pid;

		if (e->start_ns < t0)
			t0 = e->start_ns;
		if (e->end_ns > t1)
			t1 = e->end_ns;
		for (j = 0; j < nl; j++)
			if (lanes[j].pid == e->pid && lanes[j].tid == tid)
				break;
		if (j == nl) {
			lanes[nl].pid = e->pid;
			lanes[nl].tid = tid;
			nl++;
		}
	}
	qsort(lanes, nl, sizeof(*lanes), lane_cmp);
	if (t1 <= t0)
		t1 = t0 + 1000000;
	span = t1 - t0;
	scale = plot / (double)span;
	height = 24 + (int)nl * TL_LANE + 8;
	fprintf(f, "<p class=\"legend muted\">From %s, %.3f s. <span style=\"background:#e8590c\">"
		   "</span>slow callback<span style=\"background:#1c7ed6\"></span>blocking call%s"
		   "</p>\n",
		lw_ex_ts(t0, buf, sizeof(buf)), (double)span / 1e9,
		nshown < d->nev ? " (the longest shown)" : "");
	fprintf(f, "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%%\" "
		   "viewBox=\"0 0 %d %d\">\n", TL_WIDTH, height);
	/* ticks: 1, 2 or 5 times a power of ten, about 8 of them */
	step = 1000;
	while (span / step > 8) {
		if (span / (step * 2) <= 8) {
			step *= 2;
			break;
		}
		if (span / (step * 5) <= 8) {
			step *= 5;
			break;
		}
		step *= 10;
	}
	for (i = 0; (uint64_t)i * step <= span; i++) {
		double x = TL_LABEL + (double)((uint64_t)i * step) * scale;

		fprintf(f, "<line class=\"tick\" x1=\"%.1f\" y1=\"18\" x2=\"%.1f\" y2=\"%d\"/>",
			x, x, height - 4);
		/* every tick in the step's unit: +0 s, +2 s, ... or +0 ms, +500 ms, ... */
		if (step >= 1000000000ULL)
			snprintf(buf, sizeof(buf), "%g s", (double)((uint64_t)i * step) / 1e9);
		else if (step >= 1000000ULL)
			snprintf(buf, sizeof(buf), "%g ms", (double)((uint64_t)i * step) / 1e6);
		else
			snprintf(buf, sizeof(buf), "%g \xc2\xb5s", (double)((uint64_t)i * step) / 1e3);
		fprintf(f, "<text x=\"%.1f\" y=\"13\"%s>+%s</text>\n", x + 2,
			x > TL_WIDTH - 70 ? " text-anchor=\"end\"" : "", buf);
	}
	for (j = 0; j < nl; j++) {
		const char *comm = NULL;

		for (i = 0; i < d->npids; i++)
			if (d->pids[i].pid == lanes[j].pid)
				comm = d->pids[i].comm;
		fprintf(f, "<rect class=\"lane\" x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\"/>",
			TL_LABEL, 22 + (int)j * TL_LANE, plot, TL_LANE - 4);
		fprintf(f, "<text x=\"4\" y=\"%d\">", 22 + (int)j * TL_LANE + 18);
		lw_ex_html_str(f, comm ? comm : "pid");
		fprintf(f, " %d/%d</text>\n", (int)lanes[j].pid, (int)lanes[j].tid);
	}
	for (i = 0; i < nshown; i++) {
		const struct lw_rd_event *e = shown[i];
		pid_t tid = e->tid ? e->tid : e->pid;
		struct tl_lane key = { e->pid, tid }, *l = bsearch(&key, lanes, nl, sizeof(*lanes),
								   lane_cmp);
		double x = TL_LABEL + (double)(e->start_ns - t0) * scale;
		double w = (double)(e->end_ns - e->start_ns) * scale;
		int y = 22 + (int)(l ? l - lanes : 0) * TL_LANE;
		int cb = e->type == LW_RD_SLOW_CALLBACK;
		char name[1200], dur[32];

		if (w < 1)
			w = 1;
		if (cb)
			lw_ex_callback_name(&e->cb, e->has_callback, name, sizeof(name));
		else
			lw_ex_blocking_name(e, name, sizeof(name));
		fmt_ms(dur, sizeof(dur), e->duration_ms);
		fprintf(f, "<rect class=\"%s\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\">"
			   "<title>", cb ? "cb" : "blk", x, cb ? y + 3 : y + 17, w, cb ? 12 : 10);
		lw_ex_html_str(f, name);
		fprintf(f, " — %s at %s", dur, lw_ex_ts(e->end_ns, buf, sizeof(buf)));
		if (e->nstack) {
			lw_ex_frame_name(&e->stack[0], name, sizeof(name));
			fputs(" in ", f);
			lw_ex_html_str(f, name);
		}
		fputs("</title></rect>\n", f);
	}
	fputs("</svg></section>\n", f);
	free(shown);
	free(lanes);
	return 0;
}

/* ---- the slowest callbacks */

static void html_slowest(FILE *f, const struct lw_report_data *d, size_t max)
{
	const struct lw_rd_event **v;
	size_t i, n = 0;
	char name[1600], ts[40];

	fputs("<section id=\"slowest\"><h2>Slowest callbacks</h2>\n<table class=\"slowest\"><tr>"
	      "<th>ended</th><th>pid/tid</th><th>callback</th><th class=\"n\">duration</th>"
	      "<th class=\"n\">on cpu</th><th class=\"n\">blocked</th><th>at</th></tr>\n", f);
	v = malloc((d->nev ? d->nev : 1) * sizeof(*v));
	if (v) {
		for (i = 0; i < d->nev; i++)
			if (d->ev[i]->type == LW_RD_SLOW_CALLBACK)
				v[n++] = d->ev[i];
		qsort(v, n, sizeof(*v), dur_desc);
	}
	for (i = 0; i < n && i < max; i++) {
		const struct lw_rd_event *e = v[i];

		fprintf(f, "<tr><td class=\"nw\">%s</td><td>%d/%d</td><td class=\"site\">",
			lw_ex_ts(e->end_ns, ts, sizeof(ts)), (int)e->pid, (int)e->tid);
		lw_ex_callback_repr(&e->cb, e->has_callback, name, sizeof(name));
		lw_ex_html_str(f, name);
		fputs("</td>", f);
		td_ms(f, e->duration_ms);
		td_ms(f, e->cpu_ms);
		td_ms(f, e->blocked_ms + e->gil_ms);
		fputs("<td>", f);
		if (e->nstack)
			site_label(f, e->stack[0].function, e->stack[0].file, e->stack[0].line);
		fputs("</td></tr>\n", f);
	}
	if (!n)
		fputs("<tr><td colspan=\"7\" class=\"muted\">none</td></tr>\n", f);
	fputs("</table></section>\n", f);
	free(v);
}

int lw_export_html(FILE *f, const struct lw_report_data *d, const struct lw_export_opts *o)
{
	size_t max = o && o->max_sites ? o->max_sites : 25;
	enum lw_weight w = o ? o->weight : LW_WEIGHT_WALL;
	const char *title = o && o->title ? o->title : "records";
	int r;

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<title>loopwatch report — ", f);
	lw_ex_html_str(f, title);
	fprintf(f, "</title>\n<style>\n%s</style></head>\n<body>\n", css);
	fputs("<header><h1>loopwatch report</h1><p>", f);
	lw_ex_html_str(f, title);
	fprintf(f, " · %zu records read, %zu lines skipped</p></header>\n", d->records,
		d->skipped);
	html_summary(f, d);
	html_sites(f, d, max);
	r = html_flamegraph(f, d, w);
	if (!r)
		r = html_timeline(f, d);
	if (!r)
		html_slowest(f, d, max);
	fputs("<footer>Generated by loopwatch " LW_VERSION ". Self-contained: no scripts, no "
	      "external resources.</footer>\n</body></html>\n", f);
	if (r)
		return r;
	return ferror(f) ? -EIO : 0;
}
