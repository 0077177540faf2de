// SPDX-License-Identifier: GPL-2.0
/* io_uring: ring creation (with the parameters the kernel filled in), submission,
 * registration.  Work submitted through a ring bypasses the syscall hooks, which is
 * why rules watch these three. */
#include "args.h"

EXIT_PROG(io_uring_setup)
{
	BEGIN(EV_IO_URING_SETUP);
	__u64 p = SC_ARG1(r);
	A_U32(0);
	/* struct io_uring_params: sq_entries, cq_entries, flags, sq_thread_cpu,
	 * sq_thread_idle, features (u32 each, in this order) */
	push_user_u32(s, p, 0);
	push_user_u32(s, p, 4);
	push_user_u32(s, p, 8);
	push_user_u32(s, p, 12);
	push_user_u32(s, p, 16);
	push_user_u32(s, p, 20);
	return rec_submit(s);
}

EXIT_PROG(io_uring_enter)
{
	BEGIN(EV_IO_URING_ENTER);
	A_INT(0);
	A_U32(1);
	A_U32(2);
	A_U32(3);
	return rec_submit(s);
}

EXIT_PROG(io_uring_register)
{
	BEGIN(EV_IO_URING_REGISTER);
	A_INT(0);
	A_U32(1);
	A_U64(2);
	A_U32(3);
	return rec_submit(s);
}
