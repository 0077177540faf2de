/* Record layout shared with agent/kernel/layout.py and decoder.py. */
#ifndef FALCOPY_RECORD_H
#define FALCOPY_RECORD_H

/* 96 bytes, every record starts with it */
struct rec_hdr {
	__u64 ts;		/* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;
	__s64 res;
	__u32 len;		/* header + payload */
	__u16 type;		/* enum falcopy_event */
	__u16 flags;		/* REC_F_* */
	__u32 tid, pid, ppid, vtid, vpid;
	__u32 uid, gid, euid, egid, loginuid;
	__u32 cpu;
	__u32 pad;
	char comm[16];
};

#define REC_F_TRUNCATED 1

/* variable field length meaning "could not be read" */
#define VAR_ABSENT 0xFFFF

/* socket tuple blob ('T'); unix sockets append the raw sockaddr_un of the bound
 * side (or of the peer when this side is unbound) */
struct sock_tuple {
	__u16 family;
	__u16 l4proto;
	__u16 lport;		/* host order */
	__u16 rport;		/* host order */
	__u8 laddr[16];
	__u8 raddr[16];
};

/* exe_flags, Falco's PPM_EXE_* bits */
#define EXE_WRITABLE	(1 << 0)
#define EXE_UPPER_LAYER	(1 << 1)
#define EXE_FROM_MEMFD	(1 << 2)
#define EXE_LOWER_LAYER	(1 << 3)
#define EXE_DELETED	(1 << 8)

/* limits: per-CPU scratch must stay under the 32 KiB per-CPU value limit */
#define SCRATCH_SIZE	28672
#define MAX_STR		4096	/* one path / string argument, NUL included */
#define MAX_ARGS	4096	/* argv or env block */
#define MAX_SOCKADDR	128
/* a variable field may only start below this offset: room for its length + MAX_STR */
#define VAR_OFF_MAX	(SCRATCH_SIZE - MAX_STR - 64)
#define SCALAR_OFF_MAX	(SCRATCH_SIZE - 16)

struct settings {
	__u32 wake_threshold;	/* bytes pending in the ring that trigger one wake-up */
	__u32 n_ignored;
	__u32 ignored[8];	/* tgids whose activity is not captured (the agent) */
};

#endif
