"""fd.* fields of live syscall events: the event's file descriptor
(:class:`~falcopy.agent.state.model.FdInfo`), its socket ends and services."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from falcopy.agent.fields.accessor import Factory, Simple, none
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.state.constants import FD_TYPECHARS
from falcopy.agent.state.model import FdInfo

UNAVAILABLE: dict[str, str] = {}

_SOCK_TYPES = ("ipv4", "ipv6")


def _fd(fn: Callable[[FdInfo], Any]) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        fd = ev.fd
        return None if fd is None else fn(fd)
    return get


def _is_sock(fd: FdInfo) -> bool:
    return fd.type in _SOCK_TYPES


def _cip(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.laddr if fd.is_client else fd.raddr


def _sip(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.raddr if fd.is_client else fd.laddr


def _cport(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.lport if fd.is_client else fd.rport


def _sport(fd: FdInfo) -> Any:
    if not _is_sock(fd):
        return None
    return fd.rport if fd.is_client else fd.lport


def _sock(fn: Callable[[FdInfo], Any]) -> Callable[[FdInfo], Any]:
    return lambda fd: fn(fd) if _is_sock(fd) else None


def _service(port_fn: Callable[[FdInfo], Any]) -> Callable[[FdInfo], Any]:
    def get(fd: FdInfo) -> Any:
        port = port_fn(fd)
        if not port:
            return None
        try:
            return socket.getservbyport(int(port), fd.l4proto or "tcp")
        except (OSError, OverflowError):
            return None
    return get


# The fields the rules read on every open: one Python call each, no wrapper.
def _fd_num(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is not None:
        return fd.num
    raw = ev.rec.args.get("fd")
    return raw if isinstance(raw, int) else None


def _fd_name(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.name


def _fd_type(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.type


def _fd_typechar(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else FD_TYPECHARS.get(fd.type, "o")


def _fd_nameraw(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None:
        return None
    raw = fd.nameraw
    return raw if raw is not None else fd.name


def _fd_directory(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None:
        return None
    kind = fd.type
    if kind == "directory":
        return fd.name
    if kind != "file":
        return None
    # posixpath.dirname inlined
    name = fd.name
    head = name[:name.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head or "/"


def _fd_filename(fd: FdInfo) -> Any:
    if fd.type != "file":
        return None
    name = fd.name
    return name[name.rfind("/") + 1:]  # posixpath.basename


def _sockfamily(fd: FdInfo) -> Any:
    if fd.type in _SOCK_TYPES:
        return "ip"
    if fd.type == "unix":
        return "unix"
    return None


def _fd_types(arg: str | None) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        fds = ev.thread.fds
        if arg is not None:
            try:
                fd = fds.get(int(arg))
            except ValueError:
                return None
            return [fd.type] if fd is not None else None
        return sorted({fd.type for fd in fds.values()})
    return get


def _container_prefixed(ev: SyscallEvent, value: str | None) -> Any:
    if value is None:
        return None
    return f"{ev.container().name or ev.thread.container_id}:{value}"


_laddr = _sock(lambda fd: fd.laddr)
_raddr = _sock(lambda fd: fd.raddr)

FIELDS: dict[str, Simple] = {
    "fd.num": _fd_num,
    "fd.type": _fd_type,
    "fd.typechar": _fd_typechar,
    "fd.name": _fd_name,
    "fd.directory": _fd_directory,
    "fd.filename": _fd(_fd_filename),
    # filter-only "either end" fields answer with the server end (the service a
    # connection is about, remote for outbound, local for inbound)
    "fd.ip": _fd(_sip),
    "fd.cip": _fd(_cip),
    "fd.sip": _fd(_sip),
    "fd.lip": _fd(_laddr),
    "fd.rip": _fd(_raddr),
    "fd.port": _fd(_sport),
    "fd.cport": _fd(_cport),
    "fd.sport": _fd(_sport),
    "fd.lport": _fd(_sock(lambda fd: fd.lport)),
    "fd.rport": _fd(_sock(lambda fd: fd.rport)),
    "fd.l4proto": _fd(lambda fd: fd.l4proto if _is_sock(fd) else None),
    "fd.sockfamily": _fd(_sockfamily),
    "fd.is_server": _fd(lambda fd: (not fd.is_client) if fd.type in ("ipv4", "ipv6", "unix") else None),
    "fd.uid": lambda ev: f"{ev.rec.tid}{ev.fd.num}" if ev.fd is not None else None,
    "fd.containername": lambda ev: _container_prefixed(ev, _fd_name(ev)),
    "fd.containerdirectory": lambda ev: _container_prefixed(ev, _fd_directory(ev)),
    "fd.proto": _fd(_service(_sport)),
    "fd.cproto": _fd(_service(_cport)),
    "fd.sproto": _fd(_service(_sport)),
    "fd.lproto": _fd(_service(lambda fd: fd.lport)),
    "fd.rproto": _fd(_service(lambda fd: fd.rport)),
    "fd.net": _fd(_sip),
    "fd.cnet": _fd(_cip),
    "fd.snet": _fd(_sip),
    "fd.lnet": _fd(_laddr),
    "fd.rnet": _fd(_raddr),
    "fd.connected": _fd(lambda fd: fd.connected),
    "fd.name_changed": _fd(lambda fd: fd.name_changed),
    "fd.dev": _fd(lambda fd: fd.dev),
    "fd.dev.major": _fd(lambda fd: (fd.dev & 0xFFF00) >> 8),
    "fd.dev.minor": _fd(lambda fd: (fd.dev & 0xFF) | ((fd.dev >> 12) & 0xFFF00)),
    "fd.ino": _fd(lambda fd: fd.ino),
    "fd.nameraw": _fd_nameraw,
    # without a resolver (validate, replay) no name is known; with one, the agent's source
    # reads them through falcopy.agent.fields.dnsnames and ADDRESS_OF
    "fd.cip.name": none,
    "fd.sip.name": none,
    "fd.lip.name": none,
    "fd.rip.name": none,
}

#: fd.*ip.name: the address each one names
ADDRESS_OF: dict[str, Callable[[FdInfo], Any]] = {
    "fd.cip.name": _cip,
    "fd.sip.name": _sip,
    "fd.lip.name": _laddr,
    "fd.rip.name": _raddr,
}

WITH_ARG: dict[str, Factory] = {
    "fd.types": _fd_types,
}

DIRECT: frozenset[str] = frozenset({
    "fd.num", "fd.name", "fd.type", "fd.typechar", "fd.nameraw", "fd.directory",
})
