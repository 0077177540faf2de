/* Maps of the rule-derived interest filter (kfilter.h), written by
 * agent/kernel/kfilter.py from falcopy.engine.kernel_filter.  Layouts are
 * shared with that module (a test checks the sizes). */
#ifndef FALCOPY_KFILTER_MAPS_H
#define FALCOPY_KFILTER_MAPS_H

/* room for every event id a probe may define; the last id is the fd-interest
 * pseudo type (which files an open must not hide: later events read their fd) */
#define KF_TYPES 1024
#define KF_FDI (KF_TYPES - 1)
/* string bytes of a trie key, NUL included: 4 (type) + 1 (dim) + 251 = the
 * 256-byte maximum of an LPM trie key */
#define KF_STR 251
#define KF_NCLASS 5

/* kf_type.flags */
#define KF_EVAL 1	/* evaluate the clauses; without it the type passes */
#define KF_STATE 2	/* state record: passes whenever user space knows its fd */

/* trie dimensions */
#define KF_DIM_PATH 0
#define KF_DIM_DIR 1
#define KF_DIM_BASE 2

/* open classes (falcopy.engine.kernel_filter F_*) */
#define KF_C_READ 1
#define KF_C_WRITE 2
#define KF_C_CREATE 4
#define KF_C_TRUNC 8
#define KF_C_DOTDOT 16

/* One bit per clause in every mask: a record passes when a clause survives. */
struct kf_type {
	__u64 active;		/* clauses of the type */
	__u64 nofd;		/* clauses of rules that read no fd field */
	__u64 dc[5];		/* clauses without a positive set: path, dir, base, comm, euid */
	__u64 req[KF_NCLASS];	/* clauses requiring open class i */
	__u64 forbid[KF_NCLASS];/* clauses excluding open class i */
	__u64 need_ok;		/* clauses requiring success */
	__u64 need_fail;	/* clauses requiring failure */
	__u32 flags;		/* KF_EVAL | KF_STATE */
	__u32 pad;
};

/* clauses whose positive set holds the value, clauses whose negated set holds it */
struct kf_val {
	__u64 pos;
	__u64 neg;
};

struct kf_key {
	__u32 prefixlen;
	__u32 type;
	__u8 dim;
	__u8 data[KF_STR];
};

struct kf_comm_key {
	__u32 type;
	char comm[16];
};

struct kf_uid_key {
	__u32 type;
	__u32 uid;
};

struct kf_fd_key {
	__u32 tgid;
	__s32 fd;
};

/* per-CPU work area: the three trie keys of an open, with slack for bounded copies */
/* what kf_scan_byte carries from one byte to the next (kfilter.h) */
struct kf_scan_state {
	__u32 last, canon, dotdot;
	__u8 p1, p2;
};

struct kf_buf {
	struct kf_key path;
	__u8 slack0[256];
	struct kf_key dir;
	__u8 slack1[256];
	struct kf_key base;
	__u8 slack2[256];
	struct kf_scan_state scan;
};

struct kf_conf {
	__u32 reserve;		/* ring bytes only critical records may use */
	__u32 enabled;		/* 0: every record passes, no fd bookkeeping */
	__u32 bank;		/* 0 or 1: the set of entries in force (see kfilter.py) */
	__u32 pad;
};

/* two banks (index bank * KF_TYPES + id; keys of the other maps carry
 * bank << 16 | id): user space fills the idle bank, then flips kf_conf.bank */
#define KF_BANK_SHIFT 16
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * KF_TYPES);
	__type(key, __u32);
	__type(value, struct kf_type);
} kf_types SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kf_key);
	__type(value, struct kf_val);
} kf_trie SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kf_comm_key);
	__type(value, struct kf_val);
} kf_comm SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kf_uid_key);
	__type(value, struct kf_val);
} kf_uid SEC(".maps");

/* fds user space never saw the opening of (value: their struct file; 0: seen).
 * LRU: an evicted entry only makes its later events pass.  Per-CPU LRU lists: a
 * filtered open inserts and its close deletes, on the hot path of a flood; per-CPU
 * lists take no lock shared between CPUs. */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct kf_fd_key);
	__type(value, __u64);
} kf_fds SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kf_buf);
} kf_scratch SEC(".maps");

/* 1 for the critical event ids: they may use the reserved part of the ring */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KF_TYPES);
	__type(key, __u32);
	__type(value, __u8);
} kf_critical SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kf_conf);
} kf_conf_map SEC(".maps");

/* per event id: [2 * id] records submitted, [2 * id + 1] records filtered out */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * KF_TYPES);
	__type(key, __u32);
	__type(value, __u64);
} kf_stats SEC(".maps");

#endif
