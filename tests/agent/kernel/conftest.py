"""Fixtures for the kernel capture tests: a built probe and a record collector."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from falcopy.agent.events.record import SyscallRecord
from falcopy.agent.kernel import Probe

from tests.waiting import CEILING_S

REPO = Path(__file__).resolve().parents[3]
BPF_DIR = REPO / "agent" / "bpf"


@pytest.fixture(scope="session")
def bpf_object() -> Path:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    # make is a no-op when the object is up to date; a failure here is a real failure
    subprocess.run(["make", "-s", "-C", str(BPF_DIR)], check=True, capture_output=True, timeout=300)
    obj = BPF_DIR / "falcopy.bpf.o"
    assert obj.is_file()
    return obj


class Capture:
    """Reads records from a probe and waits for the ones a test expects."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.seen: list[SyscallRecord] = []

    def drain(self) -> None:
        while self.probe.poll(0):
            pass
        self.seen.clear()

    def wait_for(self, match: Callable[[SyscallRecord], bool], count: int = 1,
                 timeout: float = CEILING_S) -> list[SyscallRecord]:
        """Records matching ``match``, once ``count`` of them arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        found = [r for r in self.seen if match(r)]
        while len(found) < count and time.monotonic() < deadline:
            batch = self.probe.poll(50)
            self.seen.extend(batch)
            found.extend(r for r in batch if match(r))
        return found

    def settle(self, seconds: float = 0.3) -> list[SyscallRecord]:
        """Everything that arrives within ``seconds`` (to prove an absence)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.seen.extend(self.probe.poll(50))
        return self.seen


@pytest.fixture(scope="module")
def probe(bpf_object: Path) -> Iterator[Probe]:
    p = Probe(bpf_object)
    p.load()
    p.set_event_filter(None)
    p.attach()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def capture(probe: Probe) -> Capture:
    probe.set_event_filter(None)
    cap = Capture(probe)
    cap.drain()
    return cap
