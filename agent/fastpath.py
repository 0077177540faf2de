# cython: language_level=3, annotation_typing=False, boundscheck=False, wraparound=False
"""The pipeline's fast loop over one batch of raw ring records (:meth:`Pipeline.process_raw`).

A hot record (open family, close, socket, accept*, connect; :mod:`falcopy.agent.kernel.hot`)
is read straight from the ring's bytes into the process and fd tables; the open or socket
prefilter runs on the fd just built or named and its thread, and the record is decoded in
full (the generic decoder) only when some rule is a candidate for it.  Anything odd (a
thread the table does not know, a cut record, an absent name, an accept without an inet
tuple, a connect without an inet address and tuple) takes the generic path, record by
record, in order.

The batch is either ``(offset, size)`` spans in a buffer (a replay, a record joined across
the end of the ring) or the ring itself (:class:`~falcopy.agent.kernel.ringbuf.RingWalk`):
then the loop walks the ring's committed records from the consumer position, reading
each header where it reads the record, with no span per record; the ring keeps the
positions, the pacing and the release (``RingBuffer.drain_walk``).

This module is the one implementation, and it runs as plain Python.  ``make accel``
also compiles it with Cython (pure-Python mode, typed by ``fastpath.pxd``): the offsets,
sizes and scalars become C integers and the ring a typed memoryview, so the header and the
scalars are C loads (the ``cython.compiled`` branches, with the ``_u*`` helpers) where the
plain path unpacks a narrow ``Struct`` into a tuple of Python ints.  The compiled module is
used when it was built from this file and ``FALCOPY_NO_ACCEL`` is unset
(:mod:`falcopy.agent.accel`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from falcopy.agent.kernel import hot as hot_layouts
from falcopy.agent.kernel import layout
from falcopy.agent.kernel.decoder import IP_CACHE, L4_NAMES, ip_text
from falcopy.agent.kernel.ringbuf import BUSY, DISCARD
from falcopy.agent.state.constants import AT_FDCWD
from falcopy.agent.state.fdops import CREAT_FLAGS, accepted_fd, connected_fd, open_fd, socket_fd

try:
    import cython
except ImportError:  # no Cython where the agent runs: this file runs as plain Python
    import falcopy.agent.cython_shim as cython

if TYPE_CHECKING:
    from falcopy.agent.kernel.decoder import Decoder
    from falcopy.agent.kernel.ringbuf import RingWalk
    from falcopy.agent.state.model import FdInfo, ThreadInfo

log = logging.getLogger("falcopy.agent.pipeline")

_HDR_SIZE = layout.HDR_SIZE
_ABSENT = layout.ABSENT
_UNSET_LOGINUID = 0xFFFFFFFF
_AT_FDCWD = AT_FDCWD
_CREAT_FLAGS = CREAT_FLAGS
_OPEN_AT = hot_layouts.OPEN_AT
_OPEN = hot_layouts.OPEN
_CREAT = hot_layouts.CREAT
_CLOSE = hot_layouts.CLOSE
_SOCKET = hot_layouts.SOCKET
_ACCEPT = hot_layouts.ACCEPT
_CONNECT = hot_layouts.CONNECT
_TUPLE = hot_layouts.TUPLE
_TUPLE_SIZE = hot_layouts.TUPLE.size
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
#: smallest sockaddr_in / sockaddr_in6 holding the port and the address
_SIN_SIZE = 8
_SIN6_SIZE = 24
_BUSY = BUSY
_BUSY_OR_DISCARD = BUSY | DISCARD


# Little-endian loads from the ring, for the compiled module only (C loads there; as
# Python, a call per field would cost more than the unpack the plain path does instead).
def _u16(b: Any, p: int) -> int:
    return b[p] | (b[p + 1] << 8)


def _u32(b: Any, p: int) -> int:
    return _u16(b, p) | (cython.cast(cython.uint, _u16(b, p + 2)) << 16)


def _u64(b: Any, p: int) -> int:
    return _u32(b, p) | (cython.cast(cython.ulonglong, _u32(b, p + 4)) << 32)


def _i64(b: Any, p: int) -> int:
    return cython.cast(cython.longlong, _u64(b, p))


def run(pipe: Any, raw: Any, spans: Sequence[tuple[int, int]], decoder: Decoder, batch: Any,
        hot: list[Any], hot_counts: list[int], walk: RingWalk | None = None) -> int:
    """The batch ``spans`` (``(offset, size)`` in ``raw``), or with ``walk`` the ring's
    committed records (``raw`` and ``spans`` unused; ``walk``'s outputs set on return),
    through ``pipe``'s tables and rules; ``hot`` is the pipeline's table of hot types
    (``Pipeline._hot``), ``hot_counts`` counts the hot records by type id.  Returns the
    alerts raised; ``batch.num`` is left at the last record's event number."""
    ring = walk is not None
    if walk is not None:
        raw = walk.data
        words = walk.words
        base = walk.base
        ring_end = base + walk.size
        mask = walk.size - 1
        cur = walk.cons
        prod = walk.prod
        left = walk.limit
        spans = repeat(None)  # the loop's iterations: the walk ends them
    else:
        words = None
        base = ring_end = mask = left = 0
        cur = prod = 0
    handed = 0
    busy = False
    buf = raw  # compiled: the typed memoryview the C loads read
    decode_at = decoder.decode_at
    n_hot = len(hot)
    handle = pipe._handle
    evaluate = pipe._evaluate
    state = pipe.state
    threads_get = state.threads.get
    after = state.after
    ts_offset = decoder.ts_offset
    comms_get = decoder.comms.get
    ip_get = IP_CACHE.get
    l4_get = L4_NAMES.get
    # the last record's thread and comm: a stream of opens and closes comes from a few
    # threads; forgotten whenever the generic path or the rules may have changed the table
    last_tid = last_pid = -1
    last_info: ThreadInfo | None = None
    last_comm_raw = b""
    last_c0 = last_c1 = 0
    last_comm = ""
    last_euid = last_egid = last_loginuid = last_ppid = 0
    alerts = 0
    # one loop for the batch: a hot record costs its reads and the table update, no call
    # per field, no args dict, no record object
    num = batch.num
    buf_len = len(raw)
    try:
        for span in spans:
            if ring:
                # the ring's next record (ringbuf.RingWalk: the kernel's wire format)
                if cur >= prod or handed >= left:
                    break
                pos = base + (cur & mask)
                if cython.compiled:  # an acquire load: the record's bytes are read after it
                    hdr = _load_acquire_u32(cython.address(buf[pos]))  # noqa: F821 (fastpath.pxd)
                else:
                    hdr = words[pos >> 2]
                if hdr & _BUSY_OR_DISCARD:
                    if hdr & _BUSY:
                        busy = True
                        break
                    cur += ((hdr & ~_BUSY_OR_DISCARD) + 15) & ~7
                    continue
                if pos + 8 + hdr > ring_end:
                    break  # across the end of the ring: handed alone, joined, by the ring
                off = pos + 8
                size = hdr
                cur += (hdr + 15) & ~7
                handed += 1
            else:
                off, size = span
            # the type id, at offset 28 of the header (record.h); a span outside the buffer
            # goes to the generic decoder, which checks (the compiled loads do not)
            typ = (buf[off + 28] | (buf[off + 29] << 8)
                   if size >= _HDR_SIZE and 0 <= off <= buf_len - size else 0)
            h = hot[typ] if typ < n_hot else None
            if h is not None and size >= h[3]:
                name, kind, st, fsize, cand, o1, o2, o3, o4 = h
                fd: FdInfo | None = None
                path: str | None = None
                dirfd = _AT_FDCWD
                flags = _CREAT_FLAGS
                if cython.compiled:
                    ts = _u64(buf, off)
                    res = _i64(buf, off + 16)
                    rlen = _u32(buf, off + 24)
                    tid = _u32(buf, off + 32)
                    pid = _u32(buf, off + 36)
                    ppid = _u32(buf, off + 40)
                    euid = _u32(buf, off + 60)
                    egid = _u32(buf, off + 64)
                    loginuid = _u32(buf, off + 68)
                    c0 = _u64(buf, off + 80)
                    c1 = _u64(buf, off + 88)
                    new_comm = c0 != last_c0 or c1 != last_c1
                    if kind == _SOCKET:
                        domain = _i64(buf, off + o1)
                        stype = _i64(buf, off + o2)
                        proto = _i64(buf, off + o3)
                    elif kind == _OPEN_AT:
                        dirfd = _i64(buf, off + o1)
                        flags = _u64(buf, off + o2)
                        dev = _u64(buf, off + o3)
                        ino = _u64(buf, off + o4)
                    elif kind == _OPEN:
                        flags = _u64(buf, off + o1)
                        dev = _u64(buf, off + o2)
                        ino = _u64(buf, off + o3)
                    elif kind == _CREAT:
                        dev = _u64(buf, off + o1)
                        ino = _u64(buf, off + o2)
                    else:  # close, accept*, connect: the fd
                        fdnum = _i64(buf, off + o1)
                else:
                    if kind == _CLOSE or kind == _ACCEPT or kind == _CONNECT:
                        ts, res, rlen, tid, pid, ppid, euid, egid, loginuid, comm_raw, fdnum = (
                            st.unpack_from(raw, off))
                    elif kind == _SOCKET:
                        (ts, res, rlen, tid, pid, ppid, euid, egid, loginuid, comm_raw, domain, stype,
                         proto) = st.unpack_from(raw, off)
                    elif kind == _OPEN_AT:
                        (ts, res, rlen, tid, pid, ppid, euid, egid, loginuid, comm_raw, dirfd, flags, dev,
                         ino) = st.unpack_from(raw, off)
                    elif kind == _OPEN:
                        ts, res, rlen, tid, pid, ppid, euid, egid, loginuid, comm_raw, flags, dev, ino = (
                            st.unpack_from(raw, off))
                    else:
                        ts, res, rlen, tid, pid, ppid, euid, egid, loginuid, comm_raw, dev, ino = (
                            st.unpack_from(raw, off))
                    new_comm = comm_raw != last_comm_raw
                if kind == _CLOSE or kind == _SOCKET:
                    ok = rlen >= fsize
                elif kind == _ACCEPT:  # accept, accept4: a connection with an inet tuple
                    end = off + (rlen if rlen < size else size)
                    p = off + fsize
                    ok = False
                    if res >= 0 and rlen >= fsize and p + 2 <= end:
                        n = buf[p] | (buf[p + 1] << 8)
                        if n != _ABSENT and _TUPLE_SIZE <= n <= end - p - 2:
                            if cython.compiled:
                                tfam = _u16(buf, p + 2)
                                proto = _u16(buf, p + 4)
                                lport = _u16(buf, p + 6)
                                rport = _u16(buf, p + 8)
                                lraw = raw[p + 10:p + 26]
                                rraw = raw[p + 26:p + 42]
                            else:
                                tfam, proto, lport, rport, lraw, rraw = _TUPLE.unpack_from(raw, p + 2)
                            if tfam == _AF_INET:
                                lraw, rraw = lraw[:4], rraw[:4]
                                ok = True
                            else:
                                ok = tfam == _AF_INET6
                            if ok:
                                l4 = l4_get(proto) or str(proto)
                                rip = ip_get(rraw) or ip_text(tfam, rraw)
                                lip = ip_get(lraw) or ip_text(tfam, lraw)
                elif kind == _CONNECT:  # to an inet address, the kernel's inet tuple for this end
                    end = off + (rlen if rlen < size else size)
                    p = off + fsize
                    ok = False
                    if rlen >= fsize and p + 2 <= end:
                        n = buf[p] | (buf[p + 1] << 8)
                        p += 2
                        if n != _ABSENT and n <= end - p:
                            # the user's sockaddr: family, port (network order), address
                            afam = buf[p] | (buf[p + 1] << 8) if n >= 2 else 0
                            if afam == _AF_INET and n >= _SIN_SIZE:
                                rraw = raw[p + 4:p + 8]
                                ok = True
                            elif afam == _AF_INET6 and n >= _SIN6_SIZE:
                                rraw = raw[p + 8:p + 24]
                                ok = True
                            if ok:
                                rport = (buf[p + 2] << 8) | buf[p + 3]
                                p += n
                                ok = False
                                if p + 2 <= end:
                                    n = buf[p] | (buf[p + 1] << 8)
                                    if n != _ABSENT and _TUPLE_SIZE <= n <= end - p - 2:
                                        if cython.compiled:
                                            tfam = _u16(buf, p + 2)
                                            proto = _u16(buf, p + 4)
                                            lport = _u16(buf, p + 6)
                                            lraw = raw[p + 10:p + 26]
                                        else:
                                            tfam, proto, lport, _, lraw, _ = _TUPLE.unpack_from(raw, p + 2)
                                        if tfam == _AF_INET:
                                            lraw = lraw[:4]
                                            ok = True
                                        else:
                                            ok = tfam == _AF_INET6
                                        if ok:
                                            l4 = l4_get(proto) or str(proto)
                                            rip = ip_get(rraw) or ip_text(afam, rraw)
                                            lip = ip_get(lraw) or ip_text(tfam, lraw)
                else:  # the open family: the name
                    end = off + (rlen if rlen < size else size)
                    p = off + fsize
                    if p + 2 <= end:
                        n = buf[p] | (buf[p + 1] << 8)
                        p += 2
                        if 0 < n <= end - p and n != _ABSENT:
                            # the kernel stores the terminating NUL: dropped, as the decoder does
                            if cython.compiled:  # straight from the ring, no bytes object
                                path = PyUnicode_DecodeUTF8(  # noqa: F821 (cimported by fastpath.pxd)
                                    cython.cast(cython.p_char, cython.address(buf[p])), n - 1,
                                b"surrogateescape")
                            else:
                                path = raw[p:p + n - 1].decode("utf-8", "surrogateescape")
                            p += n
                    ok = path is not None and rlen >= fsize
                if ok:
                    # the previous record's deferred removals (ProcessTable.after), the
                    # close's inline: every other record of an open/close stream has one
                    pending = state.pending_fd_close
                    if pending is not None:
                        pending[0].fds.pop(pending[1], None)
                        state.pending_fd_close = None
                    if state.pending_exit is not None:
                        after()
                        last_tid = -1
                    # the same thread as the last record: its table entry holds what that
                    # record stored, so only what differs is stored again (an attribute
                    # store from C is a generic lookup: ~5 % of the live agent's samples)
                    hit = tid == last_tid and pid == last_pid
                    if hit:
                        info = last_info
                    else:
                        info = threads_get(tid)
                        if info is not None and info.pid == pid:
                            last_tid, last_pid, last_info = tid, pid, info
                        else:
                            info = None
                    if info is not None:
                        num += 1
                        hot_counts[typ] += 1
                        try:
                            # credentials and names as the kernel saw them (ProcessTable.apply)
                            if not (hit and euid == last_euid and egid == last_egid
                                    and loginuid == last_loginuid and ppid == last_ppid):
                                info.uid = euid
                                info.gid = egid
                                info.loginuid = -1 if loginuid == _UNSET_LOGINUID else loginuid
                                if ppid > 0:
                                    info.ptid = ppid
                                last_euid, last_egid, last_loginuid, last_ppid = euid, egid, loginuid, ppid
                            if new_comm:
                                if cython.compiled:
                                    last_c0, last_c1 = c0, c1
                                    comm_raw = raw[off + 80:off + 96]
                                else:
                                    last_comm_raw = comm_raw
                                last_comm = comms_get(comm_raw) or decoder.comm(comm_raw)
                                info.comm = last_comm
                            elif not hit:
                                info.comm = last_comm
                            if kind == _CLOSE:
                                fd = info.fds.get(fdnum)
                                if res >= 0 and fd is not None:
                                    state.pending_fd_close = (info, fdnum)
                            elif kind == _SOCKET:
                                fd = socket_fd(info, res, domain, stype, proto)
                            elif kind == _ACCEPT:
                                # the peer is the tuple's remote end (Falco's inbound order)
                                fd = accepted_fd(info, info.fds.get(fdnum), res, tfam, l4, rip, rport, lip,
                                             lport)
                            elif kind == _CONNECT:
                                fd = connected_fd(info, fdnum, res, afam, rip, rport, l4, lip, lport)
                            else:
                                assert path is not None
                                dirpath = None
                                # the directory the kernel resolved a relative name against
                                if path[:1] != "/" and p + 2 <= end:
                                    n = buf[p] | (buf[p + 1] << 8)
                                    p += 2
                                    if n != _ABSENT and p + n <= end:
                                        dirpath = raw[p:p + n].decode("utf-8", "surrogateescape")
                                fd = open_fd(info, path, dirfd, dirpath, flags, dev, ino, res)
                        except Exception:
                            pipe.errors += 1
                            log.exception("state update failed for %s record (pid %s)", name, pid)
                            continue
                        if cand is not False and (cand is True or cand(fd, info)):
                            rec = decode_at(raw, off, size)
                            if rec is not None:
                                alerts += evaluate(batch, rec, info, fd, num)
                                last_tid = -1
                        state.prev_ts = ts + ts_offset
                        continue
            # the generic path: every other type, and hot records the fast path declined
            rec = decode_at(raw, off, size)
            if rec is not None:
                batch.num = num
                alerts += handle(rec, batch)
                num = batch.num
                last_tid = -1
    finally:
        if walk is not None:
            walk.cons = cur
            walk.records = handed
            walk.busy = busy
    batch.num = num
    return alerts
