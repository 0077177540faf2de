/* The rule-derived interest filter: decided before a program builds its record
 * or reserves ring space, on what is cheap and already known (event type, result,
 * comm, euid, the fd's interest, and for opens the flags and the path, which is
 * read once into the record's place in the per-CPU scratch and kept there for a
 * record that passes).  A filtered event costs only those reads and lookups.
 * Maps: kfilter_maps.h; what the masks mean: falcopy/engine/kernel_filter.py
 * (KernelFilter.admits is the reference); design: docs/kernel.md.
 *
 * Every program starts with one of (helpers.h; a new program adopts the filter
 * with its first line):
 *   BEGIN(ev)                    process name, euid and result only
 *   BEGIN_FD(ev, fd, newfd)      the call acts on an existing fd (close, sendto...)
 *                                and/or returned a new one (socket, accept...)
 *   OPEN_BEGIN(...)              the open family (files.bpf.c): also the path fields
 * Unknown types (no kf_types entry) pass: soundness first. */
#ifndef FALCOPY_KFILTER_H
#define FALCOPY_KFILTER_H

#define O_CREAT_ 0100
#define O_TRUNC_ 01000
#define O_DIRECTORY_ 0200000

/* kf_type.flags beyond KF_EVAL / KF_STATE: which lookups the clauses need */
#define KF_HAS_FILE 4
#define KF_HAS_COMM 8
#define KF_HAS_UID 16

#define KF_OPEN 1
#define KF_CREAT 2

struct kf_args {
	long fd;		/* fd the call acts on, or -1 */
	long newfd;		/* fd the call returned, or -1 */
	long res;		/* the call's result */
	__u32 type;		/* event id */
	__u32 name_off;		/* opens: offset of the raw name field (u16 length + bytes) */
	__u32 dir_off;		/* opens: offset of the resolved directory field */
	__u64 oflags;		/* opens: the flags as given */
	__u32 open;		/* KF_OPEN / KF_CREAT for the open family, else 0 */
	__u32 trunc;		/* opens: the name or directory did not fit */
	__u32 bank;		/* set by kf_admit */
};

/* what an open's path told: n == 0 when the path is not known exactly as
 * user space will compute fd.name (too long, relative without its directory,
 * or not canonical: "//", "/.", a trailing "/") */
struct kf_path {
	__u32 n;
	__u32 last;		/* index of the last '/' */
	__u32 classes;		/* KF_C_* */
	__u32 known;		/* the classes that could be told */
	__u32 isdir;
};

static __always_inline __u64 kf_dim(__u64 dc, struct kf_val *v)
{
	if (!v)
		return dc;
	return (dc | v->pos) & ~v->neg;
}

/* 1 when user space never saw the opening of fd in this process (or, for a
 * child that inherited it, in its parent) */
static __always_inline int kf_fd_unknown(long fd, int still_open)
{
	struct task_struct *t = cur_task();
	struct kf_fd_key k = {.tgid = t->tgid, .fd = (__s32)fd};
	__u64 *f = bpf_map_lookup_elem(&kf_fds, &k);
	if (!f) {
		k.tgid = t->real_parent->tgid;
		f = bpf_map_lookup_elem(&kf_fds, &k);
		if (!f)
			return 0;
	}
	if (!*f)
		return 0;
	/* the number now names another file: the mark is stale */
	if (still_open && (__u64)cur_fd_file(fd) != *f)
		return 0;
	return 1;
}

/* file: the struct file user space does not know fd by; 0: user space knows fd */
static __always_inline void kf_fd_mark(long fd, __u64 file)
{
	struct task_struct *t = cur_task();
	struct kf_fd_key k = {.tgid = t->tgid, .fd = (__s32)fd};
	if (file) {
		bpf_map_update_elem(&kf_fds, &k, &file, BPF_ANY);
		return;
	}
	bpf_map_delete_elem(&kf_fds, &k);
	/* a known fd of a child must not inherit its parent's mark for that number */
	struct kf_fd_key pk = {.tgid = t->real_parent->tgid, .fd = (__s32)fd};
	if (bpf_map_lookup_elem(&kf_fds, &pk))
		bpf_map_update_elem(&kf_fds, &k, &file, BPF_ANY);
}

/* fds a call created outside its return value (pipe, socketpair) */
static __always_inline void kf_fds_known(long fd1, long fd2)
{
	__u32 zero = 0;
	struct kf_conf *conf = bpf_map_lookup_elem(&kf_conf_map, &zero);
	if (!conf || !conf->enabled)
		return;
	if (fd1 >= 0)
		kf_fd_mark(fd1, 0);
	if (fd2 >= 0)
		kf_fd_mark(fd2, 0);
}

/* result, process name and euid: read from the task, the record is not built yet */
static __always_inline __u64 kf_hdr_mask(struct kf_type *c, struct kf_args *a, __u32 type)
{
	__u64 m = a->res >= 0 ? ~c->need_fail : ~c->need_ok;
	if (c->flags & KF_HAS_COMM) {
		struct kf_comm_key ck = {.type = type};
		bpf_get_current_comm(ck.comm, sizeof(ck.comm));
		m &= kf_dim(c->dc[3], bpf_map_lookup_elem(&kf_comm, &ck));
	}
	if (c->flags & KF_HAS_UID) {
		struct kf_uid_key uk = {.type = type,
					.uid = cur_task()->cred->euid.val};
		m &= kf_dim(c->dc[4], bpf_map_lookup_elem(&kf_uid, &uk));
	}
	return m;
}

static __always_inline __u64 kf_class_mask(struct kf_type *c, struct kf_path *p)
{
	__u64 m = ~0ULL;
#pragma unroll
	for (int i = 0; i < KF_NCLASS; i++) {
		if (p->known & (1 << i))
			m &= (p->classes & (1 << i)) ? ~c->forbid[i] : ~c->req[i];
	}
	return m;
}

/* m: the clauses still alive; a lookup stops as soon as none is */
static __always_inline __u64 kf_file_mask(struct kf_type *c, struct kf_buf *b, __u32 type,
					  struct kf_path *p, __u64 m)
{
	if (!m || !p->n || !(c->flags & KF_HAS_FILE))
		return m;
	b->path.type = type;
	m &= kf_dim(c->dc[0], bpf_map_lookup_elem(&kf_trie, &b->path));
	if (!m || p->isdir)
		return m;	/* fd.directory / fd.filename of a directory differ */
	b->dir.type = type;
	m &= kf_dim(c->dc[1], bpf_map_lookup_elem(&kf_trie, &b->dir));
	if (!m)
		return m;
	b->base.type = type;
	return m & kf_dim(c->dc[2], bpf_map_lookup_elem(&kf_trie, &b->base));
}

/* The scan's running state lives in the kf_buf (memory, not the stack): the verifier
 * tracks the exact values of stack slots from one callback iteration to the next, so
 * the previous two bytes and the flags kept there made it explore the callback for
 * each combination of them (~a third of an open program's verification); loads from
 * memory are unknown scalars and the iterations converge after one pass. */
struct kf_scan {
	struct kf_buf *b;
	__u32 n, start;
};

static long kf_scan_byte(__u64 i, struct kf_scan *sc)
{
	if (i >= sc->n || i >= KF_STR - 1)
		return 1;
	struct kf_scan_state *st = &sc->b->scan;
	__u8 c = sc->b->path.data[i];
	__u8 p1 = st->p1;
	if (c == '/') {
		if (p1 == '/')
			st->canon = 0;
		if (p1 == '.' && st->p2 == '.' && i >= sc->start + 2)
			st->dotdot = 1;
		st->last = i;
	} else if ((c == '.' && p1 == '/') || c == 0) {
		st->canon = 0;
	}
	st->p2 = p1;
	st->p1 = c;
	return 0;
}

/* the open's absolute path as fd.name will be, its directory and basename, as trie keys.
 * A global function: the verifier checks it once per program with unknown arguments,
 * where a static one is walked again for every distinct state of its caller (~60 % of
 * an open program's verification: docs/performance.md).  Returns 0; the pointers
 * cannot be NULL, but a global function's arguments must be checked. */
__noinline int kf_build_path(struct scratch *s, struct kf_buf *b, struct kf_args *a,
			     struct kf_path *p)
{
	if (!s || !b || !a || !p)
		return 0;
	__u64 fl = a->oflags;
	__u32 acc = fl & 3;
	p->classes = (acc == 0 || acc == 2 ? KF_C_READ : 0) | (acc == 1 || acc == 2 ? KF_C_WRITE : 0) |
		     (fl & O_CREAT_ ? KF_C_CREATE : 0) |
		     (a->open == KF_OPEN && (fl & O_TRUNC_) ? KF_C_TRUNC : 0);
	p->known = KF_C_READ | KF_C_WRITE | KF_C_CREATE | KF_C_TRUNC;
	p->isdir = a->open == KF_OPEN && (fl & O_DIRECTORY_);
	p->n = 0;
	if (a->trunc)
		return 0;

	__u64 no = a->name_off;
	barrier_var(no);
	if (no > VAR_OFF_MAX)
		return 0;
	__u32 nlen = *(__u16 *)&s->buf[no];
	if (nlen == VAR_ABSENT || nlen < 2 || nlen > KF_STR)
		return 0;
	__u32 pos = 0;
	if (s->buf[no + 2] != '/') {
		__u64 dof = a->dir_off;
		barrier_var(dof);
		if (dof > VAR_OFF_MAX)
			return 0;
		__u32 dlen = *(__u16 *)&s->buf[dof];
		if (dlen == VAR_ABSENT || dlen < 1 || dlen > KF_STR || s->buf[dof + 2] != '/')
			return 0;
		bpf_probe_read_kernel(b->path.data, dlen & 0xff, &s->buf[dof + 2]);
		pos = dlen == 1 ? 1 : dlen + 1;
		if (pos > 1)
			b->path.data[dlen & 0xff] = '/';
	}
	__u32 n = pos + nlen - 1;	/* chars, without the NUL */
	if (n > KF_STR - 1)
		return 0;
	pos &= 0xff;
	bpf_probe_read_kernel(&b->path.data[pos], nlen & 0xff, &s->buf[no + 2]);

	/* canonical (what fd.name will be, unchanged by normalisation), the last '/',
	 * and "../" in the raw name (fd.nameraw); bpf_loop: the callback is verified
	 * once, not once per byte and state */
	struct kf_scan sc = {.b = b, .n = n, .start = pos};
	b->scan = (struct kf_scan_state){.canon = 1};
	bpf_loop(KF_STR - 1, kf_scan_byte, &sc, 0);
	__u32 last = b->scan.last, canon = b->scan.canon, dotdot = b->scan.dotdot;
	__u8 p1 = b->scan.p1;
	p->classes |= dotdot ? KF_C_DOTDOT : 0;
	p->known |= KF_C_DOTDOT;
	if (!canon || (n > 1 && p1 == '/'))
		return 0;
	p->n = n;
	p->last = last;
	b->path.dim = KF_DIM_PATH;
	b->path.prefixlen = (5 + n + 1) * 8;

	/* fd.filename: after the last '/' (n > last: no trailing '/') */
	__u32 blen = n - last;	/* chars + NUL */
	b->base.dim = KF_DIM_BASE;
	b->base.prefixlen = (5 + blen) * 8;
	bpf_probe_read_kernel(b->base.data, blen & 0xff, &b->path.data[(last + 1) & 0xff]);

	/* fd.directory: before it ("/" for a file in the root) */
	__u32 dl = last ? last : 1;
	b->dir.dim = KF_DIM_DIR;
	b->dir.prefixlen = (5 + dl + 1) * 8;
	bpf_probe_read_kernel(b->dir.data, dl & 0xff, b->path.data);
	b->dir.data[dl & 0xff] = 0;
	return 0;
}

#define KF_R_PASS 1
#define KF_R_FD_UNKNOWN 2

/* the verdict from the type's masks, the task and the fd (every program) */
static __noinline int kf_decide(struct kf_args *a)
{
	__u32 bank = a->bank & 1;
	__u32 id = a->type & (KF_TYPES - 1);
	__u32 idx = bank * KF_TYPES + id;
	/* the key "type" of the other maps: bank and id */
	__u32 type = (bank << KF_BANK_SHIFT) | id;
	struct kf_type *c = bpf_map_lookup_elem(&kf_types, &idx);
	if (!c || !(c->flags & KF_EVAL))
		return KF_R_PASS;
	int unknown = a->fd >= 0 && kf_fd_unknown(a->fd, a->type != EV_CLOSE);
	int r = unknown ? KF_R_FD_UNKNOWN : 0;
	__u64 m;
	if (unknown)
		m = c->nofd;
	else if (c->flags & KF_STATE)
		return KF_R_PASS;
	else
		m = c->active;
	if (m)
		m &= kf_hdr_mask(c, a, type);
	return m ? r | KF_R_PASS : r;
}

/* the same for the open family: the path, its classes, and the fd interest (only
 * the open programs carry this code: a->open is a constant where kf_admit is inlined) */
static __noinline int kf_decide_open(struct scratch *s, struct kf_args *a)
{
	__u32 bank = a->bank & 1;
	__u32 id = a->type & (KF_TYPES - 1);
	__u32 idx = bank * KF_TYPES + id;
	__u32 type = (bank << KF_BANK_SHIFT) | id;
	struct kf_type *c = bpf_map_lookup_elem(&kf_types, &idx);
	if (!c || !(c->flags & KF_EVAL))
		return KF_R_PASS;
	__u64 m = c->active;
	if (m)
		m &= kf_hdr_mask(c, a, type);
	/* without a live clause, only the fd interest can still want a successful open */
	__u32 fdi = bank * KF_TYPES + KF_FDI;
	struct kf_type *fc = 0;
	if (!m) {
		if (a->res < 0)
			return 0;
		fc = bpf_map_lookup_elem(&kf_types, &fdi);
		if (!fc || !(fc->flags & KF_EVAL))
			return KF_R_PASS;
		if (!fc->active)
			return 0;
	}

	__u32 zero = 0;
	struct kf_buf *b = bpf_map_lookup_elem(&kf_scratch, &zero);
	if (!b)
		return KF_R_PASS;
	struct kf_path p = {};
	kf_build_path(s, b, a, &p);
	if (m)
		m &= kf_class_mask(c, &p);
	m = kf_file_mask(c, b, type, &p, m);
	if (m || a->res < 0)
		return m ? KF_R_PASS : 0;
	/* no rule wants this open; it still passes if a rule reads the fd of a later
	 * event and could match this file */
	if (!fc)
		fc = bpf_map_lookup_elem(&kf_types, &fdi);
	if (!fc || !(fc->flags & KF_EVAL))
		return KF_R_PASS;
	__u32 ftype = (bank << KF_BANK_SHIFT) | KF_FDI;
	return kf_file_mask(fc, b, ftype, &p, fc->active) ? KF_R_PASS : 0;
}

/* 1 when the event must be recorded.  Called before the record is built; the fd
 * interest is kept whatever the verdict.  s: opens only, the scratch holding the
 * name and directory at a->name_off / a->dir_off. */
static __always_inline int kf_admit(struct scratch *s, struct kf_args *a)
{
	__u32 zero = 0;
	struct kf_conf *conf = bpf_map_lookup_elem(&kf_conf_map, &zero);
	if (!conf || !conf->enabled)
		return 1;
	a->bank = conf->bank;
	int r = a->open ? kf_decide_open(s, a) : kf_decide(a);
	long res = a->res;
	if (a->open) {
		if (res >= 0)
			kf_fd_mark(res, (r & KF_R_PASS) ? 0 : (__u64)cur_fd_file(res));
	} else if (a->newfd >= 0) {
		/* a copy of an fd user space does not know is unknown too */
		kf_fd_mark(a->newfd, (r & KF_R_FD_UNKNOWN) ? (__u64)cur_fd_file(a->newfd) : 0);
	}
	if (a->type == EV_CLOSE && res == 0 && a->fd >= 0) {
		struct kf_fd_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = (__s32)a->fd};
		bpf_map_delete_elem(&kf_fds, &k);
	}
	if (!(r & KF_R_PASS)) {
		__u32 k = (a->type & (KF_TYPES - 1)) * 2 + 1;
		__u64 *n = bpf_map_lookup_elem(&kf_stats, &k);
		if (n)
			*n += 1;
		return 0;
	}
	return 1;
}

/* kf_admit for every program but the opens.  Not inlined, scalars only: the
 * verifier walks the filter once per program and the program's own code once
 * after it, whichever way the filter went. */
static __noinline int kf_admit_event(__u32 type, long res, long fd, long newfd)
{
	struct kf_args a = {.fd = fd, .newfd = newfd, .res = res, .type = type};
	return kf_admit(0, &a);
}

/* the opens' form (files.bpf.c), with the name and directory already in the scratch */
static __noinline int kf_admit_open(struct scratch *s, __u32 type, long res, __u64 oflags,
				    __u64 layout)
{
	struct kf_args a = {.fd = -1, .newfd = -1, .res = res, .type = type, .oflags = oflags,
			    .open = layout & 3, .trunc = (layout >> 2) & 1,
			    .name_off = (layout >> 8) & 0xffff, .dir_off = layout >> 24};
	return kf_admit(s, &a);
}

/* the scratch with a fresh header when the filter admits the event, else 0 */
static __always_inline struct scratch *rec_start(__u16 ev, long res, long fd, long newfd)
{
	if (!kf_admit_event(ev, res, fd, newfd))
		return 0;
	return rec_begin(ev, res);
}

#endif
