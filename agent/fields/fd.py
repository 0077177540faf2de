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


# The socket ends the rules read on connect/send (fd.ip, fd.net, fd.sport...): one
# Python call each, no wrapper (the _fd(_sock(...)) compositions cost three).
def _ev_cip(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in _SOCK_TYPES:
        return None
    return fd.laddr if fd.is_client else fd.raddr


def _ev_sip(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in _SOCK_TYPES:
        return None
    return fd.raddr if fd.is_client else fd.laddr


def _ev_cport(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in _SOCK_TYPES:
        return None
    return fd.lport if fd.is_client else fd.rport


def _ev_sport(ev: SyscallEvent) -> Any:
    fd = ev.fd
    if fd is None or fd.type not in _SOCK_TYPES:
        return None
    return fd.rport if fd.is_client else fd.lport


def _ev_lip(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None or fd.type not in _SOCK_TYPES else fd.laddr


def _ev_rip(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None or fd.type not in _SOCK_TYPES else fd.raddr


def _ev_lport(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None or fd.type not in _SOCK_TYPES else fd.lport


def _ev_rport(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None or fd.type not in _SOCK_TYPES else fd.rport


def _ev_l4proto(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None or fd.type not in _SOCK_TYPES else fd.l4proto


def _ev_connected(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.connected


def _ev_name_changed(ev: SyscallEvent) -> Any:
    fd = ev.fd
    return None if fd is None else fd.name_changed


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
    "fd.ip": _ev_sip,
    "fd.cip": _ev_cip,
    "fd.sip": _ev_sip,
    "fd.lip": _ev_lip,
    "fd.rip": _ev_rip,
    "fd.port": _ev_sport,
    "fd.cport": _ev_cport,
    "fd.sport": _ev_sport,
    "fd.lport": _ev_lport,
    "fd.rport": _ev_rport,
    "fd.l4proto": _ev_l4proto,
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
    "fd.net": _ev_sip,
    "fd.cnet": _ev_cip,
    "fd.snet": _ev_sip,
    "fd.lnet": _ev_lip,
    "fd.rnet": _ev_rip,
    "fd.connected": _ev_connected,
    "fd.name_changed": _ev_name_changed,
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
