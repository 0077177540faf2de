// SPDX-License-Identifier: GPL-2.0
/* Address-space changes and cross-process memory access. */
#include "args.h"

EXIT_PROG(mmap)
{
	BEGIN(EV_MMAP);
	A_U64(0);
	A_U64(1);
	A_U32(2);
	A_U32(3);
	A_INT(4);
	A_U64(5);
	return rec_submit(s);
}

EXIT_PROG(mprotect) { BEGIN(EV_MPROTECT); A_U64(0); A_U64(1); A_U32(2); return rec_submit(s); }
EXIT_PROG(munmap) { BEGIN(EV_MUNMAP); A_U64(0); A_U64(1); return rec_submit(s); }

EXIT_PROG(mremap)
{
	BEGIN(EV_MREMAP);
	A_U64(0);
	A_U64(1);
	A_U64(2);
	A_U32(3);
	A_U64(4);
	return rec_submit(s);
}

EXIT_PROG(process_vm_readv) { BEGIN(EV_PROCESS_VM_READV); A_INT(0); A_U64(5); return rec_submit(s); }
EXIT_PROG(process_vm_writev) { BEGIN(EV_PROCESS_VM_WRITEV); A_INT(0); A_U64(5); return rec_submit(s); }
