/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Human text for JSON records: used live and by `loopwatch report`. */
#ifndef LW_RENDER_H
#define LW_RENDER_H

#include <stddef.h>
#include <stdio.h>

struct json_object;

/* Print the human form of one record (start, slow_callback, slow_tick, blocking_call, summary,
 * end; other types are ignored). */
void lw_render_text(FILE *f, struct json_object *rec);
/* "<Task name='x' coro=<f() defined at app.py:17>>" for a "callback" object */
void lw_render_callback(struct json_object *cb, char *buf, size_t size);

#endif
