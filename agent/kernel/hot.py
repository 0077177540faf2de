"""Narrow layouts of the hot record types, for the pipeline's fast path.

Most records that reach user space are opens and closes (a build, a package manager, a
log shipper), a server's accepts and a client's connects.  The process and fd tables
need a handful of their fields; the generic decoder (:mod:`falcopy.agent.kernel.decoder`)
makes all of them into Python objects, an ``args`` dict and a :class:`SyscallRecord`.
Here each hot type has one ``Struct`` over the same bytes that skips (pad bytes) what
the tables and the prefilters do not read, so one unpack yields only the values used.
The record is still decoded in full, by the generic decoder, when some rule is a
candidate for it.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from falcopy.agent.kernel import layout

# ts, res, len, tid, pid, ppid, euid, egid, loginuid, comm: what the tables read of the
# header (record.h), in its layout; cgroup id, type, flags, vtid, vpid, uid, gid, cpu skipped
_HDR_FMT: Final = "<Q8xqI4xIII16xIII8x16s"
assert struct.calcsize(_HDR_FMT) == layout.HDR_SIZE

#: the open family with a dirfd and flags (openat, openat2), without a dirfd (open),
#: with neither (creat: flags implied), close, socket, accept/accept4, connect
OPEN_AT: Final = 1
OPEN: Final = 2
CREAT: Final = 3
CLOSE: Final = 4
SOCKET: Final = 5
ACCEPT: Final = 6
CONNECT: Final = 7

#: scalars the fast path reads, per hot type; the others are skipped
_KEEP: Final = {
    "openat": ("dirfd", "flags", "dev", "ino"),
    "openat2": ("dirfd", "flags", "dev", "ino"),
    "open": ("flags", "dev", "ino"),
    "creat": ("dev", "ino"),
    "close": ("fd",),
    "socket": ("domain", "type", "proto"),
    "accept": ("fd",),
    "accept4": ("fd",),
    "connect": ("fd",),
}
_KIND: Final = {"openat": OPEN_AT, "openat2": OPEN_AT, "open": OPEN, "creat": CREAT, "close": CLOSE,
                "socket": SOCKET, "accept": ACCEPT, "accept4": ACCEPT, "connect": CONNECT}

#: ``struct sock_tuple`` (record.h): family, l4 protocol, local and remote port, local
#: and remote address (the decoder's ``decode_tuple`` reads the same bytes)
TUPLE: Final = struct.Struct("<HHHH16s16s")
_SIGNED: Final = {"i": "q", "u": "Q", "b": "Q"}


class HotLayout(NamedTuple):
    name: str
    kind: int
    #: header + scalars, the unread ones as pad bytes: the same size as the full record's
    #: fixed part, so the variable fields start at ``struct.size``
    struct: struct.Struct
    #: byte offset in the record of each scalar ``struct`` keeps, in its order (what the
    #: compiled fast loop reads with C loads instead of the unpack)
    at: tuple[int, ...]


def _layouts() -> dict[int, HotLayout]:
    out: dict[int, HotLayout] = {}
    for name, scalars, _variables in layout.EVENTS:
        keep = _KEEP.get(name)
        if keep is None:
            continue
        fmt = "".join(_SIGNED[k] if key in keep else "8x" for key, k in scalars)
        st = struct.Struct(_HDR_FMT + fmt)
        assert [k for k, _ in scalars if k in keep] == list(keep), name
        at = tuple(layout.HDR_SIZE + 8 * i for i, (key, _) in enumerate(scalars) if key in keep)
        out[layout.EVENT_IDS[name]] = HotLayout(name, _KIND[name], st, at)
    return out


#: type id -> layout, for the hot types only
HOT: Final = _layouts()
