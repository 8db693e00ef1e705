/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The third way to find loop iterations (issue 16): fexit on the kernel's poll functions. Where
 * the kernel lets these load (BPF trampolines: Linux >= 5.5 on x86-64 with ftrace, no kernel
 * lockdown, bpf_task_pt_regs >= 5.15), they replace tp_btf/sys_exit: only the poll-family calls
 * of the host run a program (a return at once for untraced threads: one hash lookup), not
 * every syscall of every process through the kernel's slow exit path. The work is
 * lw_sys_exit's (poll_syscall_exit), from the same user registers (the syscall number, its
 * first two arguments), so the records are the same. Loaded only in that mode (userspace
 * chooses: daemon/probe/bpfobj.c); elsewhere the fallback is tp_btf/sys_exit.
 * Part of loopwatch.bpf.c's one compilation unit: included there, never alone.
 */
#ifndef LW_FENTRY_BPF_H
#define LW_FENTRY_BPF_H

static __always_inline int poll_fexit(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return poll_syscall_exit((__u32)regs->orig_ax, regs->di, regs->si);
}

/* epoll_wait, epoll_pwait, epoll_pwait2 */
SEC("fexit/do_epoll_wait")
int lw_fx_epoll(void *ctx)
{
	return poll_fexit();
}

/* poll, ppoll */
SEC("fexit/do_sys_poll")
int lw_fx_poll(void *ctx)
{
	return poll_fexit();
}

/* select, pselect6 */
SEC("fexit/core_sys_select")
int lw_fx_select(void *ctx)
{
	return poll_fexit();
}

#endif
