"""The real agent subscribed to the stand-in API server, the real operator rendering
its FalcoRules: shared by the live test (test_api_source_kernel.py) and the
benchmark (tests/bench/test_api_delivery_bench.py)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.agent.reload.agentproc import REPO, AgentProcess
from tests.agent.reload.test_reload_kernel import until_fired
from tests.operator.conftest import RELEASE_NS, OperatorRun
from tests.operator.fake_apiserver import FakeApiServer

DEFAULTS = REPO / "rules" / "falcopy_rules.yaml"
PREFIX = "falcopy-rules"
CONFIGMAPS = [f"{PREFIX}-{i}" for i in range(4)]


@dataclass
class ApiCluster:
    server: FakeApiServer
    operator: OperatorRun
    kubeconfig: Path
    api: client.CustomObjectsApi


@pytest.fixture
def api_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiCluster]:
    from falcopy.operator.settings import OperatorSettings

    server = FakeApiServer()
    server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(server.kubeconfig()))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config.load_kube_config(str(kubeconfig))
    settings = OperatorSettings.model_validate(
        {"namespace": RELEASE_NS, "configmap_prefix": PREFIX, "shards": len(CONFIGMAPS),
         "default_rules": [DEFAULTS]})
    operator = OperatorRun(settings).start()
    try:
        yield ApiCluster(server, operator, kubeconfig, client.CustomObjectsApi(client.ApiClient()))
    finally:
        operator.stop()
        server.stop()
    assert operator.error is None, f"operator crashed: {operator.error!r}"


def api_agent(workdir: Path, kubeconfig: Path, volume: Path) -> AgentProcess:
    """The agent with the chart's rules layout: default rules, then the operator's bundle
    directory ``volume`` (absent: the projected volume disabled), watched through the API."""
    falcopy_config = (
        "  rules_api:\n    enabled: true\n"
        f"    namespace: {RELEASE_NS}\n"
        f"    configmaps: [{', '.join(CONFIGMAPS)}]\n"
        f"    volume: {volume}\n"
    )
    return AgentProcess(workdir, [DEFAULTS, volume], falcopy_config=falcopy_config,
                        env={"KUBECONFIG": str(kubeconfig), "FALCOPY_NAMESPACE": RELEASE_NS,
                             "FALCOPY_NODE_NAME": f"live-{uuid.uuid4().hex[:6]}"})


def marker_rule(tag: str) -> tuple[dict[str, Any], str, str]:
    """A ClusterFalcoRule firing on mkdir of a directory named after ``tag`` (mkdir is not
    among the default rules' event types: it fires only once the kernel filter widened
    too); (object, rule name, directory prefix)."""
    rule = f"API delivery marker {tag}"
    prefix = f"falcopy-api-mark-{tag}-"
    body = {
        "apiVersion": "falcopy.io/v1alpha1",
        "kind": "ClusterFalcoRule",
        "metadata": {"name": f"api-marker-{tag}"},
        "spec": {"priority": 20, "rules": [{
            "rule": rule, "desc": "live delivery test marker", "priority": "NOTICE", "tags": ["test"],
            "condition": f'evt.type in (mkdir, mkdirat) and evt.arg.path contains "{prefix}"',
            "output": "marker directory %evt.arg.path created by %proc.name",
        }]},
    }
    return body, rule, prefix


def create_to_fire(cluster: ApiCluster, agent: AgentProcess, workdir: Path, tag: str,
                   timeout: float = 60.0, published: list[float] | None = None) -> float:
    """Seconds from the ClusterFalcoRule create request to the event that fired it (a mkdir
    of a unique directory, repeated every 50 ms until the rule fires).  ``published`` gets
    the seconds until the operator's shard 0 named the object (the operator's share)."""
    body, rule, prefix = marker_rule(tag)
    n = [0]
    name = body["metadata"]["name"]

    def mkdir() -> None:
        n[0] += 1
        d = workdir / f"{prefix}{n[0]}"
        d.mkdir()
        d.rmdir()
        if published is not None and not published and _names(cluster, name):
            published.append(time.time() - t0)

    t0 = time.time()
    cluster.api.create_cluster_custom_object("falcopy.io", "v1alpha1", "clusterfalcorules", body)
    if published is not None:
        published.clear()
    fired = until_fired(agent, rule, mkdir, t0, timeout) - t0
    if published is not None and not published:
        published.append(fired)
    return fired


def _names(cluster: ApiCluster, name: str) -> bool:
    shard = cluster.server.get("configmaps", RELEASE_NS, CONFIGMAPS[0]) or {}
    return f'"object":"{name}"' in (shard.get("data") or {}).get("falcopy-manifest.json", "")
