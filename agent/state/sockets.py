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
import struct
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
    except Exception as exc:  # a kernel without inet_diag for this protocol (pyroute2 errors)
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
            except Exception as exc:  # pyroute2 errors
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


def _hex_addr(text: str, family: int) -> tuple[str, int]:
    addr_hex, _, port_hex = text.partition(":")
    raw = bytes.fromhex(addr_hex)
    if family == socket.AF_INET:
        packed = struct.pack("<I", struct.unpack(">I", raw)[0])
    else:
        # four 32-bit words, each in host (little-endian) order
        packed = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, 16, 4))
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def proc_net_inventory(pid_dir: str) -> dict[int, SockEntry]:
    """inode -> socket entry from ``<pid_dir>/net/{tcp,tcp6,udp,udp6,unix}``: the sockets of
    that process's network namespace (containers), which sock_diag from the agent's
    namespace cannot see."""
    out: dict[int, SockEntry] = {}
    for name, family, l4 in (("tcp", socket.AF_INET, "tcp"), ("tcp6", socket.AF_INET6, "tcp"),
                             ("udp", socket.AF_INET, "udp"), ("udp6", socket.AF_INET6, "udp")):
        try:
            with open(f"{pid_dir}/net/{name}", "rb") as fh:
                lines = fh.read(8 << 20).decode("ascii", "replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            try:
                laddr, lport = _hex_addr(cols[1], family)
                raddr, rport = _hex_addr(cols[2], family)
                ino = int(cols[9])
                state = int(cols[3], 16)
            except (ValueError, struct.error, OSError):
                continue
            if ino:
                out[ino] = SockEntry(family=family, l4proto=l4, laddr=laddr, lport=lport, raddr=raddr,
                                     rport=rport, listening=l4 == "tcp" and state == _LISTEN)
    try:
        with open(f"{pid_dir}/net/unix", "rb") as fh:
            lines = fh.read(8 << 20).decode("utf-8", "surrogateescape").splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        cols = line.split(None, 7)
        if len(cols) < 7:
            continue
        try:
            ino = int(cols[6])
        except ValueError:
            continue
        if ino:
            out[ino] = SockEntry(family=socket.AF_UNIX, l4proto="", laddr="", lport=0, raddr="", rport=0,
                                 listening=cols[5] == "01" and cols[3] == "00010000",
                                 path=cols[7] if len(cols) > 7 else "")
    return out
