// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "record/hist.h"

#include <string.h>

uint32_t lw_hist_slot(uint64_t ns)
{
	uint64_t us = ns / 1000;
	uint32_t p, sub, slot;

	if (us < LW_HIST_SUB)
		return (uint32_t)us;
	p = 63u - (uint32_t)__builtin_clzll(us);
	sub = (uint32_t)((us >> (p - 2)) & (LW_HIST_SUB - 1));
	slot = (p - 1) * LW_HIST_SUB + sub;
	return slot >= LW_HIST_SLOTS ? LW_HIST_SLOTS - 1 : slot;
}

uint64_t lw_hist_slot_low(uint32_t slot)
{
	uint32_t p, sub;

	if (slot < 2 * LW_HIST_SUB)
		return (uint64_t)slot * 1000;
	p = slot / LW_HIST_SUB + 1;
	sub = slot % LW_HIST_SUB;
	return ((1ull << p) + (uint64_t)sub * (1ull << (p - 2))) * 1000;
}

uint64_t lw_hist_slot_high(uint32_t slot)
{
	if (slot >= LW_HIST_SLOTS - 1)
		return UINT64_MAX;
	return lw_hist_slot_low(slot + 1);
}

void lw_hist_add(struct lw_hist *h, uint64_t ns)
{
	h->count++;
	h->total_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns;
	h->slots[lw_hist_slot(ns)]++;
}

void lw_hist_merge(struct lw_hist *dst, const struct lw_hist *src)
{
	size_t i;

	dst->count += src->count;
	dst->total_ns += src->total_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	if (src->min_ns && (!dst->min_ns || src->min_ns < dst->min_ns))
		dst->min_ns = src->min_ns;
	for (i = 0; i < LW_HIST_SLOTS; i++)
		dst->slots[i] += src->slots[i];
}

void lw_hist_delta(struct lw_hist *dst, const struct lw_hist *a, const struct lw_hist *b)
{
	size_t i;

	dst->count = a->count >= b->count ? a->count - b->count : 0;
	dst->total_ns = a->total_ns >= b->total_ns ? a->total_ns - b->total_ns : 0;
	dst->max_ns = a->max_ns;
	dst->min_ns = a->min_ns;
	for (i = 0; i < LW_HIST_SLOTS; i++)
		dst->slots[i] = a->slots[i] >= b->slots[i] ? a->slots[i] - b->slots[i] : 0;
}

uint64_t lw_hist_quantile(const struct lw_hist *h, double p)
{
	uint64_t total = 0, seen = 0, target;
	uint32_t i;

	for (i = 0; i < LW_HIST_SLOTS; i++)
		total += h->slots[i];
	if (!total)
		return 0;
	if (p <= 0)
		p = 0;
	if (p >= 1)
		return h->max_ns;
	/* rank of the quantile, 1-based: ceil(p * total) */
	target = (uint64_t)(p * (double)total);
	if ((double)target < p * (double)total)
		target++;
	if (!target)
		target = 1;
	for (i = 0; i < LW_HIST_SLOTS; i++) {
		uint64_t lo, hi, v;

		if (!h->slots[i])
			continue;
		if (seen + h->slots[i] >= target) {
			lo = lw_hist_slot_low(i);
			hi = lw_hist_slot_high(i);
			/* the extremes are known exactly: narrow the slot to them */
			if (h->min_ns > lo && h->min_ns < hi)
				lo = h->min_ns;
			if (hi == UINT64_MAX || (h->max_ns && hi > h->max_ns))
				hi = h->max_ns > lo ? h->max_ns : lo;
			/* linear inside the slot */
			v = lo + (uint64_t)((double)(hi - lo) * (double)(target - seen) /
					    (double)h->slots[i]);
			if (h->max_ns && v > h->max_ns)
				v = h->max_ns;
			return v;
		}
		seen += h->slots[i];
	}
	return h->max_ns;
}

char *lw_fmt_dur(uint64_t ns, char *buf, size_t size)
{
	if (ns < 10000)
		snprintf(buf, size, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000)
		snprintf(buf, size, "%.0f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.3f ms", (double)ns / 1e6);
	else
		snprintf(buf, size, "%.3f s", (double)ns / 1e9);
	return buf;
}

static void fmt_bound(uint64_t ns, char *buf, size_t size)
{
	if (ns == UINT64_MAX)
		snprintf(buf, size, "inf");
	else if (ns < 1000000)
		snprintf(buf, size, "%lluus", (unsigned long long)(ns / 1000));
	else if (ns < 1000000000)
		snprintf(buf, size, "%gms", (double)ns / 1e6);
	else
		snprintf(buf, size, "%gs", (double)ns / 1e9);
}

void lw_hist_print(FILE *f, const struct lw_hist *h, const char *indent)
{
	uint32_t i, first = LW_HIST_SLOTS, last = 0, maxc = 0;

	for (i = 0; i < LW_HIST_SLOTS; i++) {
		if (!h->slots[i])
			continue;
		if (first == LW_HIST_SLOTS)
			first = i;
		last = i;
		if (h->slots[i] > maxc)
			maxc = h->slots[i];
	}
	if (first == LW_HIST_SLOTS)
		return;
	for (i = first; i <= last; i++) {
		char lo[24], hi[24], bar[41];
		unsigned w = maxc ? (unsigned)((uint64_t)h->slots[i] * 40 / maxc) : 0;

		if (h->slots[i] && !w)
			w = 1;
		memset(bar, '*', w);
		memset(bar + w, ' ', 40 - w);
		bar[40] = 0;
		fmt_bound(lw_hist_slot_low(i), lo, sizeof(lo));
		fmt_bound(lw_hist_slot_high(i), hi, sizeof(hi));
		fprintf(f, "%s%9s -> %-9s : %-8u |%s|\n", indent, lo, hi, h->slots[i], bar);
	}
}
