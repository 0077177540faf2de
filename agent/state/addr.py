"""Socket addresses as the probe reports them, normalised for the fd table.

The probe decodes sockaddrs in the kernel; depending on the event they come as
a mapping (``{"family": 2, "addr": "127.0.0.1", "port": 80}``), a tuple
``(family, addr, port)``, a unix path, or Falco's text form (``ip:port`` /
``cip:cport->sip:sport``).  Everything is turned into :class:`SockAddr`.
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


#: the decoder's family names (agent/kernel/decoder.py) for the fast paths below
_INET_NAMES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}


def _family(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_UNIX": socket.AF_UNIX,
                "AF_LOCAL": socket.AF_UNIX, "inet": socket.AF_INET, "inet6": socket.AF_INET6,
                "unix": socket.AF_UNIX}.get(value, 0)
    return 0


def _split_hostport(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    return host, int(port)


def parse_sockaddr(value: Any) -> SockAddr | None:
    if value is None:
        return None
    if isinstance(value, SockAddr):
        return value
    if isinstance(value, dict):
        # the probe's shape: {"family": "inet", "ip": str, "port": int}
        fam = _INET_NAMES.get(value.get("family"))  # type: ignore[arg-type]
        if fam is not None and "path" not in value and "addr" not in value:
            ip = value.get("ip")
            port = value.get("port")
            if ip.__class__ is str and port.__class__ is int and 0 <= port <= 65535:
                return SockAddr(fam, ip, port)
        fam = _family(value.get("family", value.get("sa_family", 0)))
        path = value.get("path")
        if path is not None or fam == socket.AF_UNIX:
            return SockAddr(socket.AF_UNIX, path=_text(path or value.get("addr") or ""))
        addr = value.get("addr", value.get("ip", value.get("address", "")))
        port = value.get("port", 0)
        if not fam:
            fam = socket.AF_INET6 if ":" in str(addr) else socket.AF_INET
        return SockAddr(fam, _text(addr), _port(port))
    if isinstance(value, tuple | list):
        if len(value) == 3:
            fam = _family(value[0])
            if fam == socket.AF_UNIX:
                return SockAddr(fam, path=_text(value[1]))
            return SockAddr(fam, _text(value[1]), _port(value[2]))
        if len(value) == 2:
            addr = _text(value[0])
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            return SockAddr(fam, addr, _port(value[1]))
        return None
    if isinstance(value, bytes):
        value = _text(value)
    if isinstance(value, str):
        if not value:
            return None
        if value.startswith("/") or value.startswith("@"):
            return SockAddr(socket.AF_UNIX, path=value)
        hp = _split_hostport(value)
        if hp is None:
            return None
        fam = socket.AF_INET6 if ":" in hp[0] else socket.AF_INET
        return SockAddr(fam, hp[0], hp[1])
    return None


def parse_tuple(value: Any) -> tuple[SockAddr, SockAddr] | None:
    """(source, destination) of a connection tuple as the kernel saw it:
    for connect the source is the local end, for accept the peer."""
    if value is None:
        return None
    if isinstance(value, dict):
        # the probe's shape: {"family": "inet", "l4proto", "sip", "sport", "dip", "dport"}
        fam = _INET_NAMES.get(value.get("family"))  # type: ignore[arg-type]
        if fam is not None and "src" not in value and "dst" not in value:
            sip, sport = value.get("sip"), value.get("sport")
            dip, dport = value.get("dip"), value.get("dport")
            if (sip.__class__ is str and dip.__class__ is str and sport.__class__ is int
                    and dport.__class__ is int and 0 <= sport <= 65535 and 0 <= dport <= 65535):
                return SockAddr(fam, sip, sport), SockAddr(fam, dip, dport)
        if _family(value.get("family", 0)) == socket.AF_UNIX:
            path = _text(value.get("path") or "")
            return SockAddr(socket.AF_UNIX, path=path), SockAddr(socket.AF_UNIX, path=path)
        if "src" in value or "dst" in value:
            src = parse_sockaddr(value.get("src"))
            dst = parse_sockaddr(value.get("dst"))
        else:
            fam = value.get("family", 0)
            src = parse_sockaddr({"family": fam, "addr": value.get("sip", value.get("saddr", "")),
                                  "port": value.get("sport", 0)})
            dst = parse_sockaddr({"family": fam, "addr": value.get("dip", value.get("daddr", "")),
                                  "port": value.get("dport", 0)})
        if src is None or dst is None:
            return None
        return src, dst
    if isinstance(value, tuple | list) and len(value) == 2:
        src, dst = parse_sockaddr(value[0]), parse_sockaddr(value[1])
        return (src, dst) if src is not None and dst is not None else None
    if isinstance(value, tuple | list) and len(value) == 5:
        fam = _family(value[0])
        return (SockAddr(fam, _text(value[1]), _port(value[2])),
                SockAddr(fam, _text(value[3]), _port(value[4])))
    if isinstance(value, bytes):
        value = _text(value)
    if isinstance(value, str) and "->" in value:
        left, _, right = value.partition("->")
        src, dst = parse_sockaddr(left), parse_sockaddr(right)
        return (src, dst) if src is not None and dst is not None else None
    return None


def _port(value: Any) -> int:
    try:
        port = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0
    return port if 0 <= port <= 65535 else 0


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape").rstrip("\0")
    return str(value)


def hostport(addr: str, port: int | None) -> str:
    return f"{addr}:{port if port is not None else 0}"
