// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: exec (with everything Falco's execve exit carries), the
 * child side of clone/fork/vfork/clone3, and thread exit. */
#include "helpers.h"

#define SIGCHLD_ 17
#define CLONE_VM_ 0x00000100
#define CLONE_VFORK_ 0x00004000
#define MNT_READONLY_ 0x40
#define RLIMIT_NOFILE_ 7

static __always_inline __u64 tty_nr(struct task_struct *t)
{
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	if (!tty)
		return 0;
	__u32 index = BPF_CORE_READ(tty, index);
	__u32 major = BPF_CORE_READ(tty, driver, major);
	__u32 minor = BPF_CORE_READ(tty, driver, minor_start) + index;
	return encode_dev((major << 20) | (minor & 0xfffff));
}

static __always_inline __u64 read_cap(const kernel_cap_t *cap)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), cap);
	return v;
}

static __always_inline __u64 inode_time(struct inode *ino, int ctime)
{
	if (ctime) {
		if (bpf_core_field_exists(ino->i_ctime_sec))
			return BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ULL +
			       (BPF_CORE_READ(ino, i_ctime_nsec) & 0x3fffffff); /* high bits: kernel flags */
	} else {
		if (bpf_core_field_exists(ino->i_mtime_sec))
			return BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ULL +
			       (BPF_CORE_READ(ino, i_mtime_nsec) & 0x3fffffff);
	}
	return 0;
}

/* Falco's PPM_EXE_* flags for the executable file */
static __always_inline __u64 exe_flags(struct task_struct *t, struct file *exe, struct inode *ino)
{
	__u64 flags = 0;
	struct super_block *sb = BPF_CORE_READ(ino, i_sb);

	if (BPF_CORE_READ(sb, s_magic) == OVERLAYFS_MAGIC) {
		struct ovl_inode *oi = container_of(ino, struct ovl_inode, vfs_inode);
		flags |= BPF_CORE_READ(oi, __upperdentry) ? EXE_UPPER_LAYER : EXE_LOWER_LAYER;
	}

	char name[8] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' &&
	    name[5] == ':')
		flags |= EXE_FROM_MEMFD;
	if (BPF_CORE_READ(ino, __i_nlink) == 0)
		flags |= EXE_DELETED;

	/* write permission as the process's fs credentials see it (no ACLs/LSMs) */
	int ro = (BPF_CORE_READ(sb, s_flags) & SB_RDONLY_) ||
		 (BPF_CORE_READ(exe, f_path.mnt, mnt_flags) & MNT_READONLY_);
	if (!ro) {
		__u32 fsuid = BPF_CORE_READ(t, cred, fsuid.val);
		__u32 fsgid = BPF_CORE_READ(t, cred, fsgid.val);
		__u16 mode = BPF_CORE_READ(ino, i_mode);
		if (fsuid == 0 || (fsuid == BPF_CORE_READ(ino, i_uid.val) && (mode & S_IWUSR_)) ||
		    (fsgid == BPF_CORE_READ(ino, i_gid.val) && (mode & S_IWGRP_)) || (mode & S_IWOTH_))
			flags |= EXE_WRITABLE;
	}
	return flags;
}

/* kernfs_node lost its plain "parent" field in 6.15 */
struct kernfs_node___old {
	struct kernfs_node___old *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

#define CG_DEPTH 16

/* The write position of the list lives in the scratch map (s->off), not in
 * the context on the stack: a value loaded from map memory carries no range
 * from one bpf_loop iteration to the next, so the verifier's states of cg_one
 * converge after one pass instead of being explored for every possible
 * position (that made the two exec programs ~75 % of the probe's load time;
 * docs/performance.md). */
struct cg_ctx {
	struct scratch *s;
	struct css_set *cset;
	__u32 count;
	__u64 start;	/* where the list's bytes begin in the scratch buffer */
	/* the controller's path: its components from the leaf up, their count, the node
	 * being walked, and whether writing it ran out of room */
	struct kernfs_node *kn;
	__u32 n;
	__u32 failed;
	const char *names[CG_DEPTH];
};

static __always_inline int cg_put(struct cg_ctx *c, const char *str)
{
	__u64 at = cur_off(c->s);
	if (at < c->start || at - c->start > MAX_STR - 256 - 2)
		return -1;
	if (at > SCRATCH_SIZE - 258)
		return -1;
	long r = bpf_probe_read_kernel_str(&c->s->buf[at], 256, str);
	if (r <= 0)
		return -1;
	c->s->off = at + r - 1;
	return 0;
}

static __always_inline int cg_char(struct cg_ctx *c, char ch)
{
	__u64 at = cur_off(c->s);
	if (at < c->start || at - c->start > MAX_STR - 2)
		return -1;
	if (at > SCRATCH_SIZE - 2)
		return -1;
	c->s->buf[at] = ch;
	c->s->off = at + 1;
	return 0;
}

/* the walk up from a cgroup's node: one component per call (a bpf_loop callback is
 * verified once; unrolled, the walk and the write below were ~60 % of an exec
 * program's verification) */
static long cg_up(__u64 d, struct cg_ctx *c)
{
	struct kernfs_node *kn = c->kn;
	struct kernfs_node *parent = kn_parent(kn);
	if (!parent)
		return 1;
	c->names[d & (CG_DEPTH - 1)] = BPF_CORE_READ(kn, name);
	c->n = d + 1;
	c->kn = parent;
	return 0;
}

/* "/<component>", the root's child first */
static long cg_comp(__u64 i, struct cg_ctx *c)
{
	__u32 n = c->n;
	if (i >= n)
		return 1;
	if (cg_char(c, '/') || cg_put(c, c->names[(n - 1 - i) & (CG_DEPTH - 1)])) {
		c->failed = 1;
		return 1;
	}
	return 0;
}

/* one "controller=/path" entry of the task's cgroups, as Falco's cgroups param */
static long cg_one(__u64 i, struct cg_ctx *c)
{
	if (i >= c->count)
		return 1;
	struct cgroup_subsys_state *css = 0;
	bpf_probe_read_kernel(&css, sizeof(css), &c->cset->subsys[i & 15]);
	if (!css)
		return 0;
	struct cgroup_subsys *ss = BPF_CORE_READ(css, ss);
	struct kernfs_node *kn = BPF_CORE_READ(css, cgroup, kn);
	if (!ss || !kn)
		return 0;
	c->kn = kn;
	c->n = 0;
	c->failed = 0;
	bpf_loop(CG_DEPTH, cg_up, c, 0);
	if (cg_put(c, BPF_CORE_READ(ss, name)) || cg_char(c, '='))
		return 1;
	if (c->n == 0 && cg_char(c, '/'))
		return 1;
	bpf_loop(CG_DEPTH, cg_comp, c, 0);
	if (c->failed)
		return 1;
	return cg_char(c, 0) ? 1 : 0;
}

static __noinline void push_cgroups(struct scratch *s, struct task_struct *t)
{
	__u64 off = cur_off(s);
	if (off > VAR_OFF_MAX) {
		mark_trunc(s);
		return;
	}
	struct cg_ctx c = {
		.s = s,
		.cset = BPF_CORE_READ(t, cgroups),
		.count = bpf_core_enum_value(enum cgroup_subsys_id, CGROUP_SUBSYS_COUNT),
		.start = off + 2,
	};
	if (c.count > 16)
		c.count = 16;
	s->off = off + 2;
	if (c.cset)
		bpf_loop(16, cg_one, &c, 0);
	__u64 pos = cur_off(s) - (off + 2);
	if (pos > MAX_STR)
		pos = MAX_STR;
	*(__u16 *)&s->buf[off] = (__u16)pos;
	s->off = off + 2 + pos;
}

static __always_inline int exec_exit(struct trace_event_raw_sys_exit *ctx, __u16 ev, int at)
{
	BEGIN(ev);
	long ret = ctx->ret;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct signal_struct *sig = BPF_CORE_READ(t, signal);
	struct pid *pg = BPF_CORE_READ(sig, pids[PIDTYPE_PGID]);
	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	struct inode *ino = exe ? BPF_CORE_READ(exe, f_inode) : 0;
	const struct cred *cred = BPF_CORE_READ(t, cred);
	/* regs hold the arguments only on failure: a successful exec clears them */
	__u64 a0 = ret < 0 ? SC_ARG0(r) : 0, a1 = ret < 0 ? SC_ARG1(r) : 0;
	__u64 a4 = ret < 0 ? SC_ARG4(r) : 0;

	push_u64(s, pid_hostnr(pg));
	push_u64(s, pid_vnr(pg));
	push_u64(s, pid_hostnr(BPF_CORE_READ(sig, pids[PIDTYPE_SID])));
	push_u64(s, tty_nr(t));
	push_u64(s, BPF_CORE_READ(sig, rlim[RLIMIT_NOFILE_].rlim_cur));
	push_u64(s, read_cap(&cred->cap_inheritable));
	push_u64(s, read_cap(&cred->cap_permitted));
	push_u64(s, read_cap(&cred->cap_effective));
	push_u64(s, ino ? BPF_CORE_READ(ino, i_ino) : 0);
	push_u64(s, ino ? inode_time(ino, 1) : 0);
	push_u64(s, ino ? inode_time(ino, 0) : 0);
	push_u64(s, ino ? exe_flags(t, exe, ino) : 0);
	if (at) {
		push_u64(s, (int)a0);
		push_u64(s, a4);
	}

	/* NULL (a successful exec: the registers are cleared) is pushed as absent */
	push_ustr(s, (const char *)(at ? a1 : a0));
	__u64 as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	push_ubytes(s, (void *)as, ae > as ? ae - as : 0, MAX_ARGS);
	__u64 es = BPF_CORE_READ(mm, env_start), ee = BPF_CORE_READ(mm, env_end);
	push_ubytes(s, (void *)es, ee > es ? ee - es : 0, MAX_ARGS);
	push_cwd(s);
	/* no exe: NULL dentry and mount, pushed as absent (one path for the verifier) */
	push_kpath(s, exe ? BPF_CORE_READ(exe, f_path.dentry) : 0, exe ? BPF_CORE_READ(exe, f_path.mnt) : 0);
	push_cgroups(s, t);
	return rec_submit(s);
}

EXIT_PROG(execve)
{
	return exec_exit(ctx, EV_EXECVE, 0);
}

EXIT_PROG(execveat)
{
	return exec_exit(ctx, EV_EXECVEAT, 1);
}

/* The child returns from the syscall with 0 through the same exit tracepoint,
 * its saved registers a copy of the parent's: the clone flags are still there. */
static __always_inline int child_exit(struct trace_event_raw_sys_exit *ctx, __u16 ev)
{
	if (ctx->ret != 0)
		return 0;
	BEGIN(ev);
	__u64 flags = 0;
	if (ev == EV_CLONE)
		flags = SC_ARG0(r);
	else if (ev == EV_CLONE3)
		bpf_probe_read_user(&flags, sizeof(flags), (void *)SC_ARG0(r));
	else if (ev == EV_FORK)
		flags = SIGCHLD_;
	else
		flags = CLONE_VM_ | CLONE_VFORK_ | SIGCHLD_;
	push_u64(s, flags);
	return rec_submit(s);
}

EXIT_PROG(clone)
{
	return child_exit(ctx, EV_CLONE);
}

EXIT_PROG(clone3)
{
	return child_exit(ctx, EV_CLONE3);
}

EXIT_PROG(fork)
{
	return child_exit(ctx, EV_FORK);
}

EXIT_PROG(vfork)
{
	return child_exit(ctx, EV_VFORK);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_procexit, struct task_struct *p)
{
	if (!wanted(EV_PROCEXIT))
		return 0;
	struct scratch *s = rec_start(EV_PROCEXIT, 0, -1, -1);
	if (!s)
		return 0;
	push_u64(s, BPF_CORE_READ(p, exit_code));
	return rec_submit(s);
}
