"""End to end: a container started after the agent -> Docker /events -> metadata store ->
announcer -> one synthetic ``container`` event on the event thread -> rule -> alert.

The probe captures the process lifecycle so that the process table knows the
container's init process, whose fields the event carries."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from falcopy.agent.app import wanted_types
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.enrichment.announce import ContainerAnnouncer
from falcopy.agent.enrichment.attach import container_resolver
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig
from falcopy.agent.enrichment.store import MetadataStore
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.kernel.probe import SUPPORTED_EVENTS, Probe
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable

from falcopy.engine import RulesInput, default_sources, load_rules
from tests.images import Container

pytestmark = [pytest.mark.docker, pytest.mark.kernel]

RULE = """
- rule: nginx container started
  desc: the container event of an nginx container
  condition: evt.type = container and container.image.repository = nginx
  output: >
    started %container.id %container.name %container.image.repository:%container.image.tag
    pid=%proc.pid name=%proc.name
  priority: NOTICE
"""
LIFECYCLE_TYPES = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit"})


def test_container_event_for_container_started_after_agent(docker_images: dict[str, str]) -> None:
    assert os.geteuid() == 0, "kernel tests need root (CI runs as root)"
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    result = load_rules([RulesInput("container_event.yaml", RULE)], sources=sources)
    assert result.ok, [str(m) for m in result.errors]
    ruleset = result.ruleset
    assert ruleset is not None and ruleset.evttypes("syscall") == {"container"}
    # the agent makes the event: nothing is asked from the probe for it
    assert "container" not in (wanted_types(ruleset, AgentConfig()) or {"container"})

    cfg = EnrichmentConfig(engines={"docker": EngineConfig(sockets=["/var/run/docker.sock"])})
    cfg.kubelet.enabled = False
    store = MetadataStore(cfg)
    announcer = ContainerAnnouncer()
    store.add_listener(announcer.offer)
    table = ProcessTable(container_resolver=container_resolver(store))
    table.bootstrap(with_fds=False)
    hits: list[tuple[str, dict[str, Any]]] = []

    def on_alert(rule: Any, event: SyscallEvent) -> None:
        hits.append(ruleset.format(rule, event))

    pipe = Pipeline(ruleset, table, metadata=store, on_alert=on_alert)
    probe = Probe()
    nginx: Container | None = None
    try:
        probe.load()
        probe.set_event_filter(LIFECYCLE_TYPES & SUPPORTED_EVENTS)
        probe.ignore_pid(os.getpid())
        probe.attach()
        store.start()
        nginx = Container(docker_images["nginx"], interactive=True)
        nginx.start()
        init_pid = nginx.pid()

        def mine() -> list[dict[str, Any]]:
            return [f for _, f in hits if f["container.id"] == nginx.id]

        deadline = time.monotonic() + 20.0
        settle: float | None = None
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            pipe.process(probe.poll(50))  # what _event_loop does between batches
            if announcer.pending():
                pipe.process_containers(announcer.drain())
            if settle is None and mine():
                settle = time.monotonic() + 1.5  # any second announcement would come now
    finally:
        probe.close()
        store.stop()
        if nginx is not None:
            nginx.remove()

    found = mine()
    assert len(found) == 1, hits
    f = found[0]
    assert (f["container.id"], f["container.name"]) == (nginx.id, nginx.name)
    assert (f["container.image.repository"], f["container.image.tag"]) == ("nginx", "1.25")
    # thread fields from the container's init process (inspect State.Pid)
    assert (f["proc.pid"], f["proc.name"]) == (init_pid, "nginx"), f
