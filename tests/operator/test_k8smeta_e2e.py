"""Workload metadata end to end: stand-in API server -> the real operator (kopf watches,
collector, TokenReview, TLS) -> the agent's metadata store (subscriber) -> a real
syscall in a real docker container seen by the probe -> rules -> alert.

The pod in the API server names the container by its real id (as the kubelet would
report it), in a Deployment -> ReplicaSet -> Pod chain with a selecting Service
and a labelled namespace.  The operator is then stopped, a label changed while it
is down, and a new operator started: the agent keeps its data meanwhile, logs the
outage once, reconnects and the next alert shows the new label.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.enrichment.attach import container_resolver
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig, KubeletConfig
from falcopy.agent.enrichment.k8smeta import K8sMetaConfig
from falcopy.agent.enrichment.store import MetadataStore
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import Probe
from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.fields.syscall import SYSCALL_FIELDS
from tests.agent.enrichment.standins import make_tls_material
from tests.images import Container, busybox_image, require_docker
from tests.operator import k8smeta_objects as k
from tests.operator.conftest import OperatorRun
from tests.operator.fake_apiserver import FakeApiServer
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kernel]

NODE = f"node-k8smeta-{os.getpid()}"
AGENT_SA = "system:serviceaccount:falcopy:falcopy-agent"
TOKEN = f"agent-token-{os.getpid()}"
RULE = "k8smeta test marker"
OUTPUT_FIELDS = (
    "k8smeta.deployment.name", "k8smeta.deployment.uid", "k8smeta.rs.name", "k8smeta.svc.name",
    "k8smeta.ns.label[team]", "k8smeta.ns.labels", "k8smeta.pod.name", "k8smeta.ns.name",
    "k8s.deployment.name", "k8s.rs.name", "k8s.svc.name", "k8s.ns.label[team]", "k8s.ns.labels",
    "k8s.pod.name", "k8s.ns.name",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rules(path: Path, container_id: str, marker: str) -> Path:
    output = " ".join(f"{f.replace('[', '_').replace(']', '')}=%{f}" for f in OUTPUT_FIELDS)
    path.write_text(f"""
- rule: {RULE}
  desc: an exec carrying the test's marker in our container
  condition: evt.type in (execve, execveat) and evt.dir = < and container.id = "{container_id}"
    and proc.args contains "{marker}"
  output: "marker exec ({output})"
  priority: WARNING
""")
    return path


class Agent:
    """The agent's event path over the real probe: process table, store, rules, alert builder."""

    def __init__(self, rules: Path, store: MetadataStore) -> None:
        sources = default_sources()
        sources["syscall"] = AgentSyscallSource(SYSCALL_FIELDS)
        result = load_rules_files([rules], sources=sources)
        assert result.ok and result.ruleset is not None, [str(m) for m in result.errors]
        self.builder = AlertBuilder(AgentConfig(), result.ruleset, sources, hostname=NODE)
        self.alerts: list[Alert] = []
        table = ProcessTable(container_resolver=container_resolver(store))
        table.bootstrap(with_fds=False)
        self.pipeline = Pipeline(result.ruleset, table, metadata=store, on_alert=self._on_alert)
        self.probe = Probe()
        self.probe.load()
        self.probe.set_event_filter({"execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit"})
        self.probe.ignore_pid(os.getpid())
        self.probe.attach()

    def _on_alert(self, rule: Any, event: SyscallEvent) -> None:
        alert = self.builder.build(rule, event)
        assert alert is not None
        self.alerts.append(alert)

    def alert_for(self, action: Callable[[], Any], timeout_s: float = 60.0) -> Alert:
        self.alerts.clear()
        action()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.alerts:
            self.pipeline.process(self.probe.poll(50))
        assert self.alerts, "no alert for the marker exec"
        return self.alerts[0]

    def close(self) -> None:
        self.probe.close()


@pytest.fixture
def workload(apiserver: FakeApiServer) -> Iterator[dict[str, Any]]:
    require_docker()
    ctr = Container(busybox_image(), "sleep", "600").start()
    ns = f"shop-{os.getpid()}"
    url = apiserver.url
    objs: dict[str, Any] = {"container": ctr}
    try:
        objs["ns"] = k.create(url, k.namespace(ns, {"team": "payments", "env": "prod"}))
        objs["dep"] = k.create(url, k.deployment("checkout", ns, {"app": "checkout"}))
        objs["rs"] = k.create(url, k.replicaset("checkout-7f9c", ns, objs["dep"], {"app": "checkout"}))
        objs["svc"] = k.create(url, k.service("checkout-svc", ns, {"app": "checkout"}))
        objs["pod"] = k.create(url, k.pod("checkout-7f9c-q2w", ns, NODE, {"app": "checkout"}, objs["rs"],
                                          [ctr.full_id]))
        apiserver.tokens[TOKEN] = {"username": AGENT_SA, "uid": "sa-uid",
                                   "extra": {"authentication.kubernetes.io/node-name": [NODE]}}
        yield objs
    finally:
        ctr.remove()


def test_alert_carries_workload_metadata_across_an_operator_restart(
        apiserver: FakeApiServer, make_operator: Callable[..., OperatorRun], workload: dict[str, Any],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    caplog.set_level(logging.INFO, logger="falcopy.agent.enrichment")
    ctr: Container = workload["container"]
    tls = make_tls_material(tmp_path / "tls", name="collector")
    port = _free_port()
    collector = {"host": "127.0.0.1", "port": port, "certfile": tls.cert_file, "keyfile": tls.key_file,
                 "agents": [AGENT_SA], "heartbeat_s": 1.0}
    operator = make_operator(collector=collector)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config = EnrichmentConfig(
        engines={"docker": EngineConfig(sockets=["/var/run/docker.sock"])},
        kubelet=KubeletConfig(enabled=False),
        k8smeta=K8sMetaConfig(enabled=True, url=f"https://127.0.0.1:{port}", node_name=NODE,
                              token_file=str(token), ca_file=str(tls.ca_file), idle_timeout_s=5.0,
                              retry_base_s=0.2, retry_cap_s=1.0))
    store = MetadataStore(config)
    store.start()
    assert store.k8smeta is not None
    agent = None
    marker = f"k8smeta-{os.getpid()}"
    try:
        wait_for(lambda: (store.get(ctr.id) or None) and store.get(ctr.id).k8smeta,
                 what="the pod's workload metadata in the store",
                 describe=lambda: f"{store.faults.active()} {store.k8smeta.stats}")
        agent = Agent(_rules(tmp_path / "rules.yaml", ctr.id, marker), store)

        alert = agent.alert_for(lambda: ctr.exec("ls", f"/{marker}-1", check=False))
        f = alert.output_fields
        dep_uid = workload["dep"]["metadata"]["uid"]
        assert (f["k8smeta.deployment.name"], f["k8smeta.deployment.uid"]) == ("checkout", dep_uid)
        assert (f["k8smeta.rs.name"], f["k8smeta.svc.name"]) == ("checkout-7f9c", "checkout-svc")
        assert f["k8smeta.ns.label[team]"] == "payments"
        assert sorted(f["k8smeta.ns.labels"]) == ["env:prod", "team:payments"]
        assert (f["k8smeta.pod.name"], f["k8smeta.ns.name"]) == (
            "checkout-7f9c-q2w", workload["ns"]["metadata"]["name"])
        # the deprecated aliases, same values
        assert (f["k8s.deployment.name"], f["k8s.rs.name"], f["k8s.svc.name"]) == (
            "checkout", "checkout-7f9c", "checkout-svc")
        assert f["k8s.ns.label[team]"] == "payments"
        assert f["k8s.ns.labels"] == "team:payments, env:prod"
        assert f["k8s.pod.name"] == "checkout-7f9c-q2w"
        assert "k8smeta.deployment.name=checkout k8smeta.deployment.uid=" in alert.message
        assert "k8s.ns.label_team=payments" in alert.message

        # the operator goes away: the agent keeps its data and logs the outage once
        snapshots = store.k8smeta.stats.snapshots
        operator.stop()
        failures = store.k8smeta.stats.failures
        wait_for(lambda: store.k8smeta.stats.failures >= failures + 3,
                 what="reconnection attempts while the collector is down")
        outage = [r.getMessage() for r in caplog.records
                  if "k8smeta collector" in r.getMessage() and "will retry" in r.getMessage()]
        assert len(outage) in (1, 2), outage  # the broken stream, then "unreachable": one line each
        assert store.get(ctr.id).k8smeta.deployment.name == "checkout"
        alert = agent.alert_for(lambda: ctr.exec("ls", f"/{marker}-2", check=False))
        assert alert.output_fields["k8smeta.deployment.name"] == "checkout"  # detection goes on, data kept

        # a label changes meanwhile; a new operator (new epoch) comes up on the same address
        k.patch_labels(apiserver.url, workload["ns"], {"team": "fraud"})
        make_operator(collector=collector)
        wait_for(lambda: store.k8smeta.stats.snapshots > snapshots
                 and store.get(ctr.id).k8smeta.ns.labels.get("team") == "fraud",
                 what="resynchronised after the restart", describe=lambda: f"{store.faults.active()}")
        alert = agent.alert_for(lambda: ctr.exec("ls", f"/{marker}-3", check=False))
        assert alert.output_fields["k8smeta.ns.label[team]"] == "fraud"
        assert alert.output_fields["k8s.ns.label[team]"] == "fraud"
        assert any("k8smeta collector" in r.getMessage() and "recovered" in r.getMessage()
                   for r in caplog.records)
        assert store.faults.active() == {}
    finally:
        if agent is not None:
            agent.close()
        store.stop()
