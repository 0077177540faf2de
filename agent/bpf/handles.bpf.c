// SPDX-License-Identifier: GPL-2.0
/* Descriptors that are not plain files: file handles, pidfds, timer/event/signal fds. */
#include "args.h"

/* the path of the file the handle opened, resolved in the kernel (Falco reads it at exit) */
EXIT_PROG(open_by_handle_at)
{
	BEGIN(EV_OPEN_BY_HANDLE_AT);
	A_INT(0);
	A_U32(2);
	push_devino(s, ctx->ret);
	struct file *f = cur_fd_file(ctx->ret);
	if (f)
		push_kpath(s, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
	else
		push_absent(s);
	return rec_submit(s);
}

EXIT_PROG(name_to_handle_at)
{
	BEGIN(EV_NAME_TO_HANDLE_AT);
	A_INT(0);
	A_U32(4);
	A_STR(1);
	return rec_submit(s);
}

EXIT_PROG(pidfd_open) { BEGIN(EV_PIDFD_OPEN); A_INT(0); A_U32(1); return rec_submit(s); }
EXIT_PROG(pidfd_getfd) { BEGIN(EV_PIDFD_GETFD); A_INT(0); A_INT(1); A_U32(2); return rec_submit(s); }

EXIT_PROG(pidfd_send_signal)
{
	BEGIN(EV_PIDFD_SEND_SIGNAL);
	A_INT(0);
	A_INT(1);
	A_U32(3);
	return rec_submit(s);
}

EXIT_PROG(timerfd_create) { BEGIN(EV_TIMERFD_CREATE); A_INT(0); A_U32(1); return rec_submit(s); }
EXIT_PROG(timerfd_settime) { BEGIN(EV_TIMERFD_SETTIME); A_INT(0); A_U32(1); return rec_submit(s); }
EXIT_PROG(timerfd_gettime) { BEGIN(EV_TIMERFD_GETTIME); A_INT(0); return rec_submit(s); }
EXIT_PROG(eventfd) { BEGIN(EV_EVENTFD); A_U32(0); return rec_submit(s); }
EXIT_PROG(eventfd2) { BEGIN(EV_EVENTFD2); A_U32(0); A_U32(1); return rec_submit(s); }

/* mask: the first 32 signals of the user sigset, as Falco's UINT32 mask */
EXIT_PROG(signalfd)
{
	BEGIN(EV_SIGNALFD);
	A_INT(0);
	push_user_u32(s, SC_ARG1(r), 0);
	return rec_submit(s);
}

EXIT_PROG(signalfd4)
{
	BEGIN(EV_SIGNALFD4);
	A_INT(0);
	push_user_u32(s, SC_ARG1(r), 0);
	A_U32(3);
	return rec_submit(s);
}
