/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The live terminal view (--top). */
#ifndef LW_TOP_H
#define LW_TOP_H

#include <stdint.h>
#include <stdio.h>

struct json_object;
struct lw_top;

int lw_top__new(FILE *out, struct lw_top **t);
void lw_top__free(struct lw_top *t);
/* an engine sink (lw_emit_fn): accumulates what the view shows */
void lw_top_sink(void *ctx, struct json_object *rec);
/* redraw once a second at most (now: CLOCK_MONOTONIC ns) */
void lw_top__maybe_draw(struct lw_top *t, uint64_t now);
/* redraw the whole screen */
void lw_top__draw(struct lw_top *t);

#endif
