// SPDX-License-Identifier: GPL-2.0
/* The new mount API (fsopen/fsconfig/fsmount/move_mount/open_tree) and quotactl. */
#include "args.h"

#define FSCONFIG_SET_STRING_ 1

EXIT_PROG(fsopen) { BEGIN(EV_FSOPEN); A_U32(1); A_STR(0); return rec_submit(s); }

/* value: only FSCONFIG_SET_STRING passes a string; other commands a blob, fd or nothing */
EXIT_PROG(fsconfig)
{
	BEGIN(EV_FSCONFIG);
	__u32 cmd = (__u32)SC_ARG1(r);
	A_INT(0);
	push_u64(s, cmd);
	A_INT(4);
	A_STR(2);
	if (cmd == FSCONFIG_SET_STRING_)
		A_STR(3);
	else
		push_absent(s);
	return rec_submit(s);
}

EXIT_PROG(fsmount) { BEGIN(EV_FSMOUNT); A_INT(0); A_U32(1); A_U32(2); return rec_submit(s); }

EXIT_PROG(move_mount)
{
	BEGIN(EV_MOVE_MOUNT);
	A_INT(0);
	A_INT(2);
	A_U32(4);
	A_STR(1);
	A_STR(3);
	return rec_submit(s);
}

EXIT_PROG(open_tree) { BEGIN(EV_OPEN_TREE); A_INT(0); A_U32(2); A_STR(1); return rec_submit(s); }

EXIT_PROG(quotactl) { BEGIN(EV_QUOTACTL); A_U32(0); A_INT(2); A_STR(1); return rec_submit(s); }
