"""fd table maintenance: one handler per system call that creates, changes or
closes file descriptors (or the cwd), plus path resolution as Falco's fd.name."""

from __future__ import annotations

import dataclasses
import os
import posixpath
import socket
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.events.text import decode
from falcopy.agent.state.addr import SockAddr, hostport, parse_sockaddr, parse_tuple
from falcopy.agent.state.coerce import as_int
from falcopy.agent.state.constants import AT_FDCWD, L4_BY_PROTO, L4_BY_SOCKTYPE, SOCK_TYPE_MASK
from falcopy.agent.state.model import FdInfo, ThreadInfo
from falcopy.agent.state.sockets import SockEntry

try:
    import cython
except ImportError:  # no Cython where the agent runs: this file runs as plain Python
    import falcopy.agent.cython_shim as cython

if TYPE_CHECKING:
    from falcopy.agent.state.table import ProcessTable

O_CLOEXEC = os.O_CLOEXEC
O_DIRECTORY = os.O_DIRECTORY
_F_DUPFD = 0
_F_DUPFD_CLOEXEC = 1030

Handler = Callable[["ProcessTable", ThreadInfo, SyscallRecord], tuple[FdInfo | None, int | None]]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return decode(value.rstrip(b"\0"))
    return "" if value is None else str(value)


def normalize(path: str) -> str:
    # Falco resolves "." and ".." lexically, without following symlinks
    if "/." not in path and "//" not in path and (len(path) == 1 or path[-1] != "/"):
        return path
    norm = posixpath.normpath(path)
    return norm[1:] if norm.startswith("//") else norm


def resolve(info: ThreadInfo, path: str, dirfd: int = AT_FDCWD, dirpath: Any = None) -> str:
    """Absolute form of ``path`` relative to ``dirfd`` (or the cwd), as fd.name.
    ``dirpath`` is the directory the probe resolved in the kernel, when it did."""
    if not path:
        return path
    if path.startswith("/"):
        return normalize(path)
    if isinstance(dirpath, str) and dirpath.startswith("/"):
        return normalize(posixpath.join(dirpath.removesuffix(" (deleted)"), path))
    if dirfd == AT_FDCWD:
        base = info.cwd
    else:
        dfd = info.fds.get(dirfd)
        base = dfd.name if dfd is not None and dfd.name.startswith("/") else info.cwd
    return normalize(posixpath.join(base or "/", path))


def event_fd(info: ThreadInfo, rec: SyscallRecord) -> FdInfo | None:
    """The fd of an event that names one (read, write, sendto, fchmod...)."""
    raw = rec.args.get("fd")
    if raw is None:
        return None
    return info.fds.get(as_int(raw, -1))


def fill_from_inventory(fd: FdInfo, entry: SockEntry, listen_ports: frozenset[int] = frozenset()) -> None:
    fd.family = entry.family
    if entry.family == socket.AF_UNIX:
        fd.type = "unix"
        fd.name = entry.path or fd.name
        return
    fd.type = "ipv6" if entry.family == socket.AF_INET6 else "ipv4"
    fd.l4proto = entry.l4proto
    fd.laddr, fd.lport = entry.laddr, entry.lport
    if entry.listening or not entry.rport:
        fd.listening = entry.listening
        fd.name = hostport(entry.laddr, entry.lport)
        return
    fd.raddr, fd.rport = entry.raddr, entry.rport
    fd.connected = True
    # the inventory cannot tell who connected: a local port some socket listens on means
    # this end was accepted (server side)
    fd.is_client = entry.lport not in listen_ports
    _name_socket(fd)


def _name_socket(fd: FdInfo) -> None:
    fd.name = _socket_name(fd.laddr, fd.lport, fd.raddr, fd.rport, fd.is_client)


def _socket_name(laddr: str | None, lport: int | None, raddr: str | None, rport: int | None,
                 is_client: bool | None) -> str:
    # "cip:cport->sip:sport", hostport inlined: it runs for every connect and accept
    local = f"{laddr or ''}:{lport if lport is not None else 0}"
    remote = f"{raddr or ''}:{rport if rport is not None else 0}"
    return f"{local}->{remote}" if is_client else f"{remote}->{local}"


# ---------------------------------------------------------------- the fd factory
def _new_fd(type_: str, name: str, num: int, flags: int, ino: int, dev: int, l4proto: str | None,
            family: int | None, laddr: str | None, lport: int | None, raddr: str | None, rport: int | None,
            is_client: bool | None, connected: bool, listening: bool, name_changed: bool,
            nameraw: str | None) -> FdInfo:
    """``FdInfo(...)`` with every field given, in field order: what the hot handlers build
    per open, socket, accept and connect.  Compiled (and FdInfo laid out as
    :func:`_slots_ready` checked), the object is allocated and its 17 slots stored in C:
    the same object ``FdInfo(...)`` makes, without the dataclass's generated ``__init__``
    (a Python frame taking 17 arguments, the largest frame left per record)."""
    if cython.compiled and _FAST:
        # every slot stored before the object is handed out: none is ever read unset
        fd = PyType_GenericAlloc(FdInfo, 0)  # noqa: F821 (cimported by fdops.pxd)
        _store(fd, _OFF[0], type_)  # noqa: F821
        _store(fd, _OFF[1], name)  # noqa: F821
        _store(fd, _OFF[2], num)  # noqa: F821
        _store(fd, _OFF[3], flags)  # noqa: F821
        _store(fd, _OFF[4], ino)  # noqa: F821
        _store(fd, _OFF[5], dev)  # noqa: F821
        _store(fd, _OFF[6], l4proto)  # noqa: F821
        _store(fd, _OFF[7], family)  # noqa: F821
        _store(fd, _OFF[8], laddr)  # noqa: F821
        _store(fd, _OFF[9], lport)  # noqa: F821
        _store(fd, _OFF[10], raddr)  # noqa: F821
        _store(fd, _OFF[11], rport)  # noqa: F821
        _store(fd, _OFF[12], is_client)  # noqa: F821
        _store(fd, _OFF[13], connected)  # noqa: F821
        _store(fd, _OFF[14], listening)  # noqa: F821
        _store(fd, _OFF[15], name_changed)  # noqa: F821
        _store(fd, _OFF[16], nameraw)  # noqa: F821
        return fd
    return FdInfo(type_, name, num, flags, ino, dev, l4proto, family, laddr, lport, raddr, rport, is_client,
                  connected, listening, name_changed, nameraw)


def _slots_ready() -> bool:
    """Compiled: FdInfo's slot offsets into ``_OFF``; True when :func:`_new_fd` may build
    FdInfo objects by slot stores.  That holds only while FdInfo is what ``FdInfo(...)``
    builds by those stores: a slotted class of its own (no ``__dict__``, no ``__new__``,
    no ``__post_init__``) whose fields are, in order, its writable object slots.  Any other
    shape (a field added to the dataclass without the factory, a default factory...) and
    the factory calls ``FdInfo(...)``, as the plain module always does."""
    if not cython.compiled:
        return False
    names = tuple(f.name for f in dataclasses.fields(FdInfo))
    if (len(names) != 17 or FdInfo.__slots__ != names or FdInfo.__dictoffset__ != 0
            or FdInfo.__bases__ != (object,) or FdInfo.__new__ is not object.__new__
            or hasattr(FdInfo, "__post_init__")):
        return False
    for i, n in enumerate(names):
        descr = FdInfo.__dict__.get(n)
        if type(descr) is not types.MemberDescriptorType:
            return False
        off = _member_offset(descr)  # noqa: F821 (declared by fdops.pxd)
        if off < 0:
            return False
        _OFF[i] = off  # noqa: F821
    return True


_FAST = _slots_ready()
if not cython.compiled:
    # plain Python: the class itself, so that a hot handler's FdInfo costs no extra frame
    _new_fd = FdInfo


def slot_factory() -> bool:
    """Whether the fd factory builds FdInfo objects by slot stores (compiled, FdInfo as
    expected) rather than by calling ``FdInfo(...)``."""
    return bool(_FAST)


# plain ints for the per-record handlers: one global load each, not the socket module's
# attribute and its enum member; as dict keys, a record's small int finds them by identity
# where an enum member key costs a rich compare
_AF_INET = int(socket.AF_INET)
_AF_INET6 = int(socket.AF_INET6)
_SOCK_CLOEXEC = int(socket.SOCK_CLOEXEC)
#: fd.type of a socket, by address family (a lookup, not a call, per socket event)
_SOCK_TYPE = {_AF_INET: "ipv4", _AF_INET6: "ipv6", int(socket.AF_UNIX): "unix",
              int(socket.AF_NETLINK): "netlink"}


# ---------------------------------------------------------------- files
def _open(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    # the hottest handler: plain dict reads first, conversions only for odd values
    args = rec.args
    raw = args.get("name")
    if raw is None:
        raw = args.get("filename", args.get("path"))
    name = raw if type(raw) is str else _text(raw)
    flags = args.get("flags", 0)
    if type(flags) is not int:
        flags = as_int(flags)
    if rec.type == "creat":
        flags |= CREAT_FLAGS
    dirfd = args.get("dirfd", AT_FDCWD)
    ino = args.get("ino", 0)
    dev = args.get("dev", 0)
    return open_fd(info, name, dirfd if type(dirfd) is int else as_int(dirfd, AT_FDCWD), args.get("dirpath"),
                   flags, dev if type(dev) is int else as_int(dev), ino if type(ino) is int else as_int(ino),
                   rec.res), None


#: what creat(2) is: open(O_CREAT|O_WRONLY|O_TRUNC)
CREAT_FLAGS = os.O_CREAT | os.O_WRONLY | os.O_TRUNC


def open_fd(info: ThreadInfo, name: str, dirfd: int, dirpath: Any, flags: int, dev: int, ino: int,
            res: int) -> FdInfo:
    """The fd an open made, named as Falco's fd.name, entered in the table when the open
    succeeded (``res`` the new fd).  Shared by the generic handler and the pipeline's
    fast path, which reads the same values straight from the record's bytes."""
    # an absolute name already in normal form (nearly all of them) needs no resolution
    if name[:1] == "/" and "/." not in name and "//" not in name and (len(name) == 1 or name[-1] != "/"):
        full = name
    else:
        full = resolve(info, name, dirfd, dirpath)
    fd = _new_fd("directory" if flags & O_DIRECTORY else "file", full, res if res >= 0 else -1, flags,
                 ino, dev, None, None, None, None, None, None, None, False, False, False, name)
    if res >= 0:
        info.fds[res] = fd
    return fd


def _memfd(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    name = _text(rec.args.get("name"))
    flags = O_CLOEXEC if as_int(rec.args.get("flags")) & 1 else 0  # MFD_CLOEXEC
    fd = FdInfo(type="memfd", name=f"memfd:{name}", num=rec.res, flags=flags, nameraw=name)
    if rec.res >= 0:
        info.fds[rec.res] = fd
    return fd, None


def _simple(kind: str, name: str) -> Handler:
    def handler(table: ProcessTable, info: ThreadInfo,
                rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
        if rec.res < 0:
            return None, None
        fd = FdInfo(type=kind, name=name, num=rec.res)
        info.fds[rec.res] = fd
        return fd, None
    return handler


def _pipe(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    if rec.res < 0:
        return None, None
    kind = "unix" if rec.type == "socketpair" else "pipe"
    ino = as_int(rec.args.get("ino"))
    first = None
    for key in ("fd1", "fd2"):
        num = as_int(rec.args.get(key), -1)
        if num >= 0:
            fd = FdInfo(type=kind, name=f"pipe:[{ino}]" if kind == "pipe" else "", num=num, ino=ino)
            info.fds[num] = fd
            first = first or fd
    return first, None


def _close(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    num = rec.args.get("fd")
    if num.__class__ is not int:
        num = as_int(num, -1)
    fd = info.fds.get(num)
    return fd, (num if rec.res >= 0 and fd is not None else None)


def _dup(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    args = rec.args
    if rec.type == "fcntl":
        if as_int(args.get("cmd"), -1) not in (_F_DUPFD, _F_DUPFD_CLOEXEC):
            return event_fd(info, rec), None
    old = as_int(args.get("oldfd", args.get("fd")), -1)
    src = info.fds.get(old)
    if rec.res < 0 or src is None:
        return src, None
    new = src.copy(rec.res)
    # dup2/dup3 clear close-on-exec unless dup3 asks for it
    new.flags &= ~O_CLOEXEC
    if rec.type == "dup3" and as_int(args.get("flags")) & O_CLOEXEC:
        new.flags |= O_CLOEXEC
    info.fds[rec.res] = new
    return new, None


def _chdir(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    if rec.res == 0:
        cwd = rec.args.get("cwd")
        if rec.type == "fchdir":
            fd = info.fds.get(as_int(rec.args.get("fd"), -1))
            if isinstance(cwd, str) and cwd:
                info.cwd = cwd
            elif fd is not None:
                info.cwd = fd.name
            return fd, None
        if rec.type == "chdir" and isinstance(cwd, str) and cwd:
            info.cwd = cwd
            return None, None
        path = resolve(info, _text(rec.args.get("path")), AT_FDCWD, rec.args.get("dirpath"))
        if rec.type == "chroot":
            info.root = path
        else:
            info.cwd = path
    return None, None


# ---------------------------------------------------------------- sockets
def _socket(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    args = rec.args
    family, stype, proto = args.get("domain"), args.get("type"), args.get("proto")
    # the kernel's ints read as they are; replays' other shapes through as_int
    if family.__class__ is not int:
        family = as_int(family)
    if stype.__class__ is not int:
        stype = as_int(stype)
    if proto.__class__ is not int:
        proto = as_int(proto)
    return socket_fd(info, rec.res, family, stype, proto), None


def socket_fd(info: ThreadInfo, res: int, family: int, stype: int, proto: int) -> FdInfo | None:
    """The fd socket(2) made (None when it failed), entered in the table.  Shared by the
    generic handler and the pipeline's fast path."""
    if res < 0:
        return None
    l4 = None
    if family == _AF_INET or family == _AF_INET6:
        l4 = L4_BY_PROTO.get(proto) if proto else L4_BY_SOCKTYPE.get(stype & SOCK_TYPE_MASK)
    fd = _new_fd(_SOCK_TYPE.get(family, "unknown"), "", res, O_CLOEXEC if stype & _SOCK_CLOEXEC else 0,
                 0, 0, l4, family, None, None, None, None, None, False, False, False, None)
    info.fds[res] = fd
    return fd


def _sock_fd(info: ThreadInfo, num: int, addr: SockAddr | None) -> FdInfo | None:
    fd = info.fds.get(num)
    if fd is None and num >= 0 and addr is not None:
        # a socket created before we were watching
        fd = FdInfo(type=_SOCK_TYPE.get(addr.family, "unknown"), name="", num=num, family=addr.family,
                    l4proto="tcp" if addr.family in (socket.AF_INET, socket.AF_INET6) else None)
        info.fds[num] = fd
    return fd


def _fd_arg(rec: SyscallRecord) -> int:
    num = rec.args.get("fd")
    return num if num.__class__ is int else as_int(num, -1)


def _connect(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    args = rec.args
    raw_tuple = args.get("tuple")
    addr = parse_sockaddr(args.get("addr"))
    tup = parse_tuple(raw_tuple)
    if addr is None and tup is not None:
        addr = tup[1]
    num = _fd_arg(rec)
    l4 = raw_tuple.get("l4proto") if raw_tuple.__class__ is dict else None
    if l4.__class__ is not str:
        l4 = None
    if addr is not None and addr.family != socket.AF_UNIX:
        local = tup[0] if tup is not None else None
        return connected_fd(info, num, rec.res, addr.family, addr.addr, addr.port, l4,
                            None if local is None else local.addr, 0 if local is None else local.port), None
    fd = _sock_fd(info, num, addr)
    if fd is None or addr is None:
        return fd, None
    if fd.type == "unknown" or fd.family is None:
        fd.family, fd.type = addr.family, _SOCK_TYPE.get(addr.family, "unknown")
    if l4 is not None:
        fd.l4proto = l4
    fd.raddr = addr.path
    fd.name = addr.path
    # EINPROGRESS: a non-blocking connect that is under way
    fd.connected = rec.res == 0
    return fd, None


def connected_fd(info: ThreadInfo, num: int, res: int, family: int, raddr: str, rport: int, l4: str | None,
                 laddr: str | None, lport: int) -> FdInfo | None:
    """The socket a connect to an address of ``family`` (not AF_UNIX) named: the peer
    ``raddr:rport``, this end ``laddr:lport`` from the kernel's tuple (None: not known),
    ``l4`` the tuple's protocol.  None when the fd is neither known nor valid.  Shared
    by the generic handler and the pipeline's fast path."""
    fd = info.fds.get(num)
    if fd is None:
        if num < 0:
            return None
        # a socket created before we were watching
        fd = _new_fd(_SOCK_TYPE.get(family, "unknown"), "", num, 0, 0, 0,
                     "tcp" if family == _AF_INET or family == _AF_INET6 else None, family,
                     None, None, None, None, None, False, False, False, None)
        info.fds[num] = fd
    if fd.type == "unknown" or fd.family is None:
        fd.family, fd.type = family, _SOCK_TYPE.get(family, "unknown")
    if l4 is not None:
        fd.l4proto = l4
    had_name = bool(fd.name)
    fd.raddr, fd.rport = raddr, rport
    if laddr is not None:
        fd.laddr, fd.lport = laddr, lport
    else:
        laddr, lport = fd.laddr, fd.lport
    fd.is_client = True
    fd.name = _socket_name(laddr, lport, raddr, rport, True)
    fd.name_changed = had_name
    # EINPROGRESS: a non-blocking connect that is under way
    fd.connected = res == 0
    return fd


def _accept(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    args = rec.args
    lnum = args.get("fd")
    if lnum.__class__ is not int:
        lnum = as_int(lnum, -1)
    listener = info.fds.get(lnum)
    if rec.res < 0:
        return listener, None
    raw_tuple = args.get("tuple")
    tup = parse_tuple(raw_tuple)
    peer = tup[0] if tup is not None else parse_sockaddr(args.get("addr"))
    family = peer.family if peer is not None else (listener.family if listener else socket.AF_INET)
    l4 = raw_tuple.get("l4proto") if raw_tuple.__class__ is dict else None
    if family != socket.AF_UNIX and peer is not None and tup is not None:
        return accepted_fd(info, listener, rec.res, family, l4, peer.addr, peer.port, tup[1].addr,
                           tup[1].port), None
    fd = FdInfo(type=_SOCK_TYPE.get(family or socket.AF_INET, "unknown"), name="", num=rec.res, family=family,
                l4proto=l4 or (listener.l4proto if listener else "tcp"), is_client=False, connected=True)
    if family == socket.AF_UNIX:
        fd.name = listener.name if listener else ""
    else:
        if peer is not None:
            fd.raddr, fd.rport = peer.addr, peer.port
        if listener is not None:
            fd.laddr, fd.lport = listener.laddr, listener.lport
        _name_socket(fd)
    info.fds[rec.res] = fd
    return fd, None


def accepted_fd(info: ThreadInfo, listener: FdInfo | None, res: int, family: int, l4: str | None,
                raddr: str, rport: int, laddr: str, lport: int) -> FdInfo:
    """The connection an accept returned (``res`` >= 0), from its inet tuple: the peer
    and this end.  Shared by the generic handler and the pipeline's fast path."""
    fd = _new_fd(_SOCK_TYPE.get(family or _AF_INET, "unknown"),
                 _socket_name(laddr, lport, raddr, rport, False), res, 0, 0, 0,
                 l4 or (listener.l4proto if listener else "tcp"), family, laddr, lport, raddr, rport, False,
                 True, False, False, None)
    info.fds[res] = fd
    return fd


def _bind(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    addr = parse_sockaddr(rec.args.get("addr"))
    fd = _sock_fd(info, _fd_arg(rec), addr)
    if fd is None or addr is None or rec.res < 0:
        return fd, None
    if addr.family == socket.AF_UNIX:
        fd.laddr = fd.name = addr.path
    else:
        fd.laddr, fd.lport = addr.addr, addr.port
        fd.name = hostport(addr.addr, addr.port)
    return fd, None


def _listen(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    fd = event_fd(info, rec)
    if fd is not None and rec.res == 0:
        fd.listening = True
        fd.is_client = False
    return fd, None


def _sendrecv(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    fd = event_fd(info, rec)
    if fd is not None and fd.type in ("ipv4", "ipv6") and not fd.connected:
        # datagram sockets: the tuple of this send/receive names the fd (Falco does the same)
        tup = parse_tuple(rec.args.get("tuple"))
        if tup is not None:
            src, dst = tup
            local, remote = (src, dst) if rec.type.startswith("send") else (dst, src)
            fd.laddr, fd.lport, fd.raddr, fd.rport = local.addr, local.port, remote.addr, remote.port
            fd.is_client = rec.type.startswith("send")
            _name_socket(fd)
    return fd, None


def _capset(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    if rec.res == 0:
        for key in ("cap_inheritable", "cap_permitted", "cap_effective"):
            value = rec.args.get(key)
            if isinstance(value, int):
                setattr(info, key, value)
    return None, None


def _setsid(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    if rec.res > 0:
        # the new session and group ids are the caller's pid (res: as its namespace sees it)
        info.sid = info.vpgid = rec.res
        info.pgid = info.pid
    return None, None


def _setpgid(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    if rec.res == 0:
        pid = as_int(rec.args.get("pid"))
        pgid = as_int(rec.args.get("pgid"))
        target = info if pid in (0, info.pid, info.vpid) else table.get(pid)
        if target is not None:
            target.vpgid = pgid or target.vpid
            if target.vpgid == target.vpid:
                target.pgid = target.pid
            elif target.vpid == target.pid:
                target.pgid = target.vpgid
    return None, None


def _setuid(table: ProcessTable, info: ThreadInfo, rec: SyscallRecord) -> tuple[FdInfo | None, int | None]:
    # the record's euid was sampled at syscall exit; the args cover probes that sample at entry
    if rec.res == 0:
        args = rec.args
        if rec.type in ("setuid", "setresuid", "setreuid"):
            value = args.get("euid", args.get("uid"))
            if isinstance(value, int) and value not in (-1, 0xFFFFFFFF):
                info.uid = value
        else:
            value = args.get("egid", args.get("gid"))
            if isinstance(value, int) and value not in (-1, 0xFFFFFFFF):
                info.gid = value
    return None, None


HANDLERS: dict[str, Handler] = {
    "open": _open, "openat": _open, "openat2": _open, "creat": _open, "open_by_handle_at": _open,
    "memfd_create": _memfd,
    "eventfd": _simple("event", "anon_inode:[eventfd]"),
    "eventfd2": _simple("event", "anon_inode:[eventfd]"),
    "signalfd": _simple("signalfd", "anon_inode:[signalfd]"),
    "signalfd4": _simple("signalfd", "anon_inode:[signalfd]"),
    "timerfd_create": _simple("timerfd", "anon_inode:[timerfd]"),
    "inotify_init": _simple("inotify", "anon_inode:inotify"),
    "inotify_init1": _simple("inotify", "anon_inode:inotify"),
    "epoll_create": _simple("eventpoll", "anon_inode:[eventpoll]"),
    "epoll_create1": _simple("eventpoll", "anon_inode:[eventpoll]"),
    "userfaultfd": _simple("userfaultfd", "anon_inode:[userfaultfd]"),
    "io_uring_setup": _simple("io_uring", "anon_inode:[io_uring]"),
    "pidfd_open": _simple("pidfd", "anon_inode:[pidfd]"),
    "pipe": _pipe, "pipe2": _pipe, "socketpair": _pipe,
    "close": _close,
    "dup": _dup, "dup2": _dup, "dup3": _dup, "fcntl": _dup,
    "chdir": _chdir, "fchdir": _chdir, "chroot": _chdir,
    "socket": _socket, "connect": _connect, "accept": _accept, "accept4": _accept,
    "bind": _bind, "listen": _listen,
    "sendto": _sendrecv, "sendmsg": _sendrecv, "recvfrom": _sendrecv, "recvmsg": _sendrecv,
    "capset": _capset, "setsid": _setsid, "setpgid": _setpgid,
    "setuid": _setuid, "setresuid": _setuid, "setreuid": _setuid,
    "setgid": _setuid, "setresgid": _setuid, "setregid": _setuid,
}
