// SPDX-License-Identifier: GPL-2.0
/* Credentials and privileges: uid/gid changes, capabilities, sessions. */
#include "helpers.h"

EXIT_PROG(setuid) { return exit_ints(ctx, EV_SETUID, 1); }
EXIT_PROG(setgid) { return exit_ints(ctx, EV_SETGID, 1); }
EXIT_PROG(setreuid) { return exit_ints(ctx, EV_SETREUID, 2); }
EXIT_PROG(setregid) { return exit_ints(ctx, EV_SETREGID, 2); }
EXIT_PROG(setresuid) { return exit_ints(ctx, EV_SETRESUID, 3); }
EXIT_PROG(setresgid) { return exit_ints(ctx, EV_SETRESGID, 3); }

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

EXIT_PROG(setsid) { return exit_ints(ctx, EV_SETSID, 0); }
EXIT_PROG(setpgid) { return exit_ints(ctx, EV_SETPGID, 2); }
