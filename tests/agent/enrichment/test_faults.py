"""Broken metadata sources: no exception escapes, fields stay empty, one log line
per condition, retries with backoff, recovery picked up."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig, KubeletConfig
from falcopy.agent.enrichment.store import MetadataStore

from tests.agent.enrichment.conftest import warnings_of
from tests.agent.enrichment.standins import (
    DockerSocketStandin,
    KubeletStandin,
    PodContainerSpec,
    PodSpec,
    TlsMaterial,
    pod_list,
)
from tests.waiting import wait_until

CID = "9" * 64


def docker_config(sock: Path, **kw: object) -> EnrichmentConfig:
    cfg = EnrichmentConfig(engines={"docker": EngineConfig(sockets=[str(sock)])},
                           retry_base_s=0.05, retry_cap_s=0.4, **kw)
    cfg.kubelet.enabled = False
    return cfg


def assert_provisional_get(store: MetadataStore, cid: str) -> None:
    """get() answers with what is known now instead of waiting for the faulty source:
    a provisional record (published answers replace it, they never complete it in place)."""
    info = store.get(cid)
    assert info is not None and not info.complete
    assert info.name is None and info.k8s_pod_name is None


def test_docker_socket_absent(tmp_path: Path, enrichment_log: pytest.LogCaptureFixture) -> None:
    store = MetadataStore(docker_config(tmp_path / "absent.sock"))
    store.start()
    try:
        infos = [store.wait_for(f"{i:x}".rjust(12, "a"), 30.0) for i in range(5)]
    finally:
        store.stop()
    assert all(i is not None and i.complete and i.name is None and i.image is None for i in infos)
    lines = warnings_of(enrichment_log)
    assert len(lines) == 1 and "socket absent" in lines[0] and "absent.sock" in lines[0], lines


@pytest.mark.parametrize(("mode", "condition"), [
    ("500", "answered HTTP 500"),
    ("garbage", "answered invalid JSON"),
    ("slow", "timed out"),
])
def test_docker_socket_faults_retry_and_recover(tmp_path: Path, mode: str, condition: str,
                                                enrichment_log: pytest.LogCaptureFixture) -> None:
    sock = tmp_path / "docker.sock"
    standin = DockerSocketStandin(sock, mode).start()
    standin.behaviour.slow_s = 1.0
    # the lookups' own fault handling; the event stream is a separate condition
    store = MetadataStore(docker_config(sock, runtime_timeout_s=0.2, watch_events=False))
    store.start()
    try:
        assert_provisional_get(store, CID[:12])
        assert wait_until(lambda: standin.behaviour.hits >= 4), standin.behaviour.hits
        assert not store.get(CID[:12]).complete
        # the store's own record of when it started each lookup (arrival times at the
        # stand-in jitter with scheduling); lower bounds: 0.05, 0.1, 0.2 s minus 10 % jitter
        times = [t for cid, t in store.lookup_attempts if cid == CID[:12]][:4]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) == 3, times
        assert all(g >= 0.9 * 0.05 * 2 ** i - 0.005 for i, g in enumerate(gaps)), f"no backoff: {gaps}"
        lines = warnings_of(enrichment_log)
        assert len(lines) == 1 and condition in lines[0], lines
        standin.behaviour.mode = "404"  # the daemon is healthy again and does not know the id
        assert store.wait_for(CID[:12], 30.0).complete
        lines = warnings_of(enrichment_log)
        assert len(lines) == 2 and "recovered" in lines[1], lines
    finally:
        store.stop()
        standin.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def kubelet(tls: TlsMaterial, token_file: Path) -> Iterator[KubeletStandin]:
    standin = KubeletStandin(tls, token_file.read_text().strip()).start()
    standin.body = pod_list([PodSpec("web-0", "shop", "5f0e1d2c-3b4a-4958-8776-a1b2c3d4e5f6", {"app": "web"},
                                     "10.244.1.7", [PodContainerSpec("web", "nginx:1.25", CID)])])
    yield standin
    standin.stop()


@pytest.mark.parametrize(("mode", "condition"), [
    ("unreachable", "unreachable"),
    ("slow", "timed out"),
    ("401", "refused the service account token (HTTP 401)"),
    ("500", "answered HTTP 500"),
    ("garbage", "answered invalid JSON"),
])
def test_kubelet_faults_retry_and_recover(kubelet: KubeletStandin, tls: TlsMaterial, token_file: Path,
                                          mode: str, condition: str,
                                          enrichment_log: pytest.LogCaptureFixture) -> None:
    url = f"https://127.0.0.1:{closed_port()}/pods" if mode == "unreachable" else kubelet.url
    kubelet.behaviour.mode = mode
    kubelet.behaviour.slow_s = 10.0
    kcfg = KubeletConfig(url=url, token_file=str(token_file), ca_file=str(tls.ca_file), timeout_s=0.3,
                         min_refresh_interval_s=0.01)
    cfg = EnrichmentConfig(engines={}, kubelet=kcfg, retry_base_s=0.05, retry_cap_s=0.3)
    store = MetadataStore(cfg)
    store.start()
    try:
        assert_provisional_get(store, CID[:12])
        assert wait_until(lambda: store.faults.failures(store._kubelet.source) >= 3)
        info = store.get(CID[:12])
        assert info.k8s_pod_name is None and info.k8s_ns_name is None and not info.k8s_pod_labels
        assert_provisional_get(store, "8" * 12)
        lines = warnings_of(enrichment_log)
        assert len(lines) == 1 and condition in lines[0] and url in lines[0], lines
        if mode == "unreachable":
            return
        kubelet.behaviour.mode = "ok"
        assert wait_until(lambda: store.get(CID[:12]).k8s_pod_name == "web-0")
        info = store.get(CID[:12])
        assert (info.k8s_ns_name, info.k8s_pod_labels, info.name) == ("shop", {"app": "web"}, "web")
        lines = warnings_of(enrichment_log)
        assert len(lines) == 2 and "recovered" in lines[1], lines
    finally:
        store.stop()


def test_unreadable_token_file(kubelet: KubeletStandin, tls: TlsMaterial, tmp_path: Path,
                               enrichment_log: pytest.LogCaptureFixture) -> None:
    kcfg = KubeletConfig(url=kubelet.url, token_file=str(tmp_path / "missing-token"),
                         ca_file=str(tls.ca_file), min_refresh_interval_s=0.01)
    store = MetadataStore(EnrichmentConfig(engines={}, kubelet=kcfg, retry_base_s=0.05, retry_cap_s=0.2))
    store.start()
    try:
        assert wait_until(lambda: store.faults.failures(store._kubelet.source) >= 2)
    finally:
        store.stop()
    lines = warnings_of(enrichment_log)
    assert len(lines) == 1 and "token file unreadable" in lines[0], lines
    assert kubelet.behaviour.hits == 0  # no request without credentials


def test_listener_exception_does_not_stop_the_store(tmp_path: Path) -> None:
    store = MetadataStore(docker_config(tmp_path / "absent.sock"))
    seen: list[str] = []

    def bad_listener(info: object) -> None:
        seen.append("x")
        raise RuntimeError("listener bug")

    store.add_listener(bad_listener)
    store.start()
    try:
        assert store.wait_for("a" * 12, 30.0).complete
        assert store.wait_for("b" * 12, 30.0).complete
    finally:
        store.stop()
    assert len(seen) >= 2


def test_exhausted_retries_resume_on_sweep(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    standin = DockerSocketStandin(sock, "500").start()
    # the sweep comes long after the series (0.05 + 0.1 s of backoff), even on a loaded machine
    store = MetadataStore(docker_config(sock, max_attempts=2, retry_sweep_s=5.0, watch_events=False))
    store.start()
    try:
        store.get(CID[:12])
        assert wait_until(lambda: standin.behaviour.hits >= 3)
        time.sleep(0.5)  # a window to prove an absence
        assert standin.behaviour.hits == 3  # first try + 2 retries, then quiet
        standin.behaviour.mode = "404"
        assert store.wait_for(CID[:12], 30.0).complete  # the sweep tried again
    finally:
        store.stop()
        standin.stop()


def test_event_stream_fault_is_its_own_condition(tmp_path: Path,
                                                 enrichment_log: pytest.LogCaptureFixture) -> None:
    sock = tmp_path / "docker.sock"
    standin = DockerSocketStandin(sock, "500").start()
    store = MetadataStore(docker_config(sock))
    store.start()
    try:
        assert wait_until(lambda: standin.behaviour.hits >= 4)  # the watcher retries
    finally:
        store.stop()
        standin.stop()
    lines = warnings_of(enrichment_log)
    assert len(lines) == 1 and "events answered HTTP 500" in lines[0], lines


def test_cache_is_bounded(tmp_path: Path) -> None:
    store = MetadataStore(docker_config(tmp_path / "absent.sock", max_entries=50, watch_events=False,
                                        retry_sweep_s=0.2))
    store.start()
    try:
        for i in range(500):
            store.get(f"{i:012x}")
        assert len(store.snapshot()) <= 51  # + the host entry
        assert store.get("host").name == "host"
        assert wait_until(lambda: len(store._entries) <= 51)  # fetch state follows the cache
    finally:
        store.stop()


async def test_non_hex_ids_are_never_sent_to_the_daemon(tmp_path: Path) -> None:
    from falcopy.agent.enrichment.docker import DockerClient

    standin = DockerSocketStandin(tmp_path / "docker.sock", "404").start()
    client = DockerClient(str(tmp_path / "docker.sock"))
    try:
        for bad in ("../images/json", "web", "ABC", "", "a" * 65, "a/b"):
            assert await client.inspect(bad) is None
        assert standin.behaviour.hits == 0
        assert await client.inspect("a" * 12) is None
        assert standin.behaviour.hits == 1
    finally:
        await client.aclose()
        standin.stop()
