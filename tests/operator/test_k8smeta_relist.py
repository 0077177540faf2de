"""The collector's re-list against the stand-in API server over real HTTP: pages are
followed to the end, a failing list drops nothing (one log line), the next one sweeps."""

from __future__ import annotations

import asyncio
import logging

import pytest
from falcopy.operator.k8smeta.collector import WATCHED
from falcopy.operator.k8smeta.index import ClusterIndex
from falcopy.operator.k8smeta.relist import Relister
from kubernetes import client

from tests.agent.reload.agentproc import free_port
from tests.operator import k8smeta_objects as k
from tests.operator.fake_apiserver import FakeApiServer


def test_relist_follows_pages_and_survives_a_failing_api(apiserver: FakeApiServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="falcopy.operator.k8smeta")
    index = ClusterIndex()
    pods = [k.create(apiserver.url, k.pod(f"p{i}", "ns1", "node-a", {}, None, [f"{i:064x}"]))
            for i in range(7)]
    for body in pods:
        index.upsert("Pod", body)
    ghost = k.pod("ghost", "ns1", "node-a", {}, None, ["f" * 64])  # deleted during a gap: never listed
    index.upsert("Pod", ghost)
    lists_before = apiserver.store.counts[("list", "pods")]

    down = client.Configuration()
    down.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    broken = Relister(index, client.ApiClient(down), WATCHED, every_s=3600, page=3)
    assert asyncio.run(broken.sweep("Pod")) == 0
    assert asyncio.run(broken.sweep("Pod")) == 0
    assert broken.failures == 2 and len(index.objs) == 8  # nothing dropped on a failed list
    failed = [r.getMessage() for r in caplog.records if "listing Pod failed" in r.getMessage()]
    assert len(failed) == 1, failed

    relister = Relister(index, client.ApiClient(), WATCHED, every_s=3600, page=3)
    assert asyncio.run(relister.sweep("Pod")) == 1
    assert ghost["metadata"]["uid"] not in index.objs
    assert {o.name for o in index.objs.values()} == {f"p{i}" for i in range(7)}  # all 3 pages seen
    assert apiserver.store.counts[("list", "pods")] - lists_before == 3
