// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* config_values.c — parsing one configuration value: durations, sizes, modes, paths, users,
 * cgroups. config.c's key table says which parser each key uses. */
#include "service/config_priv.h"
#include "base/lw_util.h"
#include "record/noise.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <grp.h>
#include <pwd.h>

/* ------------------------------------------------------------------ value parsers */

int lw_cfg_p_duration(const char *v, void *dst, char *why, size_t whylen)
{
	uint64_t ns;

	if (lw_parse_duration(v, &ns) || !ns) {
		snprintf(why, whylen,
			 "expected a duration above zero like 250us, 10ms, 1.5s or 2m");
		return -EINVAL;
	}
	*(uint64_t *)dst = ns;
	return 0;
}

int lw_cfg_p_interval(const char *v, void *dst, char *why, size_t whylen)
{
	uint64_t ns;

	if (lw_parse_duration(v, &ns) || ns < 100000000ull) {
		snprintf(why, whylen, "expected a duration of at least 100ms like 10s or 1m");
		return -EINVAL;
	}
	*(uint64_t *)dst = ns;
	return 0;
}

int lw_cfg_p_size(const char *v, void *dst, char *why, size_t whylen)
{
	uint64_t b;

	if (lw_parse_size(v, &b)) {
		snprintf(why, whylen, "expected a size like 64M, 512k or 1G (0 = never rotate)");
		return -EINVAL;
	}
	*(uint64_t *)dst = b;
	return 0;
}

int lw_cfg_p_keep(const char *v, void *dst, char *why, size_t whylen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 0 || n > 1000) {
		snprintf(why, whylen, "expected a number of old files to keep, 0 to 1000");
		return -EINVAL;
	}
	*(int *)dst = (int)n;
	return 0;
}

/* [report] top_sites: sites of a target with series of their own in NAME.prom */
int lw_cfg_p_top_sites(const char *v, void *dst, char *why, size_t whylen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > 1000) {
		snprintf(why, whylen, "expected how many sites of a target get series of their own "
			 "in NAME.prom, 1 to 1000 (the others are summed as site=\"other\"; 20 "
			 "when unset)");
		return -EINVAL;
	}
	*(unsigned *)dst = (unsigned)n;
	return 0;
}

static const struct {
	const char *name;
	unsigned bit;
} format_names[] = {
	{ "jsonl", LW_FMT_JSONL },   { "prometheus", LW_FMT_PROM }, { "prom", LW_FMT_PROM },
	{ "trace", LW_FMT_TRACE },   { "folded", LW_FMT_FOLDED },
};

int lw_cfg_p_formats(const char *v, void *dst, char *why, size_t whylen)
{
	unsigned bits = 0;
	const char *p = v;

	while (*p) {
		size_t len, i;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		len = strcspn(p, ", \t");
		for (i = 0; i < LW_ARRAY_SIZE(format_names); i++)
			if (strlen(format_names[i].name) == len &&
			    strncmp(format_names[i].name, p, len) == 0)
				break;
		if (i == LW_ARRAY_SIZE(format_names)) {
			snprintf(why, whylen,
				 "unknown format '%.*s': expected any of jsonl, prometheus, "
				 "trace, folded (comma-separated)",
				 (int)(len > 40 ? 40 : len), p);
			return -EINVAL;
		}
		bits |= format_names[i].bit;
		p += len;
	}
	if (!bits) {
		snprintf(why, whylen, "expected any of jsonl, prometheus, trace, folded");
		return -EINVAL;
	}
	if ((bits & (LW_FMT_TRACE | LW_FMT_FOLDED)) && !(bits & LW_FMT_JSONL)) {
		snprintf(why, whylen,
			 "trace and folded files are built from the JSONL file: add jsonl");
		return -EINVAL;
	}
	*(unsigned *)dst = bits;
	return 0;
}

/* "N" or "N/DURATION": records per site and window (the window goes in the next field) */
int lw_cfg_p_rate(const char *v, void *dst, char *why, size_t whylen)
{
	struct lw_config *c = (struct lw_config *)((char *)dst - offsetof(struct lw_config,
									rate_limit));
	uint64_t win = 60000000000ull;
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || !n || n > 1000000 || (*end && *end != '/') ||
	    (*end == '/' && (lw_parse_duration(end + 1, &win) || win < 1000000000ull))) {
		snprintf(why, whylen,
			 "expected records per site and window like 10/1m (N between 1 and "
			 "1000000, a window of at least 1s; 10/1m when unset)");
		return -EINVAL;
	}
	c->rate_limit = (unsigned)n;
	c->rate_window_ns = win;
	return 0;
}

/* comma-separated "SITE=DURATION" items, each checked */
int lw_cfg_p_site_thresholds(const char *v, void *dst, char *why, size_t whylen)
{
	char *copy = strdup(v), *item, *save = NULL;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		struct lw_site_rule r;

		while (isspace((unsigned char)*item))
			item++;
		if (!*item)
			continue;
		if (lw_site_rule_parse(item, &r)) {
			snprintf(why, whylen,
				 "'%.60s' is not SITE=DURATION (e.g. Ledger.flush=500ms, "
				 "app.py:42=1s; comma-separated)",
				 item);
			free(copy);
			return -EINVAL;
		}
		free(r.pattern);
		n++;
	}
	free(copy);
	if (!n) {
		snprintf(why, whylen, "expected SITE=DURATION items, comma-separated");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_mode(const char *v, void *dst, char *why, size_t whylen)
{
	if (strcmp(v, "default") == 0) {
		*(int *)dst = 0;
	} else if (strcmp(v, "precise") == 0) {
		*(int *)dst = 1;
	} else {
		snprintf(why, whylen, "expected default or precise");
		return -EINVAL;
	}
	return 0;
}

int lw_cfg_p_no_bool(const char *v, void *dst, char *why, size_t whylen)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };
	size_t i;

	/* stored inverted: the field says what is switched off */
	for (i = 0; i < LW_ARRAY_SIZE(yes); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*(int *)dst = 0;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*(int *)dst = 1;
			return 0;
		}
	}
	snprintf(why, whylen, "expected yes or no");
	return -EINVAL;
}

int lw_cfg_p_yes_bool(const char *v, void *dst, char *why, size_t whylen)
{
	int no = 0;

	if (lw_cfg_p_no_bool(v, &no, why, whylen))
		return -EINVAL;
	*(int *)dst = !no;
	return 0;
}

int lw_cfg_p_log_level(const char *v, void *dst, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "err", LW_LOG_ERR },   { "error", LW_LOG_ERR }, { "warning", LW_LOG_WARN },
		{ "notice", LW_LOG_NOTICE }, { "info", LW_LOG_INFO }, { "debug", LW_LOG_DEBUG },
	};
	size_t i;

	for (i = 0; i < LW_ARRAY_SIZE(levels); i++)
		if (strcmp(v, levels[i].name) == 0) {
			*(int *)dst = levels[i].level;
			return 0;
		}
	snprintf(why, whylen, "expected error, warning, notice, info or debug");
	return -EINVAL;
}

int lw_cfg_p_iterations(const char *v, void *dst, char *why, size_t whylen)
{
	if (strcmp(v, "sched") && strcmp(v, "syscall") && strcmp(v, "fentry") && strcmp(v, "auto")) {
		snprintf(why, whylen, "expected auto (fentry where the kernel loads it, else "
			 "sched where it has uprobe_multi links, else syscall), fentry (fexit on the kernel's poll functions), sched (no cost to "
			 "other processes; one uprobe trap per poll of a traced loop) or syscall "
			 "(tp_btf/sys_exit: every syscall on the host takes the slow exit path)");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_set_str(const char *v, void *dst)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*(char **)dst);
	*(char **)dst = s;
	return 0;
}

int lw_cfg_p_abs_path(const char *v, void *dst, char *why, size_t whylen)
{
	if (v[0] != '/') {
		snprintf(why, whylen, "expected an absolute path (starting with /)");
		return -EINVAL;
	}
	if (strlen(v) >= 3800) {
		snprintf(why, whylen, "path too long");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_socket(const char *v, void *dst, char *why, size_t whylen)
{
	if (strcmp(v, "none") == 0) {
		free(*(char **)dst);
		*(char **)dst = NULL;
		return 0;
	}
	if (v[0] != '/' || strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(why, whylen,
			 "expected an absolute path of at most %zu characters, or none",
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_text(const char *v, void *dst, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_comm(const char *v, void *dst, char *why, size_t whylen)
{
	if (strlen(v) > 15 && !strpbrk(v, "*?[")) {
		snprintf(why, whylen,
			 "a command name is at most 15 characters (the kernel truncates "
			 "it); match the first 15, or use exe or cmdline");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_unit(const char *v, void *dst, char *why, size_t whylen)
{
	if (strchr(v, '/')) {
		snprintf(why, whylen,
			 "expected a unit name like api.service (for a cgroup path use "
			 "cgroup = /system.slice/...)");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_cgroup(const char *v, void *dst, char *why, size_t whylen)
{
	if (v[0] != '/') {
		snprintf(why, whylen,
			 "expected a cgroup path like /system.slice/api.service (as in "
			 "/proc/PID/cgroup)");
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

/* a user name or a uid; the name must exist here */
int lw_cfg_resolve_user(const char *v, uid_t *uid)
{
	struct passwd *pw;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v && !*end && !errno && n < (uid_t)-1) {
		*uid = (uid_t)n;
		return 0;
	}
	pw = getpwnam(v);
	if (!pw)
		return -ENOENT;
	*uid = pw->pw_uid;
	return 0;
}

int lw_cfg_resolve_group(const char *v, gid_t *gid)
{
	struct group *gr;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v && !*end && !errno && n < (gid_t)-1) {
		*gid = (gid_t)n;
		return 0;
	}
	gr = getgrnam(v);
	if (!gr)
		return -ENOENT;
	*gid = gr->gr_gid;
	return 0;
}

int lw_cfg_p_user(const char *v, void *dst, char *why, size_t whylen)
{
	uid_t uid;

	if (lw_cfg_resolve_user(v, &uid)) {
		snprintf(why, whylen, "no user '%s' on this host: give a user name or a numeric uid",
			 v);
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_group(const char *v, void *dst, char *why, size_t whylen)
{
	gid_t gid;

	if (lw_cfg_resolve_group(v, &gid)) {
		snprintf(why, whylen, "no group '%s' on this host: give a group name or a numeric gid",
			 v);
		return -EINVAL;
	}
	return lw_cfg_set_str(v, dst);
}

int lw_cfg_p_unit_scope(const char *v, void *dst, char *why, size_t whylen)
{
	if (strcmp(v, "system") && strcmp(v, "any")) {
		snprintf(why, whylen, "expected system (the default: system services only) or any "
			 "(user@UID.service's units too; combine with user =)");
		return -EINVAL;
	}
	*(int *)dst = strcmp(v, "any") == 0;
	return 0;
}
