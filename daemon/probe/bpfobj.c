// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/bpfobj.h"
#include "probe/bpfobj_priv.h"
#include "base/lw_util.h"
#include "base/u64map.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void reaper_init(struct reaper *r);

/*
 * BPF_LINK_CREATE for a uprobe_multi link (Linux >= 6.6), laid out as the kernel's uapi: the
 * headers this is built with (Debian 12: Linux 6.1, libbpf 1.1) do not have it. One link holds
 * any number of uprobes in one file, and closing it unregisters them all behind a single
 * grace period; a perf-event uprobe waits for one each (about 0.1 s here, serialised).
 */
#define LW_TRACE_UPROBE_MULTI 48	/* enum bpf_attach_type's BPF_TRACE_UPROBE_MULTI */
#define LW_LINK_CREATE 28		/* enum bpf_cmd's BPF_LINK_CREATE */

struct lw_umulti_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__aligned_u64 path;
	__aligned_u64 offsets;
	__aligned_u64 ref_ctr_offsets;
	__aligned_u64 cookies;
	__u32 cnt;
	__u32 um_flags;
	__u32 pid;
	__u32 pad;
};

static int umulti_create(int prog_fd, const char *path, const uint64_t *offs,
			 const uint64_t *cookies, unsigned n, __u32 pid)
{
	struct lw_umulti_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)prog_fd;
	a.attach_type = LW_TRACE_UPROBE_MULTI;
	a.path = (__u64)(uintptr_t)path;
	a.offsets = (__u64)(uintptr_t)offs;
	a.cookies = (__u64)(uintptr_t)cookies;
	a.cnt = n;
	a.pid = pid;
	return (int)syscall(__NR_bpf, LW_LINK_CREATE, &a, sizeof(a));
}

/*
 * Does this kernel make uprobe_multi links, with the pid filter on the process (6.6's first
 * version filtered on one thread)? A program that does nothing, attached where no link can be:
 * "/" is no regular file (EBADF where the link type exists), and pid -1 is refused first
 * (EINVAL) where the filter was fixed.
 */
static int uprobe_multi_works(void)
{
	struct bpf_insn insns[2];
	LIBBPF_OPTS(bpf_prog_load_opts, po,
		    .expected_attach_type = (enum bpf_attach_type)LW_TRACE_UPROBE_MULTI);
	uint64_t off = 0;
	int pfd, fd, e1, e2;

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;	/* r0 = 0 */
	insns[1].code = BPF_JMP | BPF_EXIT;
	pfd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, 2, &po);
	if (pfd < 0)
		return 0;
	fd = umulti_create(pfd, "/", &off, NULL, 1, 0);
	e1 = errno;
	if (fd >= 0)
		close(fd);
	fd = fd < 0 ? umulti_create(pfd, "/", &off, NULL, 1, (__u32)-1) : fd;
	e2 = errno;
	if (fd >= 0)
		close(fd);
	close(pfd);
	lw_dbg("uprobe_multi links: %s (probe: %s, %s)",
	       e1 == EBADF && e2 == EINVAL ? "yes" : "no", strerror(e1), strerror(e2));
	return fd < 0 && e1 == EBADF && e2 == EINVAL;
}

/* The kernel functions whose return ends a poll-family syscall (lw_fentry.bpf.h) */
static const char *const fentry_funcs[] = { "do_epoll_wait", "do_sys_poll", "core_sys_select" };

/* "integrity" or "confidentiality" when the kernel is locked down, "" when not or unknown */
static void lockdown_mode(char *buf, size_t n)
{
	char line[128] = "", *a, *z;
	FILE *f = fopen("/sys/kernel/security/lockdown", "r");

	buf[0] = 0;
	if (!f) {
		snprintf(buf, n, "?");
		return;
	}
	if (fgets(line, sizeof(line), f) && (a = strchr(line, '[')) && (z = strchr(a, ']'))) {
		*z = 0;
		if (strcmp(a + 1, "none"))
			snprintf(buf, n, "%s", a + 1);
	}
	fclose(f);
}

/*
 * Can fexit programs on the poll functions load here? Each is tried with a program that does
 * nothing (r0 = 0), loaded, not attached: what refuses them (kernel lockdown, no BPF
 * trampolines, a function inlined away) refuses the load. 1, or 0 with why saying what refused
 * them (for the start record and `check`).
 */
static int fentry_works(char *why, size_t whylen)
{
	struct bpf_insn insns[2];
	struct btf *vb;
	size_t i;
	int ok = 1;

	if (getenv("LOOPWATCH_NO_FENTRY")) {
		snprintf(why, whylen, "fentry not tried (LOOPWATCH_NO_FENTRY is set)");
		return 0;
	}
	vb = btf__load_vmlinux_btf();
	if (!vb) {
		snprintf(why, whylen, "fentry needs the kernel's BTF, which cannot be read (%s)",
			 strerror(errno));
		return 0;
	}
	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;	/* r0 = 0 */
	insns[1].code = BPF_JMP | BPF_EXIT;
	for (i = 0; ok && i < sizeof(fentry_funcs) / sizeof(fentry_funcs[0]); i++) {
		int id = btf__find_by_name_kind(vb, fentry_funcs[i], BTF_KIND_FUNC), pfd;
		LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_TRACE_FEXIT);

		if (id < 0) {
			snprintf(why, whylen, "fentry impossible: the kernel has no function %s to "
				 "attach to (inlined or renamed in this build)", fentry_funcs[i]);
			ok = 0;
			break;
		}
		po.attach_btf_id = (__u32)id;
		pfd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, 2, &po);
		if (pfd < 0) {
			int e = errno;
			char ld[64];

			lockdown_mode(ld, sizeof(ld));
			if (e == EPERM && geteuid() != 0)
				snprintf(why, whylen, "fentry not tried: loading BPF programs needs root "
					 "(%s)", strerror(e));
			else if (e == EPERM && ld[0] && strcmp(ld, "?"))
				snprintf(why, whylen, "fentry refused by the kernel (lockdown: %s)", ld);
			else if (e == EPERM)
				snprintf(why, whylen, "fentry refused by the kernel (%s on %s: kernel "
					 "lockdown or no BPF trampolines%s)", strerror(e),
					 fentry_funcs[i], ld[0] ? "; /sys/kernel/security/lockdown "
					 "cannot be read to tell" : "");
			else
				snprintf(why, whylen, "fentry refused by the kernel (%s on %s)",
					 strerror(e), fentry_funcs[i]);
			ok = 0;
			break;
		}
		close(pfd);
	}
	btf__free(vb);
	if (ok)
		snprintf(why, whylen, "fentry loads: fexit on do_epoll_wait, do_sys_poll, "
			 "core_sys_select");
	lw_dbg("iteration probe: %s", why);
	return ok;
}

/* struct sname of BTF vb has a member mname */
static int btf_has_member(const struct btf *vb, const char *sname, const char *mname)
{
	int id = btf__find_by_name_kind(vb, sname, BTF_KIND_STRUCT);
	const struct btf_type *t = id > 0 ? btf__type_by_id(vb, (__u32)id) : NULL;
	const struct btf_member *m;
	int i;

	if (!t)
		return 0;
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		const char *n = btf__name_by_offset(vb, m->name_off);

		if (n && !strcmp(n, mname))
			return 1;
	}
	return 0;
}

int lw_bpf__wake_hook(void)
{
	static int cached = -1;
	const char *e = getenv("LOOPWATCH_WAKE_HOOK");
	struct btf *vb;
	int ok;

	if (e && *e && strcmp(e, "0"))
		return 1;
	if (cached >= 0)
		return cached;
	/* sched_info is kept where /proc/PID/schedstat exists (CONFIG_SCHED_INFO) */
	vb = access("/proc/self/schedstat", R_OK) ? NULL : btf__load_vmlinux_btf();
	ok = vb && btf_has_member(vb, "sched_entity", "cfs_rq") && btf_has_member(vb, "cfs_rq", "rq") &&
	     btf_has_member(vb, "rq", "clock") && btf_has_member(vb, "task_struct", "sched_info") &&
	     btf_has_member(vb, "sched_info", "run_delay") &&
	     btf_has_member(vb, "sched_info", "last_queued");
	btf__free(vb);
	cached = !ok;
	lw_dbg("run-queue time: %s", ok ? "from sched_info at switch-in" : "tp_btf/sched_wakeup");
	return cached;
}

/*
 * Can sched mode be the default here? Its poll uprobes are per process; where the kernel has
 * uprobe_multi links (>= 6.6) each process's go into one link, whose close waits for one
 * grace period. Without them each probe's close waits for one (about 0.1 s here, serialised),
 * which made loopwatchd's stop of 100 targets run past a minute (docs/benchmarks.md, stop 14):
 * auto then keeps tp_btf/sys_exit. 1, or 0 with why saying what is missing.
 */
static int sched_default_works(char *why, size_t whylen)
{
	if (getenv("LOOPWATCH_NO_UPROBE_MULTI")) {
		snprintf(why, whylen, "sched not used by default: it needs uprobe_multi links, "
			 "and LOOPWATCH_NO_UPROBE_MULTI is set");
		return 0;
	}
	if (!uprobe_multi_works()) {
		snprintf(why, whylen, "sched not used by default: this kernel has no uprobe_multi "
			 "links with a process filter (Linux >= 6.6), so detaching each traced "
			 "process would wait for one grace period per poll probe");
		return 0;
	}
	return 1;
}

int lw_bpf__resolve_iter_mode(enum lw_iter_mode *m, char *why, size_t whylen, char *err,
			      size_t errlen)
{
	char w[640] = "", s[256] = "";

	if (*m == LW_ITER_SYSCALL || *m == LW_ITER_SCHED) {
		snprintf(w, sizeof(w), "chosen (--iterations, [daemon] iterations or "
			 "LOOPWATCH_ITERATIONS)");
	} else if (fentry_works(w, sizeof(w))) {
		*m = LW_ITER_FENTRY;
	} else if (*m == LW_ITER_FENTRY) {
		snprintf(err, errlen, "%s: use --iterations sched (scheduler + per-process poll "
			 "uprobes) or syscall (tp_btf/sys_exit)", w);
		return -ENOTSUP;
	} else if (sched_default_works(s, sizeof(s))) {
		/* auto, fentry refused: the scheduler and per-process poll uprobes, which cost
		 * other processes no program per syscall (issue 16) */
		*m = LW_ITER_SCHED;
		snprintf(w + strlen(w), sizeof(w) - strlen(w), ": using sched (scheduler + "
			 "per-process poll uprobes in one uprobe_multi link)");
	} else {
		*m = LW_ITER_SYSCALL;
		snprintf(w + strlen(w), sizeof(w) - strlen(w), "; %s: using tp_btf/sys_exit", s);
	}
	if (why)
		snprintf(why, whylen, "%s", w);
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (level == LIBBPF_DEBUG && lw_log_get_level() < LW_LOG_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	lw_log(level == LIBBPF_WARN ? LW_LOG_INFO : LW_LOG_DEBUG, "libbpf: %s", buf);
	return 0;
}

static int privilege_error(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen,
		 "%s: permission denied; loopwatch needs root, or the capabilities CAP_BPF, "
		 "CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_RESOURCE (kernel >= 5.8); try sudo",
		 what);
	return -EPERM;
}

static void attach_samplers(struct lw_bpf *b, int hz)
{
	int ncpu = libbpf_num_possible_cpus(), cpu;
	struct perf_event_attr attr;

	if (ncpu <= 0 || hz <= 0)
		return;
	b->perf_links = calloc((size_t)ncpu, sizeof(*b->perf_links));
	b->perf_fds = calloc((size_t)ncpu, sizeof(*b->perf_fds));
	if (!b->perf_links || !b->perf_fds)
		return;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = 1;
	attr.sample_freq = (__u64)hz;
	for (cpu = 0; cpu < ncpu; cpu++) {
		int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		struct bpf_link *l;

		if (fd < 0) {
			if (errno != ENODEV)
				lw_dbg("perf_event_open on cpu %d: %s", cpu, strerror(errno));
			continue;
		}
		l = bpf_program__attach_perf_event(b->skel->progs.lw_sample, fd);
		if (!l) {
			close(fd);
			continue;
		}
		b->perf_fds[b->nperf] = fd;
		b->perf_links[b->nperf++] = l;
	}
	b->sampling = b->nperf > 0;
	if (!b->sampling)
		lw_warn("CPU sampling unavailable (perf events refused): stacks of loops that burn "
			"CPU without blocking will be missing");
}

/* Effective capabilities from /proc/self/status (CapEff, hex). */
static uint64_t effective_caps(void)
{
	char *text = NULL, *p;
	uint64_t caps = 0;

	if (lw_read_file("/proc/self/status", 1 << 16, &text, NULL))
		return 0;
	p = strstr(text, "\nCapEff:");
	if (p)
		caps = strtoull(p + 8, NULL, 16);
	free(text);
	return caps;
}

#define CAP_SYS_ADMIN_BIT 21
#define CAP_SYS_PTRACE_BIT 19
#define CAP_SYS_RESOURCE_BIT 24
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

/* Name exactly the capabilities that are missing, before the kernel says "permission denied". */
static int check_caps(char *err, size_t errlen)
{
	uint64_t c = effective_caps();
	char missing[160] = "";
	int admin = !!(c & (1ull << CAP_SYS_ADMIN_BIT));

	if (!admin && !(c & (1ull << CAP_BPF_BIT)))
		strcat(missing, " CAP_BPF");
	if (!admin && !(c & (1ull << CAP_PERFMON_BIT)))
		strcat(missing, " CAP_PERFMON");
	if (!(c & (1ull << CAP_SYS_PTRACE_BIT)))
		strcat(missing, " CAP_SYS_PTRACE");
	if (!missing[0])
		return 0;
	snprintf(err, errlen,
		 "not enough privilege to trace: missing%s (loopwatch needs root, or CAP_BPF, "
		 "CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_RESOURCE); try sudo",
		 missing);
	return -EPERM;
}

/*
 * LW_VERIFIER_STATS=1: the kernel's verifier statistics for each program loaded (log level 4,
 * BPF_LOG_STATS: instructions processed, states, verification time), one notice line each.
 * Attach time is mostly the verifier's; this is how each program's share is measured (and
 * what test_false_reports bounds). The kernel writes more than the statistics at that level
 * (each global function it validates), and a log that does not fit fails the load (ENOSPC).
 */
#define STATS_LOG 65536

static char **stats_logs_set(struct bpf_object *obj)
{
	struct bpf_program *p;
	char **logs;
	size_t n = 0, i = 0;

	if (!getenv("LW_VERIFIER_STATS"))
		return NULL;
	bpf_object__for_each_program(p, obj)
		n++;
	logs = calloc(n + 1, sizeof(*logs));
	if (!logs)
		return NULL;
	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		if (!(logs[i] = calloc(1, STATS_LOG)))
			break;	/* the programs after it load without stats */
		bpf_program__set_log_buf(p, logs[i], STATS_LOG);
		bpf_program__set_log_level(p, 4);
		i++;
	}
	return logs;
}

static void stats_logs_print(struct bpf_object *obj, char **logs)
{
	struct bpf_program *p;
	size_t i = 0;

	if (!logs)
		return;
	bpf_object__for_each_program(p, obj) {
		char *l, *nl;

		if (!bpf_program__autoload(p) || !logs[i])
			continue;
		l = logs[i++];
		while ((nl = strchr(l, '\n')))
			*nl = ' ';
		lw_log(LW_LOG_NOTICE, "verifier: %s: %s", bpf_program__name(p), l);
	}
	for (i = 0; logs[i]; i++)
		free(logs[i]);
	free(logs);
}

static int bpf_new(const struct lw_bpf_opts *opts, const char *why, struct lw_bpf **out,
		   char *err, size_t errlen);

int lw_bpf__new(const struct lw_bpf_opts *opts, struct lw_bpf **out, char *err, size_t errlen)
{
	struct lw_bpf_opts o = *opts;
	char why[640] = "";
	int r, autosel = opts->iter_mode == LW_ITER_AUTO;

	libbpf_set_print(libbpf_print);
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(err, errlen,
			 "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): loopwatch needs "
			 "Linux >= 5.8 built with CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	r = check_caps(err, errlen);
	if (r)
		return r;
	r = lw_bpf__resolve_iter_mode(&o.iter_mode, why, sizeof(why), err, errlen);
	if (r)
		return r;
	r = bpf_new(&o, why, out, err, errlen);
	/* fentry or sched chosen by itself but the real programs refused (the verifier, an
	 * attach): tp_btf/sys_exit instead, saying why */
	if (r && autosel && o.iter_mode != LW_ITER_SYSCALL) {
		const char *mn = lw_bpf__iter_mode_name(o.iter_mode);

		lw_warn("the %s iteration probe failed (%s): using tp_btf/sys_exit", mn, err);
		snprintf(why, sizeof(why), "%s chosen by default but loopwatch's %s programs failed "
			 "(%.300s): using tp_btf/sys_exit", mn,
			 o.iter_mode == LW_ITER_FENTRY ? "fexit" : "poll-uprobe", err);
		o.iter_mode = LW_ITER_SYSCALL;
		err[0] = 0;
		r = bpf_new(&o, why, out, err, errlen);
	}
	return r;
}

static int bpf_new(const struct lw_bpf_opts *opts, const char *why, struct lw_bpf **out,
		   char *err, size_t errlen)
{
	struct lw_bpf *b;
	char **stats;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	reaper_init(&b->reap);
	b->links = calloc(MAX_LINKS * 2, sizeof(*b->links));
	b->hooks = calloc(MAX_HOOKS, sizeof(*b->hooks));
	b->hook_fds = malloc(MAX_HOOKS * sizeof(*b->hook_fds));
	if (!b->links || !b->hooks || !b->hook_fds ||
	    lw_u64map__new(sizeof(uint32_t), &b->share_of) ||
	    lw_u64map__new(sizeof(uint32_t), &b->share_refs)) {
		lw_u64map__free(b->share_of, NULL);
		lw_u64map__free(b->share_refs, NULL);
		free(b->hooks);
		free(b->hook_fds);
		free(b->links);
		free(b);
		return -ENOMEM;
	}
	for (r = 0; r < MAX_HOOKS; r++)
		b->hook_fds[r] = -1;
	b->skel = loopwatch_bpf__open();
	if (!b->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(-r));
		goto fail;
	}
	/* records are read as loopwatch.h lays them out: the object must agree */
	if (b->skel->rodata->lw_abi_version != LW_ABI_VERSION) {
		snprintf(err, errlen,
			 "the BPF object was built for record ABI %u, this program reads ABI %u: "
			 "rebuild both from one tree (make clean all)",
			 (unsigned)b->skel->rodata->lw_abi_version, (unsigned)LW_ABI_VERSION);
		r = -EPROTO;
		goto fail;
	}
	b->skel->rodata->want_exec = opts->want_exec ? 1 : 0;
	/* as many processes as the caller traces at once (loopwatchd: its limit) */
	if (opts->max_procs > 0 &&
	    ((r = bpf_map__set_max_entries(b->skel->maps.procs, (__u32)opts->max_procs)) ||
	     (r = bpf_map__set_max_entries(b->skel->maps.fair,
					   (__u32)opts->max_procs + MAX_SHARES)))) {
		snprintf(err, errlen, "cannot size the BPF procs map to %d: %s", opts->max_procs,
			 strerror(-r));
		goto fail;
	}
	/* forks matter to discovery only (the daemon): not a program on every fork otherwise */
	if (!opts->want_exec)
		bpf_program__set_autoload(b->skel->progs.lw_process_fork, false);
	b->skel->rodata->self_tgid = (__u32)getpid();
	b->iter_mode = opts->iter_mode;
	snprintf(b->iter_why, sizeof(b->iter_why), "%s", why);
	/* task storage (>= 5.11): the scheduler programs' early return for untraced tasks */
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) == 0) {
		b->skel->rodata->use_tflag = 0;
		bpf_map__set_autocreate(b->skel->maps.tflag, false);
	}
	b->skel->rodata->iter_sched = opts->iter_mode == LW_ITER_SCHED;
	/* run-queue time from the tasks' own sched_info where the kernel keeps it: no program on
	 * every wake-up on the host (issue 16) */
	b->wake_hook = lw_bpf__wake_hook();
	b->skel->rodata->wake_hook = (__u32)b->wake_hook;
	if (!b->wake_hook)
		bpf_program__set_autoload(b->skel->progs.lw_sched_wakeup, false);
	/* Precise mode's context_run probe: in sched mode its entry alone, one trap a callback
	 * (issue 16); a callback ends where the next begins, at the loop's poll entry (which only
	 * sched mode probes), or where a switch-out or a CPU sample finds its context_run frame
	 * gone (cb_check_returned: stop 17 charged a preemption after the return, 47 ms of run
	 * queue, to the callback). Entry and return elsewhere, or with
	 * LOOPWATCH_PRECISE_ENTRY_ONLY=0. */
	{
		const char *eo = getenv("LOOPWATCH_PRECISE_ENTRY_ONLY");

		b->entry_only = opts->iter_mode == LW_ITER_SCHED && !(eo && !strcmp(eo, "0"));
	}
	b->skel->rodata->ctxrun_entry_only = b->entry_only;
	/* sched and fentry modes: no syscall tracepoint at all (it would tax every process on
	 * the host) */
	if (opts->iter_mode != LW_ITER_SYSCALL)
		bpf_program__set_autoload(b->skel->progs.lw_sys_exit, false);
	/* the poll-entry uprobes belong to sched mode: not verified for nothing */
	if (opts->iter_mode != LW_ITER_SCHED)
		bpf_program__set_autoload(b->skel->progs.lw_poll_enter, false);
	if (b->entry_only)	/* precise mode's return probe: not with the entry-only probe */
		bpf_program__set_autoload(b->skel->progs.lw_ctxrun_exit, false);
	if (opts->iter_mode != LW_ITER_FENTRY) {
		bpf_program__set_autoload(b->skel->progs.lw_fx_epoll, false);
		bpf_program__set_autoload(b->skel->progs.lw_fx_poll, false);
		bpf_program__set_autoload(b->skel->progs.lw_fx_select, false);
	}
	/* one uprobe_multi link per process for its poll probes where the kernel has them: a
	 * detach then waits for one grace period, not one per probe */
	if (opts->iter_mode == LW_ITER_SCHED && !getenv("LOOPWATCH_NO_UPROBE_MULTI") &&
	    uprobe_multi_works()) {
		bpf_program__set_expected_attach_type(b->skel->progs.lw_poll_enter,
						      (enum bpf_attach_type)LW_TRACE_UPROBE_MULTI);
		b->multi = 1;
	}
	if (opts->ustack_bytes)
		b->skel->rodata->ustack_bytes = opts->ustack_bytes < 0 ? 0 :
			opts->ustack_bytes > LW_USTACK_MAX ? LW_USTACK_MAX : (__u32)opts->ustack_bytes;
	/* Attach time is mostly the verifier's: load only the programs this run can use */
	b->no_precise = opts->no_precise != 0;
	if (b->no_precise) {
		bpf_program__set_autoload(b->skel->progs.lw_ctxrun_enter, false);
		bpf_program__set_autoload(b->skel->progs.lw_ctxrun_exit, false);
		bpf_program__set_autoload(b->skel->progs.lw_uv_handle, false);
		bpf_program__set_autoload(b->skel->progs.lw_uv_timer, false);
		bpf_program__set_autoload(b->skel->progs.lw_uv_exit, false);
	}
	/* one asyncio-hook program told the kind by the attach cookie where the kernel has them
	 * (verified once, not three times), else one program per kind */
	b->aio_cookie = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie,
						NULL) == 1;
	if (b->aio_cookie) {
		bpf_program__set_autoload(b->skel->progs.lw_hook_unawaited, false);
		bpf_program__set_autoload(b->skel->progs.lw_hook_never_retrieved, false);
		bpf_program__set_autoload(b->skel->progs.lw_hook_destroyed_pending, false);
	} else {
		bpf_program__set_autoload(b->skel->progs.lw_hook_aio, false);
	}
	/* 0: the kernel has no such map type; < 0: could not tell (go on, load will say) */
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 0) {
		snprintf(err, errlen,
			 "this kernel has no BPF ring buffer (needs Linux >= 5.8): loopwatch cannot "
			 "run here");
		r = -ENOTSUP;
		goto fail;
	}
	stats = stats_logs_set(b->skel->obj);
	r = loopwatch_bpf__load(b->skel);
	stats_logs_print(b->skel->obj, stats);
	if (r) {
		if (r == -EPERM || r == -EACCES) {
			r = privilege_error(err, errlen, "loading BPF programs");
		} else {
			snprintf(err, errlen,
				 "the kernel refused loopwatch's BPF programs (%s); run with -v to see "
				 "the verifier's log and report it with `uname -r`",
				 strerror(-r));
		}
		goto fail;
	}
	r = loopwatch_bpf__attach(b->skel);
	if (r) {
		if (r == -EPERM || r == -EACCES)
			r = privilege_error(err, errlen, "attaching tracepoints");
		else
			snprintf(err, errlen, "cannot attach the scheduler/syscall tracepoints: %s",
				 strerror(-r));
		goto fail;
	}
	attach_samplers(b, opts->sample_hz);
	*out = b;
	return 0;
fail:
	lw_bpf__free(b);
	return r;
}

static void *reaper_main(void *arg)
{
	struct reaper *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct reapee e;

		while (!r->n && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->n)
			break;
		e = r->q[--r->n];
		r->busy++;
		pthread_mutex_unlock(&r->mu);
		if (e.l)
			bpf_link__destroy(e.l);
		else
			close(e.fd);
		pthread_mutex_lock(&r->mu);
		r->busy--;
		if (!r->n && !r->busy)
			pthread_cond_broadcast(&r->idle);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void reaper_init(struct reaper *r)
{
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->idle, NULL);
}

static void reapee_close(struct reapee e)
{
	if (e.l)
		bpf_link__destroy(e.l);
	else
		close(e.fd);
}

/* Close l (or, when l is NULL, the link fd fd >= 0) in the background (or right here when no
 * thread or memory can be had). */
static void reap_any(struct reaper *r, struct bpf_link *l, int fd)
{
	struct reapee e = { .l = l, .fd = fd };

	if (!l && fd < 0)
		return;
	pthread_mutex_lock(&r->mu);
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		struct reapee *nq = realloc(r->q, nc * sizeof(*nq));

		if (!nq) {
			pthread_mutex_unlock(&r->mu);
			reapee_close(e);
			return;
		}
		r->q = nq;
		r->cap = nc;
	}
	r->q[r->n++] = e;
	/* one more thread while there is more work than threads */
	if (r->nthreads < REAPERS && (size_t)r->nthreads < r->n + (size_t)r->busy &&
	    pthread_create(&r->threads[r->nthreads], NULL, reaper_main, r) == 0)
		r->nthreads++;
	if (!r->nthreads) {
		r->n--;
		pthread_mutex_unlock(&r->mu);
		reapee_close(e);
		return;
	}
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void reap(struct reaper *r, struct bpf_link *l)
{
	reap_any(r, l, -1);
}

/* Wait until every queued link is closed, then stop the threads. */
static void reaper_finish(struct reaper *r)
{
	int i;

	pthread_mutex_lock(&r->mu);
	while (r->n || r->busy)
		pthread_cond_wait(&r->idle, &r->mu);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	free(r->q);
	pthread_cond_destroy(&r->idle);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
}

void lw_bpf__free(struct lw_bpf *b)
{
	int i;

	if (!b)
		return;
	for (i = 0; i < b->nlinks * 2 && i < MAX_LINKS * 2; i++)
		reap(&b->reap, b->links[i]);
	for (i = 0; i < b->nhooks; i++)
		reap_any(&b->reap, b->hooks[i], b->hooks[i] ? -1 : b->hook_fds[i]);
	for (i = 0; i < b->nperf; i++)
		reap(&b->reap, b->perf_links[i]);
	reaper_finish(&b->reap);
	free(b->hooks);
	free(b->hook_fds);
	for (i = 0; i < b->nperf; i++)
		close(b->perf_fds[i]);
	free(b->perf_links);
	free(b->perf_fds);
	free(b->links);
	loopwatch_bpf__destroy(b->skel);
	lw_u64map__free(b->share_of, NULL);
	lw_u64map__free(b->share_refs, NULL);
	free(b);
}

int lw_bpf__events_fd(const struct lw_bpf *b)
{
	return bpf_map__fd(b->skel->maps.events);
}

int lw_bpf__sampling(const struct lw_bpf *b)
{
	return b->sampling;
}

const char *lw_bpf__iter_probe_of(enum lw_iter_mode m)
{
	if (m == LW_ITER_FENTRY)
		return "fexit on do_epoll_wait, do_sys_poll, core_sys_select (poll-family returns) + "
		       "sched_switch (sleeps in them)";
	if (m == LW_ITER_AUTO)
		return "fexit on the kernel's poll functions where the kernel loads them, else the "
		       "scheduler + per-process poll uprobes where the kernel has uprobe_multi "
		       "links (>= 6.6), else tp_btf/sys_exit";
	if (m == LW_ITER_SYSCALL)
		return "tp_btf/sys_exit (poll-family returns) + sched_switch (sleeps in them)";
	return "sched_switch (sleeps in the loop's poll, from the sleeping thread's orig_ax) + "
	       "uprobes on the libc poll wrappers' entry (polls that return at once)";
}

const char *lw_bpf__host_cost_of(enum lw_iter_mode m)
{
	int w = lw_bpf__wake_hook();

	if (m == LW_ITER_FENTRY)
		return w ? "no syscall tracepoint: other processes pay a BPF program (a return after "
			   "one hash lookup) at the return of each of their poll-family calls, and the "
			   "sched_switch/sched_wakeup programs at each context switch and wake-up (an "
			   "early return for untraced tasks)" :
			   "no syscall tracepoint: other processes pay a BPF program (a return after "
			   "one hash lookup) at the return of each of their poll-family calls, and the "
			   "sched_switch program at each context switch (an early return for untraced "
			   "tasks)";
	if (m == LW_ITER_SYSCALL)
		return w ? "every syscall of every process on the host takes the kernel's slow exit "
			   "path and runs a BPF program (tp_btf/sys_exit); every context switch and "
			   "wake-up runs the sched_switch/sched_wakeup programs" :
			   "every syscall of every process on the host takes the kernel's slow exit "
			   "path and runs a BPF program (tp_btf/sys_exit); every context switch runs "
			   "the sched_switch program";
	return w ? "no syscall tracepoint: other processes pay only the sched_switch/sched_wakeup "
		   "programs at each context switch and wake-up (an early return for untraced "
		   "tasks); the poll uprobes cost only the traced process (one trap per poll call)" :
		   "no syscall tracepoint: other processes pay only the sched_switch program at each "
		   "context switch (an early return for untraced tasks; no program at wake-ups); "
		   "the poll uprobes cost only the traced process (one trap per poll call)";
}

const char *lw_bpf__target_cost_of(enum lw_iter_mode m)
{
	if (m == LW_ITER_FENTRY)
		return "one fexit program at the return of each poll-family call";
	if (m == LW_ITER_SYSCALL)
		return "each of its syscalls takes the kernel's slow exit path and runs the "
		       "tp_btf/sys_exit program, as every other process's do";
	return "one emulated uprobe trap per poll call that returns without sleeping (a busy loop "
	       "pays it per iteration); a poll that sleeps costs nothing more";
}

const char *lw_bpf__iter_probe(const struct lw_bpf *b)
{
	return lw_bpf__iter_probe_of(b->iter_mode);
}

const char *lw_bpf__host_cost(const struct lw_bpf *b)
{
	return lw_bpf__host_cost_of(b->iter_mode);
}

enum lw_iter_mode lw_bpf__iter_mode(const struct lw_bpf *b)
{
	return b->iter_mode;
}

const char *lw_bpf__iter_why(const struct lw_bpf *b)
{
	return b->iter_why;
}

const char *lw_bpf__iter_mode_name(enum lw_iter_mode m)
{
	return m == LW_ITER_SYSCALL ? "syscall" : m == LW_ITER_FENTRY ? "fentry" :
	       m == LW_ITER_AUTO ? "auto" : "sched";
}

int lw_bpf__parse_iter_mode(const char *s, enum lw_iter_mode *out, char *err, size_t errlen)
{
	if (!s)
		s = getenv("LOOPWATCH_ITERATIONS");
	if (!s || !*s || !strcmp(s, "auto")) {
		*out = LW_ITER_AUTO;
		return 0;
	}
	if (!strcmp(s, "syscall")) {
		*out = LW_ITER_SYSCALL;
		return 0;
	}
	if (!strcmp(s, "fentry")) {
		*out = LW_ITER_FENTRY;
		return 0;
	}
	if (!strcmp(s, "sched")) {
		*out = LW_ITER_SCHED;
		return 0;
	}
	snprintf(err, errlen,
		 "unknown iteration probe '%s' (LOOPWATCH_ITERATIONS): use auto (the default: "
		 "fentry where the kernel loads it, else sched where the kernel has uprobe_multi "
		 "links, else syscall), fentry (fexit on the kernel's "
		 "poll functions), syscall (tp_btf/sys_exit, every syscall on the host pays the "
		 "slow path) or sched (no cost to other processes, one uprobe trap per poll of the "
		 "traced loop)", s);
	return -EINVAL;
}

int lw_bpf__attach_ctxrun(struct lw_bpf *b, pid_t pid, const char *path, uint64_t offset,
			  char *err, size_t errlen)
{
	struct bpf_link *in, *ret;
	int h, r;

	if (b->no_precise) {
		snprintf(err, errlen, "the precise-mode programs were not loaded (this run is not "
			 "precise): restart loopwatch with --precise");
		return -ENOTSUP;
	}
	for (h = 0; h < b->nlinks; h++)
		if (!b->links[2 * h] && !b->links[2 * h + 1])
			break;
	if (h == MAX_LINKS) {
		snprintf(err, errlen, "too many probes attached (%d processes)", MAX_LINKS);
		return -ENOSPC;
	}
	/* entry-only (sched mode, on request): the entry probe alone (one trap per callback; a
	 * callback ends where the next begins or at the loop's poll, whose entry is probed) */
	ret = NULL;
	/* the return probe first: a call entered between the two attachments then shows up as a
	 * return without an entry (ignored), never as an entry whose return is not seen, which
	 * would leave the thread "inside a callback" for good */
	if (!b->entry_only) {
		ret = bpf_program__attach_uprobe(b->skel->progs.lw_ctxrun_exit, true, pid, path,
						 (size_t)offset);
		if (!ret) {
			r = -errno;
			goto fail;
		}
	}
	in = bpf_program__attach_uprobe(b->skel->progs.lw_ctxrun_enter, false, pid, path,
					(size_t)offset);
	if (!in) {
		r = -errno;
		reap(&b->reap, ret);
		goto fail;
	}
	b->links[2 * h] = in;
	b->links[2 * h + 1] = ret;
	if (h == b->nlinks)
		b->nlinks++;
	return h;
fail:
	if (r == -EPERM || r == -EACCES)
		return privilege_error(err, errlen, "attaching the context_run uprobe");
	snprintf(err, errlen, "cannot attach a uprobe to %s at offset 0x%llx: %s", path,
		 (unsigned long long)offset, strerror(-r));
	return r;
}

void lw_bpf__detach(struct lw_bpf *b, int h)
{
	if (h < 0 || h >= b->nlinks)
		return;
	reap(&b->reap, b->links[2 * h]);
	reap(&b->reap, b->links[2 * h + 1]);
	b->links[2 * h] = NULL;
	b->links[2 * h + 1] = NULL;
}

static int attach_uprobe(struct lw_bpf *b, struct bpf_program *prog, pid_t pid, const char *path,
			 uint64_t offset, const struct bpf_uprobe_opts *opts, char *err,
			 size_t errlen);

int lw_bpf__attach_hook(struct lw_bpf *b, enum lw_hook_prog which, pid_t pid, const char *path,
			uint64_t offset, uint64_t ref_ctr_offset, int retprobe, char *err,
			size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe != 0,
		    .ref_ctr_offset = (size_t)ref_ctr_offset);
	struct bpf_program *prog;

	if (b->aio_cookie && (which == LW_HOOK_UNAWAITED || which == LW_HOOK_NEVER_RETRIEVED ||
			      which == LW_HOOK_DESTROYED_PENDING)) {
		static const __u64 kind[] = { [LW_HOOK_UNAWAITED] = LW_AIO_UNAWAITED,
					      [LW_HOOK_NEVER_RETRIEVED] = LW_AIO_NEVER_RETRIEVED,
					      [LW_HOOK_DESTROYED_PENDING] = LW_AIO_DESTROYED_PENDING };

		opts.bpf_cookie = kind[which];
		which = LW_HOOK_AIO;
	}
	if (b->no_precise && which >= LW_HOOK_UV_HANDLE && which <= LW_HOOK_UV_EXIT) {
		snprintf(err, errlen, "the precise-mode programs were not loaded (this run is not "
			 "precise): restart loopwatch with --precise");
		return -ENOTSUP;
	}
	switch (which) {
	case LW_HOOK_AIO:
		prog = b->skel->progs.lw_hook_aio;
		break;
	case LW_HOOK_UNAWAITED:
		prog = b->skel->progs.lw_hook_unawaited;
		break;
	case LW_HOOK_NEVER_RETRIEVED:
		prog = b->skel->progs.lw_hook_never_retrieved;
		break;
	case LW_HOOK_DESTROYED_PENDING:
		prog = b->skel->progs.lw_hook_destroyed_pending;
		break;
	case LW_HOOK_GC_START:
		prog = b->skel->progs.lw_gc_start;
		break;
	case LW_HOOK_GC_DONE:
		prog = b->skel->progs.lw_gc_done;
		break;
	case LW_HOOK_UV_HANDLE:
		prog = b->skel->progs.lw_uv_handle;
		break;
	case LW_HOOK_UV_TIMER:
		prog = b->skel->progs.lw_uv_timer;
		break;
	default:
		prog = b->skel->progs.lw_uv_exit;
		break;
	}
	return attach_uprobe(b, prog, pid, path, offset, &opts, err, errlen);
}

int lw_bpf__attach_poll(struct lw_bpf *b, pid_t pid, const char *path, uint64_t offset,
			unsigned nr, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = nr);

	if (b->multi)
		return lw_bpf__attach_polls(b, pid, path, &offset, &nr, 1, err, errlen);
	return attach_uprobe(b, b->skel->progs.lw_poll_enter, pid, path, offset, &opts, err,
			     errlen);
}

int lw_bpf__ctxrun_entry_only(const struct lw_bpf *b)
{
	return b->entry_only;
}

int lw_bpf__wake_hook_of(const struct lw_bpf *b)
{
	return b->wake_hook;
}

int lw_bpf__poll_multi(const struct lw_bpf *b)
{
	return b->multi;
}

/* the first hook slot with neither a link nor a link fd (a new one at the end), or -ENOSPC */
static int free_hook_slot(const struct lw_bpf *b, char *err, size_t errlen)
{
	int h;

	for (h = 0; h < b->nhooks; h++)
		if (!b->hooks[h] && b->hook_fds[h] < 0)
			break;
	if (h == MAX_HOOKS) {
		snprintf(err, errlen, "too many hooks attached (%d)", MAX_HOOKS);
		return -ENOSPC;
	}
	return h;
}

int lw_bpf__attach_polls(struct lw_bpf *b, pid_t pid, const char *path, const uint64_t *offs,
			 const unsigned *nrs, unsigned n, char *err, size_t errlen)
{
	uint64_t cookies[16];
	unsigned i;
	int h, fd, r;

	if (!b->multi || n > 16) {
		snprintf(err, errlen, "no uprobe_multi links here (needs Linux >= 6.6)");
		return -ENOTSUP;
	}
	h = free_hook_slot(b, err, errlen);
	if (h < 0)
		return h;
	for (i = 0; i < n; i++)
		cookies[i] = nrs[i];
	fd = umulti_create(bpf_program__fd(b->skel->progs.lw_poll_enter), path, offs, cookies, n,
			   (__u32)pid);
	if (fd < 0) {
		r = -errno;
		if (r == -EPERM || r == -EACCES)
			return privilege_error(err, errlen, "attaching the poll uprobes");
		snprintf(err, errlen, "cannot attach %u poll uprobes (one uprobe_multi link) to %s: "
			 "%s", n, path, strerror(-r));
		return r;
	}
	b->hook_fds[h] = fd;
	if (h == b->nhooks)
		b->nhooks++;
	return h;
}

static int attach_uprobe(struct lw_bpf *b, struct bpf_program *prog, pid_t pid, const char *path,
			 uint64_t offset, const struct bpf_uprobe_opts *opts, char *err,
			 size_t errlen)
{
	struct bpf_link *l;
	int h, r;

	h = free_hook_slot(b, err, errlen);
	if (h < 0)
		return h;
	l = bpf_program__attach_uprobe_opts(prog, pid, path, (size_t)offset, opts);
	if (!l) {
		r = -errno;
		snprintf(err, errlen, "cannot attach a uprobe to %s+0x%llx: %s", path,
			 (unsigned long long)offset, strerror(-r));
		return r;
	}
	b->hooks[h] = l;
	if (h == b->nhooks)
		b->nhooks++;
	return h;
}

void lw_bpf__detach_hook(struct lw_bpf *b, int h)
{
	if (h < 0 || h >= b->nhooks)
		return;
	reap_any(&b->reap, b->hooks[h], b->hooks[h] ? -1 : b->hook_fds[h]);
	b->hooks[h] = NULL;
	b->hook_fds[h] = -1;
}
