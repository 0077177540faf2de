"""Live delivery (docs/scale.md): from a ClusterFalcoRule create request on the stand-in
API server to the new rule firing on the real agent (BPF probe attached), with the
projected volume disabled: the real operator renders it, the agent's API watch
delivers it, the agent compiles and swaps, and a real mkdir on this host fires it.
20 changes; p50/p99/max printed and written to $FALCOPY_BENCH_OUT
(default /tmp/falcopy-api-delivery.json)."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from tests.agent.reload.apiagent import ApiCluster, api_agent, api_cluster, create_to_fire  # noqa: F401
from tests.scale.harness import percentile

pytestmark = [pytest.mark.bench, pytest.mark.kernel]

CHANGES = 20


def test_create_to_fire(tmp_path: Path, require_root: None, api_cluster: ApiCluster) -> None:  # noqa: F811
    agent = api_agent(tmp_path, api_cluster.kubeconfig, tmp_path / "no-volume")
    try:
        agent.start(timeout=300)
        create_to_fire(api_cluster, agent, tmp_path, "warmup")
        seconds, operator = [], []
        for i in range(CHANGES):
            published: list[float] = []
            seconds.append(create_to_fire(api_cluster, agent, tmp_path, f"b{i}", published=published))
            operator.append(published[0])
    finally:
        agent.stop()
    result = {"changes": CHANGES, "p50_s": statistics.median(seconds), "p99_s": percentile(seconds, 99),
              "max_s": max(seconds), "min_s": min(seconds), "all_s": [round(s, 3) for s in seconds],
              # the operator's share: create request -> shard 0 names the object (polled at the 50 ms
              # action cadence); the rest is the watch event, verify, compile, swap and the next mkdir
              "operator_p50_s": statistics.median(operator), "operator_max_s": max(operator),
              "agent_p50_s": statistics.median(s - o for s, o in zip(seconds, operator, strict=True)),
              "agent_max_s": max(s - o for s, o in zip(seconds, operator, strict=True))}
    text = json.dumps(result, indent=2)
    print(text)
    Path(os.environ.get("FALCOPY_BENCH_OUT", "/tmp/falcopy-api-delivery.json")).write_text(text)
