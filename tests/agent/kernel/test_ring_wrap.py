"""The ring's data area is mapped once: a record that straddles the end of the ring is
decoded from a joined copy, exactly as one that does not (read as spans, or walked in
place by the pipeline's fast loop as the agent reads).  A 16 KiB ring and a few
hundred KiB of opens of the test's own paths make it wrap many times."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel import Probe
from falcopy.agent.pipeline import Pipeline, kernel_filter
from falcopy.agent.state import ProcessTable

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.fields.syscall import SYSCALL_FIELDS
from tests.waiting import CEILING_S

pytestmark = pytest.mark.kernel

RING = 16 << 10
BATCH = 16  # opens per step: well under the ring's non-critical share, so none is dropped
STEPS = 150

#: the child says it has started (its own start-up opens are done), then opens the
#: BATCH paths of each step number read on stdin and answers with a line
OPENER = """
import os, sys
names = sys.argv[1:]
print(flush=True)
for line in sys.stdin:
    k = int(line) * {batch}
    for n in names[k:k + {batch}]:
        os.close(os.open(n, os.O_RDONLY | os.O_CREAT, 0o600))
    print(flush=True)
"""
ATTEMPTS = 5


def _names(base: Path) -> list[str]:
    # lengths vary, so records end at every offset of the ring and some straddle its end
    return [f"{base}/{i:05d}-" + "x" * (i * 37 % 180) for i in range(BATCH * STEPS)]


@pytest.fixture
def small_ring(bpf_object: Path, tmp_path: Path) -> Iterator[tuple[Probe, Path, Any]]:
    base = tmp_path / f"wrap-{os.getpid()}"
    base.mkdir()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- rule: ring wrap marker\n  desc: opens under the test's directory\n"
        f"  condition: evt.type = openat and fd.name startswith {base}/\n"
        "  output: '%fd.name'\n  priority: WARNING\n")
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource(SYSCALL_FIELDS)
    result = load_rules_files([rules], sources=sources)
    assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
    probe = Probe(bpf_object, ring_size=RING)
    probe.load()
    # only this test's opens reach the ring: a neighbour's burst cannot crowd ours out
    probe.set_kernel_filter(kernel_filter(result.ruleset))
    probe.set_event_filter({"openat"}, with_lifecycle=False)
    probe.ignore_pid(os.getpid())
    probe.attach()
    try:
        yield probe, base, result.ruleset
    finally:
        probe.close()


def _bpf_map_lengths() -> list[int]:
    out = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith("anon_inode:bpf-map"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            out.append(hi - lo)
    return out


def test_the_data_area_is_mapped_once(small_ring: tuple[Probe, Path, Any]) -> None:
    lengths = _bpf_map_lengths()
    page = os.sysconf("SC_PAGESIZE")
    assert page + RING in lengths, lengths
    assert page + 2 * RING not in lengths, lengths


def _poll_into(probe: Probe, timeout_ms: int) -> list[SyscallRecord]:
    """What the agent's event thread reads: raw spans of one buffer per batch."""
    out: list[SyscallRecord] = []

    def consume(buf: Any, spans: list[tuple[int, int]], decoder: Any) -> None:
        out.extend(r for off, size in spans if (r := decoder.decode_at(buf, off, size)) is not None)

    probe.poll_into(consume, timeout_ms)
    return out


def _walker(probe: Probe, ruleset: Any) -> Callable[[int], tuple[list[SyscallRecord], int]]:
    """What the agent's event thread does: the pipeline's fast loop walks the ring in place
    (a record across the end handed joined); the rule's alerts carry the records."""
    alerted: list[SyscallRecord] = []
    pipeline = Pipeline(ruleset, ProcessTable(), on_alert=lambda rule, ev: alerted.append(ev.rec))

    def walk(timeout_ms: int) -> tuple[list[SyscallRecord], int]:
        n = probe.poll_into(pipeline.process_raw, timeout_ms, pipeline.process_ring)
        out = alerted[:]
        alerted.clear()
        return out, n

    return walk


@pytest.mark.parametrize("reader", ["poll", "poll_into", "walk"])
def test_records_straddling_the_end_of_the_ring_decode_exactly(small_ring: tuple[Probe, Path, Any],
                                                               reader: str) -> None:
    probe, base, ruleset = small_ring

    def listed(records: list[SyscallRecord]) -> tuple[list[SyscallRecord], int]:
        return records, len(records)

    poll: Callable[[int], tuple[list[SyscallRecord], int]] = (
        (lambda timeout_ms: listed(probe.poll(timeout_ms))) if reader == "poll"
        else (lambda timeout_ms: listed(_poll_into(probe, timeout_ms))) if reader == "poll_into"
        else _walker(probe, ruleset))
    names = _names(base)
    child = subprocess.Popen([sys.executable, "-c", OPENER.format(batch=BATCH), *names],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    mine: list[SyscallRecord] = []
    retried = 0
    wrapped = probe.records_wrapped

    def read(into: list[SyscallRecord], timeout_ms: int) -> int:
        batch, n = poll(timeout_ms)
        into.extend(r for r in batch
                    if r.pid == child.pid and str(r.args.get("name", "")).startswith(f"{base}/"))
        return n

    def attempt(step: int) -> tuple[list[SyscallRecord], bool]:
        """The step's records, and whether the probe dropped records meanwhile."""
        while read([], 0):  # an empty ring first
            pass
        drops = probe.drops()
        child.stdin.write(f"{step}\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        # the opens returned: each of their records is in the ring or was dropped
        assert child.stdout.readline() == "\n"  # type: ignore[union-attr]
        got: list[SyscallRecord] = []
        deadline = time.monotonic() + CEILING_S
        while len(got) < BATCH and time.monotonic() < deadline:
            if not read(got, 10) and probe.drops() > drops:
                break
        return got, probe.drops() > drops

    try:
        assert child.stdout.readline() == "\n"
        for step in range(STEPS):
            for _ in range(ATTEMPTS):
                got, dropped = attempt(step)
                # a neighbour's burst of opens can fill a 16 KiB ring: that step again
                if len(got) == BATCH or not dropped:
                    break
                retried += 1
            assert len(got) == BATCH, f"step {step}: {len(got)} of {BATCH} records, dropped: {dropped}"
            mine.extend(got)
    finally:
        child.kill()
        child.wait()
    assert [r.args["name"] for r in mine] == names
    # the other fields are intact too, wherever the end of the ring cut the record
    comm = Path(sys.executable).name[:15]
    bad = [r for r in mine if not (r.type == "openat" and r.comm == comm and r.tid == child.pid
                                   and isinstance(r.res, int) and r.res >= 3)]
    assert not bad, bad[:3]
    assert probe.records_wrapped - wrapped >= 20, probe.records_wrapped
