"""Peak memory of the real agent (`python -m falcopy agent`, Falco's stable rules, JSON file
output, web server with /metrics): VmHWM and VmRSS from /proc after start-up and 10 s of
ordinary activity (the mixed workload: open+close, stat, loopback connects, fork+exec),
and how many modules the agent imported.  Measured, not asserted on size: `make bench`
prints the row (run with -s); the numbers are in docs/performance.md.

``FALCOPY_BENCH_AGENT_SRC=DIR`` runs the agent of another source tree (before/after)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.agent.reload.agentproc import AgentProcess
from tests.waiting import wait_until

from .workloads import build_workload

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

ACTIVITY_S = float(os.environ.get("FALCOPY_BENCH_ACTIVITY_SECONDS", "10"))
MIXED_RATE = os.environ.get("FALCOPY_BENCH_MIXED_RATE", "2000")
AGENT_SRC = os.environ.get("FALCOPY_BENCH_AGENT_SRC")


def _status_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
            out[key] = int(value.split()[0])
    return out


def _tcp_rows() -> int:
    """Rows of the host's TCP tables (TIME-WAIT included): the agent reads them at start-up,
    and a machine busy with connections has tens of thousands."""
    rows = 0
    for name in ("tcp", "tcp6"):
        with open(f"/proc/self/net/{name}", "rb") as fh:
            rows += sum(1 for _ in fh) - 1
    return rows


def test_agent_peak_rss(tmp_path: Path, require_root: None, compat_dir: Path) -> None:
    workload = build_workload(tmp_path)
    tcp_rows = _tcp_rows()
    agent = AgentProcess(tmp_path, [compat_dir / "falco_rules.yaml"],
                         **({"cwd": Path(AGENT_SRC)} if AGENT_SRC else {}))
    try:
        agent.start(timeout=300)
        ready = _status_kib(agent.proc.pid)  # type: ignore[union-attr]
        mixed = subprocess.Popen([str(workload), "mixed", str(ACTIVITY_S), MIXED_RATE],
                                 stdout=subprocess.PIPE, text=True)
        assert mixed.wait(timeout=ACTIVITY_S + 120) == 0
        # the ring is drained when the agent has seen the workload's last records: its
        # records counter stops moving
        last: list[float] = []

        def settled() -> bool:
            n = sum(v for k, v in agent.metrics().items() if k.startswith("falcopy_events_total"))
            last.append(n)
            return len(last) > 2 and last[-1] == last[-2]
        wait_until(settled, 60, interval=0.5)
        after = _status_kib(agent.proc.pid)  # type: ignore[union-attr]
        assert agent.proc is not None and agent.proc.poll() is None, agent.log()
    finally:
        agent.stop()
    row = {"ready_rss_mib": ready["VmRSS"] / 1024, "peak_rss_mib": after["VmHWM"] / 1024,
           "rss_mib": after["VmRSS"] / 1024, "anon_mib": after["RssAnon"] / 1024,
           "file_mib": after["RssFile"] / 1024, "shmem_mib": after.get("RssShmem", 0) / 1024,
           "threads": after["Threads"], "load_avg": os.getloadavg()[0], "tcp_rows_at_start": tcp_rows}
    print(f"\nreal agent ({AGENT_SRC or 'this tree'}), Falco's stable rules, after start-up and"
          f" {ACTIVITY_S:.0f} s of the mixed workload:")
    print(f"  peak RSS (VmHWM) {row['peak_rss_mib']:.1f} MiB; RSS at ready {row['ready_rss_mib']:.1f},"
          f" now {row['rss_mib']:.1f} MiB (anon {row['anon_mib']:.1f}, file {row['file_mib']:.1f},"
          f" shmem {row['shmem_mib']:.1f}); {row['threads']} threads; load average {row['load_avg']:.1f};"
          f" {tcp_rows} TCP table rows at start")
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-memory-bench.json").write_text(
        json.dumps(row, indent=1))
    assert row["peak_rss_mib"] > 0
