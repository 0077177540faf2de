"""Agent benchmark: workload slow-down with the full agent (probe + state +
engine) against the kernel floor (same probe, a consumer that discards), plus
the per-event cost of state + fields.  Measured, not asserted: `make bench`
prints the table (run with -s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SECONDS = float(os.environ.get("FALCOPY_BENCH_SECONDS", "1.5"))
WORKLOADS = ("openclose", "stat", "forkexec", "connect")


@pytest.fixture(scope="module")
def workload_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler is needed to build the benchmark workloads"
    out = tmp_path_factory.mktemp("wl") / "workload"
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "workload.c")], check=True)
    return out


def _run_workload(binary: Path, mode: str) -> float:
    out = subprocess.run([str(binary), mode, str(SECONDS)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / SECONDS


def _with_agent(binary: Path, mode: str, agent_mode: str, rules: list[str]) -> tuple[float, dict[str, Any]]:
    agent = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.agent_proc", agent_mode, str(SECONDS + 0.5), *rules],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    line = agent.stdout.readline().strip()
    assert line == "ready", line
    time.sleep(0.1)
    rate = _run_workload(binary, mode)
    stats = json.loads(agent.stdout.readline())
    agent.wait(timeout=60)
    return rate, stats


def test_agent_vs_floor(workload_bin: Path, require_root: None) -> None:
    rules = [str(REPO / "rules")]
    rows = []
    for mode in WORKLOADS:
        base = _run_workload(workload_bin, mode)
        floor_rate, floor = _with_agent(workload_bin, mode, "floor", rules)
        full_rate, full = _with_agent(workload_bin, mode, "full", rules)
        assert full["errors"] == 0
        rows.append({
            "workload": mode, "base_ops_s": base,
            "floor_slowdown_pct": 100 * (1 - floor_rate / base),
            "agent_slowdown_pct": 100 * (1 - full_rate / base),
            "floor_events_s": floor["records"] / floor["wall_s"],
            "agent_events_s": full["records"] / full["wall_s"],
            "floor_drops": floor["drops"], "agent_drops": full["drops"],
            "agent_cpu_s_per_s": full["cpu_s"] / full["wall_s"],
            "agent_peak_rss_mib": full["maxrss_kb"] / 1024,
            "floor_peak_rss_mib": floor["maxrss_kb"] / 1024,
        })
    print()
    print(f"{'workload':10} {'base/s':>10} {'floor%':>7} {'agent%':>7} {'ev/s floor':>11} {'ev/s agent':>11}"
          f" {'drops f/a':>11} {'cpu s/s':>8} {'rss MiB':>8}")
    for r in rows:
        print(f"{r['workload']:10} {r['base_ops_s']:10.0f} {r['floor_slowdown_pct']:7.1f}"
              f" {r['agent_slowdown_pct']:7.1f} {r['floor_events_s']:11.0f} {r['agent_events_s']:11.0f}"
              f" {r['floor_drops']:>5}/{r['agent_drops']:<5} {r['agent_cpu_s_per_s']:8.2f}"
              f" {r['agent_peak_rss_mib']:8.1f}")
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-agent-bench.json").write_text(
        json.dumps(rows, indent=1))
    assert all(r["agent_events_s"] > 0 for r in rows if r["workload"] != "stat")


def test_per_event_cost_of_state_and_fields() -> None:
    """µs per record through ProcessTable + SyscallEvent + the default rules, no kernel."""
    from falcopy.agent.events.record import SyscallRecord
    from falcopy.agent.fields.syscall import AgentSyscallSource
    from falcopy.agent.pipeline import Pipeline
    from falcopy.agent.state import ProcessTable

    from falcopy.engine import default_sources, load_rules_files

    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules_files([REPO / "rules"], sources=sources)
    assert result.ok
    table = ProcessTable()
    table.bootstrap(with_fds=False)
    pid = os.getpid()

    def r(etype: str, res: int, **args: Any) -> SyscallRecord:
        return SyscallRecord(type=etype, ts=time.time_ns(), cpu=0, tid=pid, pid=pid, ppid=os.getppid(),
                             vtid=pid, vpid=pid, uid=0, gid=0, euid=0, egid=0, loginuid=-1, comm="bench",
                             cgroup_id=0, res=res, args=args)

    batch = []
    for i in range(500):
        batch.append(r("openat", 3, dirfd=-100, name=f"/var/lib/bench/{i}", flags=0, mode=0))
        batch.append(r("close", 0, fd=3))
    alerts = []
    pipe = Pipeline(result.ruleset, table, on_alert=lambda rule, ev: alerts.append(rule))
    t0 = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        pipe.process(batch)
    per_event = (time.perf_counter() - t0) / (rounds * len(batch)) * 1e6
    no_rules = Pipeline(None, ProcessTable(), on_alert=None)
    t0 = time.perf_counter()
    for _ in range(rounds):
        no_rules.process(batch)
    state_only = (time.perf_counter() - t0) / (rounds * len(batch)) * 1e6
    print(f"\nper record: state only {state_only:.2f} µs, state + fields + default rules {per_event:.2f} µs")
    assert pipe.errors == 0 and not alerts
