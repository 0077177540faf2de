"""Kernel filter benchmark (issue 13): with the upstream stable rules, each workload's
slow-down, its CPU per operation (the probe's programs run in its context, so this is
the robust number on a shared machine) and the agent's CPU with the rule-derived kernel
filter on and off, against the kernel floor (the same programs building and copying the
same records, a consumer that discards them unread), all in the same run.  The modes
are interleaved over FALCOPY_BENCH_ROUNDS rounds (default 3) and reported as medians,
so a change in the machine's load hits all of them alike.  Measured and printed
(`make bench`, run with -s); the JSON lands in $FALCOPY_BENCH_OUT/falcopy-kfilter-bench.json."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from tests.bench.test_agent_bench import SECONDS, _with_agent
from tests.bench.workloads import workload_rate_and_cost

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

WORKLOADS = tuple(os.environ.get("FALCOPY_BENCH_WORKLOADS",
                                 "openclose,tmpflood,stat,forkexec,connect,mixed").split(","))
ROUNDS = int(os.environ.get("FALCOPY_BENCH_ROUNDS", "3"))
MODES = ("floor", "full", "full-kf")


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def test_kernel_filter_on_off_vs_floor(workload_bin: Path, require_root: None,
                                       compat_dir: Path) -> None:
    rules = [str(compat_dir / "falco_rules.yaml")]
    rows = []
    for mode in WORKLOADS:
        samples: dict[str, list[dict[str, float]]] = {m: [] for m in ("base", *MODES)}
        for _ in range(ROUNDS):
            rate, cost = workload_rate_and_cost(workload_bin, mode, SECONDS)
            samples["base"].append({"rate": rate, "ns_op": cost})
            for agent_mode in MODES:
                rate, st = _with_agent(workload_bin, mode, agent_mode, rules)
                assert st.get("errors", 0) == 0
                samples[agent_mode].append({
                    "rate": rate, "ns_op": st["workload_ns_per_op"], "records": st["records"],
                    "drops": st["drops"], "cpu": st["cpu_s"] / st["wall_s"]})
        base = _median(samples["base"], "rate")
        row: dict[str, object] = {"workload": mode, "base_ops_s": base,
                                  "base_ns_per_op": _median(samples["base"], "ns_op"),
                                  "load_avg_1m": os.getloadavg()[0]}
        for agent_mode in MODES:
            s = samples[agent_mode]
            # slow-down per round against that round's own baseline, then the median
            row[f"{agent_mode}_slowdown_pct"] = statistics.median(
                100 * (1 - m["rate"] / b["rate"]) for m, b in zip(s, samples["base"], strict=True))
            row[f"{agent_mode}_ns_per_op"] = _median(s, "ns_op")
            row[f"{agent_mode}_records"] = int(_median(s, "records"))
            row[f"{agent_mode}_drops"] = int(_median(s, "drops"))
            row[f"{agent_mode}_cpu_s_per_s"] = _median(s, "cpu")
        rows.append(row)
    print(f"\nrules: upstream stable; medians of {ROUNDS} interleaved rounds; slow% = workload rate loss;"
          " ns/op = workload CPU per operation; cpu = agent core-seconds per second")
    print(f"{'workload':10} {'base/s':>9} | {'floor%':>7} {'off%':>7} {'on%':>7} | {'ns base':>7}"
          f" {'floor':>6} {'off':>6} {'on':>6} | {'rec floor':>10} {'rec off':>9} {'rec on':>8} |"
          f" {'drops f/off/on':>16} | {'cpu off':>7} {'cpu on':>7} | {'load':>5}")
    for r in rows:
        print(f"{r['workload']:10} {r['base_ops_s']:9.0f} | {r['floor_slowdown_pct']:7.1f}"
              f" {r['full_slowdown_pct']:7.1f} {r['full-kf_slowdown_pct']:7.1f} |"
              f" {r['base_ns_per_op']:7.0f} {r['floor_ns_per_op']:6.0f} {r['full_ns_per_op']:6.0f}"
              f" {r['full-kf_ns_per_op']:6.0f} |"
              f" {r['floor_records']:10d} {r['full_records']:9d} {r['full-kf_records']:8d} |"
              f" {r['floor_drops']:>5}/{r['full_drops']}/{r['full-kf_drops']:<5} |"
              f" {r['full_cpu_s_per_s']:7.2f} {r['full-kf_cpu_s_per_s']:7.2f} | {r['load_avg_1m']:5.1f}")
    (Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp")) / "falcopy-kfilter-bench.json").write_text(
        json.dumps(rows, indent=1))
    assert all(int(r["full-kf_records"]) > 0 for r in rows if r["workload"] in ("forkexec", "connect"))
