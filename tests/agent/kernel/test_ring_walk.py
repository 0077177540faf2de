"""RingBuffer.drain_spans, and RingBuffer.drain_walk with the fast loop walking the ring
itself (falcopy.agent.fastpath, compiled when built), over a ring laid out as the kernel's
(a memfd: the consumer page, the producer page, the data area), with records written here
in the kernel's wire format (``include/uapi/linux/bpf.h``: an 8-byte header whose 32-bit
length carries the BUSY and DISCARD bits, data padded to 8 bytes): which records a batch
hands over, where it stops, and where the next one goes on."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from falcopy.agent import fastpath
from falcopy.agent.kernel.ringbuf import RingBuffer, RingWalk

PAGE = mmap.PAGESIZE
SIZE = 4 * PAGE
BUSY, DISCARD = 1 << 31, 1 << 30


class Producer:
    """Writes records as the kernel does, into the memfd the ring maps."""

    def __init__(self, fd: int, size: int = SIZE) -> None:
        self.map = mmap.mmap(fd, 2 * PAGE + size)
        self.size = size
        self.prod = 0

    def put(self, payload: bytes, bits: int = 0) -> int:
        """One record at the producer position; returns its logical position."""
        at = self.prod
        mask = self.size - 1
        pos = 2 * PAGE + (at & mask)
        struct.pack_into("<II", self.map, pos, len(payload) | bits, 0)
        # the data may run past the end: it wraps
        first = min(len(payload), self.size - ((at + 8) & mask))
        start = 2 * PAGE + ((at + 8) & mask)
        self.map[start:start + first] = payload[:first]
        self.map[2 * PAGE:2 * PAGE + len(payload) - first] = payload[first:]
        self.prod += (len(payload) + 15) & ~7
        struct.pack_into("<Q", self.map, PAGE, self.prod)
        return at

    def commit(self, at: int, size: int) -> None:
        struct.pack_into("<I", self.map, 2 * PAGE + (at & (self.size - 1)), size)

    def consumed(self) -> int:
        return struct.unpack_from("<Q", self.map, 0)[0]


@pytest.fixture
def ring() -> Iterator[tuple[RingBuffer, Producer]]:
    fd = os.memfd_create("ring-walk")
    os.ftruncate(fd, 2 * PAGE + SIZE)
    producer = Producer(fd)
    rb = RingBuffer(fd, SIZE)
    yield rb, producer
    rb.close()  # closes fd: the views on the data area released first
    producer.map.close()


Reader = Callable[..., list[bytes]]


def _spans(rb: RingBuffer, limit: int = 1024) -> list[bytes]:
    got: list[bytes] = []

    def consume(buf: mmap.mmap | bytes, spans: list[tuple[int, int]]) -> None:
        got.extend(bytes(buf[off:off + size]) for off, size in spans)

    assert rb.drain_spans(consume, limit) == len(got)
    return got


class Collector:
    """What the fast loop needs of a pipeline and a decoder, keeping each record's bytes:
    with no hot types every record takes its generic path (``decode_at``, ``_handle``)."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.got: list[bytes] = []
        self.fail_on = fail_on
        self.state = SimpleNamespace(threads={}, after=lambda: None)
        self.ts_offset = 0
        self.comms: dict[bytes, str] = {}

    def decode_at(self, buf: Any, off: int, size: int) -> bytes:
        return bytes(buf[off:off + size])

    def _handle(self, rec: bytes, batch: Any) -> int:
        if rec == self.fail_on:
            raise RuntimeError("a bug in the consumer")
        self.got.append(rec)
        return 0

    def _evaluate(self, *args: Any) -> int:
        raise AssertionError("no hot type: nothing is evaluated on the fast path")

    def walk(self, w: RingWalk) -> None:
        fastpath.run(self, None, (), self, SimpleNamespace(num=0), [], [], w)  # type: ignore[arg-type]


def _walked(rb: RingBuffer, limit: int = 1024, collector: Collector | None = None) -> list[bytes]:
    c = collector or Collector()

    def consume(buf: mmap.mmap | bytes, spans: list[tuple[int, int]]) -> None:
        c.got.extend(bytes(buf[off:off + size]) for off, size in spans)

    assert rb.drain_walk(c.walk, consume, limit) == len(c.got)
    return c.got


@pytest.fixture(params=["spans", "walk"])
def batch(request: pytest.FixtureRequest) -> Reader:
    """One batch of the ring read by drain_spans, or walked by the fast loop."""
    return _spans if request.param == "spans" else _walked


def _payloads(n: int, length: int = 20) -> list[bytes]:
    return [bytes([i % 251]) * (length + i % 9) for i in range(n)]


def test_a_batch_hands_every_committed_record_in_order(ring: tuple[RingBuffer, Producer],
                                                       batch: Reader) -> None:
    rb, producer = ring
    payloads = _payloads(50)
    for p in payloads:
        producer.put(p)
    assert batch(rb) == payloads
    assert producer.consumed() == producer.prod
    assert batch(rb) == []


def test_discarded_records_are_skipped_and_a_busy_one_ends_the_batch(
        ring: tuple[RingBuffer, Producer], batch: Reader) -> None:
    rb, producer = ring
    a, b, c, d = _payloads(4)
    producer.put(a)
    producer.put(b"x" * 40, DISCARD)
    producer.put(b)
    busy = producer.put(c, BUSY)
    producer.put(d)
    assert batch(rb) == [a, b]
    # released up to the busy record, which is read once committed, with what follows
    assert producer.consumed() == busy
    assert batch(rb) == []
    producer.commit(busy, len(c))
    assert batch(rb) == [c, d]


def test_the_limit_cuts_a_batch_and_the_next_goes_on(ring: tuple[RingBuffer, Producer],
                                                     batch: Reader) -> None:
    rb, producer = ring
    payloads = _payloads(25)
    for p in payloads:
        producer.put(p)
    assert batch(rb, 10) == payloads[:10]
    assert rb.positions() == (producer.consumed(), producer.prod)
    assert rb.positions()[0] < producer.prod
    assert batch(rb, 10) == payloads[10:20]
    assert batch(rb, 10) == payloads[20:]
    assert rb.positions() == (producer.prod, producer.prod)


def test_records_across_the_end_of_the_ring(ring: tuple[RingBuffer, Producer], batch: Reader) -> None:
    rb, producer = ring
    written: list[bytes] = []
    read: list[bytes] = []
    # many laps with lengths that end records at every 8-byte offset, so that headers
    # land on the last words of the area and payloads straddle its end
    for lap in range(12):
        lap_records = [bytes([(lap * 31 + i) % 256]) * (1 + (lap * 7 + i * 13) % 300) for i in range(40)]
        for p in lap_records:
            producer.put(p)
        written += lap_records
        while got := batch(rb):
            read += got
    assert read == written
    assert producer.consumed() == producer.prod
    assert rb.wrapped > 0


@pytest.mark.parametrize("from_end", [8, 16, 24, 64])
@pytest.mark.parametrize("length", [1, 4, 8, 12, 20, 100])
def test_a_record_whose_header_is_near_the_end(ring: tuple[RingBuffer, Producer], batch: Reader,
                                               from_end: int, length: int) -> None:
    rb, producer = ring
    # a filler puts the next header ``from_end`` bytes before the end of the data area
    filler = b"f" * (SIZE - from_end - 8)
    record, after = b"r" * length, b"after"
    producer.put(filler)
    assert batch(rb) == [filler]
    producer.put(record)
    producer.put(after)
    assert batch(rb) + batch(rb) + batch(rb) == [record, after]
    assert producer.consumed() == producer.prod


def test_a_batch_goes_on_across_the_end_of_the_ring(ring: tuple[RingBuffer, Producer], batch: Reader) -> None:
    rb, producer = ring
    # the first filler ends the ring's first lap exactly at the end of the data area
    producer.put(b"f" * (SIZE // 2 - 8))
    assert batch(rb) == [b"f" * (SIZE // 2 - 8)]
    producer.put(b"g" * (SIZE // 2 - 8))
    tail = _payloads(20)
    for p in tail:
        producer.put(p)
    # one batch: a short batch means a drained ring to its callers (the event loop's stop)
    assert batch(rb) == [b"g" * (SIZE // 2 - 8), *tail]
    assert producer.consumed() == producer.prod


def test_a_discarded_record_across_the_end_then_more_in_one_batch(
        ring: tuple[RingBuffer, Producer], batch: Reader) -> None:
    rb, producer = ring
    # the discarded record's header 24 bytes before the end: its data runs on past it
    filler = b"f" * (SIZE - 24 - 8)
    producer.put(filler)
    assert batch(rb) == [filler]
    producer.put(b"d" * 100, DISCARD)
    after = _payloads(5)
    for p in after:
        producer.put(p)
    # the next header is past the discarded record's tail, not at the start of the area
    assert batch(rb) == after
    assert producer.consumed() == producer.prod


def test_a_walk_that_raises_releases_what_it_read(ring: tuple[RingBuffer, Producer]) -> None:
    rb, producer = ring
    payloads = _payloads(10)
    for p in payloads:
        producer.put(p)
    with pytest.raises(RuntimeError):
        _walked(rb, collector=Collector(fail_on=payloads[3]))
    # the records before the failing one were processed, it was released with them: the
    # next batch goes on after it (not from the batch's start: no record processed twice)
    assert rb.records == 4
    assert _walked(rb) == payloads[4:]
    assert producer.consumed() == producer.prod
