// SPDX-License-Identifier: GPL-2.0
/* Extended attributes (security.*, trusted.*, capabilities): the *xattr family. */
#include "args.h"

/* set: (path|fd, name, value, size, flags) */
EXIT_PROG(setxattr) { BEGIN(EV_SETXATTR); A_U64(3); A_U32(4); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(lsetxattr) { BEGIN(EV_LSETXATTR); A_U64(3); A_U32(4); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(fsetxattr) { BEGIN(EV_FSETXATTR); A_INT(0); A_U64(3); A_U32(4); A_STR(1); return rec_submit(s); }
/* get: (path|fd, name, value, size) */
EXIT_PROG(getxattr) { BEGIN(EV_GETXATTR); A_U64(3); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(lgetxattr) { BEGIN(EV_LGETXATTR); A_U64(3); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(fgetxattr) { BEGIN(EV_FGETXATTR); A_INT(0); A_U64(3); A_STR(1); return rec_submit(s); }
/* list: (path|fd, list, size) */
EXIT_PROG(listxattr) { BEGIN(EV_LISTXATTR); A_U64(2); A_STR(0); return rec_submit(s); }
EXIT_PROG(llistxattr) { BEGIN(EV_LLISTXATTR); A_U64(2); A_STR(0); return rec_submit(s); }
EXIT_PROG(flistxattr) { BEGIN(EV_FLISTXATTR); A_INT(0); A_U64(2); return rec_submit(s); }
/* remove: (path|fd, name) */
EXIT_PROG(removexattr) { BEGIN(EV_REMOVEXATTR); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(lremovexattr) { BEGIN(EV_LREMOVEXATTR); A_STR(0); A_STR(1); return rec_submit(s); }
EXIT_PROG(fremovexattr) { BEGIN(EV_FREMOVEXATTR); A_INT(0); A_STR(1); return rec_submit(s); }
