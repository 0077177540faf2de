"""The agent's rules-bundle watch in the chart rendered by real Helm: its Role names the
operator's rule ConfigMaps and nothing else, and its falcopy.yaml names the same ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.render import Rendered, render
from tests.operator.test_chart_rbac import Grant, grants

NS = "sec"


def _agent_grants(r: Rendered) -> list[Grant]:
    return grants(r, r.daemonset["spec"]["template"]["spec"]["serviceAccountName"])


def _operator_shards(r: Rendered) -> list[str]:
    env = {e["name"]: e.get("value") for e in
           r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    prefix, shards = env["FALCOPY_OPERATOR_CONFIGMAP_PREFIX"], int(env["FALCOPY_OPERATOR_SHARDS"])
    return [f"{prefix}-{i}" for i in range(shards)]


@pytest.mark.parametrize("shards", [4, 7])
def test_agent_role_names_exactly_the_bundle_configmaps(shards: int) -> None:
    r = render({"operator": {"shards": shards}}, release="falcopy", namespace=NS)
    names = _operator_shards(r)
    assert len(names) == shards
    on_configmaps = [g for g in _agent_grants(r) if g.resource == "configmaps"]
    assert {(g.verb, g.group, g.namespace) for g in on_configmaps} == {
        ("get", "", NS), ("list", "", NS), ("watch", "", NS)}
    # every ConfigMap grant of the agent is limited to the operator's shards, by name
    for g in on_configmaps:
        assert sorted(g.names) == sorted(names), g
    # nothing else the agent holds reaches a ConfigMap (no wildcard resource or verb)
    assert not [g for g in _agent_grants(r) if g.resource == "*" or g.verb == "*"]
    cfg = r.agent_config()
    api = cfg.falcopy.rules_api
    assert api.enabled and api.configmaps == names and api.namespace == NS
    # the watch stands in for the operator's projected volume, one of the rules paths
    assert api.volume in cfg.rules_files
    projected = next(v for v in r.daemonset["spec"]["template"]["spec"]["volumes"]
                     if v["name"] == "operator-rules")["projected"]["sources"]
    assert [s["configMap"]["name"] for s in projected] == names
    mount = next(m for m in r.agent_container["volumeMounts"] if m["name"] == "operator-rules")
    assert Path(mount["mountPath"]) == Path(api.volume)


def test_rules_api_off_leaves_no_configmap_grant() -> None:
    r = render({"agent": {"rulesApi": {"enabled": False}}}, release="falcopy", namespace=NS)
    assert not [g for g in _agent_grants(r) if g.resource == "configmaps"]
    assert not r.agent_config().falcopy.rules_api.enabled


def test_without_operator_no_watch_and_no_grant() -> None:
    r = render({"operator": {"enabled": False}}, release="falcopy", namespace=NS)
    assert not [g for g in _agent_grants(r) if g.resource == "configmaps"]
    assert not r.agent_config().falcopy.rules_api.enabled
