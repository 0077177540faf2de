"""Kernel filter benchmark (issue 13): with the upstream stable rules, each workload's
slow-down and the agent's CPU with the rule-derived kernel filter on and off, and
against the kernel floor (same probe, a consumer that discards every record), in the
same run.  Measured and printed (`make bench`, run with -s); the JSON lands in
$FALCOPY_BENCH_OUT/falcopy-kfilter-bench.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench.test_agent_bench import _run_workload, _with_agent

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

WORKLOADS = tuple(os.environ.get("FALCOPY_BENCH_WORKLOADS",
                                 "openclose,tmpflood,stat,forkexec,connect,mixed").split(","))


def test_kernel_filter_on_off_vs_floor(workload_bin: Path, require_root: None,
                                       compat_dir: Path) -> None:
    rules = [str(compat_dir / "falco_rules.yaml")]
    rows = []
    for mode in WORKLOADS:
        base = _run_workload(workload_bin, mode)
        row: dict[str, object] = {"workload": mode, "base_ops_s": base}
        for agent_mode in ("floor", "full", "full-kf"):
            rate, st = _with_agent(workload_bin, mode, agent_mode, rules)
            assert st.get("errors", 0) == 0
            row[f"{agent_mode}_slowdown_pct"] = 100 * (1 - rate / base)
            row[f"{agent_mode}_records"] = st["records"]
            row[f"{agent_mode}_drops"] = st["drops"]
            row[f"{agent_mode}_cpu_s_per_s"] = st["cpu_s"] / st["wall_s"]
        rows.append(row)
    print("\nrules: upstream stable; slow% = workload rate loss; cpu = agent core-seconds per second")
    print(f"{'workload':10} {'base/s':>9} | {'floor%':>7} {'off%':>7} {'on%':>7} | {'rec floor':>10}"
          f" {'rec off':>9} {'rec on':>8} | {'drops f/off/on':>16} | {'cpu off':>7} {'cpu on':>7}")
    for r in rows:
        print(f"{r['workload']:10} {r['base_ops_s']:9.0f} | {r['floor_slowdown_pct']:7.1f}"
              f" {r['full_slowdown_pct']:7.1f} {r['full-kf_slowdown_pct']:7.1f} |"
              f" {r['floor_records']:10d} {r['full_records']:9d} {r['full-kf_records']:8d} |"
              f" {r['floor_drops']:>5}/{r['full_drops']}/{r['full-kf_drops']:<5} |"
              f" {r['full_cpu_s_per_s']:7.2f} {r['full-kf_cpu_s_per_s']:7.2f}")
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-kfilter-bench.json").write_text(
        json.dumps(rows, indent=1))
    assert all(int(r["full-kf_records"]) > 0 for r in rows if r["workload"] in ("forkexec", "connect"))
