"""``evt.arg.X`` renderings: the way Falco prints each argument (names for
flags, requests and families; user names for uids; ``fd(<t>name)`` for fds)."""

from __future__ import annotations

import signal
import socket
from typing import Any

from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.evtinfo import OPEN_TYPES
from falcopy.agent.state.constants import errno_name, open_flags_to_str

_CHMOD_TYPES = frozenset({"chmod", "fchmod", "fchmodat"})

_MODE_BITS = (
    (0o001, "S_IXOTH"), (0o002, "S_IWOTH"), (0o004, "S_IROTH"),
    (0o010, "S_IXGRP"), (0o020, "S_IWGRP"), (0o040, "S_IRGRP"),
    (0o100, "S_IXUSR"), (0o200, "S_IWUSR"), (0o400, "S_IRUSR"),
    (0o1000, "S_ISVTX"), (0o2000, "S_ISGID"), (0o4000, "S_ISUID"),
)

_CLONE_FLAGS = (
    (0x00000100, "CLONE_VM"), (0x00000200, "CLONE_FS"), (0x00000400, "CLONE_FILES"),
    (0x00000800, "CLONE_SIGHAND"), (0x00001000, "CLONE_PIDFD"), (0x00002000, "CLONE_PTRACE"),
    (0x00004000, "CLONE_VFORK"), (0x00008000, "CLONE_PARENT"), (0x00010000, "CLONE_THREAD"),
    (0x00020000, "CLONE_NEWNS"), (0x00040000, "CLONE_SYSVSEM"), (0x00080000, "CLONE_SETTLS"),
    (0x00100000, "CLONE_PARENT_SETTID"), (0x00200000, "CLONE_CHILD_CLEARTID"),
    (0x00800000, "CLONE_UNTRACED"), (0x01000000, "CLONE_CHILD_SETTID"), (0x02000000, "CLONE_NEWCGROUP"),
    (0x04000000, "CLONE_NEWUTS"), (0x08000000, "CLONE_NEWIPC"), (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"), (0x40000000, "CLONE_NEWNET"), (0x80000000, "CLONE_IO"),
)

_PTRACE = {
    0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
    4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT",
    8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS",
    14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH", 17: "PTRACE_DETACH",
    18: "PTRACE_GETFPXREGS", 19: "PTRACE_SETFPXREGS", 24: "PTRACE_SYSCALL",
    0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG", 0x4202: "PTRACE_GETSIGINFO",
    0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET",
    0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN",
}

_BPF_CMDS = (
    "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
    "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
    "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
    "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY",
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID",
    "BPF_MAP_LOOKUP_BATCH", "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH",
    "BPF_MAP_DELETE_BATCH", "BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID",
    "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS", "BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP",
)

_FAMILIES = {int(v): v.name for v in socket.AddressFamily}
_UID_ARGS = frozenset({"uid", "euid", "ruid", "suid"})
_GID_ARGS = frozenset({"gid", "egid", "rgid", "sgid"})
_FD_ARGS = frozenset({"fd", "dirfd", "olddirfd", "newdirfd", "olddir", "newdir", "linkdirfd", "oldfd",
                      "newfd", "fd1", "fd2"})


def _bits(value: int, table: tuple[tuple[int, str], ...]) -> str:
    names = [name for bit, name in table if value & bit]
    return "|".join(names) if names else "0"


def mode_to_str(mode: int) -> str:
    return _bits(mode, _MODE_BITS)


def fd_to_str(ev: SyscallEvent, num: int) -> str:
    if num < 0:
        return errno_name(num) if num != -100 else "AT_FDCWD"
    fd = ev.thread.fds.get(num)
    if fd is None:
        return str(num)
    return f"{num}(<{fd.typechar}>{fd.name})"


def render_arg(ev: SyscallEvent, name: str, value: Any) -> Any:
    """Text of argument ``name`` (value as decoded from the record)."""
    if value is None:
        return None
    etype = ev.type
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if name == "flags":
            if etype in OPEN_TYPES:
                return open_flags_to_str(value)
            if etype in ("clone", "clone3", "fork", "vfork", "unshare"):
                return _bits(value, _CLONE_FLAGS)
            return str(value)
        if name == "mode":
            if etype in _CHMOD_TYPES:
                return mode_to_str(value)
            # open/creat/mkdir modes print in octal like C's %#o
            return f"0{value:o}" if value else "0"
        if name == "request" and etype == "ptrace":
            return _PTRACE.get(value, str(value))
        if name == "domain":
            return _FAMILIES.get(value, str(value))
        if name == "cmd" and etype == "bpf":
            return _BPF_CMDS[value] if 0 <= value < len(_BPF_CMDS) else str(value)
        if name == "sig":
            try:
                return signal.Signals(value).name
            except ValueError:
                return str(value)
        if name in _UID_ARGS:
            user = ev.state.users.user(value, ev.thread.container_id, _root(ev))
            return user.name if user is not None else str(value)
        if name in _GID_ARGS:
            group = ev.state.users.group(value, ev.thread.container_id, _root(ev))
            return group.name if group is not None else str(value)
        if name in _FD_ARGS:
            return fd_to_str(ev, value)
        return str(value)
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return sockaddr_to_str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def sockaddr_to_str(value: dict[str, Any]) -> str:
    if "path" in value:
        return str(value["path"])
    if "sip" in value:
        return f"{value.get('sip')}:{value.get('sport')}->{value.get('dip')}:{value.get('dport')}"
    return f"{value.get('ip', value.get('addr', ''))}:{value.get('port', 0)}"


def _root(ev: SyscallEvent) -> str | None:
    if ev.thread.container_id == "host":
        return None
    return ev.state.reader.root_of(ev.thread.pid)
