"""Inventory of the sockets that exist when the agent starts (netlink sock_diag).

/proc/PID/fd only shows ``socket:[inode]``; sock_diag maps each inode to its
family, protocol and addresses, so that connections opened before the agent
started have ``fd.*`` values on their later events.  Only the agent's network
namespace is visible to sock_diag (the host's, when it runs with host
networking); sockets of other namespaces keep their ``socket:[inode]`` name.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)

_LISTEN = 10  # TCP_LISTEN


@dataclass(frozen=True, slots=True)
class SockEntry:
    family: int
    l4proto: str
    laddr: str
    lport: int
    raddr: str
    rport: int
    listening: bool
    #: unix sockets: the bound path (or "" when anonymous)
    path: str = ""


def _inet(ds: object, family: int, proto: int, name: str, out: dict[int, SockEntry]) -> None:
    try:
        rows = ds.get_sock_stats(family=family, protocol=proto, states=0xFFFFFFFF)  # type: ignore[attr-defined]
    except Exception as exc:  # a kernel without inet_diag for this protocol
        log.debug("sock_diag %s/%s: %s", family, name, exc)
        return
    for row in rows:
        ino = row.get("idiag_inode")
        if not ino:
            continue
        out[ino] = SockEntry(
            family=family, l4proto=name,
            laddr=str(row.get("idiag_src")), lport=int(row.get("idiag_sport", 0)),
            raddr=str(row.get("idiag_dst")), rport=int(row.get("idiag_dport", 0)),
            listening=row.get("idiag_state") == _LISTEN,
        )


def inventory() -> dict[int, SockEntry]:
    """inode -> socket entry for TCP/UDP (v4, v6) and unix sockets; {} when netlink fails."""
    out: dict[int, SockEntry] = {}
    try:
        from pyroute2 import DiagSocket
    except ImportError:  # pragma: no cover - pyroute2 is a pinned dependency
        return out
    try:
        with DiagSocket() as ds:
            ds.bind()
            for family in (socket.AF_INET, socket.AF_INET6):
                _inet(ds, family, socket.IPPROTO_TCP, "tcp", out)
                _inet(ds, family, socket.IPPROTO_UDP, "udp", out)
            try:
                rows = ds.get_sock_stats(family=socket.AF_UNIX, states=0xFFFFFFFF)
            except Exception as exc:
                log.debug("sock_diag unix: %s", exc)
                rows = []
            for row in rows:
                ino = row.get("udiag_ino")
                if not ino:
                    continue
                path = ""
                for key, value in row.get("attrs", ()):
                    if key == "UNIX_DIAG_NAME" and isinstance(value, str):
                        path = value
                out[ino] = SockEntry(
                    family=socket.AF_UNIX, l4proto="", laddr="", lport=0, raddr="", rport=0,
                    listening=row.get("udiag_state") == _LISTEN, path=path,
                )
    except OSError as exc:
        log.warning("socket inventory unavailable (sock_diag): %s", exc)
    return out
