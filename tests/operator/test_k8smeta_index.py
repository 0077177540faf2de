"""The collector's index: owner chains, selectors, per-node filtering, resume.

Each test drives :class:`ClusterIndex` with API-shaped objects and reads what the
node views were sent through the agent's own :class:`NodeMeta` (the same code
that applies the stream live), so both ends of the wire format are exercised.
"""

from __future__ import annotations

import orjson
from falcopy.agent.enrichment.k8smeta import NodeMeta
from falcopy.operator.k8smeta.index import ClusterIndex

from tests.operator import k8smeta_objects as k

CID = "a" * 64
CID2 = "b" * 64


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines() if line]


def follow(index: ClusterIndex, node: str, meta: NodeMeta | None = None) -> NodeMeta:
    """The node's state as a subscriber that took a snapshot and then every line sees it."""
    meta = meta or NodeMeta()
    if meta.epoch is None:
        for msg in _lines(index.snapshot(node)):
            meta.apply(msg)
        return meta
    lines = index.view(node).since(meta.seq)
    assert lines is not None, "resume point dropped"
    for msg in _lines(b"".join(lines)):
        meta.apply(msg)
    return meta


def chain(index: ClusterIndex, node: str = "node-a", ns: str = "shop") -> dict:
    objs = {
        "ns": k.namespace(ns, {"team": "payments", "env": "prod"}),
        "dep": k.deployment("web", ns, {"app": "web"}),
    }
    objs["rs"] = k.replicaset("web-5d9f", ns, objs["dep"], {"app": "web", "pod-template-hash": "5d9f"})
    objs["svc"] = k.service("web-svc", ns, {"app": "web"}, {"tier": "front"})
    objs["other_svc"] = k.service("db-svc", ns, {"app": "db"})
    objs["pod"] = k.pod("web-5d9f-x1", ns, node, {"app": "web"}, objs["rs"], [CID])
    index.upsert("Namespace", objs["ns"])
    index.upsert("Deployment", objs["dep"])
    index.upsert("ReplicaSet", objs["rs"])
    index.upsert("Service", objs["svc"])
    index.upsert("Service", objs["other_svc"])
    index.upsert("Pod", objs["pod"])
    return objs


def test_owner_chain_service_and_namespace_resolve_for_the_pods_node() -> None:
    index = ClusterIndex()
    objs = chain(index)
    meta = follow(index, "node-a").lookup(CID)
    assert meta is not None
    assert (meta.pod.name, meta.ns_name, meta.ip) == ("web-5d9f-x1", "shop", "10.1.0.7")
    assert meta.rs is not None and meta.rs.name == "web-5d9f"
    assert meta.rs.uid == objs["rs"]["metadata"]["uid"]
    assert meta.deployment is not None and meta.deployment.name == "web"
    assert meta.svc is not None and meta.svc.name == "web-svc" and meta.svc.labels == {"tier": "front"}
    assert meta.ns is not None and meta.ns.labels == {"team": "payments", "env": "prod"}
    assert meta.rc is None
    # by the 12-char id and by pod uid too
    assert follow(index, "node-a").lookup(CID[:12]) == meta
    assert follow(index, "node-a").lookup("f" * 64, objs["pod"]["metadata"]["uid"]) == meta


def test_other_nodes_receive_nothing_of_it() -> None:
    index = ClusterIndex()
    chain(index, node="node-a")
    index.upsert("Pod", k.pod("lonely", "default", "node-b", {"app": "x"}, None, [CID2]))
    b = index.node_objects("node-b")
    assert [o.name for o in b] == ["lonely"]  # no namespace object "default" exists, no services match
    kinds_a = sorted(o.kind for o in index.node_objects("node-a"))
    # the unrelated db-svc is not sent
    assert kinds_a == ["deployment", "ns", "pod", "rs", "svc"]
    assert follow(index, "node-b").lookup(CID) is None


def test_objects_arriving_after_the_pod_are_joined() -> None:
    index = ClusterIndex()
    pod = k.pod("p", "late", "n1", {"app": "api"}, None, [CID])
    rs_uid = "rs-uid-1"
    pod["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "api-1", "uid": rs_uid,
                                          "controller": True}]
    index.upsert("Pod", pod)
    meta = follow(index, "n1")
    assert meta.lookup(CID).rs is None
    dep = k.deployment("api", "late")
    index.upsert("ReplicaSet", k.replicaset("api-1", "late", dep, uid=rs_uid))
    index.upsert("Namespace", k.namespace("late", {"x": "y"}))
    index.upsert("Deployment", dep)
    index.upsert("Service", k.service("api", "late", {"app": "api"}))
    got = follow(index, "n1", meta).lookup(CID)
    assert (got.rs.name, got.deployment.name, got.svc.name) == ("api-1", "api", "api")
    assert got.ns.labels == {"x": "y"}


def test_replication_controller_owner() -> None:
    index = ClusterIndex()
    rc = k.replication_controller("legacy", "old", {"v": "1"})
    index.upsert("ReplicationController", rc)
    index.upsert("Pod", k.pod("legacy-abc", "old", "n1", {}, rc, [CID]))
    got = follow(index, "n1").lookup(CID)
    assert got.rc is not None and (got.rc.name, got.rc.labels) == ("legacy", {"v": "1"})
    assert got.rs is None and got.deployment is None


def test_selector_rules() -> None:
    index = ClusterIndex()
    index.upsert("Service", k.service("no-selector", "ns1", None))
    index.upsert("Service", k.service("two-keys", "ns1", {"app": "a", "tier": "t"}))
    index.upsert("Service", k.service("other-ns", "ns2", {"app": "a"}))
    index.upsert("Pod", k.pod("p1", "ns1", "n1", {"app": "a"}, None, [CID]))
    meta = follow(index, "n1")
    assert meta.lookup(CID).svc is None  # partial match, other namespace, no selector
    index.upsert("Pod", k.pod("p1", "ns1", "n1", {"app": "a", "tier": "t"}, None, [CID],
                              uid=meta.lookup(CID).pod.uid))
    assert follow(index, "n1", meta).lookup(CID).svc.name == "two-keys"


def test_changes_reach_holders_and_withdrawals_are_sent() -> None:
    index = ClusterIndex()
    objs = chain(index)
    meta = follow(index, "node-a")
    ns = objs["ns"]
    ns["metadata"]["labels"]["env"] = "staging"
    index.upsert("Namespace", ns)
    assert follow(index, "node-a", meta).lookup(CID).ns.labels["env"] == "staging"
    # the service stops selecting the pod: withdrawn from the node
    svc = objs["svc"]
    svc["spec"]["selector"] = {"app": "nothing"}
    index.upsert("Service", svc)
    assert follow(index, "node-a", meta).lookup(CID).svc is None
    assert "web-svc" not in {o.name for o in index.node_objects("node-a")}
    # the pod goes away: every object of the chain is withdrawn, the node view is empty
    index.delete("Pod", objs["pod"])
    assert follow(index, "node-a", meta).by_pod == {}
    assert index.node_objects("node-a") == []
    assert meta.records == {}


def test_status_only_changes_send_nothing() -> None:
    index = ClusterIndex()
    objs = chain(index)
    view = index.view("node-a")
    sent = view.bytes_sent
    objs["dep"]["status"] = {"readyReplicas": 1}
    objs["dep"]["spec"]["replicas"] = 3
    index.upsert("Deployment", objs["dep"])
    assert view.bytes_sent == sent


def test_pod_moving_between_nodes() -> None:
    index = ClusterIndex()
    objs = chain(index, node="node-a")
    pod = objs["pod"]
    pod["spec"]["nodeName"] = "node-b"
    index.upsert("Pod", pod)
    assert index.node_objects("node-a") == []
    assert follow(index, "node-b").lookup(CID).deployment.name == "web"


def test_shared_objects_are_counted_per_node() -> None:
    index = ClusterIndex()
    objs = chain(index)
    second = k.pod("web-5d9f-x2", "shop", "node-a", {"app": "web"}, objs["rs"], [CID2])
    index.upsert("Pod", second)
    index.delete("Pod", objs["pod"])
    # the second pod still needs the namespace, rs, deployment and service
    assert sorted(o.kind for o in index.node_objects("node-a")) == ["deployment", "ns", "pod", "rs", "svc"]


def test_resume_replays_exactly_what_was_missed() -> None:
    index = ClusterIndex(backlog=64)
    objs = chain(index)
    meta = follow(index, "node-a")
    seq = meta.seq
    objs["ns"]["metadata"]["labels"]["env"] = "dr"
    index.upsert("Namespace", objs["ns"])
    index.upsert("Pod", k.pod("other", "elsewhere", "node-z", {}, None, ["c" * 64]))  # not node-a's
    missed = index.view("node-a").since(seq)
    assert missed is not None and len(missed) == 1
    assert orjson.loads(missed[0])["obj"]["labels"]["env"] == "dr"
    assert follow(index, "node-a", meta).lookup(CID).ns.labels["env"] == "dr"


def test_resume_point_older_than_the_backlog_is_refused() -> None:
    index = ClusterIndex(backlog=4)
    objs = chain(index)
    meta = follow(index, "node-a")
    for i in range(10):
        objs["ns"]["metadata"]["labels"]["rev"] = str(i)
        index.upsert("Namespace", objs["ns"])
    assert index.view("node-a").since(meta.seq) is None  # the server answers with a snapshot
    fresh = NodeMeta()
    for msg in _lines(index.snapshot("node-a")):
        fresh.apply(msg)
    assert fresh.lookup(CID).ns.labels["rev"] == "9"


def test_incremental_stream_equals_a_fresh_snapshot() -> None:
    """After an arbitrary sequence of changes, a follower is where a new subscriber starts."""
    index = ClusterIndex()
    objs = chain(index)
    meta = follow(index, "node-a")
    extra = k.pod("web-5d9f-x3", "shop", "node-a", {"app": "web"}, objs["rs"], ["d" * 64])
    steps = [
        lambda: index.upsert("Pod", extra),
        lambda: index.delete("Service", objs["svc"]),
        lambda: index.upsert("Service", k.service("web-2", "shop", {"app": "web"})),
        lambda: index.delete("Deployment", objs["dep"]),
        lambda: index.delete("Namespace", objs["ns"]),
        lambda: index.delete("Pod", objs["pod"]),
    ]
    for step in steps:
        step()
        follow(index, "node-a", meta)
        fresh = NodeMeta()
        for msg in _lines(index.snapshot("node-a")):
            fresh.apply(msg)
        assert meta.records == fresh.records
        assert meta.by_pod == fresh.by_pod
    got = meta.lookup("d" * 64)
    assert got.svc.name == "web-2" and got.deployment is None and got.ns is None


def test_sweep_drops_what_a_list_lost_and_keeps_what_came_after_it() -> None:
    index = ClusterIndex()
    objs = chain(index)
    meta = follow(index, "node-a")
    uid = {name: o["metadata"]["uid"] for name, o in objs.items()}
    mark = index.changes  # a list is requested now ...
    # ... and while it runs, a Service is created (seen by the watch after the list's snapshot)
    late = k.service("late-svc", "shop", {"app": "web"})
    index.upsert("Service", late)
    assert {s.name for s in [follow(index, "node-a", meta).lookup(CID).svc] if s} == {"late-svc"}
    # the list holds neither web-svc (deleted during a watch gap) nor late-svc (too recent)
    assert index.sweep("Service", {uid["other_svc"]}, mark) == 1
    looked = follow(index, "node-a", meta).lookup(CID)
    assert looked.svc is not None and looked.svc.name == "late-svc"  # kept: seen after the mark
    assert uid["svc"] not in index.objs and uid["svc"] not in meta.records
    assert uid["other_svc"] in index.objs  # listed: kept
    # the pod vanished too: its node is sent the withdrawals of the whole chain
    assert index.sweep("Pod", set(), mark) == 1
    assert follow(index, "node-a", meta).by_pod == {} and meta.records == {}
    assert index.node_objects("node-a") == []
    # objects of other kinds are not touched by a Pod sweep
    assert uid["dep"] in index.objs and uid["ns"] in index.objs
