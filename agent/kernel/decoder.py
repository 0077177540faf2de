"""Turn raw probe records into :class:`SyscallRecord` objects, fast and defensively.

Works on any buffer supporting ``struct.unpack_from`` and slicing to ``bytes``
(the ring's mmap): one header unpack, one scalar-block unpack, one slice per
variable field.  Every length is checked against the record's end, so a
malformed or cut record yields fewer args, never an exception.

Strings are decoded as UTF-8 with ``surrogateescape``: valid names read as
usual, invalid bytes survive round-trip (``os.fsencode(name)`` gives them back).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.kernel import layout

HDR = struct.Struct("<QQqIHH12I16s")
assert HDR.size == layout.HDR_SIZE
_U16 = struct.Struct("<H")
_TUPLE = struct.Struct("<HHHH16s16s")

_FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
_L4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 255: "raw", 0: "unknown"}
# accept*: the tuple's client is the peer; everywhere else this socket is the source
_SERVER_SIDE = frozenset({"accept", "accept4"})


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstr(raw: bytes) -> str:
    nul = raw.find(b"\0")
    return _text(raw if nul < 0 else raw[:nul])


def _strlist(raw: bytes) -> list[str]:
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if not raw:
        return []
    return [_text(part) for part in raw.split(b"\0")]


def _unix_path(raw: bytes) -> str:
    # abstract names start with NUL; Falco shows them with a leading '@'
    if raw[:1] == b"\0":
        return "@" + _cstr(raw[1:])
    return _cstr(raw)


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw[:16]))


def decode_sockaddr(raw: bytes) -> dict[str, Any]:
    """A user ``struct sockaddr`` (as passed to connect/bind/sendto)."""
    if len(raw) < 2:
        return {"family": 0}
    family = int.from_bytes(raw[:2], "little")
    name = _FAMILIES.get(family, family)
    if family == socket.AF_INET and len(raw) >= 8:
        return {"family": name, "ip": _ip(family, raw[4:8]), "port": int.from_bytes(raw[2:4], "big")}
    if family == socket.AF_INET6 and len(raw) >= 24:
        return {"family": name, "ip": _ip(family, raw[8:24]), "port": int.from_bytes(raw[2:4], "big")}
    if family == socket.AF_UNIX:
        return {"family": name, "path": _unix_path(raw[2:])}
    return {"family": name}


def decode_tuple(raw: bytes, server_side: bool) -> dict[str, Any]:
    """``struct sock_tuple`` into Falco's client->server tuple."""
    if len(raw) < _TUPLE.size:
        return {"family": 0}
    family, proto, lport, rport, laddr, raddr = _TUPLE.unpack_from(raw)
    name = _FAMILIES.get(family, family)
    if family == socket.AF_UNIX:
        return {"family": name, "path": _unix_path(raw[_TUPLE.size + 2:])}
    if family not in (socket.AF_INET, socket.AF_INET6):
        return {"family": name}
    lip, rip = _ip(family, laddr), _ip(family, raddr)
    l4 = _L4.get(proto, str(proto))
    if server_side:
        return {"family": name, "l4proto": l4, "sip": rip, "sport": rport, "dip": lip, "dport": lport}
    return {"family": name, "l4proto": l4, "sip": lip, "sport": lport, "dip": rip, "dport": rport}


def _post_exec(args: dict[str, Any]) -> None:
    argv = args.pop("exe_args", None)
    if argv is not None:
        args["exe"] = argv[0] if argv else ""
        args["args"] = argv[1:]
    flags = args.get("exe_flags", 0)
    args["exe_writable"] = bool(flags & layout.EXE_WRITABLE)
    args["exe_upper_layer"] = bool(flags & layout.EXE_UPPER_LAYER)
    args["exe_lower_layer"] = bool(flags & layout.EXE_LOWER_LAYER)
    args["exe_from_memfd"] = bool(flags & layout.EXE_FROM_MEMFD)
    if flags & layout.EXE_DELETED and "trusted_exepath" in args:
        args["trusted_exepath"] += " (deleted)"
    args["exe_flags"] = flags & 0xFF


def _post_exit(args: dict[str, Any]) -> None:
    status = args.get("status", 0)
    args["sig"] = status & 0x7F
    args["core"] = bool(status & 0x80)
    args["ret"] = (status >> 8) & 0xFF


_POST: dict[str, Callable[[dict[str, Any]], None]] = {
    "execve": _post_exec,
    "execveat": _post_exec,
    "procexit": _post_exit,
}

_SIGNED = {"i": "q", "u": "Q", "b": "Q"}

# per event id: (name, scalar Struct | None, scalar keys, ((key, kind), ...), post-processor)
Spec = tuple[str, struct.Struct | None, tuple[str, ...], tuple[tuple[str, str], ...],
             Callable[[dict[str, Any]], None] | None]


def _compile() -> list[Spec | None]:
    specs: list[Spec | None] = [None] * (len(layout.EVENTS) + 1)
    for name, scalars, variables in layout.EVENTS:
        st = struct.Struct("<" + "".join(_SIGNED[k] for _, k in scalars)) if scalars else None
        specs[layout.EVENT_IDS[name]] = (name, st, tuple(k for k, _ in scalars), variables, _POST.get(name))
    return specs


SPECS = _compile()


class Decoder:
    """Decodes records; keeps small caches (comm strings) across batches."""

    __slots__ = ("_comms", "ts_offset", "unknown")

    def __init__(self) -> None:
        self._comms: dict[bytes, str] = {}
        #: records skipped because their type id or size made no sense
        self.unknown = 0
        #: added to the kernel's boot-clock timestamps to get wall-clock nanoseconds
        self.ts_offset = 0

    def decode_at(self, buf: Any, off: int, size: int) -> SyscallRecord | None:
        """``decode`` with the current ``ts_offset`` (the ring consumer's callback)."""
        return self.decode(buf, off, size, self.ts_offset)

    def decode(self, buf: Any, off: int, size: int, ts_offset: int) -> SyscallRecord | None:
        """The record of ``size`` bytes at ``off`` in ``buf``, or None if malformed."""
        if size < layout.HDR_SIZE:
            self.unknown += 1
            return None
        (ts, cgroup_id, res, rlen, typ, flags, tid, pid, ppid, vtid, vpid, uid, gid, euid, egid,
         loginuid, cpu, _pad, comm_raw) = HDR.unpack_from(buf, off)
        spec = SPECS[typ] if typ < len(SPECS) else None
        if spec is None:
            self.unknown += 1
            return None
        name, scalar_st, scalar_keys, variables, post = spec
        end = off + (rlen if rlen < size else size)
        p = off + layout.HDR_SIZE
        truncated = bool(flags & layout.F_TRUNCATED)
        if scalar_st is not None and p + scalar_st.size <= end:
            args: dict[str, Any] = dict(zip(scalar_keys, scalar_st.unpack_from(buf, p)))  # noqa: B905
            p += scalar_st.size
        else:
            args = {}
            truncated = truncated or scalar_st is not None
        for key, kind in variables:
            if p + 2 > end:
                break
            (n,) = _U16.unpack_from(buf, p)
            p += 2
            if n == layout.ABSENT:
                continue
            if p + n > end:
                truncated = True
                break
            if kind == "s":
                # the kernel stores the terminating NUL: drop it without searching
                args[key] = buf[p:p + n - 1].decode("utf-8", "surrogateescape") if n else ""
            elif kind == "P":
                args[key] = buf[p:p + n].decode("utf-8", "surrogateescape")
            elif kind == "L":
                args[key] = _strlist(buf[p:p + n])
            elif kind == "A":
                args[key] = decode_sockaddr(buf[p:p + n])
            elif kind == "T":
                args[key] = decode_tuple(buf[p:p + n], name in _SERVER_SIDE)
            p += n
        if post is not None:
            post(args)
        comm = self._comms.get(comm_raw)
        if comm is None:
            comm = _cstr(comm_raw)
            if len(self._comms) > 4096:
                self._comms.clear()
            self._comms[comm_raw] = comm
        return SyscallRecord(name, ts + ts_offset, cpu, tid, pid, ppid, vtid, vpid, uid, gid, euid, egid,
                             loginuid, comm, cgroup_id, res, args, truncated)
