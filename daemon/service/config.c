// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* config.c — loopwatchd.conf: the key table, sections and targets, defaults, loading.
 * The parsers of single values are in config_values.c. */
#include "service/config_priv.h"
#include "base/lw_util.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (1024 * 1024)
#define MAX_ERRORS 20

/* ------------------------------------------------------------------ the key table */

enum sect {
	S_REPORT = 1u << 0,
	S_DEFAULTS = 1u << 1,
	S_DAEMON = 1u << 2,
	S_TARGET = 1u << 3,
};

enum base {
	B_CONFIG,	/* offset into struct lw_config */
	B_TUNING,	/* into the section's struct lw_tuning ([defaults] or the target's) */
	B_TARGET,	/* into struct lw_target_conf */
};

struct key_def {
	const char *key;
	unsigned sects;
	enum base base;
	size_t off, size;
	parse_fn parse;
};

#define CFG(f) B_CONFIG, offsetof(struct lw_config, f), sizeof(((struct lw_config *)0)->f)
#define TUNE(f) B_TUNING, offsetof(struct lw_tuning, f), sizeof(((struct lw_tuning *)0)->f)
#define TGT(f) B_TARGET, offsetof(struct lw_target_conf, f), \
	sizeof(((struct lw_target_conf *)0)->f)

/*
 * One row per key: its sections, where it goes, how it is parsed. A B_TUNING row set in
 * [defaults] is inherited by every target that does not set it. At most 64 rows (the `seen`
 * bit masks).
 */
static const struct key_def keys[] = {
	{ "dir", S_REPORT, CFG(report_dir), lw_cfg_p_abs_path },
	{ "formats", S_REPORT, CFG(formats), lw_cfg_p_formats },
	{ "rotate_size", S_REPORT, CFG(rotate_size), lw_cfg_p_size },
	{ "rotate_keep", S_REPORT, CFG(rotate_keep), lw_cfg_p_keep },
	{ "summary_interval", S_REPORT, CFG(summary_interval_ns), lw_cfg_p_interval },
	{ "report_group", S_REPORT, CFG(report_group), lw_cfg_p_group },
	{ "top_sites", S_REPORT, CFG(top_sites), lw_cfg_p_top_sites },
	{ "threshold", S_DEFAULTS | S_TARGET, TUNE(threshold_ns), lw_cfg_p_duration },
	{ "block_threshold", S_DEFAULTS | S_TARGET, TUNE(block_threshold_ns), lw_cfg_p_duration },
	{ "mode", S_DEFAULTS | S_TARGET, TUNE(precise), lw_cfg_p_mode },
	{ "asyncio_hooks", S_DEFAULTS | S_TARGET, TUNE(no_hooks), lw_cfg_p_no_bool },
	{ "stuck_after", S_DEFAULTS | S_TARGET, TUNE(stuck_after_ns), lw_cfg_p_duration },
	{ "stuck_every", S_DEFAULTS | S_TARGET, TUNE(stuck_every_ns), lw_cfg_p_interval },
	{ "rate_limit", S_DEFAULTS, CFG(rate_limit), lw_cfg_p_rate },
	{ "ignore", S_DEFAULTS, CFG(ignore), lw_cfg_p_text },
	{ "site_threshold", S_DEFAULTS, CFG(site_threshold), lw_cfg_p_site_thresholds },
	{ "control_socket", S_DAEMON, CFG(control_socket), lw_cfg_p_socket },
	{ "log_level", S_DAEMON, CFG(log_level), lw_cfg_p_log_level },
	{ "iterations", S_DAEMON, CFG(iterations), lw_cfg_p_iterations },
	{ "exe", S_TARGET, TGT(match.exe), lw_cfg_p_abs_path },
	{ "comm", S_TARGET, TGT(match.comm), lw_cfg_p_comm },
	{ "cmdline", S_TARGET, TGT(match.cmdline), lw_cfg_p_text },
	{ "exclude_cmdline", S_TARGET, TGT(match.exclude_cmdline), lw_cfg_p_text },
	{ "workers_only", S_TARGET, TGT(match.workers_only), lw_cfg_p_yes_bool },
	{ "unit", S_TARGET, TGT(match.unit), lw_cfg_p_unit },
	{ "cgroup", S_TARGET, TGT(match.cgroup), lw_cfg_p_cgroup },
	{ "pidfile", S_TARGET, TGT(match.pidfile), lw_cfg_p_abs_path },
	{ "user", S_TARGET, TGT(match.user), lw_cfg_p_user },
	{ "unit_scope", S_TARGET, TGT(match.unit_any), lw_cfg_p_unit_scope },
};

_Static_assert(LW_ARRAY_SIZE(keys) <= 64, "the seen masks hold 64 keys");

static const char *sect_name(unsigned s)
{
	switch (s) {
	case S_REPORT:
		return "[report]";
	case S_DEFAULTS:
		return "[defaults]";
	case S_DAEMON:
		return "[daemon]";
	case S_TARGET:
		return "[target NAME]";
	default:
		return "?";
	}
}

/* "[report]" or "[defaults] and [target NAME]" */
static void sects_str(unsigned sects, char *buf, size_t size)
{
	unsigned s;
	size_t len = 0;

	buf[0] = 0;
	for (s = 1; s <= S_TARGET; s <<= 1) {
		if (!(sects & s))
			continue;
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s",
					len ? " or " : "", sect_name(s));
	}
}

/* ------------------------------------------------------------------ parsing */

struct parse_ctx {
	struct lw_config *c;
	const char *name;		/* file name for messages */
	const char *text;
	size_t pos, len;
	int line;
	unsigned cur;			/* current section (enum sect), 0 after a bad header */
	int cur_target;			/* index while cur == S_TARGET */
	int gline[LW_ARRAY_SIZE(keys)];	/* where a global key was set */
	int tline[LW_ARRAY_SIZE(keys)];	/* where a key of the current target was set */
	char *err;
	size_t errlen, errused;
	int nerrors;
	int oom;
};

static void add_error(struct parse_ctx *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct parse_ctx *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	p->nerrors++;
	if (!p->err || !p->errlen)
		return;
	if (p->nerrors > MAX_ERRORS) {
		if (p->nerrors == MAX_ERRORS + 1 && p->errused < p->errlen)
			p->errused += (size_t)snprintf(p->err + p->errused, p->errlen - p->errused,
						       "%s(more errors not shown)",
						       p->errused ? "\n" : "");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errused >= p->errlen)
		return;
	if (line > 0)
		n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s%s:%d: %s",
			     p->errused ? "\n" : "", p->name, line, msg);
	else
		n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s%s: %s",
			     p->errused ? "\n" : "", p->name, msg);
	if (n > 0)
		p->errused += (size_t)n;
	if (p->errused >= p->errlen)
		p->errused = p->errlen - 1;
}

static int valid_target_name(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n >= LW_TARGET_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

static void start_target(struct parse_ctx *p, const char *name)
{
	struct lw_config *c = p->c;
	struct lw_target_conf *t;
	int i = lw_config__target(c, name);

	p->cur = 0;
	if (!valid_target_name(name)) {
		add_error(p, p->line,
			  "invalid target name '%.80s': use letters, digits, '_', '-' and "
			  "'.' (at most %d characters, not starting with '.' or '-'); it names the "
			  "report files",
			  name, LW_TARGET_NAME_MAX - 1);
		return;
	}
	if (strcmp(name, LW_HOST_PROM_NAME) == 0) {
		add_error(p, p->line, "target name '%s' is reserved: loopwatchd writes its host-wide "
			  "counters to %s.prom in the report directory; name the target otherwise",
			  name, name);
		return;
	}
	if (i >= 0) {
		add_error(p, p->line, "duplicate section [target %s] (first on line %d): give each "
			  "target its own name", name, c->targets[i].line);
		return;
	}
	t = realloc(c->targets, (c->ntargets + 1) * sizeof(*t));
	if (!t) {
		p->oom = 1;
		return;
	}
	c->targets = t;
	t = &c->targets[c->ntargets];
	memset(t, 0, sizeof(*t));
	lw_strlcpy(t->name, name, sizeof(t->name));
	t->line = p->line;
	p->cur_target = (int)c->ntargets++;
	p->cur = S_TARGET;
	memset(p->tline, 0, sizeof(p->tline));
}

/* A section header line (starts with '['): which section it opens */
static void section_line(struct parse_ctx *p, const char *s, size_t len)
{
	char name[256];
	const char *end = memchr(s, ']', len);
	size_t n;
	char *q;

	p->cur = 0;
	if (!end) {
		add_error(p, p->line, "section header without ']': write [report], [defaults], "
			  "[daemon] or [target NAME]");
		return;
	}
	n = (size_t)(end - s - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, s + 1, n);
	name[n] = 0;
	/* trim */
	while (n && isspace((unsigned char)name[n - 1]))
		name[--n] = 0;
	q = name;
	while (isspace((unsigned char)*q))
		q++;
	if (strcmp(q, "report") == 0) {
		p->cur = S_REPORT;
	} else if (strcmp(q, "defaults") == 0) {
		p->cur = S_DEFAULTS;
	} else if (strcmp(q, "daemon") == 0) {
		p->cur = S_DAEMON;
	} else if (strncmp(q, "target", 6) == 0 && (q[6] == 0 || isspace((unsigned char)q[6]))) {
		q += 6;
		while (isspace((unsigned char)*q))
			q++;
		if (!*q) {
			add_error(p, p->line,
				  "[target] needs a name, e.g. [target api]: it names the "
				  "report files");
			return;
		}
		start_target(p, q);
	} else {
		add_error(p, p->line, "unknown section [%.80s]: expected [report], [defaults], "
			  "[daemon] or [target NAME]", q);
	}
}

/*
 * inih's reader: one line per call. We count lines (inih does not tell its handler), take the
 * section headers ourselves (so that empty and unknown sections are seen too), strip leading
 * blanks (inih would take an indented line for the continuation of the previous value), and
 * hand inih only what it parses as we mean it.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	const char *s, *nl;
	size_t len, skip = 0;

	if (p->pos >= p->len || num < 3)
		return NULL;
	s = p->text + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	len = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += len + (nl ? 1 : 0);
	p->line++;
	while (skip < len && (s[skip] == ' ' || s[skip] == '\t'))
		skip++;
	s += skip;
	len -= skip;
	while (len && (s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (!len || s[0] == ';' || s[0] == '#') {
		strcpy(str, ";");
		return str;
	}
	if (s[0] == '[') {
		section_line(p, s, len);
		/* inih keeps its own idea of the section: the header as is, or a stand-in */
		if (len + 1 > (size_t)num || !memchr(s, ']', len)) {
			snprintf(str, (size_t)num, "[?]");
			return str;
		}
		memcpy(str, s, len);
		str[len] = 0;
		return str;
	}
	if (len + 1 > (size_t)num) {
		add_error(p, p->line, "line too long (libinih reads at most %d characters a line): "
			  "shorten the value", num - 1);
		strcpy(str, ";");
		return str;
	}
	if (!memchr(s, '=', len) && !memchr(s, ':', len)) {
		add_error(p, p->line,
			  "expected KEY = VALUE, a [section] or a ; comment, not '%.*s'",
			  (int)(len > 60 ? 60 : len), s);
		strcpy(str, ";");
		return str;
	}
	memcpy(str, s, len);
	str[len] = 0;
	return str;
}

static void *key_dst(struct parse_ctx *p, const struct key_def *k)
{
	struct lw_target_conf *t = p->cur == S_TARGET ? &p->c->targets[p->cur_target] : NULL;

	switch (k->base) {
	case B_CONFIG:
		return (char *)p->c + k->off;
	case B_TUNING:
		return (char *)(t ? &t->tune : &p->c->defaults) + k->off;
	case B_TARGET:
		return t ? (char *)t + k->off : NULL;
	}
	return NULL;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const struct key_def *k = NULL, *elsewhere = NULL;
	char why[256] = "", where[128];
	uint64_t *seen;
	int *lines;
	size_t i;
	void *dst;

	/* the section is the one we tracked ourselves (with its validity) */
	if (!section[0] && !p->cur) {
		add_error(p, p->line, "key '%.60s' outside any section: put it under [report], "
			  "[defaults], [daemon] or [target NAME]", name);
		return 1;
	}
	if (!p->cur)
		return 1;	/* inside a bad section: its header was reported */
	for (i = 0; i < LW_ARRAY_SIZE(keys); i++) {
		if (strcmp(keys[i].key, name))
			continue;
		if (keys[i].sects & p->cur) {
			k = &keys[i];
			break;
		}
		elsewhere = &keys[i];
	}
	if (!k) {
		if (elsewhere) {
			sects_str(elsewhere->sects, where, sizeof(where));
			add_error(p, p->line, "key '%s' belongs in %s, not in %s", name, where,
				  sect_name(p->cur));
		} else {
			char known[512];
			size_t len = 0;

			known[0] = 0;
			for (i = 0; i < LW_ARRAY_SIZE(keys); i++)
				if ((keys[i].sects & p->cur) && len < sizeof(known))
					len += (size_t)snprintf(known + len, sizeof(known) - len,
								"%s%s", len ? ", " : "",
								keys[i].key);
			add_error(p, p->line, "unknown key '%.60s' in %s: expected one of %s", name,
				  sect_name(p->cur), known);
		}
		return 1;
	}
	i = (size_t)(k - keys);
	if (p->cur == S_TARGET) {
		seen = &p->c->targets[p->cur_target].seen;
		lines = p->tline;
	} else {
		seen = &p->c->seen;
		lines = p->gline;
	}
	if (*seen & (1ull << i) && lines[i]) {
		add_error(p, p->line, "duplicate key '%s' (already set on line %d): keep one", name,
			  lines[i]);
		return 1;
	}
	if (!value[0]) {
		add_error(p, p->line, "empty value for '%s'", name);
		return 1;
	}
	dst = key_dst(p, k);
	if (!dst)
		return 1;
	if (k->parse(value, dst, why, sizeof(why))) {
		if (!why[0]) {
			p->oom = 1;
			return 1;
		}
		add_error(p, p->line, "invalid %s '%.100s': %s", name, value, why);
		return 1;
	}
	*seen |= 1ull << i;
	lines[i] = p->line;
	return 1;
}

static void set_defaults(struct lw_config *c)
{
	c->formats = LW_FMT_JSONL | LW_FMT_PROM;
	c->rotate_size = 64ull << 20;
	c->rotate_keep = 5;
	c->summary_interval_ns = 60000000000ull;
	c->defaults.threshold_ns = 100000000ull;
	c->defaults.block_threshold_ns = 10000000ull;
	c->defaults.precise = 0;
	c->defaults.stuck_after_ns = 60000000000ull;
	c->defaults.stuck_every_ns = 10000000000ull;
	c->log_level = LW_LOG_NOTICE;
}

static int key_index(const char *key)
{
	size_t i;

	for (i = 0; i < LW_ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* after the whole file: defaults where nothing was set, targets complete */
static void finish(struct parse_ctx *p)
{
	struct lw_config *c = p->c;
	size_t i, k;

	if (!c->report_dir && lw_cfg_set_str(LW_CONFIG_DEFAULT_DIR, &c->report_dir))
		p->oom = 1;
	if (c->report_group && lw_cfg_resolve_group(c->report_group, &c->report_gid))
		add_error(p, 0, "[report] report_group: no group '%s'", c->report_group);
	if (!(c->seen & (1ull << key_index("control_socket"))) &&
	    lw_cfg_set_str(LW_CONFIG_DEFAULT_SOCKET, &c->control_socket))
		p->oom = 1;
	for (i = 0; i < c->ntargets; i++) {
		struct lw_target_conf *t = &c->targets[i];

		if (lw_match_spec__empty(&t->match))
			add_error(p, t->line,
				  "[target %s] has no matcher: add at least one of exe, "
				  "comm, cmdline, unit, cgroup, pidfile, user",
				  t->name);
		if (t->match.user && lw_cfg_resolve_user(t->match.user, &t->match.uid))
			add_error(p, t->line, "[target %s]: no user '%s'", t->name, t->match.user);
		/* what the target does not set comes from [defaults] */
		for (k = 0; k < LW_ARRAY_SIZE(keys); k++)
			if (keys[k].base == B_TUNING && !(t->seen & (1ull << k)))
				memcpy((char *)&t->tune + keys[k].off,
				       (const char *)&c->defaults + keys[k].off, keys[k].size);
	}
}

int lw_config__parse(const char *text, const char *name, struct lw_config **out, char *err,
		     size_t errlen)
{
	struct parse_ctx *p = calloc(1, sizeof(*p));
	struct lw_config *c = calloc(1, sizeof(*c));
	int r = 0;

	if (err && errlen)
		err[0] = 0;
	if (!p || !c) {
		r = -ENOMEM;
		goto out;
	}
	set_defaults(c);
	c->path = strdup(name);
	if (!c->path) {
		r = -ENOMEM;
		goto out;
	}
	p->c = c;
	p->name = name;
	p->text = text;
	p->len = strlen(text);
	if (strncmp(text, "\xef\xbb\xbf", 3) == 0)
		p->pos = 3;	/* a UTF-8 byte order mark */
	p->err = err;
	p->errlen = errlen;
	/* inih only reports lines it cannot parse, and the reader hands it none */
	ini_parse_stream(reader, p, handler, p);
	finish(p);
	if (p->oom)
		r = -ENOMEM;
	else if (p->nerrors)
		r = -EINVAL;
out:
	if (r == -ENOMEM && err && errlen)
		snprintf(err, errlen, "%s: out of memory", name);
	if (r) {
		lw_config__free(c);
		c = NULL;
	}
	*out = c;
	free(p);
	return r;
}

int lw_config__load(const char *path, struct lw_config **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = lw_read_file(path, CONFIG_MAX_BYTES, &text, &len);
	if (r) {
		if (r == -ENOENT)
			snprintf(err, errlen, "cannot read %s: no such file; create it (see "
				 "loopwatch.conf(5)) or pass --config FILE", path);
		else
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (len >= CONFIG_MAX_BYTES - 1) {
		snprintf(err, errlen, "%s: larger than %d bytes: is this a config file?", path,
			 CONFIG_MAX_BYTES);
		free(text);
		return -EFBIG;
	}
	if (memchr(text, 0, len)) {
		snprintf(err, errlen, "%s: a NUL byte at offset %zu: not a text config file", path,
			 (size_t)((char *)memchr(text, 0, len) - text));
		free(text);
		return -EINVAL;
	}
	r = lw_config__parse(text, path, out, err, errlen);
	free(text);
	return r;
}

void lw_config__free(struct lw_config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->ntargets; i++)
		lw_match_spec__clear(&c->targets[i].match);
	free(c->targets);
	free(c->path);
	free(c->report_dir);
	free(c->report_group);
	free(c->control_socket);
	free(c->iterations);
	free(c->ignore);
	free(c->site_threshold);
	free(c);
}

int lw_config__target(const struct lw_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->ntargets; i++)
		if (strcmp(c->targets[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *lw_config__formats_str(unsigned formats, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ LW_FMT_JSONL, "jsonl" },
		{ LW_FMT_PROM, "prometheus" },
		{ LW_FMT_TRACE, "trace" },
		{ LW_FMT_FOLDED, "folded" },
	};
	size_t i, len = 0;

	if (size)
		buf[0] = 0;
	for (i = 0; i < LW_ARRAY_SIZE(names); i++)
		if ((formats & names[i].bit) && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
						names[i].name);
	return buf;
}
