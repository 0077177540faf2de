"""N simulated agents in one process: each runs the agent's own cluster-link code (its
status Lease, :class:`falcopy.agent.control.lease.LeaseReporter`, and its rules bundle
watch, :class:`falcopy.distribution.bundlewatch.BundleWatch`) without BPF, through
:func:`falcopy.agent.control.clusterlink.run_jobs` as the real agent's link thread does,
each with its own HTTP client (one connection pool, as on a node).  All agents of the
process share one event loop.  Not one pool shared by the agents: httpcore scans every
connection of a pool for each request it assigns, so a pool of thousands of connections
costs O(N) per request (profiled: two thirds of the process's CPU at N = 100 in one
pool, and still the largest share with pools of 16).  Once every agent is started, the
garbage collector is told the objects made so far are permanent (``gc.freeze``): a full
collection over thousands of agents' clients otherwise stalls the loop in mid fan-out.
A delivered bundle is "loaded" at once (what the real agent then compiles is measured
by the live benchmark, tests/bench/test_api_delivery_bench.py).

Every delivery is appended to the output file as one JSON line
``{"a": agent, "s": serial, "v": version, "t": unix time}``: the time each agent swaps,
measured where it swaps, so the Lease report (later, jittered) is off the measured path.

    python -m tests.scale.sim_agents URL NAMESPACE CM0,CM1,.. FIRST COUNT OUT [LEASE_PERIOD]
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import sys
import time
from pathlib import Path

import httpx
import uvloop
from falcopy.agent.control.clusterlink import run_jobs
from falcopy.agent.control.lease import LeaseReporter

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.bundle import BundleDir
from falcopy.distribution.bundlewatch import BundleWatch

#: agents started per tick (10 ticks a second): the first Lease writes and lists spread a little
RAMP = 100
#: the agents' processes' niceness (see main)
NICE = 10
#: request timeout: the simulated agents share two cores with everything else here
TIMEOUT_S = 60.0


async def simulate(url: str, namespace: str, configmaps: list[str], first: int, count: int, out: Path,
                   lease_period: float) -> None:
    access = ApiAccess(url, token="simulated-agent", user_agent="falcopy-sim-agent", timeout=TIMEOUT_S)
    lines: list[str] = []

    def agent(i: int) -> asyncio.Task[None]:
        reporter = LeaseReporter(f"sim-node-{i:05d}", namespace, period=lease_period, access=access)

        def on_bundle(bundle: BundleDir) -> None:
            # formatted by hand (the version is hex): json.dumps per agent and change showed in profiles
            lines.append(f'{{"a": {i}, "s": {bundle.serial}, "v": "{bundle.version}", "t": {time.time()!r}}}')
            reporter.loaded(bundle.version)

        async def watch(client: httpx.AsyncClient) -> None:
            await BundleWatch(client, namespace, configmaps, on_bundle).run()

        return asyncio.get_running_loop().create_task(run_jobs(access, [reporter.run, watch]))

    tasks = []
    with out.open("a") as fh:
        for start in range(first, first + count, RAMP):
            tasks += [agent(i) for i in range(start, min(first + count, start + RAMP))]
            await asyncio.sleep(0.1)
        gc.collect()
        gc.freeze()
        while True:
            await asyncio.sleep(0.05)
            if lines:
                batch, lines[:] = list(lines), []
                fh.write("\n".join(batch) + "\n")
                fh.flush()


def raise_open_files() -> None:
    """Soft limit up to the hard one: each agent holds a watch and a Lease connection."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    raise_open_files()
    url, namespace, cms, first, count, out = sys.argv[1:7]
    period = float(sys.argv[7]) if len(sys.argv) > 7 else 30.0
    # the simulated nodes yield to the control plane (stand-in API server, operator): on a
    # cluster each agent has its own node's CPU and the control plane its own cores, here all
    # share two, and at equal weight 8 agent processes would get 8/10 of them mid fan-out
    os.nice(NICE)
    uvloop.run(simulate(url, namespace, cms.split(","), int(first), int(count), Path(out), period))


if __name__ == "__main__":
    main()
