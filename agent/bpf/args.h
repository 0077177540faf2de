/* One-line argument pushes for the exit programs whose records are the syscall's
 * own arguments (read at exit from the saved user registers, see helpers.h). */
#ifndef FALCOPY_ARGS_H
#define FALCOPY_ARGS_H

#include "helpers.h"

/* a C int argument (fd, pid, signal): sign-extended, so -1 stays -1 */
#define A_INT(i) push_u64(s, (__u64)(long)(int)SC_ARG##i(r))
/* a 32-bit unsigned argument (flags, counts): the upper register half is garbage */
#define A_U32(i) push_u64(s, (__u32)SC_ARG##i(r))
#define A_U64(i) push_u64(s, SC_ARG##i(r))
#define A_STR(i) push_ustr(s, (const char *)SC_ARG##i(r))

/* a u32 / u64 the syscall's pointer argument points to (0 when unreadable) */
static __always_inline void push_user_u32(struct scratch *s, __u64 ptr, __u32 off)
{
	__u32 v = 0;
	if (ptr)
		bpf_probe_read_user(&v, sizeof(v), (void *)(ptr + off));
	push_u64(s, v);
}

static __always_inline void push_user_u64(struct scratch *s, __u64 ptr, __u32 off)
{
	__u64 v = 0;
	if (ptr)
		bpf_probe_read_user(&v, sizeof(v), (void *)(ptr + off));
	push_u64(s, v);
}

#endif
