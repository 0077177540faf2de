"""The collector in the real operator (kopf watches of the stand-in API server) over
real HTTPS: who may subscribe, what a node receives, resuming, and the agent's store
picking up a pod whose data arrives after its first events."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from falcopy.agent.enrichment.config import EnrichmentConfig, KubeletConfig
from falcopy.agent.enrichment.k8smeta import K8sMetaConfig
from falcopy.agent.enrichment.store import MetadataStore

from tests.agent.enrichment.standins import TlsMaterial, make_tls_material
from tests.operator import k8smeta_objects as k
from tests.operator.conftest import OperatorRun
from tests.operator.fake_apiserver import FakeApiServer
from tests.waiting import wait_for

AGENT_SA = "system:serviceaccount:falcopy:falcopy-agent"
CID = "0123456789ab" + "c" * 52


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("collector-tls"), name="collector")


@pytest.fixture
def collector(apiserver: FakeApiServer, make_operator: Callable[..., OperatorRun],
              tls: TlsMaterial) -> Iterator[dict[str, Any]]:
    yield start_collector(apiserver, make_operator, tls)


def start_collector(apiserver: FakeApiServer, make_operator: Callable[..., OperatorRun], tls: TlsMaterial,
                    **extra: Any) -> dict[str, Any]:
    url = apiserver.url
    ns = k.create(url, k.namespace("web", {"team": "a"}))
    dep = k.create(url, k.deployment("front", "web"))
    rs = k.create(url, k.replicaset("front-1", "web", dep))
    k.create(url, k.service("front", "web", {"app": "front"}))
    k.create(url, k.pod("front-1-a", "web", "node-a", {"app": "front"}, rs, ["a" * 64]))
    k.create(url, k.pod("front-1-b", "web", "node-b", {"app": "front"}, rs, ["b" * 64]))
    apiserver.tokens.update({
        "good": {"username": AGENT_SA, "extra": {"authentication.kubernetes.io/node-name": ["node-a"]}},
        "unbound": {"username": AGENT_SA},
        "stranger": {"username": "system:serviceaccount:default:default"},
    })
    port = _free_port()
    settings = {"host": "127.0.0.1", "port": port, "certfile": tls.cert_file, "keyfile": tls.key_file,
                "agents": [AGENT_SA], "heartbeat_s": 0.5, **extra}
    run = make_operator(collector=settings)
    return {"url": f"https://127.0.0.1:{port}", "ns": ns, "port": port, "run": run}


def agent_store(collector: dict[str, Any], tls: TlsMaterial, token: Path, **retry: float) -> MetadataStore:
    """An agent's metadata store subscribed to the collector for node-a (not started)."""
    return MetadataStore(EnrichmentConfig(
        engines={}, kubelet=KubeletConfig(enabled=False),
        k8smeta=K8sMetaConfig(enabled=True, url=collector["url"], node_name="node-a", token_file=str(token),
                              ca_file=str(tls.ca_file), **retry)))


def _first_line(base: str, ca: Path, token: str | None, **query: str) -> tuple[int, dict[str, Any] | str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.stream("GET", f"{base}/v1/k8smeta", params=query, headers=headers,
                      verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as resp:
        if resp.status_code != 200:
            return resp.status_code, resp.read().decode()
        for line in resp.iter_lines():
            if line:
                return 200, orjson.loads(line)
    raise AssertionError("stream ended without a line")


def _snapshot_with_pods(base: str, ca: Path, node: str, token: str = "good") -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        status, doc = _first_line(base, ca, token, node=node)
        assert status == 200, doc
        assert isinstance(doc, dict)
        # kopf hands the listed objects over in no set order: wait for the whole chain
        kinds = {o["kind"] for o in doc["objects"]}
        return doc if kinds >= {"pod", "rs", "deployment", "ns", "svc"} else None
    return wait_for(ready, what=f"a snapshot with {node}'s pod and its relations")


def test_subscribers_are_authenticated_by_token_review(collector: dict[str, Any], tls: TlsMaterial,
                                                       apiserver: FakeApiServer) -> None:
    base = collector["url"]
    snap = _snapshot_with_pods(base, tls.ca_file, "node-a")
    names = sorted((o["kind"], o["name"]) for o in snap["objects"])
    assert names == [("deployment", "front"), ("ns", "web"), ("pod", "front-1-a"), ("rs", "front-1"),
                     ("svc", "front")]  # node-b's pod is not sent to node-a
    reviews = apiserver.token_reviews
    assert _first_line(base, tls.ca_file, None, node="node-a")[0] == 401
    assert _first_line(base, tls.ca_file, "forged", node="node-a")[0] == 401
    assert _first_line(base, tls.ca_file, "stranger", node="node-a")[0] == 403
    status, text = _first_line(base, tls.ca_file, "good", node="node-b")  # the token is bound to node-a
    assert status == 403 and "node-a" in str(text)
    assert apiserver.token_reviews > reviews  # the API server was asked
    # a token not bound to a pod names no node: the service account is what is checked
    status, doc = _first_line(base, tls.ca_file, "unbound", node="node-b")
    assert status == 200 and isinstance(doc, dict) and doc["type"] == "snapshot"


def test_tls_is_verified(collector: dict[str, Any], tmp_path: Path) -> None:
    rogue = make_tls_material(tmp_path / "rogue", name="rogue")
    with pytest.raises(httpx.ConnectError):
        _first_line(collector["url"], rogue.ca_file, "good", node="node-a")


def test_resume_sends_only_what_was_missed(collector: dict[str, Any], tls: TlsMaterial,
                                           apiserver: FakeApiServer) -> None:
    base = collector["url"]
    snap = _snapshot_with_pods(base, tls.ca_file, "node-a")
    k.patch_labels(apiserver.url, collector["ns"], {"team": "b"})

    def resumed() -> dict[str, Any] | None:
        status, doc = _first_line(base, tls.ca_file, "good", node="node-a", epoch=snap["epoch"],
                                  since=str(snap["seq"]))
        assert status == 200 and isinstance(doc, dict), doc
        return doc if doc["type"] == "put" else None
    doc = wait_for(resumed, what="the missed namespace change")
    assert doc["obj"]["kind"] == "ns" and doc["obj"]["labels"]["team"] == "b"
    # another epoch (an operator restart) or an unknown point: a snapshot
    status, again = _first_line(base, tls.ca_file, "good", node="node-a", epoch="0" * 16, since="3")
    assert status == 200 and isinstance(again, dict) and again["type"] == "snapshot"


def test_a_pod_known_late_gets_its_fields(collector: dict[str, Any], tls: TlsMaterial,
                                          apiserver: FakeApiServer, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="falcopy.agent.enrichment")
    token = tmp_path / "token"
    token.write_text("good")
    store = agent_store(collector, tls, token, retry_base_s=0.1, retry_cap_s=0.5)
    store.start()
    try:
        assert store.k8smeta is not None
        wait_for(lambda: store.k8smeta.stats.snapshots and store.k8smeta.meta.by_pod,
                 what="the first snapshot", describe=lambda: str(store.faults.active()))
        # the container's first events: nothing known about it yet
        first = store.get(CID[:12])
        assert first is not None and first.k8smeta is None
        wait_for(lambda: store.get(CID[:12]).complete, what="the runtime-less lookup to settle")
        assert store.get(CID[:12]).k8smeta is None
        # its pod reaches the API server (and the collector) only now
        rs = apiserver.objects("replicasets", "web")[0]
        k.create(apiserver.url, k.pod("front-1-late", "web", "node-a", {"app": "front"}, rs, [CID]))
        info = wait_for(lambda: store.get(CID[:12]).k8smeta, what="the late pod's metadata")
        assert (info.pod.name, info.deployment.name, info.svc.name) == ("front-1-late", "front", "front")
        got = store.get(CID[:12])
        # no kubelet here: the pod facts come from the collector
        assert (got.k8s_pod_name, got.k8s_ns_name) == ("front-1-late", "web")
    finally:
        store.stop()


def test_a_refused_agent_logs_once_and_keeps_retrying(
        collector: dict[str, Any], tls: TlsMaterial, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="falcopy.agent.enrichment")
    token = tmp_path / "token"
    token.write_text("stranger")  # a service account the collector does not admit
    store = agent_store(collector, tls, token, retry_base_s=0.05, retry_cap_s=0.2)
    store.start()
    try:
        assert store.k8smeta is not None
        wait_for(lambda: store.k8smeta.stats.failures >= 4, what="several refused attempts")
        lines = [r.getMessage() for r in caplog.records if "k8smeta collector" in r.getMessage()]
        assert len(lines) == 1 and "refused the service account token (HTTP 403)" in lines[0], lines
        assert store.k8smeta.meta.by_pod == {} and not store.k8smeta.connected
        # the token is fixed (rotated): the next attempt gets in, one recovery line
        token.write_text("good")
        wait_for(lambda: store.k8smeta.meta.by_pod, what="data after the token was fixed")
        assert any("recovered" in r.getMessage() for r in caplog.records)
    finally:
        store.stop()


GAP_CID = "d" * 64
GONE_CID = "e" * 64
NEW_CID = "f" * 64


def _pod_meta(store: MetadataStore, cid: str) -> Any:
    assert store.k8smeta is not None
    return store.k8smeta.meta.lookup(cid)


def test_deletions_during_a_watch_gap_reach_the_agent(apiserver: FakeApiServer,
                                                      make_operator: Callable[..., OperatorRun],
                                                      tls: TlsMaterial, tmp_path: Path) -> None:
    # the periodic re-list is far away: only the sweep after kopf's own re-listing can act
    collector = start_collector(apiserver, make_operator, tls, relist_s=3600)
    url = apiserver.url
    rs = apiserver.objects("replicasets", "web")[0]
    extra = k.create(url, k.service("extra", "web", {"app": "gap"}))
    k.create(url, k.pod("gap-stays", "web", "node-a", {"app": "gap"}, rs, [GAP_CID]))
    gone = k.create(url, k.pod("gap-goes", "web", "node-a", {"app": "front"}, rs, [GONE_CID]))
    token = tmp_path / "token"
    token.write_text("good")
    store = agent_store(collector, tls, token, retry_base_s=0.1, retry_cap_s=0.5)
    store.start()
    try:
        assert store.k8smeta is not None
        stays = wait_for(lambda: _pod_meta(store, GAP_CID), what="the pods' metadata on the agent")
        assert stays.svc is not None and stays.svc.name == "extra"
        wait_for(lambda: _pod_meta(store, GONE_CID), what="the second pod's metadata")
        index = collector["run"].collector.index
        relister = collector["run"].collector.relister
        # the watches drop; meanwhile a pod and a Service are deleted and a pod is created;
        # the history is compacted before the watches return (410 Gone: kopf lists again)
        apiserver.watch_gap(("pods", "web", "gap-goes"), ("services", "web", "extra"))
        k.create(url, k.pod("gap-new", "web", "node-a", {"app": "front"}, rs, [NEW_CID]))
        wait_for(lambda: _pod_meta(store, GONE_CID) is None, what="the deleted pod to leave the agent",
                 describe=lambda: f"swept={relister.swept} lists={relister.lists}")
        after = wait_for(lambda: (m := _pod_meta(store, GAP_CID)) is not None and m.svc is None and m,
                         what="the deleted Service to leave the agent")
        assert after.pod.name == "gap-stays" and after.deployment.name == "front"
        assert extra["metadata"]["uid"] not in store.k8smeta.meta.records
        assert gone["metadata"]["uid"] not in index.objs and extra["metadata"]["uid"] not in index.objs
        assert relister.swept == 2
        # what came during the gap arrived; what stayed is untouched
        new = wait_for(lambda: _pod_meta(store, NEW_CID), what="the pod created after the gap")
        assert (new.pod.name, new.svc.name, new.deployment.name) == ("gap-new", "front", "front")
        assert {o.name for o in index.node_objects("node-a") if o.kind == "pod"} == \
            {"front-1-a", "gap-stays", "gap-new"}
    finally:
        store.stop()


def test_a_kind_emptied_during_a_gap_is_swept_by_the_periodic_relist(
        apiserver: FakeApiServer, make_operator: Callable[..., OperatorRun], tls: TlsMaterial,
        tmp_path: Path) -> None:
    collector = start_collector(apiserver, make_operator, tls, relist_s=0.5)
    url = apiserver.url
    rc = k.create(url, k.replication_controller("legacy", "web"))
    k.create(url, k.pod("legacy-x", "web", "node-a", {}, rc, [GAP_CID]))
    token = tmp_path / "token"
    token.write_text("good")
    store = agent_store(collector, tls, token, retry_base_s=0.1, retry_cap_s=0.5)
    store.start()
    try:
        wait_for(lambda: (m := _pod_meta(store, GAP_CID)) is not None and m.rc is not None,
                 what="the pod and its ReplicationController on the agent")
        # the only ReplicationController goes: kopf's re-list of the kind is empty, so no
        # listed object announces it; the periodic re-list finds the loss
        apiserver.watch_gap(("replicationcontrollers", "web", "legacy"))
        wait_for(lambda: (m := _pod_meta(store, GAP_CID)) is not None and m.rc is None,
                 what="the deleted ReplicationController to leave the agent")
        assert rc["metadata"]["uid"] not in collector["run"].collector.index.objs
        assert collector["run"].collector.relister.swept == 1
    finally:
        store.stop()
