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
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.events.text import decode, split_nul
from falcopy.agent.kernel import layout

if TYPE_CHECKING:
    from falcopy.agent.kernel.syscalls import SyscallTable

HDR = struct.Struct("<QQqIHH12I16s")
assert HDR.size == layout.HDR_SIZE
_U16 = struct.Struct("<H")
_TUPLE = struct.Struct("<HHHH16s16s")

_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
_L4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 255: "raw", 0: "unknown"}
# receives (accept*, recvfrom, recvmsg): the tuple's source is the peer (Falco's inbound
# order); everywhere else this socket is the source
_SERVER_SIDE = frozenset({"accept", "accept4", "recvfrom", "recvmsg"})


_text = decode


def _cstr(raw: bytes) -> str:
    nul = raw.find(b"\0")
    return _text(raw if nul < 0 else raw[:nul])


def _unix_path(raw: bytes) -> str:
    # abstract names start with NUL; Falco shows them with a leading '@'
    if raw[:1] == b"\0":
        return "@" + _cstr(raw[1:])
    return _cstr(raw)


_IP_CACHE: dict[bytes, str] = {}


def _ip(family: int, raw: bytes) -> str:
    # the same few addresses recur (loopback, the node's, a service's): formatting one
    # through ipaddress costs more than the rest of a connect record's decoding
    key = raw[:4] if family == socket.AF_INET else raw[:16]
    text = _IP_CACHE.get(key)
    if text is None:
        text = str(ipaddress.IPv4Address(key) if len(key) == 4 else ipaddress.IPv6Address(key))
        if len(_IP_CACHE) >= 4096:
            _IP_CACHE.clear()
        _IP_CACHE[key] = text
    return text


#: for the pipeline's fast path, which reads socket tuples itself
IP_CACHE = _IP_CACHE
ip_text = _ip
L4_NAMES = _L4


def decode_sockaddr(raw: bytes) -> dict[str, Any]:
    """A user ``struct sockaddr`` (as passed to connect/bind/sendto)."""
    if len(raw) < 2:
        return {"family": 0}
    family = raw[0] | (raw[1] << 8)
    name = _FAMILIES.get(family, family)
    # the address cache is read inline: a call per address was a third of the record's cost
    if family == _AF_INET and len(raw) >= 8:
        key = raw[4:8]
        return {"family": name, "ip": _IP_CACHE.get(key) or _ip(family, key), "port": (raw[2] << 8) | raw[3]}
    if family == _AF_INET6 and len(raw) >= 24:
        key = raw[8:24]
        return {"family": name, "ip": _IP_CACHE.get(key) or _ip(family, key), "port": (raw[2] << 8) | raw[3]}
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
    if family != _AF_INET and family != _AF_INET6:
        return {"family": name}
    if family == _AF_INET:
        laddr, raddr = laddr[:4], raddr[:4]
    lip = _IP_CACHE.get(laddr) or _ip(family, laddr)
    rip = _IP_CACHE.get(raddr) or _ip(family, raddr)
    l4 = _L4.get(proto) or str(proto)
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


def _complete_peer(args: dict[str, Any], ip_key: str, port_key: str) -> None:
    """An unconnected (datagram) socket has no peer in the kernel socket: the address
    the caller named (send) or the kernel reported (receive) is the peer, as Falco
    builds the tuple from the user sockaddr."""
    tup = args.get("tuple")
    addr = args.get("addr")
    if (tup is not None and addr is not None and "ip" in addr and tup.get("family") == addr["family"]
            and tup.get(port_key) == 0 and tup.get(ip_key) in ("0.0.0.0", "::")):
        tup[ip_key] = addr["ip"]
        tup[port_key] = addr["port"]


def _post_send(args: dict[str, Any]) -> None:
    _complete_peer(args, "dip", "dport")


def _post_recv(args: dict[str, Any]) -> None:
    _complete_peer(args, "sip", "sport")


_POST: dict[str, Callable[[dict[str, Any]], None]] = {
    "execve": _post_exec,
    "execveat": _post_exec,
    "procexit": _post_exit,
    "sendto": _post_send,
    "sendmsg": _post_send,
    "recvfrom": _post_recv,
    "recvmsg": _post_recv,
}

_SIGNED = {"i": "q", "u": "Q", "b": "Q"}

# the header without its padding word (one int object fewer per record)
_HDR_FMT = "<QQqIHH11I4x16s"
_HDR_NOPAD = struct.Struct(_HDR_FMT)
assert _HDR_NOPAD.size == layout.HDR_SIZE
_NHDR = 18  # values the header unpacks to
_HDR_SIZE = layout.HDR_SIZE
_ABSENT = layout.ABSENT
_F_TRUNCATED = layout.F_TRUNCATED
_LEN_TYPE = struct.Struct("<IH")  # record length and event type, at offset 24
_MAX_TYPE = len(layout.EVENTS)

Builder = Callable[[tuple[Any, ...]], dict[str, Any]]


def _builder(keys: tuple[str, ...]) -> Builder:
    """The args dict from a header+scalars tuple.  A dict display with the keys bound
    in a closure is twice as fast as ``dict(zip(...))`` for these small records."""
    n = _NHDR
    if not keys:
        return lambda v: {}
    if len(keys) == 1:
        (k0,) = keys
        return lambda v: {k0: v[n]}
    if len(keys) == 2:
        k0, k1 = keys
        return lambda v: {k0: v[n], k1: v[n + 1]}
    if len(keys) == 3:
        k0, k1, k2 = keys
        return lambda v: {k0: v[n], k1: v[n + 1], k2: v[n + 2]}
    if len(keys) == 4:
        k0, k1, k2, k3 = keys
        return lambda v: {k0: v[n], k1: v[n + 1], k2: v[n + 2], k3: v[n + 3]}
    if len(keys) == 5:
        k0, k1, k2, k3, k4 = keys
        return lambda v: {k0: v[n], k1: v[n + 1], k2: v[n + 2], k3: v[n + 3], k4: v[n + 4]}
    if len(keys) == 6:
        k0, k1, k2, k3, k4, k5 = keys
        return lambda v: {k0: v[n], k1: v[n + 1], k2: v[n + 2], k3: v[n + 3], k4: v[n + 4], k5: v[n + 5]}
    return lambda v: dict(zip(keys, v[n:]))  # noqa: B905


class Spec(NamedTuple):
    name: str
    #: header + the event's scalars: one unpack for a whole well-formed record's fixed part
    full: struct.Struct
    build: Builder
    #: the scalars alone (records cut before their scalar block end)
    scalars: struct.Struct | None
    variables: tuple[tuple[str, str], ...]
    post: Callable[[dict[str, Any]], None] | None
    server_side: bool


def _compile() -> list[Spec | None]:
    specs: list[Spec | None] = [None] * (len(layout.EVENTS) + 1)
    for name, scalars, variables in layout.EVENTS:
        fmt = "".join(_SIGNED[k] for _, k in scalars)
        keys = tuple(k for k, _ in scalars)
        specs[layout.EVENT_IDS[name]] = Spec(
            name, struct.Struct(_HDR_FMT + fmt), _builder(keys),
            struct.Struct("<" + fmt) if scalars else None, variables, _POST.get(name),
            name in _SERVER_SIDE)
    return specs


SPECS = _compile()


_GENERIC_ID = layout.EVENT_IDS[layout.GENERIC]
_RAW_KEYS = ("a0", "a1", "a2", "a3", "a4", "a5")

#: C types of syscall arguments that are signed, by width: read as negative numbers
_SIGNED_BITS = {"int": 32, "pid_t": 32, "key_serial_t": 32, "clockid_t": 32, "timer_t": 32, "mqd_t": 32,
                "rwf_t": 32, "long": 64, "off_t": 64, "loff_t": 64}


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class GenericNames:
    """How a generic record becomes an event: the syscall's name, and its raw argument
    registers named (and sign-corrected) as the kernel declares them (tracefs), else
    ``a0``..``a5``.  ``nativeID`` keeps the number, ``ID`` the name, as Falco's generic
    events."""

    def __init__(self, table: SyscallTable, tracefs: Path | None) -> None:
        self.names = dict(table.names)
        self._kernel_names = table.kernel_names
        self._tracefs = tracefs
        #: per syscall number, its declared arguments: read from tracefs on its first record
        #: (a file per syscall, ~340: not on the start-up path)
        self._args: dict[int, tuple[tuple[str, int], ...] | None] = {}

    def _declared(self, nr: int) -> tuple[tuple[str, int], ...] | None:
        try:
            return self._args[nr]
        except KeyError:
            pass
        from falcopy.agent.kernel.syscalls import tracefs_args

        kname = self._kernel_names.get(nr)
        decl = None if kname is None else tracefs_args(self._tracefs, kname)
        args = None if decl is None else tuple((n, _SIGNED_BITS.get(t, 0)) for n, t in decl[:6])
        self._args[nr] = args
        return args

    def apply(self, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        nr = args["nativeID"]
        name = self.names.get(nr, layout.GENERIC)
        out: dict[str, Any] = {"ID": name, "nativeID": nr}
        decl = self._declared(nr)
        if decl is None:
            for k in _RAW_KEYS:
                out[k] = args[k]
        else:
            for (argname, bits), k in zip(decl, _RAW_KEYS, strict=False):
                out[argname] = _signed(args[k], bits) if bits else args[k]
        return name, out


class Decoder:
    """Decodes records; keeps small caches (comm strings) across batches."""

    __slots__ = ("comms", "generic", "ts_offset", "unknown")

    def __init__(self) -> None:
        #: the header's raw comm -> its text (the pipeline's fast path reads it too)
        self.comms: dict[bytes, str] = {}
        #: names generic records (set by the probe once the kernel's table is known)
        self.generic: GenericNames | None = None
        #: records skipped because their type id or size made no sense
        self.unknown = 0
        #: added to the kernel's boot-clock timestamps to get wall-clock nanoseconds
        self.ts_offset = 0

    def comm(self, raw: bytes) -> str:
        """The text of a header's comm field, cached (a few dozen distinct values)."""
        comm = self.comms.get(raw)
        if comm is None:
            comm = _cstr(raw)
            if len(self.comms) > 4096:
                self.comms.clear()
            self.comms[raw] = comm
        return comm

    def set_syscalls(self, table: SyscallTable, tracefs: Path | None) -> None:
        self.generic = GenericNames(table, tracefs)

    def decode(self, buf: Any, off: int, size: int, ts_offset: int) -> SyscallRecord | None:
        """The record of ``size`` bytes at ``off`` in ``buf``, or None if malformed."""
        saved = self.ts_offset
        self.ts_offset = ts_offset
        try:
            return self.decode_at(buf, off, size)
        finally:
            self.ts_offset = saved

    def decode_at(self, buf: Any, off: int, size: int) -> SyscallRecord | None:
        """``decode`` with the current ``ts_offset`` (the ring consumer's callback).

        The agent's hot path: one unpack for the header and the scalars (a Struct per
        event type), one slice per variable field present."""
        if size < _HDR_SIZE:
            self.unknown += 1
            return None
        rlen, typ = _LEN_TYPE.unpack_from(buf, off + 24)
        spec = SPECS[typ] if typ <= _MAX_TYPE else None
        if spec is None:
            self.unknown += 1
            return None
        name, full, build, scalar_st, variables, post, server_side = spec
        if rlen > size:
            rlen = size
        end = off + rlen
        if full.size <= rlen:
            v = full.unpack_from(buf, off)
            args = build(v)
            p = off + full.size
            truncated = (v[5] & _F_TRUNCATED) != 0
        else:
            # cut inside the scalar block: the header alone, whatever scalars fit
            v = _HDR_NOPAD.unpack_from(buf, off)
            p = off + _HDR_SIZE
            truncated = bool(v[5] & _F_TRUNCATED) or scalar_st is not None
            args = {}
        for key, kind in variables:
            if p + 2 > end:
                break
            n = buf[p] | (buf[p + 1] << 8)
            p += 2
            if n == _ABSENT:
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
                args[key] = split_nul(buf[p:p + n])
            elif kind == "A":
                args[key] = decode_sockaddr(buf[p:p + n])
            elif kind == "T":
                args[key] = decode_tuple(buf[p:p + n], server_side)
            p += n
        if post is not None:
            post(args)
        if typ == _GENERIC_ID:
            if self.generic is None or "a5" not in args:
                self.unknown += 1
                return None
            name, args = self.generic.apply(args)
        comm = self.comms.get(v[17]) or self.comm(v[17])
        # v: ts, cgroup_id, res, rlen, type, flags, tid, pid, ppid, vtid, vpid, uid, gid, euid,
        # egid, loginuid, cpu, comm (indexing is cheaper than unpacking a slice of it)
        return SyscallRecord(name, v[0] + self.ts_offset, v[16], v[6], v[7], v[8], v[9], v[10], v[11],
                             v[12], v[13], v[14], v[15], comm, v[1], v[2], args, truncated)
