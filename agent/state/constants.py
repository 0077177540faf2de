"""Kernel constants and their Falco renderings (errno, capabilities, open flags, sockets).

Falco shows these values as names (``ENOENT``, ``CAP_SYS_ADMIN``, ``O_RDONLY``):
rules compare against those names, so the renderings follow libsinsp's.
"""

from __future__ import annotations

import errno
import os
import socket

AT_FDCWD = -100

ERRNO_NAMES: dict[int, str] = dict(errno.errorcode)

CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

_cap_cache: dict[int, str] = {}


def caps_to_str(mask: int | None) -> str | None:
    """libsinsp renders a capability set as the space-separated names of its bits."""
    if mask is None:
        return None
    text = _cap_cache.get(mask)
    if text is None:
        text = " ".join(name for bit, name in enumerate(CAP_NAMES) if mask >> bit & 1)
        if len(_cap_cache) < 4096:
            _cap_cache[mask] = text
    return text


def errno_name(res: int) -> str:
    if res >= 0:
        return "SUCCESS"
    return ERRNO_NAMES.get(-res, str(res))


# Open flags in libsinsp's rendering order (its file_flags table), with this
# architecture's Linux values; the kernel's O_LARGEFILE bit (0o100000 on 64-bit, which
# glibc and Python report as 0) is spelled out.
_LARGEFILE = getattr(os, "O_LARGEFILE", 0) or 0o100000
_OPEN_FLAG_ORDER: tuple[tuple[int, str], ...] = (
    (_LARGEFILE, "O_LARGEFILE"),
    (os.O_DIRECTORY, "O_DIRECTORY"),
    (getattr(os, "O_DIRECT", 0o40000), "O_DIRECT"),
    (os.O_TRUNC, "O_TRUNC"),
    (os.O_SYNC, "O_SYNC"),
    (os.O_NONBLOCK, "O_NONBLOCK"),
    (os.O_EXCL, "O_EXCL"),
    (os.O_DSYNC, "O_DSYNC"),
    (os.O_APPEND, "O_APPEND"),
    (os.O_CREAT, "O_CREAT"),
)
O_ACCMODE = 3
O_WRONLY = os.O_WRONLY
O_RDWR = os.O_RDWR
O_CREAT = os.O_CREAT
O_TMPFILE = getattr(os, "O_TMPFILE", 0o20200000)
O_PATH = getattr(os, "O_PATH", 0o10000000)


def open_flags_to_str(flags: int) -> str:
    """Pipe-separated names in Falco's order (``O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC``)."""
    names: list[str] = []
    rest = flags
    for value, name in _OPEN_FLAG_ORDER:
        # O_SYNC includes O_DSYNC's bit: a matched flag consumes its bits
        if value and rest & value == value:
            names.append(name)
            rest &= ~value
    acc = flags & O_ACCMODE
    names.append("O_RDONLY" if acc == 0 else "O_WRONLY" if acc == O_WRONLY else "O_RDWR")
    if flags & os.O_CLOEXEC:
        names.append("O_CLOEXEC")
    if flags & O_TMPFILE == O_TMPFILE:
        names.append("O_TMPFILE")
    return "|".join(names)


def open_is_read(flags: int) -> bool:
    return (flags & O_ACCMODE) in (0, O_RDWR)


def open_is_write(flags: int) -> bool:
    return (flags & O_ACCMODE) in (O_WRONLY, O_RDWR)


SOCKET_FAMILIES: dict[int, str] = {
    socket.AF_UNIX: "AF_UNIX",
    socket.AF_INET: "AF_INET",
    socket.AF_INET6: "AF_INET6",
    socket.AF_NETLINK: "AF_NETLINK",
    socket.AF_PACKET: "AF_PACKET",
}

SOCK_TYPE_MASK = 0xF

# protocol name by (socket type) when the protocol argument is 0
L4_BY_SOCKTYPE = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp", socket.SOCK_RAW: "raw"}
L4_BY_PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 255: "raw", 132: "sctp"}

# fd.type and fd.typechar of every fd kind libsinsp knows
FD_TYPECHARS: dict[str, str] = {
    "file": "f",
    "directory": "d",
    "ipv4": "4",
    "ipv6": "6",
    "unix": "u",
    "pipe": "p",
    "event": "e",
    "signalfd": "s",
    "eventpoll": "l",
    "inotify": "i",
    "timerfd": "t",
    "netlink": "n",
    "bpf": "b",
    "userfaultfd": "r",
    "io_uring": "o",
    "memfd": "m",
    "pidfd": "P",
    "unknown": "o",
}

# anon_inode:[kind] names in /proc/PID/fd -> fd.type
ANON_INODE_TYPES = {
    "eventfd": "event",
    "signalfd": "signalfd",
    "eventpoll": "eventpoll",
    "inotify": "inotify",
    "timerfd": "timerfd",
    "bpf-map": "bpf",
    "bpf-prog": "bpf",
    "bpf_link": "bpf",
    "userfaultfd": "userfaultfd",
    "io_uring": "io_uring",
    "pidfd": "pidfd",
}
