// SPDX-License-Identifier: GPL-2.0
/* Credentials and privileges: uid/gid changes, capabilities, sessions. */
#include "helpers.h"

EXIT_PROG(setuid)
{
	BEGIN(EV_SETUID);
	push_u64(s, (int)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(setgid)
{
	BEGIN(EV_SETGID);
	push_u64(s, (int)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(setreuid)
{
	BEGIN(EV_SETREUID);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(setregid)
{
	BEGIN(EV_SETREGID);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(setresuid)
{
	BEGIN(EV_SETRESUID);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}

EXIT_PROG(setresgid)
{
	BEGIN(EV_SETRESGID);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}

/* the capability sets in force after the call, as Falco's capset exit reports */
EXIT_PROG(capset)
{
	BEGIN(EV_CAPSET);
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *c = BPF_CORE_READ(t, cred);
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), &c->cap_inheritable);
	push_u64(s, v);
	v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), &c->cap_permitted);
	push_u64(s, v);
	v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), &c->cap_effective);
	push_u64(s, v);
	return rec_submit(s);
}

EXIT_PROG(setsid)
{
	BEGIN(EV_SETSID);
	return rec_submit(s);
}

EXIT_PROG(setpgid)
{
	BEGIN(EV_SETPGID);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}
