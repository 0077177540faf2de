"""The reader's wake-ups: a lone record is delivered without waiting for any timer,
a burst is still read in batches (counted wake-ups, no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.kernel import Probe

pytestmark = pytest.mark.kernel

HOUR_MS = 3_600_000
#: generous ceiling for a loaded shared machine; a record stranded until a timer
#: (the hour-long poll, or a threshold never crossed) fails here instead of hanging
CEILING_S = 60.0


class Reader(threading.Thread):
    """The event thread's loop: poll with an hour-long timeout until told to stop."""

    def __init__(self, probe: Probe, marker: str) -> None:
        super().__init__(daemon=True)
        self.probe = probe
        self.marker = marker
        self.mine: list[SyscallRecord] = []
        self.seen = threading.Event()
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            for rec in self.probe.poll(HOUR_MS):
                if rec.args.get("name") == self.marker:
                    self.mine.append(rec)
                    self.seen.set()


@pytest.fixture
def quiet_probe(bpf_object: Path) -> Iterator[Probe]:
    # a threshold no amount of data reaches: any wake-up seen is the adaptive one
    p = Probe(bpf_object, ring_size=32 << 20, wake_threshold=1 << 31)
    p.load()
    p.set_event_filter({"openat", "close"}, with_lifecycle=False)
    p.ignore_pid(os.getpid())
    p.attach()
    try:
        yield p
    finally:
        p.close()


def _stop(reader: Reader, probe: Probe) -> None:
    reader.stop = True
    probe.interrupt()
    reader.join(CEILING_S)
    assert not reader.is_alive(), "interrupt() must end an hour-long poll"


def test_lone_record_wakes_a_reader_sleeping_for_an_hour(quiet_probe: Probe, tmp_path: Path) -> None:
    marker = tmp_path / f"lone-{os.getpid()}"
    marker.write_text("x")
    reader = Reader(quiet_probe, str(marker))
    reader.start()
    try:
        # the reader is asleep in poll(1 hour): only a wake-up from the probe can end it
        subprocess.run(["cat", str(marker)], check=True, stdout=subprocess.DEVNULL)
        assert reader.seen.wait(CEILING_S), "the record stayed in the ring until a timer"
    finally:
        _stop(reader, quiet_probe)


def test_burst_is_read_in_batches(quiet_probe: Probe, tmp_path: Path) -> None:
    marker = tmp_path / f"burst-{os.getpid()}"
    marker.write_text("x")
    n = 50_000
    reader = Reader(quiet_probe, str(marker))
    reader.start()
    try:
        w0, r0 = quiet_probe.wakeups, quiet_probe.records_read
        code = f"import os\nfor _ in range({n}): os.close(os.open({str(marker)!r}, os.O_RDONLY))"
        subprocess.run([sys.executable, "-c", code], check=True)
        # every open of the burst is read (or counted as dropped) however the wake-ups fell
        deadline = time.monotonic() + CEILING_S
        while len(reader.mine) + quiet_probe.drops() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        wakeups = quiet_probe.wakeups - w0
        records = quiet_probe.records_read - r0
    finally:
        _stop(reader, quiet_probe)
    read = len(reader.mine)
    assert read > n // 2, f"only {read} of {n} opens read ({quiet_probe.drops()} drops)"
    # batched: one wake-up carries many records (per record would be a ratio near 1)
    assert records >= read
    assert wakeups / records < 0.05, f"{wakeups} wake-ups for {records} records"


def test_interrupt_ends_a_long_poll(quiet_probe: Probe) -> None:
    done = threading.Event()

    def sleeper() -> None:
        quiet_probe.poll(HOUR_MS)
        done.set()

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    quiet_probe.interrupt()
    assert done.wait(CEILING_S)


def test_a_backlog_is_read_on_without_pausing(bpf_object: Path, tmp_path: Path) -> None:
    # a batch window of an hour: any pause between two reads of the backlog hangs here
    probe = Probe(bpf_object, ring_size=4 << 20, batch_limit=64, batch_window=3600.0)
    probe.load()
    probe.set_event_filter({"openat"}, with_lifecycle=False)
    probe.ignore_pid(os.getpid())
    probe.attach()
    marker = tmp_path / f"backlog-{os.getpid()}"
    marker.write_text("x")
    n = 1000
    sizes: list[int] = []
    mine: list[SyscallRecord] = []

    def read() -> None:
        while len(mine) < n:
            batch = probe.poll(HOUR_MS)
            sizes.append(len(batch))
            mine.extend(r for r in batch if r.args.get("name") == str(marker))

    try:
        code = f"import os\nfor _ in range({n}): os.close(os.open({str(marker)!r}, os.O_RDONLY))"
        subprocess.run([sys.executable, "-c", code], check=True)
        # every open is in the ring now: a backlog of at least n records
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(CEILING_S)
        assert not reader.is_alive(), f"{len(mine)} of {n} read in batches {sizes[:20]}..."
        dropped = probe.drops()
    finally:
        probe.close()
    assert len(mine) == n, f"{len(mine)} of {n}, {dropped} drops"
    assert len(sizes) >= n // 64 and max(sizes) <= 64
