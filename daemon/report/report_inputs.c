// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "report/report_priv.h"

/* ---- time */

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_abs_time(const char *s, uint64_t *ns)
{
	struct tm tm = { 0 };
	int y, mo, dd, h = 0, mi = 0, sec = 0, oh, om;
	long off = 0;
	uint64_t frac = 0, scale = 100000000;
	const char *p = s;
	time_t t;

	if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &dd))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (parse_digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				while (isdigit((unsigned char)*p)) {
					frac += (uint64_t)(*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int neg = *p == '-';

		p++;
		if (parse_digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (parse_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off = (oh * 60L + om) * 60L * (neg ? -1 : 1);
	}
	if (*p)
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || dd < 1 || dd > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t < 0 || (long)t - off < 0)
		return -EINVAL;
	*ns = (uint64_t)((long)t - off) * 1000000000ull + frac;
	return 0;
}

/* "10m", "1.5h", "2d", "1w", "250ms" (a unit is required) */
static int parse_ago(const char *s, uint64_t *ns)
{
	char *end;
	double v, scale;
	size_t len = strlen(s);

	if (!len || !isalpha((unsigned char)s[len - 1]))
		return -EINVAL;
	if (strcmp(s + len - 1, "d") == 0 || strcmp(s + len - 1, "w") == 0) {
		errno = 0;
		v = strtod(s, &end);
		if (errno || end != s + len - 1 || !isfinite(v) || v < 0 ||
		    !isdigit((unsigned char)*s))
			return -EINVAL;
		scale = s[len - 1] == 'd' ? 86400e9 : 7 * 86400e9;
		if (v * scale > 1.8e19)
			return -ERANGE;
		*ns = (uint64_t)(v * scale);
		return 0;
	}
	return lw_parse_duration(s, ns);
}

int lw_rd_parse_time(const char *s, uint64_t now_ns, uint64_t *ns)
{
	char buf[64];
	size_t len;
	uint64_t ago;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	if (strcmp(buf, "now") == 0) {
		*ns = now_ns;
		return 0;
	}
	if (buf[0] == '@') {
		char *end;
		double v;

		errno = 0;
		v = strtod(buf + 1, &end);
		if (errno || end == buf + 1 || *end || !isfinite(v) || v < 0 || v > 1e10)
			return -EINVAL;
		*ns = (uint64_t)(v * 1e9);
		return 0;
	}
	if (len >= 10 && isdigit((unsigned char)buf[0]) && buf[4] == '-')
		return parse_abs_time(buf, ns);
	/* relative: "10m", "10m ago", "10 m ago", "-10m" */
	{
		char *p = buf, *q;
		int minus = 0;

		if (*p == '-') {
			minus = 1;
			p++;
		}
		if (len > 3 && strcmp(buf + len - 3, "ago") == 0) {
			if (minus)
				return -EINVAL;
			buf[len - 3] = 0;
		}
		/* drop inner blanks ("10 m") */
		for (q = p; *p; p++)
			if (!isspace((unsigned char)*p))
				*q++ = *p;
		*q = 0;
		p = buf + minus;
		if (!*p || !isdigit((unsigned char)*p) || parse_ago(p, &ago))
			return -EINVAL;
		*ns = now_ns > ago ? now_ns - ago : 0;
		return 0;
	}
}

/* ---- rotated files */

static int add_path(char ***v, size_t *n, size_t *cap, const char *path)
{
	char *c = strdup(path);

	if (!c || lw_rd_grow((void **)v, cap, *n + 1, sizeof(**v))) {
		free(c);
		return -ENOMEM;
	}
	(*v)[(*n)++] = c;
	return 0;
}

struct rot {
	unsigned long k;
	char *path;
};

static int rot_cmp(const void *a, const void *b)
{
	const struct rot *x = a, *y = b;

	return x->k < y->k ? 1 : x->k > y->k ? -1 : 0;	/* oldest (highest number) first */
}

/* NAME.1, NAME.2, ... in NAME's directory, oldest first */
static int add_rotated(char ***v, size_t *n, size_t *cap, const char *path)
{
	const char *base = lw_basename(path);
	size_t blen = strlen(base), dlen = (size_t)(base - path), nr = 0, caprot = 0, i;
	char dir[4096];
	struct rot *rots = NULL;
	struct dirent *de;
	DIR *dh;
	int r = 0;

	if (dlen >= sizeof(dir) || !blen)
		return 0;
	if (dlen) {
		memcpy(dir, path, dlen);
		dir[dlen] = 0;
	} else {
		strcpy(dir, ".");
	}
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		const char *suf;
		char *end, full[8192];
		unsigned long k;

		if (strncmp(de->d_name, base, blen) || de->d_name[blen] != '.')
			continue;
		suf = de->d_name + blen + 1;
		if (!isdigit((unsigned char)*suf))
			continue;
		errno = 0;
		k = strtoul(suf, &end, 10);
		if (errno || *end || !k)
			continue;
		snprintf(full, sizeof(full), "%.*s%s", (int)dlen, path, de->d_name);
		if (lw_rd_grow((void **)&rots, &caprot, nr + 1, sizeof(*rots))) {
			r = -ENOMEM;
			break;
		}
		rots[nr].k = k;
		rots[nr].path = strdup(full);
		if (!rots[nr].path) {
			r = -ENOMEM;
			break;
		}
		nr++;
	}
	closedir(dh);
	if (!r && nr)
		qsort(rots, nr, sizeof(*rots), rot_cmp);
	for (i = 0; i < nr; i++) {
		if (!r)
			r = add_path(v, n, cap, rots[i].path);
		free(rots[i].path);
	}
	free(rots);
	return r;
}

void lw_rd_free_paths(char **paths, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int lw_rd_expand_paths(char *const *args, size_t nargs, char ***out, size_t *nout)
{
	char **v = NULL, **u = NULL;
	size_t n = 0, cap = 0, i, j, nu = 0;
	dev_t *devs = NULL;
	ino_t *inos = NULL;
	int r = 0;

	for (i = 0; i < nargs && !r; i++) {
		struct stat st;
		char alt[4200];
		const char *path = args[i];

		if (strcmp(path, "-") == 0) {
			r = add_path(&v, &n, &cap, path);
			continue;
		}
		if (stat(path, &st) && errno == ENOENT) {
			snprintf(alt, sizeof(alt), "%s.jsonl", path);
			if (stat(alt, &st) == 0)
				path = alt;
		}
		r = add_rotated(&v, &n, &cap, path);
		if (!r)
			r = add_path(&v, &n, &cap, path);
	}
	/* the same file twice (given and found, or two names): keep the first */
	if (!r && n) {
		u = calloc(n, sizeof(*u));
		devs = calloc(n, sizeof(*devs));
		inos = calloc(n, sizeof(*inos));
		if (!u || !devs || !inos)
			r = -ENOMEM;
	}
	for (i = 0; !r && i < n; i++) {
		struct stat st;
		int dup = 0;

		if (strcmp(v[i], "-") && stat(v[i], &st) == 0) {
			for (j = 0; j < nu; j++)
				if (inos[j] == st.st_ino && devs[j] == st.st_dev && inos[j])
					dup = 1;
			if (!dup) {
				devs[nu] = st.st_dev;
				inos[nu] = st.st_ino;
			}
		} else {
			for (j = 0; j < nu; j++)
				if (!inos[j] && strcmp(u[j], v[i]) == 0)
					dup = 1;
			if (!dup) {
				devs[nu] = 0;
				inos[nu] = 0;
			}
		}
		if (dup) {
			free(v[i]);
		} else {
			u[nu++] = v[i];
		}
		v[i] = NULL;
	}
	free(devs);
	free(inos);
	if (r) {
		lw_rd_free_paths(v, n);
		lw_rd_free_paths(u, nu);
		return r;
	}
	free(v);
	*out = u;
	*nout = nu;
	return 0;
}

