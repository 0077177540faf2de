"""Kernel floor: workload slow-down caused by the probe alone, with a consumer
that discards every record (no decoding), then with the Python decoder.

Measured, not asserted.  Run: ``.venv/bin/pytest tests/bench/test_kernel_bench.py -m bench -s``
(``FALCOPY_BENCH_SECONDS`` sets the length of each run, default 1.5 s).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from falcopy.agent.kernel import SUPPORTED_EVENTS, Probe

from .workloads import build_workload, workload_rate_and_cost

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SECONDS = float(os.environ.get("FALCOPY_BENCH_SECONDS", "1.5"))
WORKLOADS = ("openclose", "stat", "forkexec", "connect")


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert os.geteuid() == 0, "the kernel benchmark needs root"
    out = build_workload(tmp_path_factory.mktemp("kwl"))
    subprocess.run(["make", "-s", "-C", str(REPO / "agent" / "bpf")], check=True)
    return out


def run_workload(binary: Path, mode: str) -> tuple[float, float]:
    return workload_rate_and_cost(binary, mode, SECONDS)


@contextmanager
def consuming(probe: Probe, decode: bool) -> Iterator[dict[str, float]]:
    stats = {"records": 0.0, "wall": 0.0}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            stats["records"] += len(probe.poll(50)) if decode else probe.discard(50)

    t = threading.Thread(target=loop, daemon=True)
    start = time.monotonic()
    t.start()
    try:
        yield stats
    finally:
        stop.set()
        t.join()
        stats["wall"] = time.monotonic() - start


def measure(binary: Path, mode: str, events: set[str] | None, decode: bool,
            wake_threshold: int | None = None) -> dict[str, float]:
    with Probe(wake_threshold=wake_threshold) as probe:
        probe.set_event_filter(events)
        probe.ignore_pid(os.getpid())
        probe.attach()
        cpu0 = time.process_time()
        with consuming(probe, decode) as stats:
            rate, cost = run_workload(binary, mode)
        return {"rate": rate, "cost": cost, "records_s": stats["records"] / stats["wall"],
                "drops": probe.drops(), "cpu": time.process_time() - cpu0,
                "progs": probe.program_stats()}


@contextmanager
def bpf_stats() -> Iterator[None]:
    knob = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = knob.read_text().strip()
    knob.write_text("1")
    try:
        yield
    finally:
        knob.write_text(old)


def pct(base: float, other: float) -> float:
    return 100 * (other / base - 1)


def test_kernel_floor(workload: Path) -> None:
    rows = []
    progs: dict[str, tuple[int, int]] = {}
    for mode in WORKLOADS:
        rate, cost = run_workload(workload, mode)
        with bpf_stats():
            every = measure(workload, mode, set(SUPPORTED_EVENTS), decode=False)
        for name, (runs, ns) in every["progs"].items():
            old_runs, old_ns = progs.get(name, (0, 0))
            progs[name] = (old_runs + runs, old_ns + ns)
        decoded = measure(workload, mode, set(SUPPORTED_EVENTS), decode=True)
        rows.append((mode, rate, cost, every, decoded))
    print(f"\nkernel floor, all {len(SUPPORTED_EVENTS)} event types attached, {SECONDS}s runs;"
          " cost = workload CPU per op (probe programs included), slow = wall-clock rate loss")
    cols = f"{'slow':>6} {'rec/s':>8} {'drops':>5}"
    print(f"{'workload':10} {'base op/s':>10} {'ns/op':>7} | {'discard':>7} {cols} | {'decode':>7} {cols}")
    for mode, rate, cost, every, dec in rows:
        print(f"{mode:10} {rate:10.0f} {cost:7.0f} | {pct(cost, every['cost']):+6.1f}%"
              f" {pct(rate, every['rate']):+5.1f}% {every['records_s']:8.0f} {every['drops']:5d}"
              f" | {pct(cost, dec['cost']):+6.1f}% {pct(rate, dec['rate']):+5.1f}% {dec['records_s']:8.0f}"
              f" {dec['drops']:5d}")
    busy = sorted(((n, r, ns) for n, (r, ns) in progs.items() if r >= 50), key=lambda x: -x[1])
    print("in-kernel cost per captured event (BPF run-time stats, programs run >= 50 times):")
    print("  " + ", ".join(f"{n} {ns / r:.0f} ns" for n, r, ns in busy))


def test_wakeup_policy(workload: Path) -> None:
    """Batched wake-ups (threshold at a quarter of the ring) against waking the
    consumer whenever the ring goes from empty to non-empty (libbpf's default)."""
    rate, cost = run_workload(workload, "openclose")
    batched = measure(workload, "openclose", {"openat", "close"}, decode=False)
    eager = measure(workload, "openclose", {"openat", "close"}, decode=False, wake_threshold=1)
    print(f"\nopen/close loop, openat+close only: base {rate:.0f} op/s, {cost:.0f} ns/op")
    for name, m in (("batched", batched), ("eager", eager)):
        print(f"  {name:8} cost {pct(cost, m['cost']):+6.1f}%  rate {pct(rate, m['rate']):+6.1f}%"
              f"  {m['records_s']:9.0f} rec/s  consumer CPU {m['cpu']:.2f}s  drops {m['drops']}")


def test_generic_hook_cost(workload: Path) -> None:
    """What the raw sys_exit hook costs every syscall of the machine, paid only while a rule
    names a syscall without a dedicated program: each workload with the stable rules' event
    types (plus the state set the process table needs) captured by dedicated programs, then
    the same plus one generic syscall (delete_module, which none of the workloads calls: the
    hook runs and its bitmap rejects everything)."""
    from falcopy.agent.state import STATE_EVENT_TYPES

    stable = {"connect", "dup", "dup2", "dup3", "execve", "execveat", "link", "linkat", "open", "openat",
              "openat2", "ptrace", "sendmsg", "sendto", "socket", "symlink", "symlinkat"}
    dedicated = stable | set(STATE_EVENT_TYPES)
    rows = []
    for mode in WORKLOADS:
        rate, cost = run_workload(workload, mode)
        without = measure(workload, mode, dedicated, decode=False)
        with_generic = measure(workload, mode, dedicated | {"delete_module"}, decode=False)
        rows.append((mode, rate, cost, without, with_generic))
    print(f"\nraw sys_exit hook: off vs on (one rule on delete_module), discarding consumer, {SECONDS}s runs;"
          " cost = workload CPU per op vs no probe")
    print(f"{'workload':10} {'base ns/op':>10} | {'hook off':>8} {'rate':>7} | {'hook on':>8} {'rate':>7}"
          f" | {'on-off ns/op':>12}")
    for mode, rate, cost, off, on in rows:
        print(f"{mode:10} {cost:10.0f} | {pct(cost, off['cost']):+7.1f}% {pct(rate, off['rate']):+6.1f}%"
              f" | {pct(cost, on['cost']):+7.1f}% {pct(rate, on['rate']):+6.1f}%"
              f" | {on['cost'] - off['cost']:+12.0f}")
