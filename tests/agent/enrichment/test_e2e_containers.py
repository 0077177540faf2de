"""End to end with real containers: actions in docker containers -> probe -> process
table (container id from cgroups) -> metadata store (real Docker socket + stand-in
kubelet over real TLS) -> rules -> alerts (Falco's JSON and text shapes).

A second, degraded agent runs on the same kernel records with no runtime socket
and an unreachable kubelet: detection goes on, container fields are ``<NA>``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.enrichment.attach import container_resolver
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig, KubeletConfig
from falcopy.agent.enrichment.store import MetadataStore
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe
from falcopy.agent.outputs.alert import Alert
from falcopy.agent.outputs.builder import AlertBuilder
from falcopy.agent.outputs.format import AlertFormatter, FormatOptions
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable

from falcopy.engine import default_sources, load_rules_files
from falcopy.engine.fields.syscall import SYSCALL_FIELDS
from tests.agent.enrichment.standins import KubeletStandin, PodContainerSpec, PodSpec, TlsMaterial, pod_list
from tests.images import Container, docker

pytestmark = [pytest.mark.docker, pytest.mark.kernel]

REPO = Path(__file__).resolve().parents[3]
RULE_FILES = [REPO / "rules" / "falcopy_rules.yaml", REPO / "rules" / "examples" / "container_examples.yaml"]
SUDO_RULE = 'The program "sudo" is run in a container'
NGINX_RULE = "Unauthorized process on nginx containers"
SHELL_RULE = "Terminal Shell Started in Container"
LIFECYCLE_TYPES = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit"})
POD_UID = "0c6f5a8e-7d21-4b9a-9e3f-5d2c1b0a9f87"
POD_LABELS = {"app": "shop", "tier": "backend"}

FIELDS = ("container.id", "container.full_id", "container.name", "container.image",
          "container.image.repository", "container.image.tag", "container.type", "k8s.ns.name",
          "k8s.pod.name", "k8s.pod.uid", "k8s.pod.label[app]", "k8s.pod.labels", "proc.name", "proc.tty")


@dataclass
class Hit:
    agent: str
    rule: str
    values: dict[str, Any]
    alert: Alert


@dataclass
class Env:
    probe: Probe
    pipelines: dict[str, Pipeline]
    stores: dict[str, MetadataStore]
    busybox: Container
    nginx: Container
    hits: list[Hit] = field(default_factory=list)
    #: alerts outside the test containers (shown when an assertion fails)
    others: list[tuple[str, str, str, str]] = field(default_factory=list)

    def run(self, action: Any, until: Any, timeout_s: float = 30.0,
            extra_ids: set[str] | None = None) -> list[Hit]:
        """Perform ``action``; feed records to the agents until ``until(hits)`` or the timeout.

        Waiting for an expected alert (not for a quiet ring) keeps the test exact on a
        machine busy with other work."""
        flush_end = time.monotonic() + 1.0
        while self.probe.poll(10) and time.monotonic() < flush_end:
            pass
        self.hits.clear()
        ours = {self.busybox.id, self.nginx.id}
        if extra_ids is not None:
            ours = extra_ids  # filled in by the action itself
        action()
        deadline = time.monotonic() + timeout_s
        found: list[Hit] = []
        while time.monotonic() < deadline:
            recs = self.probe.poll(50)
            for pipe in self.pipelines.values():
                pipe.process(recs)
            found = [h for h in self.hits if h.values["container.id"] in ours]
            if until(found):
                break
        self.others = [(h.agent, h.rule, h.values["container.id"], h.values["proc.name"])
                       for h in self.hits if h.values["container.id"] not in ours]
        return found


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _agent(label: str, store: MetadataStore, env_hits: list[Hit]) -> tuple[Pipeline, set[str] | None]:
    sources = default_sources()
    fsrc = AgentSyscallSource(SYSCALL_FIELDS)
    sources["syscall"] = fsrc
    result = load_rules_files(RULE_FILES, sources=sources)
    assert result.ok, [str(m) for m in result.errors]
    ruleset = result.ruleset
    assert ruleset is not None
    builder = AlertBuilder(AgentConfig(), ruleset, sources, hostname="node-1")
    accessors = {}
    for name in FIELDS:
        base, _, arg = name.partition("[")
        found = fsrc.lookup(base)
        assert found is not None, name
        accessors[name] = fsrc.accessor(found[0], arg.rstrip("]") or found[1])
    table = ProcessTable(container_resolver=container_resolver(store))
    table.bootstrap(with_fds=False)

    def on_alert(rule: Any, event: SyscallEvent) -> None:
        alert = builder.build(rule, event)
        assert alert is not None
        env_hits.append(Hit(label, rule.name, {n: get(event) for n, get in accessors.items()}, alert))

    types = ruleset.evttypes("syscall")
    return Pipeline(ruleset, table, metadata=store, on_alert=on_alert), types


@pytest.fixture(scope="module")
def env(docker_images: dict[str, str], tls: TlsMaterial,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    tmp = tmp_path_factory.mktemp("e2e")
    token = tmp / "token"
    token.write_text("e2e-token")
    busybox = Container(docker_images["busybox"], "sleep", "600").start()
    nginx = Container(docker_images["nginx"], interactive=True).start()
    kubelet = KubeletStandin(tls, "e2e-token", pod_list([PodSpec(
        "shop-backend-5c7d9-x2x7q", "shop", POD_UID, POD_LABELS, "10.244.3.14",
        [PodContainerSpec("backend", "falcopy-test/busybox:1.36", busybox.full_id, "docker")])])).start()
    full_cfg = EnrichmentConfig(
        engines={"docker": EngineConfig(sockets=["/var/run/docker.sock"])},
        kubelet=KubeletConfig(url=kubelet.url, token_file=str(token), ca_file=str(tls.ca_file)))
    broken_cfg = EnrichmentConfig(
        engines={"docker": EngineConfig(sockets=[str(tmp / "absent-docker.sock")])},
        kubelet=KubeletConfig(url=f"https://127.0.0.1:{_closed_port()}/pods", token_file=str(token),
                              ca_file=str(tls.ca_file), timeout_s=0.5),
        retry_base_s=0.1, retry_cap_s=1.0)
    stores = {"full": MetadataStore(full_cfg), "degraded": MetadataStore(broken_cfg)}
    hits: list[Hit] = []
    probe = Probe()
    env = Env(probe, {}, stores, busybox, nginx, hits)
    try:
        # the rules under test are about program executions: capture the process
        # lifecycle only, so that the busy shared machine cannot flood the ring
        wanted: set[str] = set(LIFECYCLE_TYPES)
        for label, store in stores.items():
            store.start()
            pipe, types = _agent(label, store, hits)
            env.pipelines[label] = pipe
            assert types is not None
        for ctr in (busybox, nginx):  # metadata in before the actions (see test_first_events...)
            info = stores["full"].wait_for(ctr.id, 10.0)
            assert info is not None and info.complete, info
        probe.load()
        probe.set_event_filter(wanted & SUPPORTED_EVENTS)
        probe.ignore_pid(os.getpid())
        probe.attach()
        yield env
    finally:
        probe.close()
        for store in stores.values():
            store.stop()
        kubelet.stop()
        busybox.remove()
        nginx.remove()


def only(hits: list[Hit], agent: str, rule: str) -> list[Hit]:
    return [h for h in hits if h.agent == agent and h.rule == rule]


def fired(agent: str, *rules: str) -> Any:
    return lambda hits: all(only(hits, agent, r) for r in rules)


def test_sudo_in_container(env: Env) -> None:
    hits = env.run(lambda: env.busybox.exec("sudo", "id"), fired("full", SUDO_RULE))
    found = only(hits, "full", SUDO_RULE)
    assert len(found) == 1, ([(h.agent, h.rule) for h in hits], env.others)
    v = found[0].values
    assert (v["container.id"], v["container.full_id"], v["container.name"]) == (
        env.busybox.id, env.busybox.full_id, env.busybox.name)
    assert (v["container.image.repository"], v["container.image.tag"], v["container.type"]) == (
        "falcopy-test/busybox", "1.36", "docker")
    assert (v["k8s.ns.name"], v["k8s.pod.name"], v["k8s.pod.uid"], v["k8s.pod.label[app]"]) == (
        "shop", "shop-backend-5c7d9-x2x7q", POD_UID, "shop")
    alert = found[0].alert
    doc = orjson.loads(AlertFormatter(FormatOptions(json_output=True)).json(alert))  # Falco's JSON shape
    assert doc["rule"] == SUDO_RULE and doc["priority"] == "Error" and doc["source"] == "syscall"
    assert doc["output_fields"]["container.id"] == env.busybox.id
    assert doc["output_fields"]["container.name"] == env.busybox.name
    # %container.info renders as Falco does without -pc/-pk: "<name> (id=<id>)"
    assert f"{env.busybox.name} (id={env.busybox.id})" in alert.message
    # the stand-in sudo is a script: the kernel runs it as "/bin/sh /usr/bin/sudo id",
    # which Falco's proc.cmdline shows as comm + arguments
    assert "cmdline=sudo /usr/bin/sudo id" in alert.message


def test_nginx_image_rule(env: Env) -> None:
    hits = env.run(lambda: env.nginx.exec("ls", "/"), fired("full", NGINX_RULE))
    found = only(hits, "full", NGINX_RULE)
    assert [h.values["proc.name"] for h in found] == ["ls"], ([(h.agent, h.rule) for h in hits], env.others)
    v = found[0].values
    assert (v["container.id"], v["container.name"], v["container.image"]) == (
        env.nginx.id, env.nginx.name, "nginx:1.25")
    assert (v["container.image.repository"], v["container.image.tag"]) == ("nginx", "1.25")
    assert v["k8s.ns.name"] is None  # a plain docker container: no pod
    assert f"container_name={env.nginx.name} container_id={env.nginx.id}" in found[0].alert.message
    assert "image=nginx:1.25 process=ls" in found[0].alert.message


def test_nginx_itself_fires_nothing(env: Env) -> None:
    def action() -> None:
        env.nginx.exec("/usr/sbin/nginx")
        env.nginx.exec("ls", "/")  # a sentinel that does fire: every record before it was seen

    hits = env.run(action, fired("full", NGINX_RULE))
    full = [(h.rule, h.values["proc.name"]) for h in hits if h.agent == "full"]
    assert full == [(NGINX_RULE, "ls")], (full, env.others)


def test_terminal_shell_in_container(env: Env) -> None:
    hits = env.run(lambda: env.busybox.exec("sh", "-c", "true", tty=True), fired("full", SHELL_RULE))
    found = only(hits, "full", SHELL_RULE)
    assert len(found) == 1, ([(h.agent, h.rule) for h in hits], env.others)
    v = found[0].values
    assert v["proc.name"] == "sh" and v["proc.tty"] != 0
    msg = found[0].alert.message
    assert (f"container_id={env.busybox.id} container_name={env.busybox.name} "
            f"container_image=falcopy-test/busybox:1.36 k8s_ns=shop k8s_pod=shop-backend-5c7d9-x2x7q") in msg
    fields = found[0].alert.output_fields
    assert fields["k8s.ns.name"] == "shop" and fields["k8s.pod.name"] == "shop-backend-5c7d9-x2x7q"


def test_terminal_shell_in_plain_docker_container_shows_na(env: Env) -> None:
    hits = env.run(lambda: env.nginx.exec("sh", "-c", "true", tty=True), fired("full", SHELL_RULE))
    found = only(hits, "full", SHELL_RULE)
    assert len(found) == 1, ([(h.agent, h.rule) for h in hits], env.others)
    assert "k8s_ns=<NA> k8s_pod=<NA>" in found[0].alert.message
    assert found[0].alert.output_fields["k8s.ns.name"] is None


def test_degraded_agent_keeps_detecting_with_na_fields(env: Env) -> None:
    # same kernel records, no docker socket, kubelet unreachable
    hits = env.run(lambda: (env.busybox.exec("sudo", "id"), env.busybox.exec("sh", "-c", "true", tty=True)),
                   fired("degraded", SUDO_RULE, SHELL_RULE))
    sudo = only(hits, "degraded", SUDO_RULE)
    shell = only(hits, "degraded", SHELL_RULE)
    assert len(sudo) == 1 and len(shell) == 1, ([(h.agent, h.rule) for h in hits], env.others)
    v = sudo[0].values
    assert v["container.id"] == env.busybox.id  # from the cgroup: always known
    assert (v["container.name"], v["container.image.repository"], v["k8s.ns.name"]) == (None, None, None)
    assert f"<NA> (id={env.busybox.id})" in sudo[0].alert.message
    assert "container_name=<NA> container_image=<NA>:<NA> k8s_ns=<NA> k8s_pod=<NA>" in shell[0].alert.message
    faults = env.stores["degraded"].faults.active()
    assert any("absent-docker.sock" in src for src in faults) and any("kubelet" in src for src in faults)


def test_first_events_of_a_new_container(env: Env, docker_images: dict[str, str]) -> None:
    # sudo is the container's first program: it runs before any metadata can have
    # been fetched. The alert fires on container.id (from the cgroup, known at once);
    # name/image are whatever the store had then (usually <NA>, as in Falco).
    # sudo then becomes `sleep 3` (same pid): the process is still alive when its exec
    # record is handled, see docs/enrichment.md on exec records of processes already gone.
    new_ids: set[str] = set()
    name = f"falcopy-test-first-{os.getpid()}"

    def action() -> None:
        image = docker_images["busybox"]
        full = docker("run", "-d", "--name", name, image, "sudo", "sleep", "3").stdout.strip()
        new_ids.add(full[:12])

    try:
        hits = env.run(action, fired("full", SUDO_RULE), extra_ids=new_ids)
        found = only(hits, "full", SUDO_RULE)
        assert len(found) == 1, ([(h.agent, h.rule) for h in hits], env.others)
        v = found[0].values
        (cid,) = new_ids
        assert v["container.id"] == cid
        assert v["container.name"] in (None, name)
        info = env.stores["full"].wait_for(cid, 10.0)  # and the metadata arrives for later events
        assert info is not None and info.name == name and info.image_repository == "falcopy-test/busybox"
    finally:
        docker("rm", "-f", name, check=False)
