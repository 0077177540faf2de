// SPDX-License-Identifier: GPL-2.0
/* Network syscalls: sockets, connections, and the sends/receives rules look at. */
#include "helpers.h"

EXIT_PROG(socket) { return exit_ints_kf(ctx, EV_SOCKET, 3, KF_NEWFD_RET); }

EXIT_PROG(socketpair)
{
	BEGIN(EV_SOCKETPAIR);
	int fds[2] = {-1, -1};
	bpf_probe_read_user(fds, sizeof(fds), (void *)SC_ARG3(r));
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	push_u64(s, (long)fds[0]);
	push_u64(s, (long)fds[1]);
	if (ctx->ret == 0)
		kf_fds_known(fds[0], fds[1]);
	return rec_submit(s);
}

EXIT_PROG(connect)
{
	BEGIN_FD(EV_CONNECT, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_ubytes(s, (void *)SC_ARG1(r), (__u32)SC_ARG2(r), MAX_SOCKADDR);
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(accept)
{
	BEGIN_FD(EV_ACCEPT, (int)SC_ARG0(r), ctx->ret);
	push_u64(s, (int)SC_ARG0(r));
	push_tuple(s, ctx->ret);
	return rec_submit(s);
}

EXIT_PROG(accept4)
{
	BEGIN_FD(EV_ACCEPT4, (int)SC_ARG0(r), ctx->ret);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG3(r));
	push_tuple(s, ctx->ret);
	return rec_submit(s);
}

EXIT_PROG(bind)
{
	BEGIN_FD(EV_BIND, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_ubytes(s, (void *)SC_ARG1(r), (__u32)SC_ARG2(r), MAX_SOCKADDR);
	return rec_submit(s);
}

EXIT_PROG(listen) { return exit_ints_kf(ctx, EV_LISTEN, 2, KF_FD_ARG0); }

EXIT_PROG(sendto)
{
	BEGIN_FD(EV_SENDTO, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	void *addr = (void *)SC_ARG4(r);
	push_u64(s, fd);
	push_u64(s, SC_ARG2(r));
	if (addr)
		push_ubytes(s, addr, (__u32)SC_ARG5(r), MAX_SOCKADDR);
	else
		push_absent(s);
	push_tuple(s, fd);
	return rec_submit(s);
}

/* The head of the UAPI struct user_msghdr (stable layout, read from user memory). */
struct msghdr_head {
	void *name;
	int namelen;
};

/* msg_name of a sendmsg/recvmsg: the destination given to an unconnected socket,
 * or the source the kernel filled in on receive (msg_namelen is updated then) */
static __always_inline void push_msg_name(struct scratch *s, const void *umsg)
{
	struct msghdr_head mh = {};
	if (!umsg || bpf_probe_read_user(&mh, sizeof(mh), umsg) < 0 || !mh.name || mh.namelen <= 0) {
		push_absent(s);
		return;
	}
	push_ubytes(s, mh.name, (__u32)mh.namelen, MAX_SOCKADDR);
}

EXIT_PROG(sendmsg)
{
	BEGIN_FD(EV_SENDMSG, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_msg_name(s, (void *)SC_ARG1(r));
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(recvfrom)
{
	BEGIN_FD(EV_RECVFROM, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	void *addr = (void *)SC_ARG4(r);
	int alen = 0;
	push_u64(s, fd);
	push_u64(s, SC_ARG2(r));
	/* at exit *addrlen holds the source address's length */
	if (ctx->ret >= 0 && addr && SC_ARG5(r) &&
	    bpf_probe_read_user(&alen, sizeof(alen), (void *)SC_ARG5(r)) == 0 && alen > 0)
		push_ubytes(s, addr, (__u32)alen, MAX_SOCKADDR);
	else
		push_absent(s);
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(recvmsg)
{
	BEGIN_FD(EV_RECVMSG, (int)SC_ARG0(r), -1);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	if (ctx->ret >= 0)
		push_msg_name(s, (void *)SC_ARG1(r));
	else
		push_absent(s);
	push_tuple(s, fd);
	return rec_submit(s);
}
