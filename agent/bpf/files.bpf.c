// SPDX-License-Identifier: GPL-2.0
/* File system syscalls: opens, closes, fd duplication, renames, links, modes, mounts. */
#include "helpers.h"

#define OPEN_TAIL(dirfd, name)                                \
	push_devino(s, ctx->ret);                             \
	int first = push_ustr(s, (const char *)(name));       \
	push_dirpath(s, (dirfd), first)

EXIT_PROG(open)
{
	BEGIN(EV_OPEN);
	push_u64(s, SC_ARG1(r));
	push_u64(s, SC_ARG2(r));
	OPEN_TAIL(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(openat)
{
	BEGIN(EV_OPENAT);
	long dirfd = (int)SC_ARG0(r);
	push_u64(s, dirfd);
	push_u64(s, SC_ARG2(r));
	push_u64(s, SC_ARG3(r));
	OPEN_TAIL(dirfd, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(openat2)
{
	BEGIN(EV_OPENAT2);
	long dirfd = (int)SC_ARG0(r);
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)SC_ARG2(r));
	push_u64(s, dirfd);
	push_u64(s, how.flags);
	push_u64(s, how.mode);
	push_u64(s, how.resolve);
	OPEN_TAIL(dirfd, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(creat)
{
	BEGIN(EV_CREAT);
	push_u64(s, SC_ARG1(r));
	OPEN_TAIL(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(close)
{
	BEGIN(EV_CLOSE);
	push_u64(s, (int)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(dup)
{
	BEGIN(EV_DUP);
	push_u64(s, (int)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(dup2)
{
	BEGIN(EV_DUP2);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(dup3)
{
	BEGIN(EV_DUP3);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, SC_ARG2(r));
	return rec_submit(s);
}

EXIT_PROG(fcntl)
{
	BEGIN(EV_FCNTL);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	return rec_submit(s);
}

/* two paths, each with the directory a relative one is resolved against */
#define TWO_PATHS(odir, opath, ndir, npath)                   \
	int ofirst = push_ustr(s, (const char *)(opath));     \
	int nfirst = push_ustr(s, (const char *)(npath));     \
	push_dirpath(s, (odir), ofirst);                      \
	push_dirpath(s, (ndir), nfirst)

EXIT_PROG(rename)
{
	BEGIN(EV_RENAME);
	TWO_PATHS(AT_FDCWD_, SC_ARG0(r), AT_FDCWD_, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(renameat)
{
	BEGIN(EV_RENAMEAT);
	long od = (int)SC_ARG0(r), nd = (int)SC_ARG2(r);
	push_u64(s, od);
	push_u64(s, nd);
	TWO_PATHS(od, SC_ARG1(r), nd, SC_ARG3(r));
	return rec_submit(s);
}

EXIT_PROG(renameat2)
{
	BEGIN(EV_RENAMEAT2);
	long od = (int)SC_ARG0(r), nd = (int)SC_ARG2(r);
	push_u64(s, od);
	push_u64(s, nd);
	push_u64(s, SC_ARG4(r));
	TWO_PATHS(od, SC_ARG1(r), nd, SC_ARG3(r));
	return rec_submit(s);
}

EXIT_PROG(link)
{
	BEGIN(EV_LINK);
	TWO_PATHS(AT_FDCWD_, SC_ARG0(r), AT_FDCWD_, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(linkat)
{
	BEGIN(EV_LINKAT);
	long od = (int)SC_ARG0(r), nd = (int)SC_ARG2(r);
	push_u64(s, od);
	push_u64(s, nd);
	push_u64(s, SC_ARG4(r));
	TWO_PATHS(od, SC_ARG1(r), nd, SC_ARG3(r));
	return rec_submit(s);
}

EXIT_PROG(symlink)
{
	BEGIN(EV_SYMLINK);
	const char *lp = (const char *)SC_ARG1(r);
	push_ustr(s, (const char *)SC_ARG0(r));
	push_dirpath(s, AT_FDCWD_, push_ustr(s, lp));
	return rec_submit(s);
}

EXIT_PROG(symlinkat)
{
	BEGIN(EV_SYMLINKAT);
	long nd = (int)SC_ARG1(r);
	const char *lp = (const char *)SC_ARG2(r);
	push_u64(s, nd);
	push_ustr(s, (const char *)SC_ARG0(r));
	push_dirpath(s, nd, push_ustr(s, lp));
	return rec_submit(s);
}

/* one path argument resolved against dirfd */
#define ONE_PATH(dirfd, p) push_dirpath(s, (dirfd), push_ustr(s, (const char *)(p)))

EXIT_PROG(unlink)
{
	BEGIN(EV_UNLINK);
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(unlinkat)
{
	BEGIN(EV_UNLINKAT);
	long d = (int)SC_ARG0(r);
	push_u64(s, d);
	push_u64(s, SC_ARG2(r));
	ONE_PATH(d, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(mkdir)
{
	BEGIN(EV_MKDIR);
	push_u64(s, SC_ARG1(r));
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(mkdirat)
{
	BEGIN(EV_MKDIRAT);
	long d = (int)SC_ARG0(r);
	push_u64(s, d);
	push_u64(s, SC_ARG2(r));
	ONE_PATH(d, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(rmdir)
{
	BEGIN(EV_RMDIR);
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(chmod)
{
	BEGIN(EV_CHMOD);
	push_u64(s, SC_ARG1(r));
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(fchmod)
{
	BEGIN(EV_FCHMOD);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(fchmodat)
{
	BEGIN(EV_FCHMODAT);
	long d = (int)SC_ARG0(r);
	push_u64(s, d);
	push_u64(s, SC_ARG2(r));
	ONE_PATH(d, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(chown)
{
	BEGIN(EV_CHOWN);
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(lchown)
{
	BEGIN(EV_LCHOWN);
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(fchown)
{
	BEGIN(EV_FCHOWN);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}

EXIT_PROG(fchownat)
{
	BEGIN(EV_FCHOWNAT);
	long d = (int)SC_ARG0(r);
	push_u64(s, d);
	push_u64(s, (int)SC_ARG2(r));
	push_u64(s, (int)SC_ARG3(r));
	push_u64(s, SC_ARG4(r));
	ONE_PATH(d, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(chdir)
{
	BEGIN(EV_CHDIR);
	push_ustr(s, (const char *)SC_ARG0(r));
	push_cwd(s);
	return rec_submit(s);
}

EXIT_PROG(fchdir)
{
	BEGIN(EV_FCHDIR);
	push_u64(s, (int)SC_ARG0(r));
	push_cwd(s);
	return rec_submit(s);
}

EXIT_PROG(chroot)
{
	BEGIN(EV_CHROOT);
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(mount)
{
	BEGIN(EV_MOUNT);
	push_u64(s, SC_ARG3(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	push_ustr(s, (const char *)SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG2(r));
	return rec_submit(s);
}

EXIT_PROG_TP(umount2, umount)
{
	BEGIN(EV_UMOUNT2);
	push_u64(s, SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(memfd_create)
{
	BEGIN(EV_MEMFD_CREATE);
	push_u64(s, SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	return rec_submit(s);
}

static __always_inline void push_fdpair(struct scratch *s, const void *up)
{
	int fds[2] = {-1, -1};
	bpf_probe_read_user(fds, sizeof(fds), up);
	push_u64(s, (long)fds[0]);
	push_u64(s, (long)fds[1]);
}

EXIT_PROG(pipe)
{
	BEGIN(EV_PIPE);
	push_fdpair(s, (void *)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG(pipe2)
{
	BEGIN(EV_PIPE2);
	push_fdpair(s, (void *)SC_ARG0(r));
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}
