"""The scale simulation, small (N = 20, run by `make test`): the real operator renders
each FalcoRule change; every simulated agent (the agent's own Lease and bundle watch
code) converges on it, no agent's version ever goes backwards, and the operator counts
the agents from their Leases.  The large runs are tests/bench/test_scale_bench.py."""

from __future__ import annotations

from pathlib import Path

from tests.scale.harness import Simulation, falcorule
from tests.waiting import wait_for

N = 20


def test_twenty_agents_converge_on_every_change(tmp_path: Path) -> None:
    with Simulation(N, tmp_path, lease_period=1.0, resync=0.5) as sim:
        serials = []
        for i in range(3):
            change = sim.apply(i)
            assert len(change.latencies) == N and all(x > 0 for x in change.latencies)
            serials.append(change.serial)
        assert serials == sorted(set(serials)), serials
        # a burst: the agents end on the bundle holding all of it
        for i in range(3, 8):
            sim.create(falcorule(i))
        last = sim.apply(8)
        assert last.serial > serials[-1]
        assert sim.regressions() == 0
        # every agent reported the bundle in its Lease: the operator counts all of them
        def nodes() -> str:
            return str(sim.status(falcorule(8)).get("nodes"))

        wait_for(lambda: nodes() == f"{N}/{N}", timeout=60, what=f"status.nodes {N}/{N}",
                 describe=nodes)
        requests = sim.requests()
        leases = requests.get(("update", "leases"), (0, 0))[0] + requests.get(("create", "leases"), (0, 0))[0]
        assert leases >= N
        assert requests[("watch", "configmaps")][0] >= N
