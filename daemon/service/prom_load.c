// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* prom_load.c — a textfile read back, so counters go on counting over a loopwatchd restart */
#include "service/prom_priv.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reading a file back */

/* one sample line: name, up to 8 labels, value. 0 or -1 */
struct sample {
	char name[96];
	int nl;
	char key[8][24];
	char val[8][640];
	double value;
};

static int parse_line(const char *s, struct sample *o)
{
	size_t n = 0;
	char *end;

	memset(o, 0, sizeof(*o));
	while (*s && *s != '{' && *s != ' ' && n + 1 < sizeof(o->name))
		o->name[n++] = *s++;
	if (*s == '{') {
		s++;
		while (*s && *s != '}') {
			size_t kn = 0, vn = 0;

			if (o->nl == 8)
				return -1;
			while (*s && *s != '=' && kn + 1 < sizeof(o->key[0]))
				o->key[o->nl][kn++] = *s++;
			if (s[0] != '=' || s[1] != '"')
				return -1;
			s += 2;
			while (*s && *s != '"') {
				char ch = *s++;

				if (ch == '\\' && *s) {
					ch = *s++;
					if (ch == 'n')
						ch = '\n';
				}
				if (vn + 1 < sizeof(o->val[0]))
					o->val[o->nl][vn++] = ch;
			}
			if (*s != '"')
				return -1;
			s++;
			o->nl++;
			if (*s == ',')
				s++;
		}
		if (*s != '}')
			return -1;
		s++;
	}
	if (*s != ' ')
		return -1;
	o->value = strtod(s + 1, &end);
	if (end == s + 1 || !(o->value >= 0) || o->value > 1e18)
		return -1;
	return 0;
}

static const char *label(const struct sample *o, const char *key)
{
	int i;

	for (i = 0; i < o->nl; i++)
		if (!strcmp(o->key[i], key))
			return o->val[i];
	return NULL;
}

static int take_back(struct lw_prom *p, const struct sample *o)
{
	const char *rt = label(o, "runtime"), *site = label(o, "site"), *fl = label(o, "file_line");
	const char *tgt = label(o, "target"), *sys = label(o, "syscall"), *le = label(o, "le");
	const char *nm = o->name + strlen("loopwatch_");
	uint64_t u = (uint64_t)llround(o->value);
	struct psite *s = NULL;
	struct psys *sc;

	if (strncmp(o->name, "loopwatch_", 10) || !tgt || strcmp(tgt, p->target) || !rt)
		return 0;
	if (site && fl) {
		int other = !strcmp(site, "other") && !*fl;

		s = lw_prom_site_get(p, rt, site, fl, other);
		if (!s)
			return 0;
		s->named = !other;
	}
	if (s && (!strcmp(nm, "slow_callbacks_total") ||
		  !strncmp(nm, "callback_duration_seconds", 25) ||
		  !strcmp(nm, "slow_callback_seconds_total")))
		s->has_slow = 1;
	if (s && !strcmp(nm, "blocked_seconds_total"))
		s->has_blocked = 1;
	if (s && !strcmp(nm, "slow_callbacks_total")) {
		s->out.slow = u;
	} else if (s && !strcmp(nm, "slow_callback_seconds_total")) {
		s->out.slow_s = o->value;
		s->rank += o->value;
	} else if (s && !strcmp(nm, "blocked_seconds_total")) {
		s->out.blocked_s = o->value;
		s->rank += o->value;
	} else if (s && !strcmp(nm, "callback_duration_seconds_sum")) {
		s->out.hsum_s = o->value;
	} else if (s && le && !strcmp(nm, "callback_duration_seconds_bucket")) {
		int k;

		/* cumulative in the file: keep them so, undone below */
		if (!strcmp(le, "+Inf")) {
			s->out.b[NBUCKETS] = u;
		} else {
			double v = strtod(le, NULL);

			for (k = 0; k < NBUCKETS; k++)
				if (fabs(v - (double)(1ull << (BUCKET_FIRST_LOG2 + k)) / 1e6) < 1e-7)
					s->out.b[k] = u;
		}
	} else if (sys && !strcmp(nm, "blocking_calls_total")) {
		if ((sc = lw_prom_sys_get(p, rt, sys)))
			sc->count = u;
	} else if (sys && !strcmp(nm, "blocking_seconds_total")) {
		if ((sc = lw_prom_sys_get(p, rt, sys)))
			sc->seconds = o->value;
	} else if (!strcmp(nm, "slow_ticks_total")) {
		lw_prom_rt_get(p, rt)->slow_ticks = u;
	} else if (!strcmp(nm, "stuck_tasks_total")) {
		lw_prom_rt_get(p, rt)->stuck_tasks = u;
	} else if (!strcmp(nm, "deadlocked_tasks_total")) {
		lw_prom_rt_get(p, rt)->deadlocked_tasks = u;
	} else if (!strcmp(nm, "processes_started_total")) {
		lw_prom_rt_get(p, rt)->started = u;
	} else if (!strcmp(nm, "processes_exited_total")) {
		lw_prom_rt_get(p, rt)->exited = u;
	} else {
		return 0;
	}
	return 1;
}

int lw_prom__load(struct lw_prom *p, const char *path)
{
	struct sample *o = malloc(sizeof(*o));
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, it = 0;
	struct psite *s;
	int e, n = 0, k;

	if (!o)
		return -ENOMEM;
	e = lw_read_file(path, 64u << 20, &text, &len);
	if (e) {
		free(o);
		return e == -ENOENT ? 0 : e;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#' && !parse_line(line, o))
			n += take_back(p, o);
	/* buckets back to per-bucket counts (+Inf: the count) */
	while ((s = lw_u64map__next(p->sites, &it, NULL))) {
		for (k = NBUCKETS; k > 0; k--)
			s->out.b[k] = s->out.b[k] >= s->out.b[k - 1] ? s->out.b[k] - s->out.b[k - 1]
								    : 0;
	}
	free(text);
	free(o);
	return n;
}
