/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small helpers for the BPF side only: histogram slots, bounded reads. */
#ifndef LW_BITS_BPF_H
#define LW_BITS_BPF_H

/* floor(log2(v)) for v > 0, branch-light (as in bcc's bits.bpf.h, written anew) */
static __always_inline __u32 lw_log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/*
 * Histogram slot of a duration: microseconds, LW_HIST_SUB linear sub-buckets per power of two.
 * Must match lw_hist_slot() in daemon/hist.c (tested there).
 */
static __always_inline __u32 lw_hist_slot(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 p, sub, slot;

	if (us < LW_HIST_SUB)
		return (__u32)us;
	p = lw_log2_u64(us);
	/* the two bits below the leading one */
	sub = (__u32)((us >> (p - 2)) & (LW_HIST_SUB - 1));
	slot = (p - 1) * LW_HIST_SUB + sub;
	if (slot >= LW_HIST_SLOTS)
		slot = LW_HIST_SLOTS - 1;
	return slot;
}

#endif
