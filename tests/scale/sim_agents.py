"""N simulated agents in one process: each runs the agent's own cluster-link code (its
status Lease, :class:`falcopy.agent.control.lease.LeaseReporter`, and its rules bundle
watch, :class:`falcopy.distribution.bundlewatch.BundleWatch`, on its own HTTP client and
connections) without BPF; a delivered bundle is "loaded" at once (what the real agent
then compiles is measured by the live benchmark, tests/bench/test_api_delivery_bench.py).

Every delivery is appended to the output file as one JSON line
``{"a": agent, "s": serial, "v": version, "t": unix time}``.

    python -m tests.scale.sim_agents URL NAMESPACE CM0,CM1,.. FIRST COUNT OUT [LEASE_PERIOD]
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from falcopy.agent.control.clusterlink import run_jobs
from falcopy.agent.control.lease import LeaseReporter

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.bundle import BundleDir
from falcopy.distribution.bundlewatch import BundleWatch

#: agents started per second: a DaemonSet rolls out gradually too, and on this shared 2-core machine
#: faster starts only time out and retry
RAMP = 50
#: request timeout: the simulated agents share two cores with everything else here
TIMEOUT_S = 60.0


async def simulate(url: str, namespace: str, configmaps: list[str], first: int, count: int, out: Path,
                   lease_period: float) -> None:
    access = ApiAccess(url, token="simulated-agent", user_agent="falcopy-sim-agent", timeout=TIMEOUT_S)
    lines: list[str] = []

    def agent(i: int) -> asyncio.Task[None]:
        reporter = LeaseReporter(f"sim-node-{i:05d}", namespace, period=lease_period, access=access)

        def on_bundle(bundle: BundleDir) -> None:
            lines.append(json.dumps({"a": i, "s": bundle.serial, "v": bundle.version, "t": time.time()}))
            reporter.loaded(bundle.version)

        async def watch(client: object) -> None:
            await BundleWatch(client, namespace, configmaps, on_bundle).run()  # type: ignore[arg-type]

        return asyncio.get_running_loop().create_task(run_jobs(access, [reporter.run, watch]))

    tasks = []
    with out.open("a") as fh:
        for start in range(first, first + count, RAMP):
            tasks += [agent(i) for i in range(start, min(first + count, start + RAMP))]
            await asyncio.sleep(1.0)
        while True:
            await asyncio.sleep(0.05)
            if lines:
                batch, lines[:] = list(lines), []
                fh.write("\n".join(batch) + "\n")
                fh.flush()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    url, namespace, cms, first, count, out = sys.argv[1:7]
    period = float(sys.argv[7]) if len(sys.argv) > 7 else 30.0
    asyncio.run(simulate(url, namespace, cms.split(","), int(first), int(count), Path(out), period))


if __name__ == "__main__":
    main()
