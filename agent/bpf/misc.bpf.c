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
	BEGIN(EV_FINIT_MODULE);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, SC_ARG2(r));
	push_ustr(s, (const char *)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(bpf)
{
	BEGIN(EV_BPF);
	push_u64(s, (int)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(unshare)
{
	BEGIN(EV_UNSHARE);
	push_u64(s, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(setns)
{
	BEGIN(EV_SETNS);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(userfaultfd)
{
	BEGIN(EV_USERFAULTFD);
	push_u64(s, SC_ARG0(r));
	return rec_submit(s);
}

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

EXIT_PROG(kill)
{
	BEGIN(EV_KILL);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(tkill)
{
	BEGIN(EV_TKILL);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(tgkill)
{
	BEGIN(EV_TGKILL);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}
