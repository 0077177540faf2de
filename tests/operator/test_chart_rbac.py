"""The chart's RBAC, rendered with real Helm, enforced on what the code really calls.

The stand-in API server authorizes every request of the operator (kopf and its
kubernetes client) and of the agent's cluster link (status Lease writer and
rules bundle watch, the agent's own code) against the Roles and
ClusterRoles the chart binds to their service accounts, as the real RBAC
authorizer would. A lifecycle of FalcoRule objects must then run without one
refusal, and every verb the chart grants must have been used: nothing missing,
nothing granted for nothing.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from falcopy.agent.control.clusterlink import ClusterLink
from falcopy.agent.control.lease import LeaseReporter
from kubernetes import client

from falcopy.distribution.apiaccess import ApiAccess
from falcopy.distribution.bundle import BundleDir
from falcopy.distribution.bundlewatch import BundleWatch
from tests.chart.render import Rendered, render
from tests.operator.conftest import RELEASE_NS, load_example
from tests.operator.fake_apiserver import FakeApiServer, RequestAttrs
from tests.operator.test_operator_e2e import DBSHELL, MINERS, NGINX, condition, create, patch_spec
from tests.waiting import wait_for

G, V = "falcopy.io", "v1alpha1"
DRIVER = "falcopy-test-driver"  # this test's own requests: not judged
AGENT = "falcopy-agent-under-test"


@dataclass(frozen=True)
class Grant:
    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-wide (ClusterRole)
    names: tuple[str, ...]

    def allows(self, a: RequestAttrs) -> bool:
        if (a.verb, a.group, a.resource) != (self.verb, self.group, self.resource):
            return False
        if self.namespace is not None and a.namespace != self.namespace:
            return False
        # a named rule never matches a create or a list (RBAC: no name in the request)
        return not self.names or a.name in self.names


def grants(r: Rendered, service_account: str) -> list[Grant]:
    """Everything the chart binds to ``service_account``, expanded to one grant per verb and resource."""
    out: list[Grant] = []
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        for binding in r.all(kind):
            if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account
                       for s in binding["subjects"]):
                continue
            role = r.one(role_kind, binding["roleRef"]["name"])
            namespace = role["metadata"].get("namespace") if role_kind == "Role" else None
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            out.append(Grant(verb, group, resource, namespace,
                                             tuple(rule.get("resourceNames", ()))))
    return out


def _sa(r: Rendered, kind: str) -> str:
    obj = r.daemonset if kind == "DaemonSet" else r.one("Deployment")
    return obj["spec"]["template"]["spec"]["serviceAccountName"]


@pytest.fixture
def chart() -> Rendered:
    return render({}, release="falcopy", namespace=RELEASE_NS)


@pytest.fixture
def enforced(apiserver: FakeApiServer, chart: Rendered) -> Iterator[dict[str, list[Grant]]]:
    roles = {"operator": grants(chart, _sa(chart, "Deployment")),
             "agent": grants(chart, _sa(chart, "DaemonSet"))}

    def identity(user_agent: str) -> str | None:
        if user_agent.startswith("kopf/") or user_agent.startswith("OpenAPI-Generator/"):
            return "operator"  # kopf's session, and the kubernetes client the reconciler uses
        if user_agent == AGENT:
            return "agent"
        return None

    def authorize(user_agent: str, attrs: RequestAttrs) -> bool | None:
        who = identity(user_agent)
        if who is None:
            return None
        return any(g.allows(attrs) for g in roles[who])

    apiserver.authorizer = authorize
    yield roles
    apiserver.authorizer = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _used(apiserver: FakeApiServer, who: Callable[[str], bool], roles: list[Grant]) -> set[Grant]:
    return {g for agent, attrs in apiserver.store.authorized if who(agent) for g in roles if g.allows(attrs)}


def test_chart_rbac_is_exactly_what_the_code_calls(
        apiserver: FakeApiServer, enforced: dict[str, list[Grant]], make_operator: Callable[..., Any],
        chart: Rendered) -> None:
    env = {e["name"]: e.get("value") for e in
           chart.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    agent_sa = f"system:serviceaccount:{RELEASE_NS}:{_sa(chart, 'DaemonSet')}"
    assert env["FALCOPY_OPERATOR_K8SMETA_AGENTS"] == agent_sa  # only the agents may subscribe
    port = _free_port()
    # small shards: the objects spread over several, so the agent also fetches shards by name
    make_operator(configmap_prefix=env["FALCOPY_OPERATOR_CONFIGMAP_PREFIX"],
                  shards=int(env["FALCOPY_OPERATOR_SHARDS"]), shard_budget=4096, cluster_reserve=0,
                  leader={"lease": env["FALCOPY_OPERATOR_LEADER_LEASE"]},
                  collector={"host": "127.0.0.1", "port": port, "insecure": True, "agents": [agent_sa]})
    # an agent subscribes to the metadata stream: the operator reviews its token
    apiserver.tokens["agent-token"] = {"username": agent_sa}
    with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/k8smeta", params={"node": "node-a"},
                      headers={"Authorization": "Bearer agent-token"}, timeout=30) as resp:
        assert resp.status_code == 200
        assert next(resp.iter_lines()).startswith('{"type":"snapshot"')
    driver = client.ApiClient()
    driver.user_agent = DRIVER
    api = client.CustomObjectsApi(driver)

    # the agent's status Lease (first written (created), then renewed (updated)) and its
    # rules bundle watch, with the configuration the chart gives the agent
    rules_api = chart.agent_config().falcopy.rules_api
    access = ApiAccess.discover(user_agent=AGENT)
    reporter = LeaseReporter("node-a", RELEASE_NS, period=0.2, access=access)
    reporter.loaded("v0")
    bundles: list[BundleDir] = []
    watch: list[BundleWatch] = []

    async def watch_job(c: Any) -> None:
        watch.append(BundleWatch(c, rules_api.namespace, rules_api.configmaps, bundles.append,
                                 watch_timeout=(1, 2)))
        await watch[0].run()

    link = ClusterLink(access, [reporter.run, watch_job])
    link.start()
    try:
        create(api, load_example(NGINX))
        create(api, load_example(MINERS))
        big = load_example(MINERS)  # fills most of shard 0: the next objects go to other shards
        big["metadata"]["name"] = "many-miners"
        big["spec"]["lists"][0]["items"] = [f"miner-{i:04d}" for i in range(150)]
        big["spec"]["lists"][0]["list"] = "many_miner_processes"
        big["spec"]["rules"][0]["rule"] = "Many miners"
        big["spec"]["rules"][0]["condition"] = "fp_spawned_process and proc.name in (many_miner_processes)"
        create(api, big)
        broken = load_example(DBSHELL)
        broken["spec"]["rules"][0]["condition"] = "proc.nmae = psql"
        create(api, broken)  # refused: the operator posts a Warning event about it
        wait_for(lambda: condition(apiserver, "web", "nginx-unauthorized-process", "Published"))
        wait_for(lambda: condition(apiserver, "", "crypto-miners", "Published", plural="clusterfalcorules"))
        spec = copy.deepcopy(load_example(NGINX)["spec"])
        spec["lists"][0]["items"] = ["nginx", "nginx-debug"]
        patch_spec(api, "web", "nginx-unauthorized-process", spec)
        wait_for(lambda: (apiserver.get("falcorules", "web", "nginx-unauthorized-process") or {})
                 .get("status", {}).get("activeGeneration") == 2, what="generation 2 published")
        api.delete_namespaced_custom_object(G, V, "web", "falcorules", "nginx-unauthorized-process")

        def shards_without_nginx() -> bool:
            prefix = env["FALCOPY_OPERATOR_CONFIGMAP_PREFIX"]
            cms = [c for c in apiserver.objects("configmaps", RELEASE_NS)
                   if c["metadata"]["name"].startswith(prefix)]
            texts = [v for c in cms for v in (c.get("data") or {}).values()]
            return bool(cms) and not any("nginx-debug" in v for v in texts)

        wait_for(shards_without_nginx, what="deleted object unpublished")
        wait_for(lambda: bundles and all("nginx-debug" not in i.content for i in bundles[-1].inputs)
                 and watch[0].requests["get"] > 0, what="the agent's watch followed the bundle",
                 describe=lambda: f"serials {[b.serial for b in bundles]}, "
                 f"{watch[0].requests if watch else None}, {watch[0].last_error if watch else ''}")
        ops = enforced["operator"]
        wait_for(lambda: _used(apiserver, lambda ua: ua not in (AGENT, DRIVER), ops) == set(ops),
                 timeout=30, what=f"every operator grant used: {set(ops)}")
    finally:
        link.stop()

    assert apiserver.store.denied == [], apiserver.store.denied
    agent = enforced["agent"]
    used_by_agent = _used(apiserver, lambda ua: ua == AGENT, agent)
    # nodes/pods is asked of the kubelet, not the API server (tests/agent/enrichment/test_kubelet.py)
    api_grants = {g for g in agent if not g.resource.startswith("nodes/")}
    assert used_by_agent == api_grants, (api_grants - used_by_agent)
    assert {(g.verb, g.resource) for g in api_grants} == {
        ("create", "leases"), ("update", "leases"),
        ("get", "configmaps"), ("list", "configmaps"), ("watch", "configmaps")}
    # what the agent asked of ConfigMaps named one of the bundle's, every time
    asked = [a for ua, a in apiserver.store.authorized if ua == AGENT and a.resource == "configmaps"]
    assert asked and {a.name for a in asked} <= set(rules_api.configmaps)
