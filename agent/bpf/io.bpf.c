// SPDX-License-Identifier: GPL-2.0
/* Data I/O on descriptors: read/write families, zero-copy transfers, ioctl.
 * Falco's argument names (pread/pwrite are Falco's names of pread64/pwrite64). */
#include "args.h"

EXIT_PROG(read) { BEGIN(EV_READ); A_INT(0); A_U64(2); return rec_submit(s); }
EXIT_PROG(write) { BEGIN(EV_WRITE); A_INT(0); A_U64(2); return rec_submit(s); }
EXIT_PROG_TP(pread, pread64) { BEGIN(EV_PREAD); A_INT(0); A_U64(2); A_U64(3); return rec_submit(s); }
EXIT_PROG_TP(pwrite, pwrite64) { BEGIN(EV_PWRITE); A_INT(0); A_U64(2); A_U64(3); return rec_submit(s); }
/* the vectored calls: fd and the iovec count (the byte count is the return value) */
EXIT_PROG(readv) { BEGIN(EV_READV); A_INT(0); A_U64(2); return rec_submit(s); }
EXIT_PROG(writev) { BEGIN(EV_WRITEV); A_INT(0); A_U64(2); return rec_submit(s); }
EXIT_PROG(preadv) { BEGIN(EV_PREADV); A_INT(0); A_U64(2); A_U64(3); return rec_submit(s); }
EXIT_PROG(pwritev) { BEGIN(EV_PWRITEV); A_INT(0); A_U64(2); A_U64(3); return rec_submit(s); }

/* sendfile64 is the only sendfile on 64-bit kernels; offset: the value *offset held after
 * the call (Falco reads it at exit too), 0 without one */
EXIT_PROG_TP(sendfile, sendfile64)
{
	BEGIN(EV_SENDFILE);
	A_INT(0);
	A_INT(1);
	push_user_u64(s, SC_ARG2(r), 0);
	A_U64(3);
	return rec_submit(s);
}

EXIT_PROG(splice)
{
	BEGIN(EV_SPLICE);
	A_INT(0);
	A_INT(2);
	A_U64(4);
	A_U32(5);
	return rec_submit(s);
}

EXIT_PROG(tee) { BEGIN(EV_TEE); A_INT(0); A_INT(1); A_U64(2); A_U32(3); return rec_submit(s); }
EXIT_PROG(ioctl) { BEGIN(EV_IOCTL); A_INT(0); A_U32(1); A_U64(2); return rec_submit(s); }
