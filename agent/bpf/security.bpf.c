// SPDX-License-Identifier: GPL-2.0
/* Kernel security surfaces: keyrings, seccomp, perf events, execution domains,
 * cross-process resource comparison, scheduling policy. */
#include "args.h"

EXIT_PROG(keyctl)
{
	BEGIN(EV_KEYCTL);
	A_INT(0);
	A_U64(1);
	A_U64(2);
	A_U64(3);
	A_U64(4);
	return rec_submit(s);
}

EXIT_PROG(add_key) { BEGIN(EV_ADD_KEY); A_INT(4); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(request_key) { BEGIN(EV_REQUEST_KEY); A_INT(3); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(seccomp) { BEGIN(EV_SECCOMP); A_U32(0); A_U32(1); return rec_submit(s); }

/* struct perf_event_attr: type (u32) at 0, config (u64) at 8 */
EXIT_PROG(perf_event_open)
{
	BEGIN(EV_PERF_EVENT_OPEN);
	__u64 attr = SC_ARG0(r);
	A_INT(1);
	A_INT(2);
	A_INT(3);
	A_U64(4);
	push_user_u32(s, attr, 0);
	push_user_u64(s, attr, 8);
	return rec_submit(s);
}

EXIT_PROG(personality) { BEGIN(EV_PERSONALITY); A_U32(0); return rec_submit(s); }

EXIT_PROG(kcmp)
{
	BEGIN(EV_KCMP);
	A_INT(0);
	A_INT(1);
	A_INT(2);
	A_U64(3);
	A_U64(4);
	return rec_submit(s);
}

/* struct sched_attr: sched_policy (u32) at 4 */
EXIT_PROG(sched_setattr)
{
	BEGIN(EV_SCHED_SETATTR);
	A_INT(0);
	A_U32(2);
	push_user_u32(s, SC_ARG1(r), 4);
	return rec_submit(s);
}
