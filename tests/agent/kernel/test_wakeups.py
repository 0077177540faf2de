"""The reader's wake-ups: a lone record is delivered without waiting for any timer,
a short sequence after a quiet spell is read record by record without waiting for the
batch window, a burst is still read in batches (counted wake-ups and reads, no timing
asserted)."""

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
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel import Probe
from falcopy.agent.kernel.ringbuf import QUICK_READS
from falcopy.agent.pipeline import kernel_filter

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.fields.syscall import SYSCALL_FIELDS

pytestmark = pytest.mark.kernel

HOUR_MS = 3_600_000
#: generous ceiling for a loaded shared machine; a record stranded until a timer
#: (the hour-long poll, or a threshold never crossed) fails here instead of hanging
CEILING_S = 60.0


class Reader(threading.Thread):
    """The event thread's loop: poll with an hour-long timeout until told to stop; keeps
    the opens of paths starting with ``marker`` and the size of each non-empty read."""

    def __init__(self, probe: Probe, marker: str) -> None:
        super().__init__(daemon=True)
        self.probe = probe
        self.marker = marker
        self.mine: list[SyscallRecord] = []
        self.reads: list[int] = []
        self.seen = threading.Event()
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            batch = self.probe.poll(HOUR_MS)
            if batch:
                self.reads.append(len(batch))
            for rec in batch:
                if str(rec.args.get("name", "")).startswith(self.marker):
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


#: the child says it has started (its own start-up opens are done), then for each line
#: on stdin opens that many of its paths, one after the other, and answers with a line
OPENER = """
import os, sys
names = sys.argv[1:]
k = 0
print(flush=True)
for line in sys.stdin:
    for _ in range(int(line)):
        os.close(os.open(names[k % len(names)], os.O_RDONLY | os.O_CREAT, 0o600))
        k += 1
    print(flush=True)
"""


class Opener:
    """A child process opening paths under ``base`` on request."""

    def __init__(self, base: Path, probe: Probe) -> None:
        names = [str(base / f"{i:03d}") for i in range(100)]
        self.proc = subprocess.Popen([sys.executable, "-c", OPENER, *names], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.answer()
        # the kernel filter lets a new process's first opens through (its start-up's):
        # read them before the test's reader starts counting
        while probe.poll(0):
            pass

    def answer(self) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "\n", "the opener died"

    def open(self, n: int) -> None:
        """``n`` opens, returning once they are done (their records are in the ring)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        self.answer()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(CEILING_S)


def _probe_of_opens_under(bpf_object: Path, tmp_path: Path, base: Path) -> Probe:
    """A probe paced by a one-hour batch window that captures only opens under ``base``:
    a neighbour's activity on the shared machine spends none of the reader's budget."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- rule: wake-up marker\n  desc: opens under the test's directory\n"
        f"  condition: evt.type = openat and fd.name startswith {base}/\n"
        "  output: '%fd.name'\n  priority: WARNING\n")
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource(SYSCALL_FIELDS)
    result = load_rules_files([rules], sources=sources)
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    probe = Probe(bpf_object, ring_size=4 << 20, wake_threshold=1 << 31, batch_window=3600.0)
    probe.load()
    probe.set_kernel_filter(kernel_filter(result.ruleset))
    probe.set_event_filter({"openat"}, with_lifecycle=False)
    probe.ignore_pid(os.getpid())
    probe.attach()
    return probe


def test_a_short_sequence_after_a_quiet_spell_is_read_record_by_record(
        bpf_object: Path, tmp_path: Path) -> None:
    # an exec and its opens, a few records a moment apart: with a batch window of an hour,
    # any record left for the pacing to collect hangs here
    base = tmp_path / f"seq-{os.getpid()}"
    base.mkdir()
    probe = _probe_of_opens_under(bpf_object, tmp_path, base)
    steps = QUICK_READS // 2 + 1
    reader = Reader(probe, str(base))
    try:
        opener = Opener(base, probe)
        reader.start()
        q0 = probe.quick_reads_made
        for k in range(steps):
            # the next open only once the reader has read this one: each is a read of its own
            opener.open(1)
            deadline = time.monotonic() + CEILING_S
            while len(reader.mine) <= k and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(reader.mine) == k + 1, f"open {k} waited for the batch window ({reader.reads})"
        quick = probe.quick_reads_made - q0
        reads = list(reader.reads)
        opener.close()
        _stop(reader, probe)
    finally:
        probe.close()
    assert reads == [1] * steps
    # every read was sooner than the window allows (the opener's start-up was read just
    # before): each on the budget a reader starts with
    assert quick == steps


def test_a_burst_after_a_quiet_spell_spends_the_budget_then_is_batched(
        bpf_object: Path, tmp_path: Path) -> None:
    base = tmp_path / f"qburst-{os.getpid()}"
    base.mkdir()
    probe = _probe_of_opens_under(bpf_object, tmp_path, base)
    n = 3000
    reader = Reader(probe, str(base))
    try:
        opener = Opener(base, probe)
        reader.start()
        q0 = probe.quick_reads_made
        opener.open(n)
        opener.close()
        # the budget is spent at the start of the burst; the rest waits in the ring for the
        # hour-long window, which control work (interrupt) ends
        probe.interrupt()
        deadline = time.monotonic() + CEILING_S
        while len(reader.mine) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        quick = probe.quick_reads_made - q0
        dropped = probe.drops()
        _stop(reader, probe)
    finally:
        probe.close()
    assert len(reader.mine) == n, f"{len(reader.mine)} of {n} read ({dropped} drops), reads {reader.reads}"
    assert quick <= QUICK_READS
    # the first read, the budget's, the one the interrupt released and the backlog's
    # batches of at most batch_limit: not a read per record
    assert len(reader.reads) <= 1 + QUICK_READS + 1 + n // probe.batch_limit + 1, reader.reads
