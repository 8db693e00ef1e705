/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small shared helpers: logging, durations, time stamps, bounded strings, files. */
#ifndef LW_UTIL_H
#define LW_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define LW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum lw_log_level {
	LW_LOG_ERR = 3,		/* syslog priorities, so journald prefixes map 1:1 */
	LW_LOG_WARN = 4,
	LW_LOG_NOTICE = 5,
	LW_LOG_INFO = 6,
	LW_LOG_DEBUG = 7,
};

/* Logging goes to stderr only; never to stdout (stdout carries records). */
void lw_log_set_level(int level);
int lw_log_get_level(void);
/* prefix each line with "<N>" (journald priority) instead of "loopwatch: " */
void lw_log_set_journal(int on);
/* the name before each line outside the journal ("loopwatch", "loopwatchd"); a static string */
void lw_log_set_ident(const char *ident);
void lw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define lw_err(...) lw_log(LW_LOG_ERR, __VA_ARGS__)
#define lw_warn(...) lw_log(LW_LOG_WARN, __VA_ARGS__)
#define lw_info(...) lw_log(LW_LOG_INFO, __VA_ARGS__)
#define lw_dbg(...) lw_log(LW_LOG_DEBUG, __VA_ARGS__)

/*
 * Parse a duration: "250us", "10ms", "1.5s", "2m", "1h"; a bare number is milliseconds.
 * Returns 0 and sets *ns, or -EINVAL (empty, junk, negative) / -ERANGE (overflow).
 */
int lw_parse_duration(const char *s, uint64_t *ns);

/* Parse a size: "64M", "512k", "1G", bare bytes. Returns 0 or -EINVAL/-ERANGE. */
int lw_parse_size(const char *s, uint64_t *bytes);

/* CLOCK_MONOTONIC (what bpf_ktime_get_ns returns) and CLOCK_REALTIME in ns */
uint64_t lw_now_mono(void);
uint64_t lw_now_real(void);
/* Convert a monotonic time stamp to wall-clock ns using the current offset */
uint64_t lw_mono_to_real(uint64_t mono_ns);

/* RFC 3339 UTC with microseconds: "2026-11-25T02:00:30.123456Z". buf >= 32 bytes. */
char *lw_fmt_rfc3339(uint64_t real_ns, char *buf, size_t size);
/* Parse the above back (report reader). Returns 0 or -EINVAL. */
int lw_parse_rfc3339(const char *s, uint64_t *real_ns);

/* strlcpy-like: always NUL-terminates when size > 0; returns strlen(src) */
size_t lw_strlcpy(char *dst, const char *src, size_t size);

/* Read a whole small file (e.g. under /proc) into a NUL-terminated malloc'd buffer.
 * Returns 0 and sets *out and *len, or -errno. max caps the size read. */
int lw_read_file(const char *path, size_t max, char **out, size_t *len);

/* Open a report file for appending: O_NOFOLLOW, O_CLOEXEC, mode 0640. Returns fd or -errno. */
int lw_open_report(const char *path, int extra_flags);

/* Replace path with buf atomically: a temp file beside it (O_EXCL, no symlinks, 0640), then
 * rename. 0, or -errno with a message in err. */
int lw_write_file_atomic(const char *path, const char *buf, size_t len, char *err, size_t errlen);
/* The same, the file given to group gid (when not 0) before it takes the name */
int lw_write_file_atomic_gid(const char *path, const char *buf, size_t len, gid_t gid, char *err,
			     size_t errlen);

/* The pid a process has in its own (innermost) pid namespace: the last value of NSpid in
 * /proc/PID/status; pid itself when that cannot be read. */
pid_t lw_ns_pid(const char *proc_root, pid_t pid);

/* The ids of an "NSpid:" line of a /proc status file (host first, innermost last), at most
 * max. Returns how many (0 when there is no such line). */
int lw_parse_nspid(const char *status_text, long *ids, int max);

/* From the text of /proc/PID/stat: state letter and flags (comm may hold spaces and ')').
 * Returns 0, or -EINVAL when the text is not a stat line. */
int lw_parse_proc_stat(const char *text, char *state, unsigned long *flags);

/* The start time (field 22, clock ticks after boot) from the text of /proc/PID/stat: with the
 * pid, what names one process for good (a pid is reused, the pair is not). 0 or -EINVAL. */
int lw_parse_proc_starttime(const char *text, unsigned long long *ticks);
/* The same read from proc_root/PID/stat; 0 when it cannot be read (gone) */
unsigned long long lw_proc_starttime(const char *proc_root, pid_t pid);

/* Path basename without allocation */
const char *lw_basename(const char *path);

/* For a fixed-width table column: s itself when it fits in width bytes, otherwise "..." and
 * its last width-3 bytes in buf (the end of a path names the file). */
const char *lw_tail(const char *s, size_t width, char *buf, size_t n);

/* Widest table column, in bytes: a longer cell is cut with lw_tail */
#define LW_COL_MAX 60

/* The width a column needs for its longest cell (need bytes), within [min, LW_COL_MAX] */
int lw_col_width(size_t need, int min);

#endif
