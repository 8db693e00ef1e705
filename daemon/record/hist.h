/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Duration histograms: log2 of microseconds with LW_HIST_SUB linear sub-buckets (the layout the
 * BPF side fills), percentiles, deltas, rendering. */
#ifndef LW_HIST_H
#define LW_HIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/types.h>
#include "loopwatch.h"

uint32_t lw_hist_slot(uint64_t ns);
/* [low, high) of a slot in ns */
uint64_t lw_hist_slot_low(uint32_t slot);
uint64_t lw_hist_slot_high(uint32_t slot);

void lw_hist_add(struct lw_hist *h, uint64_t ns);
void lw_hist_merge(struct lw_hist *dst, const struct lw_hist *src);
/* dst = a - b, slot by slot (a cumulative snapshot minus an older one); max kept from a */
void lw_hist_delta(struct lw_hist *dst, const struct lw_hist *a, const struct lw_hist *b);

/* p in [0,1]: value at that quantile, interpolated inside its slot, never above max_ns */
uint64_t lw_hist_quantile(const struct lw_hist *h, double p);

/* Render as "    low -> high : count |****   |" lines into f, only the non-empty range. */
void lw_hist_print(FILE *f, const struct lw_hist *h, const char *indent);

/* Format ns as a short human duration into buf ("312 us", "1.234 ms", "2.004 s"). */
char *lw_fmt_dur(uint64_t ns, char *buf, size_t size);

#endif
