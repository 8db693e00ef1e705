/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * loopwatchd's configuration file (INI, parsed with libinih): [report], [defaults], [daemon] and
 * one [target NAME] section per target. Every key is described once, in a table in config.c:
 * adding a key is adding a row (and a field). Errors name FILE:LINE, the key and what to write
 * instead; all of them are reported, not only the first.
 */
#ifndef LW_CONFIG_H
#define LW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "service/matcher.h"

#define LW_CONFIG_DEFAULT_PATH "/etc/loopwatch/loopwatch.conf"
#define LW_CONFIG_DEFAULT_DIR "/var/log/loopwatch"
#define LW_CONFIG_DEFAULT_SOCKET "/run/loopwatch/control.sock"
#define LW_HOST_PROM_NAME "loopwatchd"	/* DIR/loopwatchd.prom: host-wide counters */
#define LW_TARGET_NAME_MAX 64	/* with the NUL; the session keeps as much */

/* [report] formats */
enum lw_format {
	LW_FMT_JSONL = 1u << 0,
	LW_FMT_PROM = 1u << 1,
	LW_FMT_TRACE = 1u << 2,		/* Perfetto trace: the exporter is a hook for now */
	LW_FMT_FOLDED = 1u << 3,	/* folded stacks: exporter not written yet (a hook) */
};

/* What [defaults] sets and each [target] may override */
struct lw_tuning {
	uint64_t threshold_ns;
	uint64_t block_threshold_ns;
	int precise;
	int no_hooks;		/* asyncio_hooks = no: no asyncio-mistake / GC uprobes */
	uint64_t stuck_after_ns;	/* asyncio: a Task at one await this long is a stuck_task */
	uint64_t stuck_every_ns;	/* asyncio: how often the Tasks are looked at for that */
};

struct lw_target_conf {
	char name[LW_TARGET_NAME_MAX];
	int line;			/* of its [target NAME] header */
	struct lw_match_spec match;
	struct lw_tuning tune;		/* [defaults] with this target's overrides */
	uint64_t seen;			/* keys set in its section (key table rows) */
};

struct lw_config {
	char *path;			/* the file it was read from */
	/* [report] */
	char *report_dir;
	unsigned formats;		/* enum lw_format bits */
	uint64_t rotate_size;		/* 0 = never */
	int rotate_keep;
	uint64_t summary_interval_ns;
	char *report_group;		/* report_group = GROUP: files 0640 root:GROUP */
	gid_t report_gid;		/* what it resolved to (0: not set) */
	unsigned top_sites;		/* sites with series of their own in NAME.prom; 0 = 20 */
	/* [defaults] */
	struct lw_tuning defaults;
	/* noise control ([defaults] only: one budget per site across the host's targets) */
	unsigned rate_limit;		/* records per site and window; 0 = the default (10) */
	uint64_t rate_window_ns;	/* 0 = the default (1m) */
	char *ignore;			/* "SITE, SITE": never written, counted still */
	char *site_threshold;		/* "SITE=DUR, SITE=DUR" (checked at load) */
	/* [daemon] */
	char *control_socket;		/* NULL = no control socket ("none") */
	int log_level;			/* enum lw_log_level */
	char *iterations;		/* "syscall" or "sched"; NULL: $LOOPWATCH_ITERATIONS, else syscall */
	/* [target NAME]... in file order */
	struct lw_target_conf *targets;
	size_t ntargets;
	uint64_t seen;			/* keys set in the global sections */
};

/*
 * Read and check a config file. On failure err holds one "FILE:LINE: ..." line per problem
 * (newline-separated) and the return is -EINVAL (bad content) or -errno (cannot read).
 */
int lw_config__load(const char *path, struct lw_config **out, char *err, size_t errlen);
/* The same from a string (tests); name stands for the file name in messages. */
int lw_config__parse(const char *text, const char *name, struct lw_config **out, char *err,
		     size_t errlen);
void lw_config__free(struct lw_config *c);

/* The index of the target called name, or -1 */
int lw_config__target(const struct lw_config *c, const char *name);
/* "jsonl, prometheus" into buf */
const char *lw_config__formats_str(unsigned formats, char *buf, size_t size);

#endif
