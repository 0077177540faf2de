"""Per-event-type facts Falco's evt.* fields rely on (category, I/O direction,
which argument holds which path)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcopy.agent.fields.event import SyscallEvent

OPEN_TYPES = frozenset({"open", "openat", "openat2", "creat", "open_by_handle_at"})
FD_RETURNING = frozenset({"open", "openat", "openat2", "creat", "socket", "accept", "accept4", "dup",
                          "dup2", "dup3", "memfd_create", "eventfd", "eventfd2", "signalfd", "signalfd4",
                          "timerfd_create", "inotify_init", "inotify_init1", "epoll_create",
                          "epoll_create1", "userfaultfd", "pidfd_open", "bpf"})
IO_READ = frozenset({"read", "readv", "pread64", "preadv", "recv", "recvfrom", "recvmsg", "recvmmsg"})
IO_WRITE = frozenset({"write", "writev", "pwrite64", "pwritev", "send", "sendto", "sendmsg", "sendmmsg"})
WAIT = frozenset({"nanosleep", "clock_nanosleep", "futex", "poll", "ppoll", "select", "pselect6",
                  "epoll_wait", "epoll_pwait", "wait4", "waitid"})
#: failures that are not errors in Falco's counters (non-blocking I/O, timeouts)
FD_NEUTRAL_FAIL: frozenset[str] = frozenset()

_CATEGORY: dict[str, str] = {}
for _names, _cat in (
    (OPEN_TYPES | {"close", "dup", "dup2", "dup3", "fcntl", "rename", "renameat", "renameat2", "unlink",
                   "unlinkat", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
                   "chmod", "fchmod", "fchmodat", "chown", "lchown", "fchown", "fchownat", "memfd_create",
                   "mount", "umount2", "chdir", "fchdir", "chroot"}, "file"),
    ({"socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown"}, "net"),
    ({"pipe", "pipe2", "eventfd", "eventfd2"}, "ipc"),
    ({"clone", "clone3", "fork", "vfork", "execve", "execveat", "procexit", "ptrace", "prctl", "setsid",
      "setpgid", "unshare", "setns", "kill", "tkill", "tgkill"}, "process"),
    ({"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "capset"}, "user"),
    ({"init_module", "finit_module", "bpf", "userfaultfd"}, "system"),
    (IO_READ, "IO_read"),
    (IO_WRITE, "IO_write"),
    (WAIT, "sleep"),
):
    for _n in _names:
        _CATEGORY[_n] = _cat


def category(ev: SyscallEvent) -> str:
    return _CATEGORY.get(ev.type, "other")


def error_kind(ev: SyscallEvent) -> str:
    cat = _CATEGORY.get(ev.type, "other")
    if cat == "file" or (cat.startswith("IO_") and ev.fd is not None and ev.fd.type in ("file", "directory")):
        return "file"
    if cat == "net" or (cat.startswith("IO_") and ev.fd is not None and ev.fd.type in ("ipv4", "ipv6")):
        return "net"
    if ev.type in ("mmap", "munmap", "brk", "mprotect"):
        return "memory"
    return "other"


def is_open_exec(ev: SyscallEvent) -> bool:
    """An open that creates a file with an execute bit in its mode."""
    if ev.type not in OPEN_TYPES:
        return False
    flags = ev.rec.args.get("flags", 0o100 if ev.type == "creat" else 0)
    mode = ev.rec.args.get("mode", 0)
    return bool(isinstance(flags, int) and flags & 0o100 and isinstance(mode, int) and mode & 0o111)


# (path arg, its dirpath arg) per role for the filesystem calls
_PATHS: dict[str, dict[str, tuple[str, str]]] = {
    "name": {
        **{t: ("name", "dirpath") for t in OPEN_TYPES},
        "unlink": ("path", "dirpath"), "unlinkat": ("name", "dirpath"), "mkdir": ("path", "dirpath"),
        "mkdirat": ("path", "dirpath"), "rmdir": ("path", "dirpath"), "chmod": ("filename", "dirpath"),
        "fchmodat": ("filename", "dirpath"), "chown": ("path", "dirpath"), "lchown": ("path", "dirpath"),
        "fchownat": ("pathname", "dirpath"), "chdir": ("path", "dirpath"), "chroot": ("path", "dirpath"),
    },
    "src": {
        "rename": ("oldpath", "olddirpath"), "renameat": ("oldpath", "olddirpath"),
        "renameat2": ("oldpath", "olddirpath"), "link": ("oldpath", "olddirpath"),
        "linkat": ("oldpath", "olddirpath"), "symlink": ("target", ""), "symlinkat": ("target", ""),
    },
    "dst": {
        "rename": ("newpath", "newdirpath"), "renameat": ("newpath", "newdirpath"),
        "renameat2": ("newpath", "newdirpath"), "link": ("newpath", "newdirpath"),
        "linkat": ("newpath", "newdirpath"), "symlink": ("linkpath", "linkdirpath"),
        "symlinkat": ("linkpath", "linkdirpath"),
    },
}


def _path(ev: SyscallEvent, role: str, resolved: bool) -> Any:
    spec = _PATHS[role].get(ev.type)
    if spec is None:
        return None
    raw = ev.rec.args.get(spec[0])
    if not isinstance(raw, str):
        return None
    if not resolved or raw.startswith("/") or not raw:
        return posixpath.normpath(raw) if resolved and raw else raw
    base = ev.rec.args.get(spec[1]) if spec[1] else None
    if not isinstance(base, str) or not base:
        if role == "src" and ev.type.startswith("symlink"):
            # a relative symlink target is relative to the link's directory, kept as written
            return raw
        base = ev.thread.cwd
    return posixpath.normpath(posixpath.join(base, raw))


def fs_path(role: str, resolved: bool) -> Callable[[SyscallEvent], Any]:
    return lambda ev: _path(ev, role, resolved)


def abspath(role: str) -> Callable[[SyscallEvent], Any]:
    return lambda ev: _path(ev, role, True)
