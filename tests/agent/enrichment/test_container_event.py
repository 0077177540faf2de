"""The synthetic ``container`` event: store (fed by a stand-in Docker socket) -> announcer ->
real Pipeline + engine with falcopy's and Falco's upstream rules."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from falcopy.agent.app import wanted_types
from falcopy.agent.control.config import AgentConfig
from falcopy.agent.enrichment.announce import ContainerAnnouncer
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig
from falcopy.agent.enrichment.model import ContainerInfo
from falcopy.agent.enrichment.store import MetadataStore
from falcopy.agent.fields.container_event import container_event
from falcopy.agent.fields.event import SyscallEvent
from falcopy.agent.fields.syscall import AgentSyscallSource
from falcopy.agent.pipeline import Pipeline
from falcopy.agent.state import ProcessTable
from falcopy.agent.state.model import ThreadInfo

from falcopy.engine import RulesInput, default_sources, load_rules
from tests.agent.enrichment.standins import DockerSocketStandin
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
PRIV_ID = "c0ffee" + "1" * 58
PLAIN_ID = "c0ffee" + "2" * 58
IMAGE_ID = "ab" * 32
INIT_PID = 4_000_000 - 77  # beyond pid_max: never a real process


def _inspect(full_id: str, name: str, privileged: bool, pid: int) -> dict[str, Any]:
    return {
        "Id": full_id, "Name": f"/{name}", "Image": f"sha256:{IMAGE_ID}",
        "Config": {"Image": "docker.io/library/nginx:1.27", "Labels": {"app": name}},
        "HostConfig": {"Privileged": privileged, "NetworkMode": "bridge"},
        "State": {"Pid": pid, "StartedAt": "2026-01-02T03:04:05.123456789Z"},
        "NetworkSettings": {"IPAddress": "172.17.0.9"},
        "Mounts": [],
    }


#: The compat copy of falco-incubating_rules.yaml defines ``container_started`` as
#: ``(spawned_process and proc.vpid=1 and container)``; Falco rules files that match the
#: container event define it as below (a user's override file, loaded last, does the same).
CONTAINER_STARTED_WITH_EVENT = """
- macro: container_started
  condition: (evt.type = container or (spawned_process and proc.vpid=1 and container))
"""


def _ruleset(compat_dir: Path, macro_override: bool = True) -> Any:
    sources = default_sources()
    sources["syscall"] = AgentSyscallSource()
    files = [compat_dir / "falco_rules.yaml", compat_dir / "falco-incubating_rules.yaml"]
    inputs = [RulesInput(str(p), p.read_text()) for p in files]
    if macro_override:
        inputs.append(RulesInput("container_started.yaml", CONTAINER_STARTED_WITH_EVENT))
    path = REPO / "rules" / "falcopy_rules.yaml"
    inputs.append(RulesInput(str(path), path.read_text()))
    result = load_rules(inputs, sources=sources, rule_matching="all")
    assert result.ok, [str(m) for m in result.errors]
    return result.ruleset


@pytest.fixture
def docker_standin(tmp_path: Path) -> Any:
    standin = DockerSocketStandin(tmp_path / "docker.sock", "ok").start()
    standin.routes = {
        f"/containers/{PRIV_ID}/json": _inspect(PRIV_ID, "priv-one", True, INIT_PID),
        f"/containers/{PLAIN_ID}/json": _inspect(PLAIN_ID, "plain-one", False, 0),
        f"/images/sha256:{IMAGE_ID}/json": {"RepoTags": ["nginx:1.27"], "RepoDigests": []},
    }
    yield standin
    standin.stop()



def test_announcement_fires_privileged_rules_once(compat_dir: Path, docker_standin: Any) -> None:
    cfg = EnrichmentConfig(engines={"docker": EngineConfig(sockets=[str(docker_standin.path)])},
                           watch_events=False)
    cfg.kubelet.enabled = False
    store = MetadataStore(cfg)
    announcer = ContainerAnnouncer()
    store_threads: list[str] = []
    store.add_listener(lambda info: store_threads.append(threading.current_thread().name))
    store.add_listener(announcer.offer)

    table = ProcessTable()
    # the privileged container's init process, as the table holds it once its cgroup is resolved
    table.threads[INIT_PID] = ThreadInfo(pid=INIT_PID, tid=INIT_PID, ptid=1, vpid=1, vtid=1, comm="nginx",
                                         exe="nginx", exepath="/usr/sbin/nginx", args=["-g", "daemon off;"],
                                         uid=0, gid=0, container_id=PRIV_ID[:12])
    ruleset = _ruleset(compat_dir)
    assert "container" in (ruleset.evttypes("syscall") or set())
    fired: list[tuple[str, dict[str, Any], SyscallEvent]] = []
    eval_threads: list[str] = []

    def on_alert(rule: Any, event: SyscallEvent) -> None:
        eval_threads.append(threading.current_thread().name)
        fired.append((rule.name, ruleset.format(rule, event)[1], event))

    pipe = Pipeline(ruleset, table, metadata=store, on_alert=on_alert)
    kernel_types = pipe.kernel_event_types()
    assert kernel_types is not None and "container" not in kernel_types and "execve" in kernel_types
    store.start()
    try:
        for full_id in (PRIV_ID, PLAIN_ID):
            store.observe(full_id[:12], full_id, "docker")
        assert wait_until(lambda: len(store_threads) >= 2)
        # published again (as each kubelet refresh does): still announced once
        store.forget(PLAIN_ID[:12])
        store.observe(PLAIN_ID[:12], PLAIN_ID, "docker")
        assert wait_until(lambda: len(store_threads) >= 3)
        assert announcer.pending()
        infos = announcer.drain()
        assert sorted(i.id for i in infos) == sorted([PLAIN_ID[:12], PRIV_ID[:12]])
        assert pipe.process_containers(infos) == 2
        assert not announcer.pending() and pipe.process_containers(announcer.drain()) == 0
    finally:
        store.stop()

    assert set(store_threads) == {"falcopy-enrichment"}
    assert eval_threads == [threading.current_thread().name] * 2
    assert sorted(name for name, _, _ in fired) == ["Launch Privileged Container",
                                                    "Privileged Container Started"]
    for _, fields, event in fired:
        assert fields["evt.type"] == "container"
        assert fields["proc.cmdline"] == "nginx -g daemon off;"
        assert fields["proc.exepath"] == "/usr/sbin/nginx"
        info = event.container()
        assert (info.id, info.name, info.privileged, info.pid) == (PRIV_ID[:12], "priv-one", True, INIT_PID)
        assert info.image_repository == "docker.io/library/nginx"
    ours = next(f for name, f, _ in fired if name == "Privileged Container Started")
    assert ours["container.id"] == PRIV_ID[:12] and ours["container.name"] == "priv-one"


def test_event_without_init_process_reads_na(compat_dir: Path) -> None:
    info = ContainerInfo(id=PLAIN_ID[:12], full_id=PLAIN_ID, type="docker", name="plain-one",
                         image="nginx:1.27", privileged=True, pid=INIT_PID, complete=True)
    table = ProcessTable()  # the init process is not in the table
    event = container_event(info, table, None, num=1)
    assert event.type == "container" and event.rec.args["id"] == PLAIN_ID[:12]
    ruleset = _ruleset(compat_dir)
    matched = ruleset.evaluate(event)
    assert sorted(r.name for r in matched) == ["Launch Privileged Container", "Privileged Container Started"]
    _, fields = ruleset.format(next(r for r in matched if r.name == "Privileged Container Started"), event)
    assert fields["proc.name"] is None and fields["user.uid"] is None and fields["proc.pname"] is None
    assert fields["container.name"] == "plain-one"
    # every syscall field reads without error on such an event
    source = AgentSyscallSource()
    for fdef in source.fields.values():
        arg = "x" if fdef.arg.value not in ("none", "index?", "key?") else None
        source.live_accessor(fdef, arg)(container_event(info, table, None))


def test_shipped_upstream_macro_matches_the_exec_only(compat_dir: Path) -> None:
    info = ContainerInfo(id=PRIV_ID[:12], full_id=PRIV_ID, type="docker", name="priv-one",
                         image="nginx:1.27", image_repository="nginx", privileged=True, complete=True)
    matched = _ruleset(compat_dir, macro_override=False).evaluate(container_event(info, ProcessTable(), None))
    assert [r.name for r in matched] == ["Privileged Container Started"]


def test_container_is_not_asked_from_the_probe(compat_dir: Path) -> None:
    types = wanted_types(_ruleset(compat_dir), AgentConfig())
    assert types is not None and "container" not in types and "execve" in types
