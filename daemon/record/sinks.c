// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "record/sinks.h"
#include "record/rectype.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "record/render.h"
#include "base/safefile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lw_jsonl {
	char *path;
	int fd;
	int is_stdout;
	struct lw_jsonl_opts o;
	uint64_t size;
	uint64_t errors;
	uint64_t written;
	int cut;		/* the last line was cut short and its newline not written */
	char last_error[160];
};

static int jopen(struct lw_jsonl *j)
{
	struct stat st;
	int fd;

	if (j->is_stdout) {
		j->fd = STDOUT_FILENO;
		return 0;
	}
	/* a regular file of root's or ours, never through a link, never a FIFO (base/safefile) */
	fd = lw_safe_append(j->path, 0640, LW_NO_UID, j->last_error, sizeof(j->last_error));
	if (fd < 0)
		return fd;
	if (j->o.group && fchown(fd, (uid_t)-1, (gid_t)j->o.group) && !j->errors)
		snprintf(j->last_error, sizeof(j->last_error), "cannot give %s to group %u: %s",
			 j->path, j->o.group, strerror(errno));
	if (fstat(fd, &st) == 0)
		j->size = (uint64_t)st.st_size;
	j->fd = fd;
	return 0;
}

int lw_jsonl__open(const char *path, const struct lw_jsonl_opts *o, struct lw_jsonl **out,
		   char *err, size_t errlen)
{
	struct lw_jsonl *j = calloc(1, sizeof(*j));
	int r;

	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->path = strdup(path);
	if (o)
		j->o = *o;
	j->is_stdout = strcmp(path, "-") == 0;
	if (!j->path) {
		free(j);
		return -ENOMEM;
	}
	r = jopen(j);
	if (r) {
		if (err && errlen)
			lw_strlcpy(err, j->last_error, errlen);
		lw_jsonl__close(j);
		return r;
	}
	*out = j;
	return 0;
}

void lw_jsonl__close(struct lw_jsonl *j)
{
	if (!j)
		return;
	if (j->fd >= 0 && !j->is_stdout)
		close(j->fd);
	free(j->path);
	free(j);
}

int lw_jsonl__reopen(struct lw_jsonl *j)
{
	if (j->is_stdout)
		return 0;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	return jopen(j);
}

static void rotate(struct lw_jsonl *j)
{
	char from[4200], to[4200];
	int i;

	if (j->is_stdout || !j->o.rotate_size || j->size < j->o.rotate_size)
		return;
	for (i = j->o.rotate_keep; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", j->path);
		else
			snprintf(from, sizeof(from), "%s.%d", j->path, i - 1);
		snprintf(to, sizeof(to), "%s.%d", j->path, i);
		rename(from, to);
	}
	if (j->o.rotate_keep <= 0)
		unlink(j->path);
	lw_jsonl__reopen(j);
	j->size = 0;
}

void lw_jsonl__write(struct lw_jsonl *j, struct json_object *rec)
{
	const char *line = lw_j_line(rec);
	size_t len = strlen(line), off = 0;
	char *buf;

	if (j->fd < 0 && jopen(j)) {
		j->errors++;
		return;
	}
	buf = malloc(len + 1);
	if (!buf) {
		j->errors++;
		return;
	}
	memcpy(buf, line, len);
	buf[len] = '\n';
	/* a line cut short by an earlier failure ends here, not in the middle of this record */
	if (j->cut) {
		if (write(j->fd, "\n", 1) != 1) {
			j->errors++;
			snprintf(j->last_error, sizeof(j->last_error), "write to %s: %s", j->path,
				 strerror(errno));
			free(buf);
			return;
		}
		j->cut = 0;
		j->size++;
	}
	while (off < len + 1) {
		ssize_t w = write(j->fd, buf + off, len + 1 - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			j->errors++;
			snprintf(j->last_error, sizeof(j->last_error), "write to %s: %s", j->path,
				 strerror(errno));
			/* a partial line must not glue onto the next one: end it now, or
			 * before the next record when even that fails */
			if (off && write(j->fd, "\n", 1) != 1)
				j->cut = 1;
			if (!j->is_stdout) {
				close(j->fd);
				j->fd = -1;
			}
			free(buf);
			return;
		}
		off += (size_t)w;
	}
	free(buf);
	j->size += len + 1;
	j->written++;
	rotate(j);
}

uint64_t lw_jsonl__errors(const struct lw_jsonl *j)
{
	return j->errors;
}

uint64_t lw_jsonl__written(const struct lw_jsonl *j)
{
	return j->written;
}

const char *lw_jsonl__last_error(const struct lw_jsonl *j)
{
	return j->last_error;
}

void lw_sink_jsonl(void *ctx, struct json_object *rec)
{
	lw_jsonl__write(ctx, rec);
}

void lw_sink_text(void *ctx, struct json_object *rec)
{
	struct lw_text_sink *t = ctx;
	const char *type = lw_j_get_str(rec, "type");
	enum lw_rec_kind k = lw_rec_kind_of(type);

	if (!type)
		return;
	if (k == LW_RK_SUMMARY) {
		if (!lw_j_get_bool(rec, "final") && !t->show_periodic)
			return;
	} else if (t->quiet && k != LW_RK_END) {
		return;
	}
	lw_render_text(t->f, rec);
	if (ferror(t->f) && !t->error)
		t->error = errno ? errno : EIO;
}
