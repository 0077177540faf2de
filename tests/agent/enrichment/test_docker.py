"""Container ids and Docker metadata of real containers (docker daemon required)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig
from falcopy.agent.enrichment.docker import DockerClient, parse_container_inspect
from falcopy.agent.enrichment.store import MetadataStore
from falcopy.agent.state.cgroup import ContainerIdResolver, container_id_for_pid, find_cgroup2_root

from tests.images import Container, docker
from tests.waiting import wait_until

pytestmark = pytest.mark.docker

DOCKER_SOCK = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def nginx_ctr(docker_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    data = tmp_path_factory.mktemp("vol")
    ctr = Container(docker_images["nginx"], interactive=True, labels={"team": "blue", "app": "web"},
                    extra=["-v", f"{data}:/data:ro"])
    with ctr:
        yield ctr


def docker_only_config(**kw: object) -> EnrichmentConfig:
    cfg = EnrichmentConfig(engines={"docker": EngineConfig(sockets=[DOCKER_SOCK])}, **kw)
    cfg.kubelet.enabled = False
    return cfg


def inspect_json(full_id: str) -> dict:
    return json.loads(docker("inspect", full_id).stdout)[0]


def test_container_id_from_real_process(nginx_ctr: Container) -> None:
    cid, full, runtime = container_id_for_pid(nginx_ctr.pid())
    assert (cid, full, runtime) == (nginx_ctr.full_id[:12], nginx_ctr.full_id, "docker")
    # a process started later with docker exec is in the same container
    ctr_exec = nginx_ctr.exec("cat", "/proc/self/cgroup").stdout
    assert nginx_ctr.full_id in ctr_exec


def test_resolver_finds_container_of_a_gone_process_by_cgroup_id(nginx_ctr: Container) -> None:
    root = find_cgroup2_root()
    assert root is not None, "no cgroup2 hierarchy mounted"
    candidates = [p for p in Path(root).rglob(f"*{nginx_ctr.full_id}*") if p.is_dir()]
    assert candidates, f"no cgroup v2 directory for {nginx_ctr.full_id} under {root}"
    cgroup_id = candidates[0].stat().st_ino
    resolver = ContainerIdResolver()
    assert resolver.resolve(999_999_999, cgroup_id) == (nginx_ctr.id, nginx_ctr.full_id, "docker")


async def test_docker_inspect_fields(nginx_ctr: Container) -> None:
    client = DockerClient(DOCKER_SOCK)
    try:
        info = await client.inspect(nginx_ctr.id)
    finally:
        await client.aclose()
    raw = inspect_json(nginx_ctr.full_id)
    assert info is not None
    assert (info.id, info.full_id, info.type) == (nginx_ctr.id, nginx_ctr.full_id, "docker")
    assert info.name == nginx_ctr.name
    assert (info.image, info.image_repository, info.image_tag) == ("nginx:1.25", "nginx", "1.25")
    assert info.image_id == raw["Image"].removeprefix("sha256:")
    assert info.image_digest is None  # imported images have no registry digest
    assert (info.privileged, info.host_pid, info.host_network, info.host_ipc) == (False, False, False, False)
    assert info.labels["team"] == "blue" and info.labels["app"] == "web"
    assert [(m.dest, m.rw) for m in info.mounts] == [("/data", False)]
    assert info.mounts[0].mode == "ro"
    assert info.ip == raw["NetworkSettings"]["IPAddress"] and info.ip
    # docker's RFC 3339 StartedAt, to the nanosecond
    started = raw["State"]["StartedAt"]
    whole, frac = started.removesuffix("Z").split(".")
    epoch = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    assert info.start_ts == epoch * 10**9 + int(frac.ljust(9, "0"))
    assert (info.k8s_ns_name, info.k8s_pod_name) == (None, None)


async def test_host_namespaces_and_k8s_labels(docker_images: dict[str, str]) -> None:
    labels = {"io.kubernetes.pod.name": "web-7d9", "io.kubernetes.pod.namespace": "shop",
              "io.kubernetes.pod.uid": "1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d",
              "io.kubernetes.container.name": "web"}
    with Container(docker_images["busybox"], "sleep", "60", labels=labels,
                   extra=["--network", "host", "--pid", "host", "--ipc", "host"]) as ctr:
        client = DockerClient(DOCKER_SOCK)
        try:
            info = await client.inspect(ctr.full_id)
        finally:
            await client.aclose()
    assert info is not None
    assert (info.host_pid, info.host_network, info.host_ipc) == (True, True, True)
    assert (info.image_repository, info.image_tag) == ("falcopy-test/busybox", "1.36")
    assert (info.k8s_ns_name, info.k8s_pod_name, info.k8s_pod_uid) == (
        "shop", "web-7d9", "1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d")


def test_privileged_parsed_from_real_inspect_json(nginx_ctr: Container) -> None:
    # `docker run --privileged` cannot start on this machine: take a real answer and set the flag
    raw = inspect_json(nginx_ctr.full_id)
    assert parse_container_inspect(raw).privileged is False
    raw["HostConfig"]["Privileged"] = True
    assert parse_container_inspect(raw).privileged is True


async def test_started_by_image_id_is_named_by_the_image(docker_images: dict[str, str]) -> None:
    image_id = docker("image", "inspect", "--format", "{{.Id}}", docker_images["nginx"]).stdout.strip()
    with Container(image_id, interactive=True) as ctr:
        client = DockerClient(DOCKER_SOCK)
        try:
            info = await client.inspect(ctr.id)
        finally:
            await client.aclose()
    assert info is not None
    assert (info.image_repository, info.image_tag) == ("nginx", "1.25")


async def test_unknown_container_is_none() -> None:
    client = DockerClient(DOCKER_SOCK)
    try:
        assert await client.inspect("0" * 64) is None
    finally:
        await client.aclose()


def test_store_partial_then_complete(nginx_ctr: Container, enrichment_log: pytest.LogCaptureFixture) -> None:
    store = MetadataStore(docker_only_config())
    # before start(): a miss is queued, never blocks, and answers with what the cgroup told
    first = store.observe(nginx_ctr.id, nginx_ctr.full_id, "docker")
    assert first is not None and not first.complete
    assert (first.id, first.full_id, first.type, first.name, first.image) == (
        nginx_ctr.id, nginx_ctr.full_id, "docker", None, None)
    store.start()
    try:
        info = store.wait_for(nginx_ctr.id, 30.0)
        assert info is not None and info.complete
        assert (info.name, info.image_repository, info.image_tag) == (nginx_ctr.name, "nginx", "1.25")
        lookups = store.stats.runtime_lookups
        for _ in range(1000):
            assert store.get(nginx_ctr.id) is info  # cached: the same published object
        assert store.stats.runtime_lookups == lookups
        host = store.get("host")
        assert host is not None and (host.id, host.name, host.type) == ("host", "host", "host")
    finally:
        store.stop()
    assert not [r for r in enrichment_log.records if r.levelname == "WARNING"]


def test_store_unknown_id_completes_empty(docker_images: dict[str, str]) -> None:
    store = MetadataStore(docker_only_config())
    store.start()
    try:
        info = store.wait_for("f" * 12, 30.0)
    finally:
        store.stop()
    assert info is not None and info.complete and info.name is None and info.image is None


def test_store_never_blocks_the_caller(nginx_ctr: Container) -> None:
    store = MetadataStore(docker_only_config())
    store.start()
    try:
        # the first get() of a running container returns the provisional record at once;
        # a get() that waited for the runtime would have returned the complete one
        info = store.get(nginx_ctr.id)
        assert info is not None and not info.complete and info.name is None
        assert store.wait_for(nginx_ctr.id, 30.0).name == nginx_ctr.name
    finally:
        store.stop()


def test_container_started_after_store(docker_images: dict[str, str]) -> None:
    store = MetadataStore(docker_only_config())
    store.start()
    try:
        with Container(docker_images["busybox"], "sleep", "30") as ctr:
            cid, full, runtime = container_id_for_pid(ctr.pid())
            store.observe(cid, full, runtime)
            info = store.wait_for(cid, 30.0)
            assert info is not None and info.name == ctr.name and info.image_tag == "1.36"
    finally:
        store.stop()


def test_host_root_prefix(tmp_path: Path) -> None:
    cfg = EnrichmentConfig(host_root=str(tmp_path))
    assert cfg.socket_paths("docker") == [os.path.join(str(tmp_path), "var/run/docker.sock")]


def test_stop_ends_the_store_thread() -> None:
    store = MetadataStore(docker_only_config())
    store.start()
    assert any(t.name == "falcopy-enrichment" for t in threading.enumerate())
    store.stop()
    assert not any(t.name == "falcopy-enrichment" for t in threading.enumerate())


def test_running_and_starting_containers_are_prefetched(docker_images: dict[str, str],
                                                        nginx_ctr: Container) -> None:
    store = MetadataStore(docker_only_config(forget_after_s=0.2))
    store.start()
    try:
        # already running when the store starts: listed and looked up without any get()
        assert wait_until(lambda: _complete(store, nginx_ctr.id))
        with Container(docker_images["busybox"], "sleep", "30") as ctr:
            assert wait_until(lambda: _complete(store, ctr.id))  # its start event
            assert store.snapshot()[ctr.id].name == ctr.name
        # destroyed: dropped from the cache after forget_after_s
        assert wait_until(lambda: ctr.id not in store.snapshot())
    finally:
        store.stop()


def _complete(store: MetadataStore, cid: str) -> bool:
    info = store.snapshot().get(cid)
    return info is not None and info.complete


