// SPDX-License-Identifier: GPL-2.0
/* File system syscalls: opens, closes, fd duplication, renames, links, modes, mounts. */
#include "helpers.h"

/* Opens: the name, and the directory a relative one is resolved against, are read
 * first, straight into the place they take in the record (after the header, nargs
 * arguments and dev/ino); the interest filter decides on them (kfilter.h), and
 * only an open that passes gets its header, arguments and dev/ino.  *end: where
 * the record ends. */
static __always_inline struct scratch *open_start(struct trace_event_raw_sys_exit *ctx, __u16 ev,
						  int nargs, long dirfd, __u64 name, __u64 flags,
						  __u32 kind, __u32 *end)
{
	if (!wanted(ev))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	struct rec_hdr *h = (struct rec_hdr *)s->buf;
	h->flags = 0;
	__u64 name_off = sizeof(struct rec_hdr) + (nargs + 2) * 8;
	s->off = name_off;
	int first = push_ustr(s, (const char *)name);
	__u64 dir_off = s->off;
	push_dirpath(s, dirfd, first);
	__u32 trunc = h->flags & REC_F_TRUNCATED ? 1 : 0;
	/* the offsets packed: the call takes five scalars at most */
	if (!kf_admit_open(s, ev, ctx->ret, flags, kind | trunc << 2 | name_off << 8 | dir_off << 24))
		return 0;
	*end = s->off;
	fill_hdr(h, ev, ctx->ret);
	h->flags = trunc ? REC_F_TRUNCATED : 0;
	s->off = sizeof(struct rec_hdr);
	return s;
}

#define OPEN_BEGIN(ev, nargs, dirfd, name, flags, kind)                                   \
	__u32 end = 0;                                                                     \
	struct scratch *s = open_start(ctx, ev, nargs, dirfd, name, flags, kind, &end);    \
	if (!s)                                                                            \
		return 0

/* after the arguments: dev/ino, then the name and directory already in place */
#define OPEN_END()                 \
	push_devino(s, ctx->ret);  \
	s->off = end;              \
	return rec_submit(s)

EXIT_PROG(open)
{
	struct pt_regs *r = user_regs();
	__u64 fl = SC_ARG1(r);
	OPEN_BEGIN(EV_OPEN, 2, AT_FDCWD_, SC_ARG0(r), fl, KF_OPEN);
	push_u64(s, fl);
	push_u64(s, SC_ARG2(r));
	OPEN_END();
}

EXIT_PROG(openat)
{
	struct pt_regs *r = user_regs();
	long dirfd = (int)SC_ARG0(r);
	__u64 fl = SC_ARG2(r);
	OPEN_BEGIN(EV_OPENAT, 3, dirfd, SC_ARG1(r), fl, KF_OPEN);
	push_u64(s, dirfd);
	push_u64(s, fl);
	push_u64(s, SC_ARG3(r));
	OPEN_END();
}

EXIT_PROG(openat2)
{
	struct pt_regs *r = user_regs();
	long dirfd = (int)SC_ARG0(r);
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)SC_ARG2(r));
	OPEN_BEGIN(EV_OPENAT2, 4, dirfd, SC_ARG1(r), how.flags, KF_OPEN);
	push_u64(s, dirfd);
	push_u64(s, how.flags);
	push_u64(s, how.mode);
	push_u64(s, how.resolve);
	OPEN_END();
}

EXIT_PROG(creat)
{
	struct pt_regs *r = user_regs();
	/* creat is open(O_CREAT|O_WRONLY|O_TRUNC) */
	OPEN_BEGIN(EV_CREAT, 1, AT_FDCWD_, SC_ARG0(r), 01101, KF_CREAT);
	push_u64(s, SC_ARG1(r));
	OPEN_END();
}

EXIT_PROG(close) { return exit_ints_kf(ctx, EV_CLOSE, 1, KF_FD_ARG0); }
EXIT_PROG(dup) { return exit_ints_kf(ctx, EV_DUP, 1, KF_FD_ARG0 | KF_NEWFD_RET); }
EXIT_PROG(dup2) { return exit_ints_kf(ctx, EV_DUP2, 2, KF_FD_ARG0 | KF_NEWFD_RET); }

EXIT_PROG(dup3)
{
	BEGIN_FD(EV_DUP3, (int)SC_ARG0(r), ctx->ret);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, (int)SC_ARG1(r));
	push_u64(s, SC_ARG2(r));
	return rec_submit(s);
}

#define F_DUPFD_ 0
#define F_DUPFD_CLOEXEC_ 1030

EXIT_PROG(fcntl)
{
	/* F_DUPFD*: the result is a new fd */
	BEGIN_FD(EV_FCNTL, (int)SC_ARG0(r),
		 ((int)SC_ARG1(r) == F_DUPFD_ || (int)SC_ARG1(r) == F_DUPFD_CLOEXEC_) ? ctx->ret : -1);
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

/* rename/link (old, new): both paths relative to the cwd */
static __always_inline int exit_two_paths(struct trace_event_raw_sys_exit *ctx, __u16 ev)
{
	BEGIN(ev);
	TWO_PATHS(AT_FDCWD_, SC_ARG0(r), AT_FDCWD_, SC_ARG1(r));
	return rec_submit(s);
}

/* renameat/renameat2/linkat (olddirfd, old, newdirfd, new[, flags]) */
static __always_inline int exit_two_paths_at(struct trace_event_raw_sys_exit *ctx, __u16 ev,
					     bool has_flags)
{
	BEGIN(ev);
	long od = (int)SC_ARG0(r), nd = (int)SC_ARG2(r);
	push_u64(s, od);
	push_u64(s, nd);
	if (has_flags)
		push_u64(s, SC_ARG4(r));
	TWO_PATHS(od, SC_ARG1(r), nd, SC_ARG3(r));
	return rec_submit(s);
}

EXIT_PROG(rename) { return exit_two_paths(ctx, EV_RENAME); }
EXIT_PROG(renameat) { return exit_two_paths_at(ctx, EV_RENAMEAT, false); }
EXIT_PROG(renameat2) { return exit_two_paths_at(ctx, EV_RENAMEAT2, true); }
EXIT_PROG(link) { return exit_two_paths(ctx, EV_LINK); }
EXIT_PROG(linkat) { return exit_two_paths_at(ctx, EV_LINKAT, true); }

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

/* what a cwd-relative path call (path first) records before the path */
enum path_args { PA_NONE, PA_MODE, PA_OWNER };

static __always_inline int exit_path(struct trace_event_raw_sys_exit *ctx, __u16 ev,
				     enum path_args pa)
{
	BEGIN(ev);
	if (pa == PA_MODE)
		push_u64(s, SC_ARG1(r));
	if (pa == PA_OWNER) {
		push_u64(s, (int)SC_ARG1(r));
		push_u64(s, (int)SC_ARG2(r));
	}
	ONE_PATH(AT_FDCWD_, SC_ARG0(r));
	return rec_submit(s);
}

/* unlinkat/mkdirat/fchmodat (dirfd, path, flags or mode) */
static __always_inline int exit_path_at(struct trace_event_raw_sys_exit *ctx, __u16 ev)
{
	BEGIN(ev);
	long d = (int)SC_ARG0(r);
	push_u64(s, d);
	push_u64(s, SC_ARG2(r));
	ONE_PATH(d, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(unlink) { return exit_path(ctx, EV_UNLINK, PA_NONE); }
EXIT_PROG(unlinkat) { return exit_path_at(ctx, EV_UNLINKAT); }
EXIT_PROG(mkdir) { return exit_path(ctx, EV_MKDIR, PA_MODE); }
EXIT_PROG(mkdirat) { return exit_path_at(ctx, EV_MKDIRAT); }
EXIT_PROG(rmdir) { return exit_path(ctx, EV_RMDIR, PA_NONE); }
EXIT_PROG(chmod) { return exit_path(ctx, EV_CHMOD, PA_MODE); }

EXIT_PROG(fchmod)
{
	BEGIN_FD(EV_FCHMOD, (int)SC_ARG0(r), -1);
	push_u64(s, (int)SC_ARG0(r));
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}

EXIT_PROG(fchmodat) { return exit_path_at(ctx, EV_FCHMODAT); }
EXIT_PROG(chown) { return exit_path(ctx, EV_CHOWN, PA_OWNER); }
EXIT_PROG(lchown) { return exit_path(ctx, EV_LCHOWN, PA_OWNER); }
EXIT_PROG(fchown) { return exit_ints_kf(ctx, EV_FCHOWN, 3, KF_FD_ARG0); }

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

EXIT_PROG(chroot) { return exit_path(ctx, EV_CHROOT, PA_NONE); }

EXIT_PROG(mount)
{
	BEGIN(EV_MOUNT);
	push_u64(s, SC_ARG3(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	push_ustr(s, (const char *)SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG2(r));
	return rec_submit(s);
}

/* umount2/memfd_create (name, flags): flags first, the name as given (no path resolution) */
static __always_inline int exit_name_flags(struct trace_event_raw_sys_exit *ctx, __u16 ev)
{
	BEGIN(ev);
	push_u64(s, SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	return rec_submit(s);
}

EXIT_PROG_TP(umount2, umount) { return exit_name_flags(ctx, EV_UMOUNT2); }

EXIT_PROG(memfd_create)
{
	BEGIN_FD(EV_MEMFD_CREATE, -1, ctx->ret);
	push_u64(s, SC_ARG1(r));
	push_ustr(s, (const char *)SC_ARG0(r));
	return rec_submit(s);
}

/* pushes both fds; user space knows them from here on */
static __always_inline void push_fdpair(struct scratch *s, const void *up, long ret)
{
	int fds[2] = {-1, -1};
	bpf_probe_read_user(fds, sizeof(fds), up);
	push_u64(s, (long)fds[0]);
	push_u64(s, (long)fds[1]);
	if (ret == 0)
		kf_fds_known(fds[0], fds[1]);
}

EXIT_PROG(pipe)
{
	BEGIN(EV_PIPE);
	push_fdpair(s, (void *)SC_ARG0(r), ctx->ret);
	return rec_submit(s);
}

EXIT_PROG(pipe2)
{
	BEGIN(EV_PIPE2);
	push_fdpair(s, (void *)SC_ARG0(r), ctx->ret);
	push_u64(s, SC_ARG1(r));
	return rec_submit(s);
}
