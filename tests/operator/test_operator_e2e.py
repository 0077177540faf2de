"""The real kopf operator against the stand-in API server: FalcoRules in, ConfigMaps and statuses out."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import httpx
from falcopy.agent.control.lease import LeaseReporter
from falcopy.operator.bundle import LABELS
from kubernetes import client

from falcopy.distribution.bundle import MANIFEST_KEY, read_rules
from falcopy.engine import load_rules
from tests.operator.conftest import RELEASE_NS, REPO, insecure_webhook, load_example
from tests.operator.fake_apiserver import FakeApiServer
from tests.waiting import wait_for

G, V = "falcopy.io", "v1alpha1"
NGINX = "falcorule-nginx-unauthorized-process.yaml"
MINERS = "clusterfalcorule-crypto-miners.yaml"
DBSHELL = "falcorule-db-shell.yaml"


def create(api: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    if body["kind"] == "FalcoRule":
        return api.create_namespaced_custom_object(G, V, meta["namespace"], "falcorules", body)
    return api.create_cluster_custom_object(G, V, "clusterfalcorules", body)


def patch_spec(api: client.CustomObjectsApi, ns: str, name: str, spec: dict[str, Any]) -> None:
    api.patch_namespaced_custom_object(G, V, ns, "falcorules", name, {"spec": spec})


def condition(
    server: FakeApiServer, ns: str, name: str, type_: str = "Valid", plural: str = "falcorules"
) -> dict[str, Any] | None:
    obj = server.get(plural, ns, name)
    if obj is None:
        return None
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == type_ and c.get("observedGeneration") == obj["metadata"]["generation"]:
            return c
    return None


def manifest(server: FakeApiServer) -> dict[str, Any]:
    cm = server.get("configmaps", RELEASE_NS, "falcopy-rules-0")
    assert cm is not None
    return json.loads(cm["data"][MANIFEST_KEY])


def objects_in_bundle(server: FakeApiServer) -> list[tuple[str, str, str, int]]:
    return [(f["kind"], f["namespace"], f["object"], f["generation"]) for f in manifest(server)["files"]]


def project(server: FakeApiServer, directory: Path) -> Path:
    """What kubelet makes of the shards in a projected volume (one directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    for cm in server.objects("configmaps", RELEASE_NS):
        for key, value in (cm.get("data") or {}).items():
            (directory / key).write_text(value)
    return directory


def test_valid_rules_published_in_order_with_status(make_operator, api, apiserver, tmp_path):
    make_operator()
    for name in (NGINX, MINERS, DBSHELL):
        create(api, load_example(name))
    valid = wait_for(lambda: condition(apiserver, "web", "nginx-unauthorized-process"), what="nginx status")
    assert valid["status"] == "True" and valid["reason"] == "Valid"
    wait_for(lambda: condition(apiserver, "db", "db-shell"), what="db status")
    wait_for(
        lambda: condition(apiserver, "", "crypto-miners", plural="clusterfalcorules"), what="cluster status"
    )
    obj = apiserver.get("falcorules", "web", "nginx-unauthorized-process")
    assert obj["status"]["rules"] == 1 and obj["status"]["lists"] == 1 and obj["status"]["macros"] == 1
    assert obj["status"]["observedGeneration"] == 1 and obj["status"]["activeGeneration"] == 1
    # spec.priority orders the bundle: miners (10), nginx (50), db (60)
    assert wait_for(lambda: len(objects_in_bundle(apiserver)) == 3 and objects_in_bundle(apiserver))
    assert objects_in_bundle(apiserver) == [
        ("ClusterFalcoRule", "", "crypto-miners", 1),
        ("FalcoRule", "web", "nginx-unauthorized-process", 1),
        ("FalcoRule", "db", "db-shell", 1),
    ]
    cm = apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-0")
    assert LABELS.items() <= cm["metadata"]["labels"].items()
    # what an agent loads: defaults + the projected bundle, verified against the manifest
    loaded = read_rules([REPO / "rules" / "falcopy_rules.yaml", project(apiserver, tmp_path / "rules.d")])
    assert loaded.version == manifest(apiserver)["version"]
    result = load_rules(loaded.inputs)
    assert result.ok, [str(e) for e in result.errors]
    names = {r.name for r in result.ruleset.rules}
    assert {
        "Unauthorized process on nginx containers [web]",
        "Shell in database container [db]",
        "Crypto miner process started",
    } <= names


def test_invalid_rule_never_reaches_agents(make_operator, api, apiserver):
    make_operator()
    bad = load_example(NGINX)
    bad["metadata"]["name"] = "broken"
    bad["spec"]["rules"][0]["condition"] = "fp_spawned_process and\n  proc.nmae = nginx"
    create(api, bad)
    create(api, load_example(MINERS))
    cond = wait_for(lambda: condition(apiserver, "web", "broken"), what="broken status")
    assert cond["status"] == "False" and cond["reason"] == "InvalidRules"
    assert "spec.rules[0]" in cond["message"] and "proc.nmae" in cond["message"]
    assert "LOAD_ERR_COMPILE_CONDITION" in cond["message"] and "line " in cond["message"]
    published = condition(apiserver, "web", "broken", "Published")
    assert published is not None and published["status"] == "False"
    wait_for(lambda: condition(apiserver, "", "crypto-miners", plural="clusterfalcorules"))
    assert [o[2] for o in objects_in_bundle(apiserver)] == ["crypto-miners"]
    assert all("proc.nmae" not in v for cm in apiserver.objects("configmaps") for v in cm["data"].values())
    events = [e for e in apiserver.objects("events", "web") if e["involvedObject"]["name"] == "broken"]
    assert events and events[0]["type"] == "Warning" and events[0]["reason"] == "InvalidRules"
    assert "proc.nmae" in events[0]["message"] and events[0]["involvedObject"]["kind"] == "FalcoRule"


def test_update_keeps_last_good_generation_then_delete(make_operator, api, apiserver):
    make_operator()
    create(api, load_example(NGINX))
    wait_for(lambda: condition(apiserver, "web", "nginx-unauthorized-process"))
    spec = copy.deepcopy(load_example(NGINX)["spec"])
    spec["lists"][0]["items"] = ["nginx", "nginx-debug"]
    patch_spec(api, "web", "nginx-unauthorized-process", spec)
    wait_for(lambda: objects_in_bundle(apiserver)[0][3] == 2, what="generation 2 published")
    name = manifest(apiserver)["files"][0]["name"]
    shard = name.split("-", 1)[0]  # the file name starts with its shard
    assert "nginx-debug" in apiserver.get("configmaps", RELEASE_NS, f"falcopy-rules-{shard}")["data"][name]
    broken = copy.deepcopy(spec)
    broken["rules"][0]["output"] = "bad %no.such.field"
    patch_spec(api, "web", "nginx-unauthorized-process", broken)
    cond = wait_for(lambda: condition(apiserver, "web", "nginx-unauthorized-process"), what="gen 3 verdict")
    assert cond["status"] == "False" and "generation 2 stays active" in cond["message"]
    assert objects_in_bundle(apiserver)[0][3] == 2
    obj = apiserver.get("falcorules", "web", "nginx-unauthorized-process")
    assert obj["status"]["observedGeneration"] == 3 and obj["status"]["activeGeneration"] == 2
    api.delete_namespaced_custom_object(G, V, "web", "falcorules", "nginx-unauthorized-process")
    wait_for(lambda: objects_in_bundle(apiserver) == [], what="deleted from the bundle")


def test_namespaces_are_isolated(make_operator, api, apiserver, tmp_path):
    make_operator()
    for ns in ("team-a", "team-b"):
        body = load_example(NGINX)
        body["metadata"]["namespace"] = ns
        create(api, body)
    escape = load_example(NGINX)
    escape["metadata"].update(name="escape", namespace="team-c")
    escape["spec"] = {
        "macros": [
            {"macro": "fp_container", "condition": "or evt.num > 0", "override": {"condition": "append"}}
        ],
        "rules": [
            {
                "rule": "Break out",
                "desc": "d",
                "condition": "evt.type = execve) or (evt.type = openat",
                "output": "o",
                "priority": "WARNING",
            }
        ],
    }
    create(api, escape)
    for ns in ("team-a", "team-b"):
        assert (
            wait_for(lambda ns=ns: condition(apiserver, ns, "nginx-unauthorized-process"))["status"] == "True"
        )
    cond = wait_for(lambda: condition(apiserver, "team-c", "escape"))
    assert cond["reason"] == "ScopeViolation"
    assert "spec.macros[0]" in cond["message"] and "not defined in namespace 'team-c'" in cond["message"]
    assert "spec.rules[0]" in cond["message"] and "does not parse" in cond["message"]
    loaded = read_rules([REPO / "rules" / "falcopy_rules.yaml", project(apiserver, tmp_path / "d")])
    text = "\n".join(i.content for i in loaded.inputs[1:])
    # the manifest tells the agent each file's namespace: the engine confines it there
    assert sorted(i.namespace for i in loaded.inputs[1:]) == ["team-a", "team-b"]
    rules = load_rules(loaded.inputs).ruleset.rules
    assert {r.namespace for r in rules if r.name.endswith("[team-a]")} == {"team-a"}
    assert "nginx_allowed_processes__team_a" in text and "nginx_allowed_processes__team_b" in text
    assert "Break out" not in text


def test_default_overrides_need_the_operator_setting(make_operator, api, apiserver):
    disable = {
        "apiVersion": f"{G}/{V}",
        "kind": "ClusterFalcoRule",
        "metadata": {"name": "quiet"},
        "spec": {
            "rules": [
                {"rule": "Write Below Etc Directory", "enabled": False, "override": {"enabled": "replace"}}
            ]
        },
    }
    run = make_operator()
    create(api, disable)
    cond = wait_for(lambda: condition(apiserver, "", "quiet", plural="clusterfalcorules"))
    assert cond["reason"] == "ScopeViolation" and "allow_default_overrides" in cond["message"]
    run.stop()
    make_operator(allow_default_overrides=True)
    assert wait_for(
        lambda: (
            (c := condition(apiserver, "", "quiet", plural="clusterfalcorules"))
            and c["status"] == "True"
            and c
        )
    )
    assert ("ClusterFalcoRule", "", "quiet", 1) in objects_in_bundle(apiserver)


def test_ordering_between_objects(make_operator, api, apiserver):
    base = {
        "apiVersion": f"{G}/{V}",
        "kind": "ClusterFalcoRule",
        "metadata": {"name": "base"},
        "spec": {"priority": 20, "lists": [{"list": "team_tools", "items": ["kubectl"]}]},
    }
    ext = {
        "apiVersion": f"{G}/{V}",
        "kind": "ClusterFalcoRule",
        "metadata": {"name": "ext"},
        "spec": {
            "priority": 30,
            "lists": [{"list": "team_tools", "items": ["helm"], "override": {"items": "append"}}],
        },
    }
    make_operator()
    create(api, ext)
    create(api, base)
    assert (
        wait_for(lambda: (c := condition(apiserver, "", "ext", plural="clusterfalcorules")) and c)["status"]
        == "True"
    )
    assert [
        o[2]
        for o in wait_for(lambda: len(objects_in_bundle(apiserver)) == 2 and objects_in_bundle(apiserver))
    ] == ["base", "ext"]
    # loading before the list it appends to is an error, blamed on the appending object
    api.patch_cluster_custom_object(G, V, "clusterfalcorules", "ext", {"spec": {"priority": 10}})
    cond = wait_for(lambda: condition(apiserver, "", "ext", plural="clusterfalcorules"))
    assert cond["status"] == "False" and "team_tools" in cond["message"]
    assert condition(apiserver, "", "base", plural="clusterfalcorules")["status"] == "True"


def test_size_split_across_configmaps(make_operator, api, apiserver, tmp_path):
    make_operator(shards=3, shard_budget=6000, cluster_reserve=0)
    for i in range(8):
        body = load_example(NGINX)
        body["metadata"]["name"] = f"r{i}"
        body["spec"]["rules"][0]["desc"] = "padding " * 200  # ~1.6 KiB per object
        create(api, body)
    wait_for(lambda: all(condition(apiserver, "web", f"r{i}") for i in range(8)), what="all verdicts")
    wait_for(lambda: all(condition(apiserver, "web", f"r{i}", "Published") for i in range(8)))
    shards = {
        cm["metadata"]["name"]: cm.get("data") or {} for cm in apiserver.objects("configmaps", RELEASE_NS)
    }
    sizes = {n: sum(len(k) + len(v) for k, v in d.items()) for n, d in shards.items()}
    assert all(s <= 6000 for s in sizes.values()), sizes
    used = [n for n, d in sorted(shards.items()) if any(k.endswith(".yaml") for k in d)]
    assert len(used) == 3, sizes
    files = manifest(apiserver)["files"]
    published = [f["object"] for f in files]
    assert published == sorted(published)  # namespace/name order at equal priority, across shards
    full = [i for i in range(8) if condition(apiserver, "web", f"r{i}", "Published")["status"] == "False"]
    assert full and all(
        condition(apiserver, "web", f"r{i}", "Published")["reason"] == "NoCapacity" for i in full
    )
    loaded = read_rules([project(apiserver, tmp_path / "p")])
    assert [Path(i.name).name for i in loaded.inputs] == [f["name"] for f in files]


def test_restart_keeps_published_rules(make_operator, api, apiserver):
    run = make_operator()
    create(api, load_example(NGINX))
    wait_for(lambda: objects_in_bundle(apiserver))
    run.stop()
    spec = copy.deepcopy(load_example(NGINX)["spec"])
    spec["rules"][0]["priority"] = "LOUD"  # the stand-in does not enforce the enum; the engine does
    patch_spec(api, "web", "nginx-unauthorized-process", spec)
    before = manifest(apiserver)
    make_operator()
    cond = wait_for(lambda: condition(apiserver, "web", "nginx-unauthorized-process"))
    assert cond["status"] == "False" and "generation 1 stays active" in cond["message"]
    assert manifest(apiserver)["files"] == before["files"]


def test_node_status_from_agent_leases(make_operator, api, apiserver):
    run = make_operator(node_ttl=30)
    create(api, load_example(NGINX))
    wait_for(lambda: objects_in_bundle(apiserver))
    version = manifest(apiserver)["version"]
    node_a, node_b = LeaseReporter("node-a", RELEASE_NS), LeaseReporter("node-b", RELEASE_NS)
    node_a.loaded(version)
    node_b.loaded("0123456789abcdef")  # still on a bundle without the object
    node_a.write_now()
    node_b.write_now()
    nodes = lambda: apiserver.get("falcorules", "web", "nginx-unauthorized-process")["status"]["nodes"]  # noqa: E731
    wait_for(lambda: nodes() == "1/2", what="1/2 nodes")
    node_b.loaded(version)
    node_b.write_now()
    wait_for(lambda: nodes() == "2/2", what="2/2 nodes")
    lease = apiserver.get("leases", RELEASE_NS, "falcopy-agent-node-b")
    assert lease["spec"]["holderIdentity"] == "node-b"
    assert run.state.reconciles > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _review(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    ns = obj["metadata"].get("namespace")
    plural = "falcorules" if obj["kind"] == "FalcoRule" else "clusterfalcorules"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": G, "version": V, "kind": obj["kind"]},
            "resource": {"group": G, "version": V, "resource": plural},
            "requestKind": {"group": G, "version": V, "kind": obj["kind"]},
            "requestResource": {"group": G, "version": V, "resource": plural},
            "name": obj["metadata"]["name"],
            "namespace": ns,
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def test_admission_webhook_answers(make_operator, api, apiserver):
    port = _free_port()
    make_operator(webhook=insecure_webhook(port))
    url = f"http://127.0.0.1:{port}/validate-falcorules"
    good = load_example(NGINX)
    bad = load_example(NGINX)
    bad["spec"]["rules"][0]["condition"] = "fp_spawned_process and proc.nmae = nginx"
    answer = wait_for(lambda: httpx.post(url, json=_review(good), timeout=5).json(), what="admission server")
    assert (
        answer["kind"] == "AdmissionReview" and answer["response"]["uid"] == _review(good)["request"]["uid"]
    )
    assert answer["response"]["allowed"] is True
    denied = httpx.post(url, json=_review(bad, "UPDATE"), timeout=5).json()["response"]
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 422
    message = denied["status"]["message"]
    assert "spec.rules[0]" in message and "proc.nmae" in message and "LOAD_ERR_COMPILE_CONDITION" in message
    # the same verdict the operator records on the object
    bad["metadata"]["name"] = "bypassed"  # as if the webhook were off
    create(api, bad)
    cond = wait_for(lambda: condition(apiserver, "web", "bypassed"))
    assert cond["message"].split(" (falcorule/")[0] in message
    # admission sees the other objects: appending to a list nobody defines is refused
    cluster = {
        "apiVersion": f"{G}/{V}",
        "kind": "ClusterFalcoRule",
        "metadata": {"name": "ext"},
        "spec": {"lists": [{"list": "nobody", "items": ["x"], "override": {"items": "append"}}]},
    }
    curl = f"http://127.0.0.1:{port}/validate-clusterfalcorules"
    refused = httpx.post(curl, json=_review(cluster), timeout=5).json()["response"]
    assert refused["allowed"] is False and "nobody" in refused["status"]["message"]


def test_hand_edited_or_deleted_configmap_is_restored(make_operator, api, apiserver):
    make_operator()
    create(api, load_example(MINERS))
    wait_for(lambda: objects_in_bundle(apiserver))
    good = apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-0")["data"]
    core = client.CoreV1Api(client.ApiClient())
    core.patch_namespaced_config_map(
        "falcopy-rules-0", RELEASE_NS, {"data": {"0-cluster.crypto-miners.yaml": "[]"}}
    )
    core.delete_namespaced_config_map("falcopy-rules-1", RELEASE_NS)
    wait_for(
        lambda: apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-0")["data"] == good,
        what="shard 0 restored",
    )
    wait_for(
        lambda: apiserver.get("configmaps", RELEASE_NS, "falcopy-rules-1") is not None,
        what="shard 1 recreated",
    )
