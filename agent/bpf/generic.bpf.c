// SPDX-License-Identifier: GPL-2.0
/* Every other syscall: one raw sys_exit hook, attached by user space only while a
 * loaded rule names a syscall without its own program (or without a tracepoint on
 * this kernel, e.g. init_module without CONFIG_MODULES), and filtered here by a
 * syscall-id bitmap.  The raw hook runs on every syscall of the machine, hence the
 * on-demand attach.  The record carries the id and the six raw argument registers;
 * user space names the syscall from the kernel's table. */
#include "args.h"

#define GENERIC_NR_MAX 1024

/* bit nr of word nr / 64: 1 when user space wants syscall nr */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERIC_NR_MAX / 64);
	__type(key, __u32);
	__type(value, __u64);
} generic_nrs SEC(".maps");

static __always_inline long syscall_nr(struct pt_regs *r)
{
#if defined(__TARGET_ARCH_x86)
	return r->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(r, syscallno);
#else
#error "syscall number register: add this architecture"
#endif
}

SEC("raw_tp/sys_exit")
int generic_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *r = user_regs();
	__u64 nr = (__u64)syscall_nr(r);
	if (nr >= GENERIC_NR_MAX)
		return 0;
	__u32 word = nr >> 6;
	__u64 *bits = bpf_map_lookup_elem(&generic_nrs, &word);
	if (!bits || !(*bits & (1ULL << (nr & 63))))
		return 0;
	if (!wanted(EV_GENERIC))
		return 0;
	struct scratch *s = rec_start(EV_GENERIC, (long)ctx->args[1], -1, -1);
	if (!s)
		return 0;
	push_u64(s, nr);
	A_U64(0);
	A_U64(1);
	A_U64(2);
	A_U64(3);
	A_U64(4);
	A_U64(5);
	return rec_submit(s);
}
