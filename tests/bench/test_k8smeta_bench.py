"""The workload-metadata collector at cluster scale: 10,000 pods on 500 nodes.

Run: ``.venv/bin/pytest tests/bench/test_k8smeta_bench.py -m bench -o addopts='' -s``.

Cluster: 100 namespaces, 1,000 Deployments (one ReplicaSet each, 10 pods spread
over 10 nodes), 1,000 Services selecting them, 20 pods per node.

1. The index alone (``ClusterIndex``, fed the API objects directly): memory
   (tracemalloc), build time, and per change the CPU time and the bytes each
   affected node is sent, for a pod label change, a Deployment label change, a
   Service selector change and a namespace label change.
2. Live: the stand-in API server holds the cluster, the real operator (kopf
   watches) runs the collector, 500 subscribers (one per node, one asyncio loop)
   stream over HTTP: time to index the listing, snapshot bytes per node, and for a
   namespace label change the bytes received and the time until every affected
   subscriber has the line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import gc
import random
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from falcopy.operator.k8smeta.index import ClusterIndex

from tests.operator import k8smeta_objects as k
from tests.operator.conftest import OperatorRun
from tests.operator.conftest import apiserver as apiserver  # the operator tests' fixtures
from tests.operator.conftest import make_operator as make_operator
from tests.operator.fake_apiserver import RESOURCES, FakeApiServer
from tests.waiting import wait_for

pytestmark = pytest.mark.bench

NODES = 500
NAMESPACES = 100
DEPLOYMENTS = 1000
PODS_PER_DEPLOYMENT = 10
AGENT_SA = "system:serviceaccount:falcopy:falcopy-agent"


def cluster() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"Namespace": [], "Deployment": [], "ReplicaSet": [],
                                            "Service": [], "Pod": []}
    for n in range(NAMESPACES):
        out["Namespace"].append(k.namespace(f"team-{n}", {"team": f"t{n}", "env": "prod"}))
    # 20 pods per node, a deployment's pods on different nodes (seeded: the same every run)
    slots = [f"node-{i}" for i in range(NODES)] * (DEPLOYMENTS * PODS_PER_DEPLOYMENT // NODES)
    random.Random(21).shuffle(slots)
    pod_no = 0
    for d in range(DEPLOYMENTS):
        ns = f"team-{d % NAMESPACES}"
        labels = {"app": f"app-{d}", "tier": "web"}
        dep = k.deployment(f"app-{d}", ns, labels)
        rs = k.replicaset(f"app-{d}-6d5f8", ns, dep, {**labels, "pod-template-hash": "6d5f8"})
        out["Deployment"].append(dep)
        out["ReplicaSet"].append(rs)
        out["Service"].append(k.service(f"app-{d}", ns, {"app": f"app-{d}"}, {"exposed": "yes"}))
        for p in range(PODS_PER_DEPLOYMENT):
            node = slots[pod_no]
            rs["kind"] = "ReplicaSet"
            out["Pod"].append(k.pod(f"app-{d}-6d5f8-{p:05d}", ns, node, labels, rs,
                                    [uuid.uuid4().hex + uuid.uuid4().hex], ip=f"10.{pod_no // 65536}."
                                    f"{pod_no // 256 % 256}.{pod_no % 256}"))
            pod_no += 1
    return out


ORDER = ("Namespace", "Deployment", "ReplicaSet", "Service", "Pod")


def _node_bytes(index: ClusterIndex) -> dict[str, int]:
    return {n: v.bytes_sent for n, v in index.views.items()}


def _change(index: ClusterIndex, fn: Callable[[], None]) -> tuple[float, int, int]:
    """(CPU ms, nodes sent something, bytes per such node) of one change."""
    before = _node_bytes(index)
    t0 = time.process_time()
    fn()
    ms = (time.process_time() - t0) * 1000
    sent = [b - before.get(n, 0) for n, b in _node_bytes(index).items() if b > before.get(n, 0)]
    return ms, len(sent), (sum(sent) // len(sent)) if sent else 0


def test_index_memory_and_fan_out_cost() -> None:
    objs = cluster()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    t0 = time.process_time()
    index = ClusterIndex(backlog=1024)
    for kind in ORDER:
        for body in objs[kind]:
            index.upsert(kind, body)
    build_s = time.process_time() - t0
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    mem = sum(s.size_diff for s in after.compare_to(base, "filename"))
    backlog = sum(len(line) for v in index.views.values() for _, line in v.lines)
    snap = [len(index.snapshot(n)) for n in index.views]
    print(f"\nindex: {len(index.objs)} objects, {len(index.views)} nodes; built in {build_s:.2f}s CPU; "
          f"memory {mem / 2**20:.1f} MiB (of which backlog lines {backlog / 2**20:.1f} MiB); "
          f"snapshot per node {sum(snap) // len(snap)} B (max {max(snap)})")
    assert len(index.views) == NODES and len(index.objs) == sum(len(v) for v in objs.values())

    pod = copy.deepcopy(objs["Pod"][0])
    dep = copy.deepcopy(objs["Deployment"][0])
    svc = copy.deepcopy(objs["Service"][0])
    ns = copy.deepcopy(objs["Namespace"][0])
    rows = []

    def pod_label() -> None:
        pod["metadata"]["labels"]["version"] = "v2"
        index.upsert("Pod", pod)

    def dep_label() -> None:
        dep["metadata"]["labels"]["owner"] = "alice"
        index.upsert("Deployment", dep)

    def svc_selector() -> None:
        svc["spec"]["selector"] = {"tier": "web"}  # now selects every pod of its namespace
        index.upsert("Service", svc)

    def ns_label() -> None:
        ns["metadata"]["labels"]["env"] = "staging"
        index.upsert("Namespace", ns)

    def relist_nothing_lost() -> None:  # the periodic re-list of every kind in a quiet cluster
        for kind in ORDER:
            assert index.sweep(kind, {b["metadata"]["uid"] for b in objs[kind]}, index.changes) == 0

    lost = objs["Pod"][1]

    def relist_one_pod_lost() -> None:  # a pod deleted during a watch gap
        listed = {b["metadata"]["uid"] for b in objs["Pod"]} - {lost["metadata"]["uid"]}
        assert index.sweep("Pod", listed, index.changes) == 1

    for what, fn in (("pod label", pod_label), ("deployment label", dep_label),
                     ("service selector widened", svc_selector), ("namespace label", ns_label),
                     ("re-list sweep, no loss", relist_nothing_lost),
                     ("re-list sweep, 1 pod lost", relist_one_pod_lost)):
        ms, nodes, per_node = _change(index, fn)
        rows.append((what, ms, nodes, per_node))
    for what, ms, nodes, per_node in rows:
        print(f"  {what:26s} {ms:7.2f} ms CPU  -> {nodes:3d} nodes, {per_node:5d} B per node")
    ns_nodes = {p["spec"]["nodeName"] for p in objs["Pod"] if p["metadata"]["namespace"] == "team-0"}
    assert rows[0][2] == 1 and rows[3][2] == len(ns_nodes)  # one node; every node running that namespace
    assert rows[4][2] == 0 and rows[5][2] == 1  # a sweep finding nothing sends nothing


# ---------------------------------------------------------------------------- live
def _preload(server: FakeApiServer, objs: dict[str, list[dict[str, Any]]]) -> None:
    """Put the cluster in the stand-in API server's store directly (12,000 POSTs would
    measure the stand-in, not the collector)."""
    res = {r.kind: r for r in RESOURCES}
    for kind, bodies in objs.items():
        r = res[kind]
        store = server.store.objects.setdefault((r.gv, r.plural), {})
        for body in bodies:
            server.store.rv += 1
            body["metadata"]["resourceVersion"] = str(server.store.rv)
            store[(body["metadata"].get("namespace", ""), body["metadata"]["name"])] = body


class Subscribers:
    """One streaming HTTP subscriber per node, all on one asyncio loop (a thread)."""

    def __init__(self, url: str, nodes: list[str]) -> None:
        self.url = url
        self.nodes = nodes
        self.bytes: dict[str, int] = dict.fromkeys(nodes, 0)
        self.snapshot_bytes: dict[str, int] = {}
        self.seen: dict[str, float] = {}
        self.marker = b""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stop_flag = False

    async def _one(self, session: aiohttp.ClientSession, node: str) -> None:
        async with session.get(f"{self.url}/v1/k8smeta", params={"node": node},
                               headers={"Authorization": "Bearer bench"}) as resp:
            async for line in resp.content:
                self.bytes[node] += len(line)
                if node not in self.snapshot_bytes:
                    self.snapshot_bytes[node] = len(line)
                elif self.marker and self.marker in line and node not in self.seen:
                    self.seen[node] = time.monotonic()
                if self.stop_flag:
                    return

    async def _all(self) -> None:
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
            await asyncio.gather(*(self._one(s, n) for n in self.nodes), return_exceptions=True)

    def start(self) -> None:
        self.thread.start()
        self.future = asyncio.run_coroutine_threadsafe(self._all(), self.loop)

    def stop(self) -> None:
        self.stop_flag = True
        self.future.cancel()  # cancels the task on its loop; wait until it has unwound
        concurrent.futures.wait([self.future], timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture
def loaded(apiserver: FakeApiServer) -> Iterator[dict[str, list[dict[str, Any]]]]:
    objs = cluster()
    _preload(apiserver, objs)
    apiserver.tokens["bench"] = {"username": AGENT_SA}
    yield objs


def test_live_collector_with_500_subscribers(apiserver: FakeApiServer, loaded: dict[str, Any],
                                             make_operator: Callable[..., OperatorRun]) -> None:
    port = _free_port()
    rss0 = _rss_mib()
    t0 = time.monotonic()
    run = make_operator(collector={"host": "127.0.0.1", "port": port, "insecure": True, "agents": [AGENT_SA],
                                   "heartbeat_s": 30})
    collector = run.collector
    assert collector is not None
    wait_for(lambda: sum(1 for o in collector.index.objs.values() if o.kind == "pod") == len(loaded["Pod"]),
             timeout=600, what="the listing indexed")
    index_s = time.monotonic() - t0
    rss_indexed = _rss_mib()
    subs = Subscribers(f"http://127.0.0.1:{port}", [f"node-{i}" for i in range(NODES)])
    t1 = time.monotonic()
    subs.start()
    try:
        wait_for(lambda: len(subs.snapshot_bytes) == NODES, timeout=300, what="every snapshot")
        connect_s = time.monotonic() - t1
        rss_streaming = _rss_mib()
        snaps = list(subs.snapshot_bytes.values())
        before = dict(subs.bytes)
        # a namespace label change: every node running a pod of that namespace is told
        subs.marker = b"bench-marker"
        changed_at = time.monotonic()
        k.patch_labels(apiserver.url, loaded["Namespace"][0], {"change": "bench-marker"})
        ns_nodes = {p["spec"]["nodeName"] for p in loaded["Pod"] if p["metadata"]["namespace"] == "team-0"}
        wait_for(lambda: len(subs.seen) == len(ns_nodes), timeout=120,
                 what="the change at every affected node")
        fan_out_ms = (max(subs.seen.values()) - changed_at) * 1000
        # what one re-list of the pods costs the collector (the stand-in sends whole objects;
        # a real API server answers the metadata-only request with metadata)
        t2 = time.monotonic()
        listed = collector.relister.list_uids("Pod")
        relist_s = time.monotonic() - t2
        assert len(listed) == len(loaded["Pod"])
        grown = [subs.bytes[n] - before[n] for n in subs.nodes if subs.bytes[n] > before[n]]
        print(f"\nlive: kopf listing of {sum(len(v) for v in loaded.values())} objects indexed in "
              f"{index_s:.1f}s; {NODES} subscribers got their snapshots in {connect_s:.1f}s "
              f"(mean {sum(snaps) // len(snaps)} B); RSS of the test process (API stand-in + operator + "
              f"subscribers) {rss0:.0f} -> {rss_indexed:.0f} (indexed) -> {rss_streaming:.0f} MiB "
              "(streaming)")
        print(f"  namespace label change: {len(grown)} nodes received {sum(grown) // len(grown)} B each; "
              f"last subscriber had it {fan_out_ms:.0f} ms after the PATCH")
        print(f"  re-list of the {len(listed)} pods (pages of {collector.relister.page}): {relist_s:.2f} s")
        assert set(subs.seen) == ns_nodes
    finally:
        subs.stop()
