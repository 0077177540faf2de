"""Inventory of the sockets that exist when the agent starts (``/proc/PID/net``).

/proc/PID/fd only shows ``socket:[inode]``; ``/proc/PID/net/{tcp,tcp6,udp,udp6,unix}``
map each inode of that process's network namespace to its family, protocol and
addresses, so that connections opened before the agent started have ``fd.*`` values
on their later events.

Why not netlink sock_diag (pyroute2): the same data, but parsing its messages costs ten
times the CPU of the text on a node with thousands of connections, and importing pyroute2
kept ~16 MiB resident for the agent's whole life, for a read done once at start-up.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

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


def inventory() -> dict[int, SockEntry]:
    """inode -> socket entry for TCP/UDP (v4, v6) and unix sockets of the agent's network
    namespace (the host's, with host networking).

    Read from ``/proc/self/net`` rather than netlink sock_diag: a node's thousands of
    connections (and TIME-WAIT entries, which have no inode) parse ten times faster as
    text than as sock_diag messages through pyroute2, and this runs on the start-up path;
    abstract unix names come with their ``@`` as the decoder writes them."""
    return proc_net_inventory("/proc/self")


def _hex_addr(text: str, family: int) -> tuple[str, int]:
    addr_hex, _, port_hex = text.partition(":")
    raw = bytes.fromhex(addr_hex)
    if family == socket.AF_INET:
        packed = struct.pack("<I", struct.unpack(">I", raw)[0])
    else:
        # four 32-bit words, each in host (little-endian) order
        packed = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, 16, 4))
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def _rows(path: str, encoding: str, errors: str) -> Iterator[str]:
    """The rows of a ``/proc/PID/net`` table after its heading, read as a stream.

    A node's tables can hold tens of thousands of rows, mostly TIME-WAIT entries that no
    process owns: read whole, with their lines and columns, they made the agent's peak
    RSS several MiB higher for a read done once (docs/performance.md, "Peak RSS under
    load"); streamed, the rows are never in memory at once, and no table is cut at a
    size limit."""
    try:
        with open(path, encoding=encoding, errors=errors, newline="\n") as fh:
            next(fh, None)
            yield from fh
    except OSError:  # no such table in this kernel, or the process is gone
        return


def proc_net_inventory(pid_dir: str) -> dict[int, SockEntry]:
    """inode -> socket entry from ``<pid_dir>/net/{tcp,tcp6,udp,udp6,unix}``: the sockets of
    that process's network namespace."""
    out = _proc_inet(pid_dir)
    for line in _rows(f"{pid_dir}/net/unix", "utf-8", "surrogateescape"):
        cols = line.rstrip("\n").split(None, 7)
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


def _proc_inet(pid_dir: str) -> dict[int, SockEntry]:
    """inode -> entry from ``<pid_dir>/net/{tcp,tcp6,udp,udp6}`` (sockets without an inode,
    e.g. TIME-WAIT, are left out before their addresses are parsed)."""
    out: dict[int, SockEntry] = {}
    for name, family, l4 in (("tcp", socket.AF_INET, "tcp"), ("tcp6", socket.AF_INET6, "tcp"),
                             ("udp", socket.AF_INET, "udp"), ("udp6", socket.AF_INET6, "udp")):
        for line in _rows(f"{pid_dir}/net/{name}", "ascii", "replace"):
            cols = line.split()
            if len(cols) < 10 or cols[9] == "0":
                continue
            try:
                ino = int(cols[9])
                laddr, lport = _hex_addr(cols[1], family)
                raddr, rport = _hex_addr(cols[2], family)
                state = int(cols[3], 16)
            except (ValueError, struct.error, OSError):
                continue
            if ino:
                out[ino] = SockEntry(family=family, l4proto=l4, laddr=laddr, lport=lport, raddr=raddr,
                                     rport=rport, listening=l4 == "tcp" and state == _LISTEN)
    return out
