"""Socket addresses of a record, as :class:`SockAddr` for the fd table.

The decoder (agent/kernel/decoder.py) is the one place that parses the kernel's
bytes; its output shapes are the record contract (agent/events/record.py):
``addr`` is ``{"family": "inet"|"inet6", "ip", "port"}`` or ``{"family": "unix",
"path"}`` (another family: ``{"family": <name or int>}``), ``tuple`` is
``{"family", "l4proto", "sip", "sport", "dip", "dport"}`` or ``{"family": "unix",
"path"}``.  This module only turns those dicts into tuples; it accepts nothing else.
"""

from __future__ import annotations

import socket
from typing import Any, NamedTuple


class SockAddr(NamedTuple):
    # a NamedTuple, not a frozen dataclass: built several times per connect/accept,
    # and a frozen dataclass's __init__ costs three times as much
    family: int
    addr: str = ""
    port: int = 0
    path: str = ""


#: the decoder's family names
_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}


def _family(value: Any) -> int:
    return value if value.__class__ is int else _FAMILIES.get(value, 0) if value.__class__ is str else 0


def _endpoint(fam: int, ip: Any, port: Any) -> SockAddr | None:
    if ip.__class__ is str and port.__class__ is int and 0 <= port <= 65535:
        return SockAddr(fam, ip, port)
    return None  # not the decoder's shape: ignored rather than guessed at


def _path(value: dict[str, Any]) -> str:
    path = value.get("path")
    return path if path.__class__ is str else ""


def parse_sockaddr(value: Any) -> SockAddr | None:
    """The record's ``addr``; a family without an address keeps only the family
    (AF_INET when unknown, as an unset sockaddr reads in Falco)."""
    if value.__class__ is not dict:
        return None
    fam = _family(value.get("family"))
    if fam == socket.AF_UNIX:
        return SockAddr(socket.AF_UNIX, path=_path(value))
    if "ip" in value:
        return _endpoint(fam, value["ip"], value.get("port"))
    return SockAddr(fam or socket.AF_INET)


def parse_tuple(value: Any) -> tuple[SockAddr, SockAddr] | None:
    """(source, destination) of the record's ``tuple`` as the kernel saw it:
    for connect the source is the local end, for accept the peer."""
    if value.__class__ is not dict:
        return None
    fam = _family(value.get("family"))
    if fam == socket.AF_UNIX:
        path = _path(value)
        return SockAddr(socket.AF_UNIX, path=path), SockAddr(socket.AF_UNIX, path=path)
    if "sip" in value:
        src = _endpoint(fam, value["sip"], value.get("sport"))
        dst = _endpoint(fam, value.get("dip"), value.get("dport"))
        return (src, dst) if src is not None and dst is not None else None
    empty = SockAddr(fam or socket.AF_INET)
    return empty, empty


def hostport(addr: str, port: int | None) -> str:
    return f"{addr}:{port if port is not None else 0}"
