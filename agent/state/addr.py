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


_AF_INET, _AF_INET6, _AF_UNIX = socket.AF_INET, socket.AF_INET6, socket.AF_UNIX
_new = tuple.__new__  # SockAddr without its Python-level __new__ (two per connect/accept)


# The parsers below run for every connect, accept, bind and datagram send/receive: each
# checks the decoder's shape inline (no helper call per end) and builds the SockAddr
# tuples directly.
def parse_sockaddr(value: Any) -> SockAddr | None:
    """The record's ``addr``; a family without an address keeps only the family
    (AF_INET when unknown, as an unset sockaddr reads in Falco)."""
    if value.__class__ is not dict:
        return None
    fam = value.get("family")
    fam = _FAMILIES.get(fam, 0) if fam.__class__ is str else fam if fam.__class__ is int else 0
    if fam == _AF_UNIX:
        path = value.get("path")
        return _new(SockAddr, (_AF_UNIX, "", 0, path if path.__class__ is str else ""))
    ip = value.get("ip")
    if ip is None and "ip" not in value:
        return _new(SockAddr, (fam or _AF_INET, "", 0, ""))
    port = value.get("port")
    if ip.__class__ is str and port.__class__ is int and 0 <= port <= 65535:
        return _new(SockAddr, (fam, ip, port, ""))
    return None  # not the decoder's shape: ignored rather than guessed at


def parse_tuple(value: Any) -> tuple[SockAddr, SockAddr] | None:
    """(source, destination) of the record's ``tuple`` as the kernel saw it:
    for connect the source is the local end, for accept the peer."""
    if value.__class__ is not dict:
        return None
    fam = value.get("family")
    fam = _FAMILIES.get(fam, 0) if fam.__class__ is str else fam if fam.__class__ is int else 0
    if fam == _AF_UNIX:
        path = value.get("path")
        end = _new(SockAddr, (_AF_UNIX, "", 0, path if path.__class__ is str else ""))
        return end, end
    sip = value.get("sip")
    if sip is None and "sip" not in value:
        empty = _new(SockAddr, (fam or _AF_INET, "", 0, ""))
        return empty, empty
    sport, dip, dport = value.get("sport"), value.get("dip"), value.get("dport")
    if (sip.__class__ is str and dip.__class__ is str and sport.__class__ is int
            and dport.__class__ is int and 0 <= sport <= 65535 and 0 <= dport <= 65535):
        return _new(SockAddr, (fam, sip, sport, "")), _new(SockAddr, (fam, dip, dport, ""))
    return None  # not the decoder's shape


def hostport(addr: str, port: int | None) -> str:
    return f"{addr}:{port if port is not None else 0}"
