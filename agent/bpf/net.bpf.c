// SPDX-License-Identifier: GPL-2.0
/* Network syscalls: sockets, connections, and the sends/receives rules look at. */
#include "helpers.h"

EXIT_PROG(socket)
{
	BEGIN(EV_SOCKET);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}

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
	return rec_submit(s);
}

EXIT_PROG(connect)
{
	BEGIN(EV_CONNECT);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_ubytes(s, (void *)SC_ARG1(r), (__u32)SC_ARG2(r), MAX_SOCKADDR);
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(accept)
{
	BEGIN(EV_ACCEPT);
	push_u64(s, (int)SC_ARG0(r));
	push_tuple(s, ctx->ret);
	return rec_submit(s);
}

EXIT_PROG(accept4)
{
	BEGIN(EV_ACCEPT4);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG3(r));
	push_tuple(s, ctx->ret);
	return rec_submit(s);
}

EXIT_PROG(bind)
{
	BEGIN(EV_BIND);
	push_u64(s, (int)SC_ARG0(r));
	push_ubytes(s, (void *)SC_ARG1(r), (__u32)SC_ARG2(r), MAX_SOCKADDR);
	return rec_submit(s);
}

EXIT_PROG(listen)
{
	BEGIN(EV_LISTEN);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(sendto)
{
	BEGIN(EV_SENDTO);
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

EXIT_PROG(sendmsg)
{
	BEGIN(EV_SENDMSG);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(recvfrom)
{
	BEGIN(EV_RECVFROM);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_u64(s, SC_ARG2(r));
	push_tuple(s, fd);
	return rec_submit(s);
}

EXIT_PROG(recvmsg)
{
	BEGIN(EV_RECVMSG);
	long fd = (int)SC_ARG0(r);
	push_u64(s, fd);
	push_tuple(s, fd);
	return rec_submit(s);
}
