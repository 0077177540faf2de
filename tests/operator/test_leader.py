"""Two operator processes and the leader Lease (issue 22): kill the leader, the other takes
over after the lease period (never before), no change is lost, no bundle version repeats."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from falcopy.operator.bundle import MANIFEST_KEY

from tests.operator.conftest import RELEASE_NS, REPO, load_example
from tests.operator.test_operator_e2e import DBSHELL, MINERS, NGINX, create, objects_in_bundle, patch_spec
from tests.waiting import wait_for

LEASE = "falcopy-operator-leader"
DURATION, DEADLINE, RETRY = 3.0, 2.0, 0.5


def start(name: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOSTNAME": name,  # the holder identity starts with the pod name
        "FALCOPY_OPERATOR_NAMESPACE": RELEASE_NS,
        "FALCOPY_OPERATOR_RESYNC": "0.5",
        "FALCOPY_OPERATOR_LEADER_TIMING": f"{DURATION},{DEADLINE},{RETRY}",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "falcopy", "operator", "--shards", "2"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def holder(apiserver, name: str = LEASE) -> str:  # type: ignore[no-untyped-def]
    lease = apiserver.get("leases", RELEASE_NS, name)
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or ""


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def lease_history(apiserver, name: str = LEASE) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [
        obj["spec"]
        for _, _, obj, _ in apiserver.store.history.get(("coordination.k8s.io/v1", "leases"), [])
        if obj["metadata"]["name"] == name
    ]


def bundle_versions(apiserver) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(version, files) of every write of the manifest shard, in order."""
    out = []
    for _, kind, obj, _ in apiserver.store.history.get(("v1", "configmaps"), []):
        data = obj.get("data") or {}
        if kind != "DELETED" and obj["metadata"]["name"] == "falcopy-rules-0" and MANIFEST_KEY in data:
            doc = json.loads(data[MANIFEST_KEY])
            out.append((doc["version"], json.dumps(doc["files"], sort_keys=True)))
    return out


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_leader_failover_two_processes(apiserver, api, tmp_path):
    procs = {name: start(name, tmp_path) for name in ("op-a", "op-b")}
    try:
        first = wait_for(lambda: holder(apiserver), timeout=60, what="a leader")
        leader = first.rsplit("-", 1)[0]
        other = next(n for n in procs if n != leader)
        create(api, load_example(NGINX))
        create(api, load_example(MINERS))
        wait_for(lambda: len(objects_in_bundle(apiserver)) == 2, timeout=60, what="published by the leader")

        procs[leader].send_signal(signal.SIGKILL)  # no release: the other must wait the lease out
        procs[leader].wait(20)
        # changes while nobody leads: kopf in the standby replica indexes them
        create(api, load_example(DBSHELL))
        spec = load_example(NGINX)["spec"]
        spec["lists"][0]["items"] = ["nginx", "nginx-debug"]
        patch_spec(api, "web", "nginx-unauthorized-process", spec)

        wait_for(lambda: holder(apiserver).startswith(other + "-"), timeout=60, what="takeover")
        want = {
            ("FalcoRule", "web", "nginx-unauthorized-process", 2),
            ("ClusterFalcoRule", "", "crypto-miners", 1),
            ("FalcoRule", "db", "db-shell", 1),
        }
        wait_for(lambda: set(objects_in_bundle(apiserver)) == want, timeout=60, what="no change lost")

        specs = lease_history(apiserver)
        last_a = [s for s in specs if s.get("holderIdentity") == first][-1]
        took = next(s for s in specs if (s.get("holderIdentity") or "").startswith(other + "-"))
        assert took["leaseTransitions"] == 1
        gap = (when(took["acquireTime"]) - when(last_a["renewTime"])).total_seconds()
        print(f"\ntakeover {gap:.2f} s after the killed leader's last renewal (lease duration {DURATION} s)")
        # never before the lease period: the killed leader could still have been writing until then
        assert gap >= DURATION - 0.05  # the timestamps' rounding

        versions = bundle_versions(apiserver)
        assert len(versions) >= 2
        seen: dict[str, str] = {}
        for i, (version, files) in enumerate(versions):
            # a version is never written again once another followed it, and always means the same files
            assert seen.get(version, files) == files
            assert version not in seen or versions[i - 1][0] == version, [v for v, _ in versions]
            seen[version] = files

        # a clean stop releases the Lease at once
        assert stop(procs[other]) == 0, (tmp_path / f"{other}.log").read_text()[-3000:]
        assert holder(apiserver) == ""
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)


def test_a_stalled_renewal_request_does_not_cost_the_lease(apiserver):  # type: ignore[no-untyped-def]
    """The leader's read of its Lease hangs (an overloaded API server, a dead connection):
    the request times out within the renew deadline and the next try renews in time, so
    the leader never stops leading.  Without a request timeout the renewal loop waits on
    the hung request past the deadline and leadership lapses."""
    import asyncio
    import threading
    import time

    from falcopy.operator.leader import LeaderElector
    from kubernetes import client

    name = "stall-leader"
    elector = LeaderElector(client.CoordinationV1Api(client.ApiClient()), RELEASE_NS, name,
                            duration=3.0, renew_deadline=2.0, retry=0.2)
    lost: list[float] = []
    loop = asyncio.new_event_loop()
    task = loop.create_task(elector.run(lambda: None, lambda: lost.append(time.monotonic())))

    def run() -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass  # the end of the test

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(elector.leading, what="leading")
        stalled: list[float] = []

        def hold(method: str, path: str) -> float:
            if method == "GET" and path.endswith(f"/leases/{name}") and not stalled:
                stalled.append(time.monotonic())
                return 120.0  # far beyond the lease duration
            return 0.0

        apiserver.hold = hold
        wait_for(lambda: stalled, what="a renewal read stalled")
        renewals = len(lease_history(apiserver, name))
        # renewals resume on a new request while the stalled one still hangs
        wait_for(lambda: len(lease_history(apiserver, name)) >= renewals + 3, timeout=30,
                 what="renewals after the stalled request",
                 describe=lambda: f"{len(lease_history(apiserver, name)) - renewals} since the stall")
        assert elector.leading()
        assert lost == [], "leadership lapsed while one request hung"
        assert holder(apiserver, name) == elector.holder
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
