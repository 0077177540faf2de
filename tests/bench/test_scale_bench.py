"""Cluster scale (docs/scale.md): N simulated agents (the agent's own Lease and bundle
watch code), the real operator and the stand-in API server, each in its own process(es).

Per N: the time from a FalcoRule create request to all N agents holding it
(p50/p99/max over the changes), the operator's CPU and memory, API requests per
change and per minute at rest, ConfigMap bytes written per change.  The figures
are printed and written to $FALCOPY_BENCH_OUT (default /tmp/falcopy-scale-<N>.json).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import pytest

from tests.scale.harness import Simulation, percentile

pytestmark = pytest.mark.bench

#: changes per N (fewer at 5,000 when time is short)
CHANGES = int(os.environ.get("FALCOPY_SCALE_CHANGES", "10"))
REST_S = 60.0


def _delta(after: dict[tuple[str, str], tuple[int, int]], before: dict[tuple[str, str], tuple[int, int]],
           ) -> dict[str, tuple[int, int]]:
    out = {}
    for key, (count, size) in after.items():
        c0, b0 = before.get(key, (0, 0))
        if count - c0:
            out[f"{key[0]} {key[1]}"] = (count - c0, size - b0)
    return out


@pytest.mark.parametrize("n", [int(x) for x in os.environ.get("FALCOPY_SCALE_N", "100,1000,5000").split(",")])
def test_scale(n: int, tmp_path: Path) -> None:
    # one agent process per 250 agents (at most 8): a change's fan-out is a burst of CPU in
    # them, and with one or two processes it queues behind itself on the shared cores
    processes = max(1, min(8, -(-n // 250)))
    with Simulation(n, tmp_path, processes=processes) as sim:
        assert sim.operator is not None
        sim.apply(0, timeout=300)  # warm-up: every agent connected and holding a bundle
        time.sleep(5)  # the warm-up's Lease writes settle
        before, cpu0 = sim.requests(), sim.operator.cpu_s()
        changes, loads = [], [os.getloadavg()[0]]
        for i in range(1, CHANGES + 1):
            changes.append(sim.apply(i, timeout=300))
            loads.append(os.getloadavg()[0])
            time.sleep(1.0)
        per_change_cpu = (sim.operator.cpu_s() - cpu0) / CHANGES
        changed = _delta(sim.requests(), before)
        time.sleep(5)
        rest0, cpu1 = sim.requests(), sim.operator.cpu_s()
        time.sleep(REST_S)
        rest = _delta(sim.requests(), rest0)
        rest_cpu = (sim.operator.cpu_s() - cpu1) / (REST_S / 60)
        memory = sim.operator.memory()
        regressions = sim.regressions()
        operator_log = sim.operator.log.read_text(errors="replace")
    all_latencies = [x for c in changes for x in c.latencies]
    worst = [max(c.latencies) for c in changes]
    result = {
        "n": n,
        "changes": CHANGES,
        "apply_to_all_s": {"p50": statistics.median(all_latencies), "p99": percentile(all_latencies, 99),
                           "max": max(all_latencies), "p50_of_change_max": statistics.median(worst)},
        "publish_s_median": statistics.median(c.published for c in changes),
        "per_change": [{**{k: round(v, 3) for k, v in c.summary().items()},
                        "cpu_s": {k: round(v, 2) for k, v in c.cpu.items()},
                        "busy_cores": round(c.busy_cores(), 2)} for c in changes],
        # CPU demand of one change, create request -> every agent holds it (median over the changes)
        "cpu_s_per_change": {k: statistics.median(c.cpu[k] for c in changes) for k in changes[0].cpu},
        "busy_cores_median": statistics.median(c.busy_cores() for c in changes),
        "load_average": [min(loads), max(loads)],
        "operator": {"cpu_s_per_change": per_change_cpu, "cpu_s_per_min_rest": rest_cpu,
                     "rss_mib": memory.get("VmRSS", 0) / 2**20,
                     "peak_rss_mib": memory.get("VmHWM", 0) / 2**20},
        "requests_per_change": {k: c / CHANGES for k, (c, _) in changed.items()},
        "configmap_bytes_per_change": sum(b for k, (_, b) in changed.items() if k.endswith(" configmaps")
                                          and k.split()[0] in ("update", "create")) / CHANGES,
        "requests_per_min_rest": {k: c / (REST_S / 60) for k, (c, _) in rest.items()},
        "regressions": regressions,
        # the operator stopped leading (its Lease renewals missed the renew deadline)
        "leader_lost": operator_log.count("lost the leader Lease"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    Path(os.environ.get("FALCOPY_BENCH_OUT", f"/tmp/falcopy-scale-{n}.json")).write_text(text)
    assert regressions == 0
    assert result["leader_lost"] == 0, "the operator lost its leader Lease during the run"
