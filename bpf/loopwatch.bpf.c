// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopwatch kernel side.
 *
 * - tp_btf/sys_exit: loop iterations, bounded by poll-family syscalls. The syscall
 *   number is compared before anything else, so other syscalls cost one compare.
 * - tp_btf sched_switch: where the time of a busy iteration (or callback) went: run queue,
 *   blocked by syscall, GIL; the Python and native stack where it blocked. The run queue after
 *   a wake-up from the task's sched_info; tp_btf/sched_wakeup only where the kernel has none.
 * - perf_event sampler: the Python stack of a loop thread that burns CPU in a busy iteration.
 * - uprobe/uretprobe on CPython's context_run (precise mode): every callback timed, identified,
 *   histogrammed per site; only slow ones reach userspace.
 *
 * Every program returns at once for threads it does not track (a hash lookup on the tid).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "loopwatch.h"
#include "lw_bits.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NO_FIELD 0xffff

/* Set by userspace before load */
const volatile __u32 want_exec = 0;	/* emit LW_REC_EXEC for every exec (daemon discovery) */
const volatile __u32 self_tgid = 0;	/* loopwatch itself: never traced */
/* Read by userspace before load: the record ABI this object was built with (loopwatch.h) */
const volatile __u32 lw_abi_version = LW_ABI_VERSION;

/* Counters read by userspace (never silent loss) */
__u64 lost_events = 0;		/* ring buffer full */
__u64 read_errors = 0;		/* a read of target memory failed */
__u64 read_errors_by[LW_RD_NCAUSES] = {};	/* ... by what it was for */
__u64 depth_errors = 0;		/* unbalanced context_run entry/return */
__u64 thread_map_full = 0;	/* could not track a new thread */
__u64 sites_full = 0;		/* precise: a callback not counted, the sites map had no room */
__u64 samples = 0;		/* perf samples taken on loop threads */

/* One compilation unit, split by concern; each header begins with what it holds. */
#include "lw_maps.bpf.h"
#include "lw_ustack.bpf.h"
#include "lw_pywalk.bpf.h"
#include "lw_thread.bpf.h"
#include "lw_iter.bpf.h"
#include "lw_sched.bpf.h"
#include "lw_precise.bpf.h"
#include "lw_aiohooks.bpf.h"
#include "lw_fentry.bpf.h"
