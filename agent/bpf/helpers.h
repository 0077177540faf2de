/* Record building: header fill, typed pushes into the per-CPU scratch, kernel
 * path walks, fd lookups, socket tuples, submission with batched wake-ups. */
#ifndef FALCOPY_HELPERS_H
#define FALCOPY_HELPERS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "maps.h"

#ifndef barrier_var
/* hides a value from the compiler so the bounds check the verifier needs stays */
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

#define AT_FDCWD_ -100
#define AF_UNIX_ 1
#define AF_INET_ 2
#define AF_INET6_ 10
#define OVERLAYFS_MAGIC 0x794c7630
#define SB_RDONLY_ 1
#define S_IWUSR_ 00200
#define S_IWGRP_ 00020
#define S_IWOTH_ 00002

/* syscall arguments are still in the saved user registers at sys_exit; the
 * libbpf macros know each architecture's layout (x86_64: di, si, dx, r10, r8,
 * r9 as plain loads; arm64: orig_x0 for the first, which x0's return value
 * overwrote) */
#ifndef PT_REGS_PARM6_SYSCALL /* libbpf < 1.2 */
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_PARM6_SYSCALL(x) ((x)->r9)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_PARM6_SYSCALL(x) BPF_CORE_READ((struct user_pt_regs *)(x), regs[5])
#else
#error "sixth syscall argument: add this architecture"
#endif
#endif
#define SC_ARG0(r) ((__u64)PT_REGS_PARM1_SYSCALL(r))
#define SC_ARG1(r) ((__u64)PT_REGS_PARM2_SYSCALL(r))
#define SC_ARG2(r) ((__u64)PT_REGS_PARM3_SYSCALL(r))
#define SC_ARG3(r) ((__u64)PT_REGS_PARM4_SYSCALL(r))
#define SC_ARG4(r) ((__u64)PT_REGS_PARM5_SYSCALL(r))
#define SC_ARG5(r) ((__u64)PT_REGS_PARM6_SYSCALL(r))

#define EXIT_PROG(sc) \
	SEC("tp/syscalls/sys_exit_" #sc) int exit_##sc(struct trace_event_raw_sys_exit *ctx)
/* Falco's name differs from the kernel's SYSCALL_DEFINE name (umount2 -> umount);
 * agent/kernel/probe.py has the same table */
#define EXIT_PROG_TP(ev, tp) \
	SEC("tp/syscalls/sys_exit_" #tp) int exit_##ev(struct trace_event_raw_sys_exit *ctx)

/* The current task as a BTF pointer for plain loads (PROBE_MEM: no helper call per
 * field).  Untrusted (bpf_rdonly_cast, 6.2+) rather than bpf_get_current_task_btf():
 * the verifier checks every pointer load through a trusted pointer against the
 * "<type>__safe_trusted/_rcu" lists by a linear search of the kernel's BTF by name,
 * about a third of the whole object's verification on 6.18 (docs/performance.md);
 * through an untrusted pointer it does not.  The loads are the same instructions.
 * FALCOPY_TASK_BTF builds the objects for kernels without the kfunc (5.17-6.1,
 * which have no such search either); agent/kernel/probe.py falls back to them. */
#ifdef FALCOPY_TASK_BTF
#define cur_task() bpf_get_current_task_btf()
#else
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym;
#define cur_task() \
	((struct task_struct *)bpf_rdonly_cast((void *)bpf_get_current_task(), \
					       bpf_core_type_id_kernel(struct task_struct)))
#endif

static __always_inline struct pt_regs *user_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline int wanted(__u32 type)
{
	__u8 *on = bpf_map_lookup_elem(&evt_filter, &type);
	if (!on || !*on)
		return 0;
	__u32 zero = 0;
	struct settings *st = bpf_map_lookup_elem(&settings_map, &zero);
	if (!st)
		return 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 n = st->n_ignored;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i < n && st->ignored[i] == tgid)
			return 0;
	}
	return 1;
}

static __always_inline __u32 pid_vnr(struct pid *p)
{
	if (!p)
		return 0;
	unsigned int level = BPF_CORE_READ(p, level);
	struct upid up = {};
	bpf_probe_read_kernel(&up, sizeof(up), &p->numbers[level & 31]);
	return up.nr;
}

static __always_inline __u32 pid_hostnr(struct pid *p)
{
	if (!p)
		return 0;
	return BPF_CORE_READ(p, numbers[0].nr);
}

/* dev_t (major << 20 | minor) as userspace sees it, like Falco's new_encode_dev */
static __always_inline __u64 encode_dev(__u32 dev)
{
	__u32 major = dev >> 20, minor = dev & 0xfffff;
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

static __always_inline void fill_hdr(struct rec_hdr *h, __u16 type, long res)
{
	struct task_struct *t = cur_task();
	__u64 pt = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	const struct cred *cred = t->cred;
	struct pid *tp = t->thread_pid;
	unsigned int level = tp->level;

	h->ts = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->res = res;
	h->type = type;
	h->flags = 0;
	h->tid = (__u32)pt;
	h->pid = pt >> 32;
	h->ppid = t->real_parent->tgid;
	if (level == 0) {
		/* initial pid namespace: virtual ids are the host ids */
		h->vtid = h->tid;
		h->vpid = h->pid;
	} else {
		h->vtid = pid_vnr(tp);
		h->vpid = pid_vnr(t->group_leader->thread_pid);
	}
	h->uid = (__u32)ug;
	h->gid = ug >> 32;
	h->euid = cred->euid.val;
	h->egid = cred->egid.val;
	h->loginuid = t->loginuid.val;
	h->cpu = bpf_get_smp_processor_id();
	h->pad = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline struct scratch *rec_begin(__u16 type, long res)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	fill_hdr((struct rec_hdr *)s->buf, type, res);
	s->off = sizeof(struct rec_hdr);
	return s;
}

static __always_inline void mark_trunc(struct scratch *s)
{
	((struct rec_hdr *)s->buf)->flags |= REC_F_TRUNCATED;
}

/* the write offset, opaque to the compiler so each bounds check guards the
 * very register the access uses */
static __always_inline __u64 cur_off(struct scratch *s)
{
	__u64 off = s->off;
	barrier_var(off);
	return off;
}

static __always_inline void push_u64(struct scratch *s, __u64 v)
{
	__u64 off = cur_off(s);
	if (off > SCALAR_OFF_MAX) {
		mark_trunc(s);
		return;
	}
	*(__u64 *)&s->buf[off] = v;
	s->off = off + 8;
}

static __always_inline void push_absent(struct scratch *s)
{
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return;
	}
	*(__u16 *)&s->buf[off] = VAR_ABSENT;
	s->off = off + 2;
}

/* Global functions (push_ustr's, push_kpath's and push_dirpath's bodies): the verifier
 * checks a global function once per program with unknown arguments, where a static one
 * is walked again at every call with the caller's state: the path programs (opens,
 * renames, links, mkdir...: two to four paths each) were ~75 % of a first start's
 * verification (docs/performance.md).  Their arguments are scalars or the scratch
 * (kernel and user pointers pass as __u64), and a pointer argument must be checked. */

/* NUL-terminated user string; the stored length includes the NUL.  Returns its
 * first byte ('/' when unreadable) so callers know if it is a relative path. */
__noinline int ustr_write(struct scratch *s, __u64 uptr)
{
	const char *p = (const char *)uptr;
	if (!s)
		return '/';
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return '/';
	}
	long n = p ? bpf_probe_read_user_str(&s->buf[off + 2], MAX_STR, p) : -1;
	if (n < 0) {
		*(__u16 *)&s->buf[off] = VAR_ABSENT;
		s->off = off + 2;
		return '/';
	}
	if (n >= MAX_STR)
		mark_trunc(s);
	*(__u16 *)&s->buf[off] = (__u16)n;
	s->off = off + 2 + (__u32)n;
	return n > 1 ? s->buf[off + 2] : '/';
}

static __always_inline int push_ustr(struct scratch *s, const char *p)
{
	return ustr_write(s, (__u64)p);
}

/* raw user bytes (argv/env blocks, sockaddrs) */
static __noinline void push_ubytes(struct scratch *s, const void *p, __u64 len, __u32 max)
{
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return;
	}
	if (!p) {
		*(__u16 *)&s->buf[off] = VAR_ABSENT;
		s->off = off + 2;
		return;
	}
	if (len > max) {
		len = max;
		mark_trunc(s);
	}
	if (len > MAX_ARGS)
		len = MAX_ARGS;
	if (bpf_probe_read_user(&s->buf[off + 2], len, p) < 0) {
		*(__u16 *)&s->buf[off] = VAR_ABSENT;
		s->off = off + 2;
		return;
	}
	*(__u16 *)&s->buf[off] = (__u16)len;
	s->off = off + 2 + (__u32)len;
}

struct walk_ctx {
	struct pathbuf *pb;
	struct scratch *s;
	struct dentry *d;
	struct vfsmount *vm;
	struct mount *m;
	struct dentry *root_d;
	struct vfsmount *root_m;
	__u64 start;
};

/* The walk's count, position and end flag live in the pathbuf (w->pb, memory): the
 * verifier tracks stack slots' exact values from one callback iteration to the next
 * and explored walk_up/write_comp for each (n, pos) it could reach; loads from memory
 * are unknown scalars, so the callbacks are verified about once. */

/* one step up from (d, vm): collect the name, or cross to the parent mount */
static long walk_up(__u64 i, struct walk_ctx *w)
{
	struct dentry *d = w->d;
	struct vfsmount *vm = w->vm;
	struct mount *m = w->m;
	if (d == w->root_d && vm == w->root_m) {
		w->pb->complete = 1;
		return 1;
	}
	if (d == BPF_CORE_READ(vm, mnt_root)) {
		struct mount *pm = BPF_CORE_READ(m, mnt_parent);
		if (pm == m) {
			w->pb->complete = 1;
			return 1;
		}
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->m = pm;
		w->vm = (struct vfsmount *)__builtin_preserve_access_index(&pm->mnt);
		return 0;
	}
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	__u32 n = w->pb->n;
	if (n >= MAX_COMPS)
		return 1;
	/* a disconnected root that is not its mount's root (memfd and other pseudo
	 * files) still has a name: "/memfd:x" as d_path shows it */
	w->pb->names[n & (MAX_COMPS - 1)] = BPF_CORE_READ(d, d_name.name);
	w->pb->n = n + 1;
	if (parent == d) {
		w->pb->complete = 1;
		return 1;
	}
	w->d = parent;
	return 0;
}

/* append "/" + the name collected at depth n - 1 - i */
static long write_comp(__u64 i, struct walk_ctx *w)
{
	struct pathbuf *pb = w->pb;
	__u32 n = pb->n;
	if (i >= n)
		return 1;
	__u64 pos = pb->pos;
	if (pos > MAX_STR - 256 - 2) {
		mark_trunc(w->s);
		return 1;
	}
	__u64 at = w->start + pos;
	barrier_var(at);
	if (at > SCRATCH_SIZE - 258)
		return 1;
	w->s->buf[at] = '/';
	long r = bpf_probe_read_kernel_str(&w->s->buf[at + 1], 256,
					   pb->names[(n - 1 - i) & (MAX_COMPS - 1)]);
	if (r <= 0)
		return 1;
	pb->pos = pos + r; /* the next '/' overwrites this NUL */
	return 0;
}

/* absolute path of (dentry, vfsmount), relative to the current task's root */
__noinline int kpath_write(struct scratch *s, __u64 dentry, __u64 vfsmount)
{
	struct dentry *d = (struct dentry *)dentry;
	struct vfsmount *vm = (struct vfsmount *)vfsmount;
	if (!s)
		return 0;
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&pathbuf_map, &zero);
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return 0;
	}
	if (!pb || !d || !vm) {
		*(__u16 *)&s->buf[off] = VAR_ABSENT;
		s->off = off + 2;
		return 0;
	}
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct walk_ctx w = {
		.pb = pb,
		.s = s,
		.d = d,
		.vm = vm,
		.m = container_of(vm, struct mount, mnt),
		.root_d = BPF_CORE_READ(t, fs, root.dentry),
		.root_m = BPF_CORE_READ(t, fs, root.mnt),
		.start = off + 2,
	};
	pb->n = 0;
	pb->complete = 0;
	pb->pos = 0;
	bpf_loop(MAX_COMPS + 16, walk_up, &w, 0);
	if (!pb->complete)
		mark_trunc(s);
	if (pb->n == 0) {
		s->buf[off + 2] = '/';
		pb->pos = 1;
	} else {
		bpf_loop(MAX_COMPS, write_comp, &w, 0);
	}
	__u64 pos = pb->pos;
	if (pos > MAX_STR)
		pos = MAX_STR;
	*(__u16 *)&s->buf[off] = (__u16)pos;
	s->off = off + 2 + pos;
	return 0;
}

static __always_inline void push_kpath(struct scratch *s, struct dentry *d, struct vfsmount *vm)
{
	kpath_write(s, (__u64)d, (__u64)vm);
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max)
		return 0;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* the same for the current task through BTF-typed loads (the hot path of opens) */
static __always_inline struct file *cur_fd_file(long fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = cur_task()->files->fdt;
	if ((unsigned long)fd >= fdt->max_fds)
		return 0;
	struct file **arr = fdt->fd;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* the directory a relative path is resolved against: dirfd's path or the cwd
 * (first: the path's first byte, as push_ustr returned it) */
__noinline int push_dirpath(struct scratch *s, long dirfd, int first)
{
	if (!s)
		return 0;
	if (first == '/') {
		push_absent(s);
		return 0;
	}
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	if ((int)dirfd == AT_FDCWD_) {
		push_kpath(s, BPF_CORE_READ(t, fs, pwd.dentry), BPF_CORE_READ(t, fs, pwd.mnt));
		return 0;
	}
	struct file *f = fd_file(t, dirfd);
	if (!f) {
		push_absent(s);
		return 0;
	}
	push_kpath(s, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
	return 0;
}

static __always_inline void push_cwd(struct scratch *s)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	push_kpath(s, BPF_CORE_READ(t, fs, pwd.dentry), BPF_CORE_READ(t, fs, pwd.mnt));
}

/* dev and ino of the file behind a freshly returned fd */
static __always_inline void push_devino(struct scratch *s, long fd)
{
	struct file *f = cur_fd_file(fd);
	struct inode *ino = f ? BPF_CORE_READ(f, f_inode) : 0;
	if (!ino) {
		push_u64(s, 0);
		push_u64(s, 0);
		return;
	}
	push_u64(s, encode_dev(BPF_CORE_READ(ino, i_sb, s_dev)));
	push_u64(s, BPF_CORE_READ(ino, i_ino));
}

/* local/remote addresses of the socket behind fd (struct sock_tuple) */
static __noinline void push_tuple(struct scratch *s, long fd)
{
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return;
	}
	struct file *f = fd_file((struct task_struct *)bpf_get_current_task(), fd);
	struct socket *sock = f ? BPF_CORE_READ(f, private_data) : 0;
	struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : 0;
	if (!sk) {
		*(__u16 *)&s->buf[off] = VAR_ABSENT;
		s->off = off + 2;
		return;
	}
	struct sock_tuple *tp = (struct sock_tuple *)&s->buf[off + 2];
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u32 len = sizeof(struct sock_tuple);
	__builtin_memset(tp, 0, sizeof(*tp));
	tp->family = family;
	tp->l4proto = BPF_CORE_READ(sk, sk_protocol);
	if (family == AF_INET_) {
		tp->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		tp->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		bpf_probe_read_kernel(tp->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(tp->raddr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6_) {
		tp->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		tp->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		bpf_probe_read_kernel(tp->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(tp->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else if (family == AF_UNIX_) {
		struct unix_sock *us = (struct unix_sock *)sk;
		struct unix_address *ua = BPF_CORE_READ(us, addr);
		if (!ua) {
			struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(us, peer);
			ua = peer ? BPF_CORE_READ(peer, addr) : 0;
		}
		if (ua) {
			__u64 alen = (__u32)BPF_CORE_READ(ua, len);
			barrier_var(alen);
			if (alen > 110)
				alen = 110;
			if (bpf_probe_read_kernel(&s->buf[off + 2 + sizeof(struct sock_tuple)], alen,
						  &ua->name) == 0)
				len += alen;
		}
	}
	*(__u16 *)&s->buf[off] = (__u16)len;
	s->off = off + 2 + len;
}

/* Copy the record into the ring.  Bulk records leave the last kf_conf.reserve
 * bytes to the critical ones (process lifecycle, exec, connections, privilege
 * changes...), so a flood of file events cannot push those out. */
static __always_inline int ring_submit(struct scratch *s)
{
	__u64 len = s->off;
	barrier_var(len);
	if (len > SCRATCH_SIZE || len < sizeof(struct rec_hdr))
		return 0;
	struct rec_hdr *h = (struct rec_hdr *)s->buf;
	h->len = len;
	__u32 type = h->type & (KF_TYPES - 1);

	__u32 zero = 0;
	struct settings *st = bpf_map_lookup_elem(&settings_map, &zero);
	__u64 thr = st ? st->wake_threshold : 0;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u8 *crit = bpf_map_lookup_elem(&kf_critical, &type);
	__u32 cls = crit && *crit ? 1 : 0;
	if (!cls) {
		struct kf_conf *conf = bpf_map_lookup_elem(&kf_conf_map, &zero);
		__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
		__u64 reserve = conf ? conf->reserve : 0;
		if (reserve && avail + len + reserve > size) {
			__u64 *d = bpf_map_lookup_elem(&drops, &cls);
			if (d)
				*d += 1;
			return 0;
		}
	}
	/* Wake-up policy (docs/performance.md): flags 0 is the kernel's adaptive
	 * notification, a wake-up only when the reader had consumed everything
	 * before this record, i.e. the first record after the ring went quiet is
	 * delivered at once, while records landing behind a busy reader wait for
	 * its next batch (it paces itself, see RingBuffer.wait); forced once when
	 * the pending data crosses the threshold. */
	__u64 flags = (avail < thr && avail + len >= thr) ? BPF_RB_FORCE_WAKEUP : 0;
	if (bpf_ringbuf_output(&events, s->buf, len, flags)) {
		__u64 *d = bpf_map_lookup_elem(&drops, &cls);
		if (d)
			*d += 1;
		return 0;
	}
	__u32 k = type * 2;
	__u64 *n = bpf_map_lookup_elem(&kf_stats, &k);
	if (n)
		*n += 1;
	return 0;
}

#include "kfilter.h"

/* every program ends with it: the filter admitted the event before its record was built */
static __always_inline int rec_submit(struct scratch *s)
{
	return ring_submit(s);
}

/* common prologue of a sys_exit program: the event type, the interest filter on
 * the fd the call acts on (or -1) and the fd it returned (or -1; expressions of r,
 * the saved user registers), then the record's header */
#define BEGIN_FD(ev, fd_expr, newfd_expr)                                        \
	if (!wanted(ev))                                                         \
		return 0;                                                        \
	struct pt_regs *r = user_regs();                                         \
	struct scratch *s = rec_start(ev, ctx->ret, (fd_expr), (newfd_expr));    \
	if (!s)                                                                  \
		return 0;                                                        \
	(void)r

#define BEGIN(ev) BEGIN_FD(ev, -1, -1)

/* Body of every program whose record is just its first n arguments as C ints
 * (fds, ids, signals): inlined with a constant n, so each program keeps its own
 * straight-line code and the verifier sees what a hand-written body gave it.
 * fd: the first argument is an fd the call acts on (KF_FD_ARG0); newfd: the
 * return value is a new fd (KF_NEWFD_RET). */
#define KF_FD_ARG0 1
#define KF_NEWFD_RET 2
static __always_inline int exit_ints_kf(struct trace_event_raw_sys_exit *ctx, __u16 ev, int n, int fdmode)
{
	BEGIN_FD(ev, (fdmode & KF_FD_ARG0) ? (long)(int)SC_ARG0(r) : -1,
		 (fdmode & KF_NEWFD_RET) ? ctx->ret : -1);
	if (n > 0)
		push_u64(s, (int)SC_ARG0(r));
	if (n > 1)
		push_u64(s, (int)SC_ARG1(r));
	if (n > 2)
		push_u64(s, (int)SC_ARG2(r));
	return rec_submit(s);
}

static __always_inline int exit_ints(struct trace_event_raw_sys_exit *ctx, __u16 ev, int n)
{
	return exit_ints_kf(ctx, ev, n, 0);
}

#endif
