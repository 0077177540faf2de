"""BPF ring buffer consumer that reads the mapped ring directly.

Why not ``ring_buffer__poll`` with a ctypes callback: the callback costs a
C->Python transition plus a copy per record, which on this machine is about
as much as decoding the record itself.  Records are decoded in place from the
mmap; the consumer position is published once per batch.

The data area is mapped once.  The kernel lays the ring's pages out twice back to
back so that libbpf can map ``2 * size`` and read a record that wraps as one
contiguous span, but every page of that double mapping is resident once the ring has
wrapped: 16 MiB of RSS for Falco's 8 MiB ring.  A record that straddles the end is
rare (one per ``size`` bytes of records at most), so it alone is copied into a bytes
object joined from both ends.  The wire format of the ring (8-byte record header with BUSY/DISCARD
bits, 8-byte alignment) is the kernel's UAPI (``include/uapi/linux/bpf.h``).

Latency and batching: the probe wakes the reader for the first record after the
ring went quiet (the kernel's adaptive notification), so a lone record is read at
once and the poll timeout is only an upper bound for control work.  A busy ring
must not turn that into a wake-up per record: the reader paces itself, reading
at most once per ``batch_window`` seconds while records keep arriving, so under
a burst each wake-up carries a batch.  A backlog (a read stopped at its record limit) is
read on without pausing.

Pacing alone would delay what a quiet host does most: one short action, a few records
a millisecond or two apart (a process's exec, then its opens).  The first is read at
once, the next would wait out the window.  So the pacing has a budget of quick reads
(a token bucket): a read sooner than the window spends one; time the reader spends
asleep on an empty ring earns them back, ``QUICK_REFILL`` per ``batch_window``, up to
``quick_reads``.  A short sequence after a quiet spell is read record by record; a
burst spends the budget in its first milliseconds and is paced from then on, and while
records keep coming the reader is never idle long enough to earn much back.  Whatever
the load, a steady stream costs at most ``1 + QUICK_REFILL`` reads per window: at the
default 5 ms, 400 reads a second more than pacing alone, ~1 % of a core at the few
tens of µs a read costs (docs/performance.md).

``interrupt`` (control work: a new ruleset, stop) ends a pacing pause as it ends the poll.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from itertools import repeat
from typing import TypeVar

#: a record header's flags (include/uapi/linux/bpf.h): still being written, given up
BUSY = 1 << 31
DISCARD = 1 << 30
_BUSY_OR_DISCARD = BUSY | DISCARD
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

T = TypeVar("T")

#: quick reads a quiet reader has in hand (see the module's docstring): enough for an
#: exec and the opens that follow it, few enough that a burst is batched within ~1 ms
QUICK_READS = 8
#: quick reads earned per batch window asleep on an empty ring: bounds what a steady
#: trickle of records can cost (see the module's docstring)
QUICK_REFILL = 2


class RingWalk:
    """One batch read in place by a consumer that walks the ring itself
    (:meth:`RingBuffer.drain_walk`; ``Pipeline.process_ring``, through the compiled fast
    loop): what the ring hands it and what it hands back.

    In: ``data`` (the producer page then the data area, mapped once), ``words`` (the same
    as native ``uint32``: the headers), ``base`` (where the data area starts in ``data``),
    ``size`` (a power of two), the consumer and producer positions ``cons`` and ``prod``
    (bytes since the ring was made) and ``limit`` (records at most).  The walk reads each
    header at ``base + (position & (size - 1))``: BUSY ends the walk, DISCARD is stepped
    over, a committed record is processed at the next 8 bytes unless it runs past the end
    of the data area (the walk stops before it: the ring hands it alone, joined); it goes
    on across the end of the area.  Out: ``cons`` where the walk stopped, ``records``
    handed, ``busy`` whether it stopped at a record still being written.  A walk that
    raises sets them first: what it read is released, not read twice."""

    __slots__ = ("base", "busy", "cons", "data", "limit", "prod", "records", "size", "words")

    def __init__(self, data: mmap.mmap, words: memoryview, base: int, size: int) -> None:
        self.data = data
        self.words = words
        self.base = base
        self.size = size
        self.cons = self.prod = self.limit = self.records = 0
        self.busy = False


class RingBuffer:
    def __init__(self, map_fd: int, size: int, batch_window: float = 0.005,
                 quick_reads: int = QUICK_READS) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"ring size must be a power of two, got {size}")
        self.fd = map_fd
        self.size = size
        self.mask = size - 1
        page = mmap.PAGESIZE
        self._page = page
        self._cons_map = mmap.mmap(map_fd, page, flags=mmap.MAP_SHARED,
                                   prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        # the producer page, then the data area once (see the module's docstring)
        self._data = mmap.mmap(map_fd, page + size, flags=mmap.MAP_SHARED,
                               prot=mmap.PROT_READ, offset=page)
        # the producer position and the record headers as machine words (the kernel
        # writes them in the host's byte order)
        whole = memoryview(self._data)
        self._words64 = whole[:8].cast("Q")
        self._words = whole.cast("I")
        whole.release()
        self._walk = RingWalk(self._data, self._words, page, size)
        # a single aligned 8-byte store, as the kernel's smp_load_acquire expects
        self._cons = ctypes.c_uint64.from_buffer(self._cons_map)
        self.batch_window = batch_window
        self.quick_reads = quick_reads
        #: quick reads in hand (a reader starts quiet)
        self._budget = float(quick_reads)
        #: reads made sooner than the batch window allows, on the budget
        self.quick = 0
        #: times a sleeping reader was woken with records to read, and records read
        self.wakeups = 0
        self.records = 0
        #: records that straddled the end of the ring (decoded from a joined copy)
        self.wrapped = 0
        self._last_read = 0.0
        #: the last drain stopped with committed records left (its limit, the ring's end)
        self._cut = False
        # another thread interrupts a sleeping reader through this (interrupt())
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_lock = threading.Lock()  # interrupt() never writes to a closed (reused) fd
        self._poller = select.poll()
        self._poller.register(map_fd, select.POLLIN)
        self._poller.register(self._wake_fd, select.POLLIN)
        # the pacing pause: control work (interrupt) ends it too, records do not
        self._pacer = select.poll()
        self._pacer.register(self._wake_fd, select.POLLIN)

    def _prod(self) -> int:
        return self._words64[0]

    def positions(self) -> tuple[int, int]:
        """(consumer, producer): bytes read and bytes reserved since the ring was made."""
        return self._cons.value, self._prod()

    def pending(self) -> int:
        return _U64.unpack_from(self._data, 0)[0] - self._cons.value

    def interrupt(self) -> None:
        """End a ``wait`` now (from any thread): control work for the reader."""
        with self._wake_lock:
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)

    def wait(self, timeout_ms: int) -> None:
        """Return when records are pending (at once, if some are), when the probe
        wakes us, on ``interrupt`` or when ``timeout_ms`` passes (< 0: no limit).

        While records keep arriving, returns at most once per batch window, but at
        once on the quick-read budget or on ``interrupt``."""
        if self.pending() == 0:
            if timeout_ms == 0:
                return
            slept = time.monotonic()
            # poll(), not epoll: the ring's poll handler checks positions each
            # call, so a record committed just before we sleep is not missed
            for fd, _ in self._poller.poll(timeout_ms):
                if fd == self._wake_fd:
                    self._take_interrupt()
            self._earn(time.monotonic() - slept)
            if self.pending() == 0:
                return
            self.wakeups += 1
        if self._cut:
            # the last read stopped at its limit: a backlog is already a batch
            return
        since = time.monotonic() - self._last_read
        if since < self.batch_window:
            if self._budget >= 1.0:
                self._budget -= 1.0
                self.quick += 1
                return
            if self._pacer.poll(math.ceil((self.batch_window - since) * 1000)):
                self._take_interrupt()

    def _take_interrupt(self) -> None:
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass

    def _earn(self, idle: float) -> None:
        """Credit ``idle`` seconds asleep on an empty ring to the quick-read budget."""
        if self._budget < self.quick_reads:
            window = self.batch_window
            earned = idle * QUICK_REFILL / window if window > 0 else float(self.quick_reads)
            self._budget = min(float(self.quick_reads), self._budget + earned)

    def skip(self) -> int:
        """Give every pending byte back to the kernel unread (what a C consumer that
        discards costs: no per-record work); returns the bytes skipped.  Records still
        being written are skipped too: the kernel never hands their space out again
        before they are committed."""
        prod = _U64.unpack_from(self._data, 0)[0]
        skipped = prod - self._cons.value
        self._cons.value = prod
        return skipped

    def drain(self, handle: Callable[[mmap.mmap, int, int], T | None], limit: int) -> list[T]:
        """Call ``handle(buf, offset, size)`` for up to ``limit`` committed records."""
        out: list[T] = []
        data = self._data
        base = self._page
        end = base + self.size
        mask = self.mask
        cons = self._cons.value
        prod = _U64.unpack_from(data, 0)[0]
        unpack = _U32.unpack_from
        append = out.append
        n = 0
        while cons < prod and n < limit:
            pos = base + (cons & mask)
            (hdr,) = unpack(data, pos)
            if hdr & _BUSY_OR_DISCARD:
                if hdr & BUSY:
                    break
                size = hdr & ~_BUSY_OR_DISCARD
            else:
                # the common case: a committed record, the header word is its size
                size = hdr
                # the 8-byte header never straddles (the ring is a power of two >= a page)
                if pos + 8 + size <= end:
                    rec = handle(data, pos + 8, size)
                else:
                    rec = handle(self._joined(pos + 8, size), 0, size)
                if rec is not None:
                    append(rec)
                n += 1
            # 8-byte record header, then the data padded to 8 bytes
            cons += (size + 15) & ~7
        self._cons.value = cons
        self._cut = n >= limit and cons < prod
        if n:
            self.records += n
            self._last_read = time.monotonic()
        return out

    def drain_spans(self, consume: Callable[[mmap.mmap | bytes, list[tuple[int, int]]], object],
                    limit: int) -> int:
        """Hand up to ``limit`` committed records to ``consume(buf, spans)`` in one call,
        as ``(offset, size)`` pairs in ``buf``, then release them to the kernel; returns
        the count.  One call per batch: the consumer reads the records in one loop.

        A record that straddles the end of the ring ends the batch before it; it is
        handed alone, as a joined copy (``buf`` a bytes object, one span at 0), first in
        the next call.

        This loop runs once per record: headers are read as items of a ``uint32`` view
        (no ``struct`` call, no tuple) and the walk stays in the ring's address space
        (docs/performance.md, "Live throughput": half the cost of the ``struct`` walk)."""
        spans: list[tuple[int, int]] = []
        words = self._words
        base = self._page
        end = base + self.size
        cons = self._cons.value
        prod = self._prod()
        append = spans.append
        buf: mmap.mmap | bytes = self._data
        busy = False  # stopped at a record still being written: nothing more to read now
        start = pos = base + (cons & self.mask)
        stop = min(pos + (prod - cons), end)
        for _ in repeat(None, limit):
            if pos >= stop:
                if stop < end or cons + (pos - start) >= prod:
                    break
                # the walk reached the end of the area with records left: on from its start
                # (past it by the tail of a discarded record that straddled it)
                cons += pos - start
                start = pos = base + (pos - end)
                stop = min(pos + (prod - cons), end)
            hdr = words[pos >> 2]
            if hdr & _BUSY_OR_DISCARD:
                if hdr & BUSY:
                    busy = True
                    break
                pos += ((hdr & ~_BUSY_OR_DISCARD) + 15) & ~7
            elif pos + 8 + hdr <= end:
                append((pos + 8, hdr))
                pos += (hdr + 15) & ~7
            else:
                if not spans:
                    buf = self._joined(pos + 8, hdr)
                    append((0, hdr))
                    pos += (hdr + 15) & ~7
                break
        cons += pos - start
        try:
            if spans:
                consume(buf, spans)
        finally:
            self._cons.value = cons
            self._cut = not busy and cons < prod
            if spans:
                self.records += len(spans)
                self._last_read = time.monotonic()
        return len(spans)

    def drain_walk(self, walk: Callable[[RingWalk], object],
                   consume: Callable[[mmap.mmap | bytes, list[tuple[int, int]]], object], limit: int) -> int:
        """Let ``walk`` read up to ``limit`` committed records in place (see
        :class:`RingWalk`), then release what it read; returns the count.  The batch
        ``drain_spans`` would hand over, without a span per record: the consumer's own
        loop walks the headers.  A record that straddles the end of the ring is handed
        alone to ``consume`` as ``drain_spans`` hands it (a joined copy), first in its call;
        the positions, the pacing and the release stay here."""
        cons = self._cons.value
        prod = self._prod()
        if cons >= prod:
            self._cut = False
            return 0
        base = self._page
        pos = base + (cons & self.mask)
        hdr = self._words[pos >> 2]
        if not hdr & _BUSY_OR_DISCARD and pos + 8 + hdr > base + self.size:
            return self.drain_spans(consume, limit)
        w = self._walk
        w.cons, w.prod, w.limit, w.records, w.busy = cons, prod, limit, 0, False
        try:
            walk(w)
        finally:
            cons = w.cons
            n = w.records
            self._cons.value = cons
            self._cut = not w.busy and cons < prod
            if n:
                self.records += n
                self._last_read = time.monotonic()
        return n

    def _joined(self, start: int, size: int) -> bytes:
        """The record of ``size`` bytes at ``start`` that runs past the end of the data
        area, with its tail from the start of the area."""
        self.wrapped += 1
        data = self._data
        base = self._page
        head = data[start:base + self.size]
        return head + data[base:base + size - len(head)]

    def close(self) -> None:
        with self._wake_lock:
            for poller, fd in ((self._poller, self.fd), (self._poller, self._wake_fd),
                               (self._pacer, self._wake_fd)):
                try:
                    poller.unregister(fd)
                except (KeyError, ValueError):
                    pass
            if self._wake_fd >= 0:
                os.close(self._wake_fd)
                self._wake_fd = -1
        del self._cons
        self._cons_map.close()
        # the views first: a mapping with views on it cannot be closed
        self._words.release()
        self._words64.release()
        self._data.close()
