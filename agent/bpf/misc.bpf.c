// SPDX-License-Identifier: GPL-2.0
/* Everything else the rules name: ptrace, modules, bpf, namespaces, prctl, signals. */
#include "helpers.h"

#define PR_SET_NAME_ 15

EXIT_PROG(ptrace)
{
	BEGIN(EV_PTRACE);
	push_u64(s, (long)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, SC_ARG2(r));
	push_u64(s, SC_ARG3(r));
	return rec_submit(s);
}

EXIT_PROG(init_module)
{
	BEGIN(EV_INIT_MODULE);
	push_u64(s, SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG2(r));
	return rec_submit(s);
}

EXIT_PROG(finit_module)
{
	BEGIN_FD(EV_FINIT_MODULE, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_u64(s, SC_ARG2(r));
	push_ustr(s, (const char *)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(bpf) { return exit_ints(ctx, EV_BPF, 1); }

/* unshare/userfaultfd (flags): the whole flags word */
static __always_inline int exit_flags(struct trace_event_raw_sys_exit *ctx, __u16 ev)
{
	BEGIN(ev);
	push_u64(s, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(unshare) { return exit_flags(ctx, EV_UNSHARE); }

EXIT_PROG(setns)
{
	BEGIN_FD(EV_SETNS, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(userfaultfd) { return exit_flags(ctx, EV_USERFAULTFD); }

EXIT_PROG(prctl)
{
	BEGIN(EV_PRCTL);
	int option = (int)SC_ARG0(r);
	__u64 arg2 = SC_ARG1(r);
	push_u64(s, option);
	push_u64(s, arg2);
	if (option == PR_SET_NAME_)
		push_ustr(s, (const char *)arg2);
	else
		push_absent(s);
	return rec_submit(s);
}

EXIT_PROG(kill) { return exit_ints(ctx, EV_KILL, 2); }
EXIT_PROG(tkill) { return exit_ints(ctx, EV_TKILL, 2); }
EXIT_PROG(tgkill) { return exit_ints(ctx, EV_TGKILL, 3); }
