/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Where records go: JSON Lines files (optionally rotated), a text stream. */
#ifndef LW_SINKS_H
#define LW_SINKS_H

#include <stdint.h>
#include <stdio.h>

struct json_object;

/* JSON Lines writer. path "-" = stdout. Files are opened by lw_safe_append (base/safefile.h:
 * regular files of root's or ours only, no links, no FIFOs), mode 0640. */
struct lw_jsonl;
struct lw_jsonl_opts {
	uint64_t rotate_size;	/* 0 = never */
	int rotate_keep;	/* old files kept: NAME.1 ... NAME.N */
	unsigned group;		/* when not 0: the files' group (readable by it, 0640) */
};
/* 0, or -errno with the cause and the fix in err (when err is not NULL) */
int lw_jsonl__open(const char *path, const struct lw_jsonl_opts *o, struct lw_jsonl **out,
		   char *err, size_t errlen);
void lw_jsonl__close(struct lw_jsonl *j);
/* Write one record; on failure the error is counted and the write retried at the next record
 * after reopening the file. */
void lw_jsonl__write(struct lw_jsonl *j, struct json_object *rec);
int lw_jsonl__reopen(struct lw_jsonl *j);	/* SIGHUP (logrotate) */
uint64_t lw_jsonl__errors(const struct lw_jsonl *j);
uint64_t lw_jsonl__written(const struct lw_jsonl *j);
const char *lw_jsonl__last_error(const struct lw_jsonl *j);

/* emit callbacks (lw_emit_fn) */
void lw_sink_jsonl(void *ctx, struct json_object *rec);		/* ctx: struct lw_jsonl */

struct lw_text_sink {
	FILE *f;
	int quiet;		/* only summaries and the end */
	int show_periodic;	/* periodic summaries too */
	int error;		/* set: the errno of the first failed write */
};
void lw_sink_text(void *ctx, struct json_object *rec);		/* ctx: struct lw_text_sink */

#endif
