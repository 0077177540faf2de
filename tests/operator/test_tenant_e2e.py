"""Tenant attacks against the real kopf operator and the stand-in API server (issue 23, items 3-4)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
from kubernetes import client

from tests.operator.conftest import insecure_webhook
from tests.operator.fake_apiserver import FakeApiServer
from tests.operator.test_operator_e2e import G, V, _free_port, _review, condition, create, objects_in_bundle
from tests.operator.test_tenant_attacks import MINERS, RULE, macro_chain
from tests.waiting import wait_for


def falcorule(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FalcoRule",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def clusterfalcorule(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "ClusterFalcoRule", "metadata": {"name": name}, "spec": spec}


def published(server: FakeApiServer, ns: str, name: str, plural: str = "falcorules") -> dict[str, Any] | None:
    return condition(server, ns, name, "Published", plural)


def test_tenants_cannot_displace_a_cluster_rule(make_operator, api: client.CustomObjectsApi, apiserver):
    """Four namespaces each fill the rules ConfigMaps within their quota, at priority 0."""
    make_operator(shards=2, shard_budget=200_000)  # default quotas (128 KiB) and cluster reserve (25 %)
    hogs = [f"hog-{c}" for c in "abcd"]
    for ns in hogs:
        padding = {**RULE, "rule": "pad", "condition": "proc.name = x", "desc": "p" * 98_000}
        create(api, falcorule(ns, "fill", {"priority": 0, "rules": [padding]}))
    wait_for(lambda: all(published(apiserver, ns, "fill") for ns in hogs), timeout=60, what="tenant verdicts")
    full = [ns for ns in hogs if published(apiserver, ns, "fill")["reason"] == "NoCapacity"]  # type: ignore[index]
    assert full, "the tenants did fill the room they share"
    create(api, clusterfalcorule("crypto-miners", MINERS))
    cond = wait_for(lambda: published(apiserver, "", "crypto-miners", "clusterfalcorules"), timeout=60)
    assert cond["status"] == "True", cond
    assert ("ClusterFalcoRule", "", "crypto-miners", 1) in objects_in_bundle(apiserver)
    message = published(apiserver, full[0], "fill")["message"]  # type: ignore[index]
    assert "namespaced FalcoRules share" in message and "cluster_reserve" in message


def test_quota_exceeded_is_a_status_reason(make_operator, api, apiserver):
    make_operator(quotas={"bytes": 0, "rules": 2, "patterns": 0})
    rules = [{**RULE, "rule": f"r{i}", "condition": "proc.name = x"} for i in range(3)]
    create(api, falcorule("web", "many", {"rules": rules}))
    cond = wait_for(lambda: condition(apiserver, "web", "many"), timeout=60)
    assert cond["status"] == "False" and cond["reason"] == "QuotaExceeded"
    assert "3 rules, over its quota of 2" in cond["message"] and "operator.quotas.rules" in cond["message"]


def test_bomb_after_defusing_object_is_deleted_does_not_stall_others(make_operator, api, apiserver):
    """Create a small object that defuses the chain, the bomb, delete the small one (deletes are not
    validated): the reconcile loop refuses the bomb with the cap it passes and keeps publishing."""
    port = _free_port()
    make_operator(webhook=insecure_webhook(port))
    url = f"http://127.0.0.1:{port}/validate-falcorules"
    defuse = falcorule("web", "defuse", {"macros": [{"macro": "m40", "condition": "proc.name = x"}]})
    bomb = falcorule("web", "bomb", macro_chain(40))
    wait_for(lambda: _post(url, _review(defuse)), what="admission server")
    # admission refuses the bomb even beside the defusing object: every macro is capped on its own
    create(api, defuse)
    answer = _post(url, _review(bomb))
    assert answer is not None and answer["response"]["allowed"] is False
    assert "expands to" in answer["response"]["status"]["message"]
    create(api, bomb)  # as if admission were off or failing open
    api.delete_namespaced_custom_object(G, V, "web", "falcorules", "defuse")
    create(
        api, falcorule("web", "later", {"rules": [{**RULE, "rule": "later", "condition": "proc.name = y"}]})
    )
    cond = wait_for(lambda: published(apiserver, "web", "later"), timeout=60, what="the later object")
    assert cond["status"] == "True"
    verdict = wait_for(lambda: condition(apiserver, "web", "bomb"), timeout=60)
    assert verdict["status"] == "False" and "macro 'm12__web' expands to" in verdict["message"]


def _post(url: str, review: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return httpx.post(url, json=review, timeout=60).json()  # type: ignore[no-any-return]
    except httpx.TransportError:
        return None


def test_abandoned_admission_calls_stop_their_validation(make_operator, api, apiserver):
    port = _free_port()
    run = make_operator(
        webhook=insecure_webhook(port),
        admission_concurrency=1,
        quotas={"bytes": 0, "rules": 0, "patterns": 0},
    )
    url = f"http://127.0.0.1:{port}/validate-falcorules"
    small = falcorule("web", "small", {"rules": [{**RULE, "rule": "s", "condition": "proc.name = x"}]})
    wait_for(lambda: _post(url, _review(small)), what="admission server")
    rules = [
        {**RULE, "rule": f"r{i}", "condition": f"fd.name regex '/x{i}.*' and proc.name = a"}
        for i in range(600)
    ]
    heavy = json.dumps(_review(falcorule("web", "heavy", {"rules": rules}))).encode()
    request = (
        f"POST /validate-falcorules HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(heavy)}\r\n\r\n"
    ).encode() + heavy
    admission = run.state.admission
    clients = []
    for _ in range(3):  # one runs, two wait for the single slot; all walk away
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        clients.append(s)
    wait_for(lambda: admission.running >= 1, timeout=60, what="a check running")
    for s in clients:
        s.close()
    wait_for(
        lambda: admission.running == 0 and admission.cancelled == 3,
        timeout=120,
        what="checks stopped",
        describe=lambda: f"running={admission.running} cancelled={admission.cancelled}",
    )
    assert admission.stopped >= 1, "the running check was cut short, not run to its end"
    # the webhook still answers
    answer = _post(url, _review(small))
    assert answer is not None and answer["response"]["allowed"] is True
