"""Pod metadata from a stand-in kubelet (real HTTPS) joined with real containers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from falcopy.agent.enrichment.config import EngineConfig, EnrichmentConfig, KubeletConfig
from falcopy.agent.enrichment.docker import SourceFault
from falcopy.agent.enrichment.kubelet import KubeletClient, default_kubelet_url, index_pod_list
from falcopy.agent.enrichment.store import MetadataStore

from tests.agent.enrichment.conftest import warnings_of
from tests.agent.enrichment.standins import KubeletStandin, PodContainerSpec, PodSpec, TlsMaterial, pod_list
from tests.images import Container
from tests.waiting import wait_until

POD_UID = "5f0e1d2c-3b4a-4958-8776-a1b2c3d4e5f6"
LABELS = {"app": "web", "app.kubernetes.io/name": "shop", "pod-template-hash": "7d9f8"}


def kubelet_config(standin: KubeletStandin, tls: TlsMaterial, token_file: Path,
                   **kw: object) -> KubeletConfig:
    return KubeletConfig(url=standin.url, token_file=str(token_file), ca_file=str(tls.ca_file),
                         min_refresh_interval_s=0.05, **kw)


def store_config(kcfg: KubeletConfig, docker: bool) -> EnrichmentConfig:
    engines = {"docker": EngineConfig(sockets=["/var/run/docker.sock"] if docker else [])}
    return EnrichmentConfig(engines=engines, kubelet=kcfg, retry_base_s=0.05, retry_cap_s=0.5)


def test_index_pod_list_all_status_kinds() -> None:
    body = pod_list([PodSpec(
        name="web-7d9f8-abcde", namespace="shop", uid=POD_UID, labels=LABELS, ip="10.244.1.7",
        containers=[PodContainerSpec("web", "nginx:1.25", "a" * 64, "containerd")],
        init_containers=[PodContainerSpec("init", "busybox:1.36", "b" * 64, "cri-o")],
        ephemeral_containers=[PodContainerSpec("debug", "busybox:1.36", "c" * 64, "docker")],
    )])
    # a container that has not started yet has no containerID
    body["items"][0]["status"]["containerStatuses"].append({"name": "side", "containerID": "", "image": "x"})
    pods = index_pod_list(body)
    index = pods.containers
    assert set(index) == {"a" * 12, "b" * 12, "c" * 12}
    web = index["a" * 12]
    assert (web.full_id, web.runtime, web.container_name, web.image) == (
        "a" * 64, "containerd", "web", "nginx:1.25")
    assert (web.image_repository, web.image_tag) == ("nginx", "1.25")
    assert (web.ns, web.pod_name, web.pod_uid, web.pod_ip) == (
        "shop", "web-7d9f8-abcde", POD_UID, "10.244.1.7")
    assert (web.image_id, web.image_digest) == (None, "sha256:" + "e" * 64)
    assert web.pod_labels == LABELS
    assert index["b" * 12].runtime == "cri-o" and index["c" * 12].runtime == "docker"
    assert index["b" * 12].container_name == "init"
    # a container the kubelet has not listed yet: the pod, found by the UID in its cgroup path
    early = pods.lookup("f" * 12, POD_UID)
    assert early is not None and (early.pod_name, early.ns, early.container_name) == (
        "web-7d9f8-abcde", "shop", None)
    assert pods.lookup("f" * 12) is None and pods.lookup("a" * 12, "other").container_name == "web"


@pytest.mark.parametrize("bad", [[], {"kind": "Status"}, {"items": "x"}])
def test_index_rejects_non_podlists(bad: object) -> None:
    with pytest.raises(ValueError, match="not a PodList"):
        index_pod_list(bad)


def test_default_url_from_downward_api() -> None:
    assert default_kubelet_url({"NODE_IP": "10.0.0.5", "NODE_NAME": "n1"}) == "https://10.0.0.5:10250/pods"
    assert default_kubelet_url({"NODE_NAME": "node-1"}) == "https://node-1:10250/pods"
    assert default_kubelet_url({"NODE_IP": "fd00::5"}) == "https://[fd00::5]:10250/pods"
    assert default_kubelet_url({}) is None


@pytest.fixture
def kubelet(tls: TlsMaterial, token_file: Path) -> Iterator[KubeletStandin]:
    standin = KubeletStandin(tls, token_file.read_text().strip()).start()
    yield standin
    standin.stop()


async def test_client_verifies_tls_and_sends_token(kubelet: KubeletStandin, tls: TlsMaterial,
                                                   other_tls: TlsMaterial, token_file: Path) -> None:
    kubelet.body = pod_list([PodSpec("p", "ns", POD_UID, {}, "10.0.0.9",
                                     [PodContainerSpec("c", "nginx:1.25", "d" * 64)])])
    good = KubeletClient(kubelet.url, token_file=str(token_file), ca_file=str(tls.ca_file))
    rogue = KubeletClient(kubelet.url, token_file=str(token_file), ca_file=str(other_tls.ca_file))
    insecure = KubeletClient(kubelet.url, token_file=str(token_file), ca_file=str(other_tls.ca_file),
                             insecure=True)
    no_token = KubeletClient(kubelet.url, token_file=None, ca_file=str(tls.ca_file))
    try:
        assert set((await good.pods()).containers) == {"d" * 12}
        with pytest.raises(SourceFault) as err:
            await rogue.pods()
        assert err.value.condition == "TLS verification failed"
        assert set((await insecure.pods()).containers) == {"d" * 12}
        with pytest.raises(SourceFault) as err:
            await no_token.pods()
        assert "401" in err.value.condition
    finally:
        for c in (good, rogue, insecure, no_token):
            await c.aclose()


@pytest.mark.docker
def test_store_joins_real_containers_with_pods(docker_images: dict[str, str], kubelet: KubeletStandin,
                                               tls: TlsMaterial, token_file: Path,
                                               enrichment_log: pytest.LogCaptureFixture) -> None:
    with Container(docker_images["nginx"], interactive=True) as web, \
            Container(docker_images["busybox"], "sleep", "60") as init:
        kubelet.body = pod_list([PodSpec(
            name="web-7d9f8-abcde", namespace="shop", uid=POD_UID, labels=LABELS, ip="10.244.1.7",
            containers=[PodContainerSpec("web", "nginx:1.25", web.full_id, "docker")],
            init_containers=[PodContainerSpec("setup", "falcopy-test/busybox:1.36", init.full_id, "docker")],
        )])
        store = MetadataStore(store_config(kubelet_config(kubelet, tls, token_file), docker=True))
        store.start()
        try:
            info = store.wait_for(web.id, 30.0)
            init_info = store.wait_for(init.id, 30.0)
        finally:
            store.stop()
    assert info is not None and info.complete
    assert (info.k8s_ns_name, info.k8s_pod_name, info.k8s_pod_uid, info.k8s_pod_ip) == (
        "shop", "web-7d9f8-abcde", POD_UID, "10.244.1.7")
    assert info.k8s_pod_labels == LABELS
    # docker answered too: the runtime's own name and image win for container.*
    assert (info.name, info.type, info.image_repository, info.image_tag) == (
        web.name, "docker", "nginx", "1.25")
    assert init_info is not None and init_info.k8s_pod_name == "web-7d9f8-abcde"
    assert not warnings_of(enrichment_log)


@pytest.mark.docker
def test_kubelet_only_node_names_container_from_pod_spec(docker_images: dict[str, str],
                                                         kubelet: KubeletStandin, tls: TlsMaterial,
                                                         token_file: Path) -> None:
    # a containerd node: no runtime socket answers; the pod spec names container and image
    with Container(docker_images["nginx"], interactive=True) as web:
        kubelet.body = pod_list([PodSpec("web-0", "prod", POD_UID, {"app": "web"}, "10.244.2.2",
                                         [PodContainerSpec("nginx", "nginx:1.25", web.full_id)])])
        store = MetadataStore(store_config(kubelet_config(kubelet, tls, token_file), docker=False))
        store.start()
        try:
            info = store.wait_for(web.id, 30.0)
        finally:
            store.stop()
    assert info is not None and info.complete
    assert (info.full_id, info.type, info.name, info.image, info.image_repository, info.image_tag) == (
        web.full_id, "containerd", "nginx", "nginx:1.25", "nginx", "1.25")
    assert (info.k8s_ns_name, info.k8s_pod_name) == ("prod", "web-0")
    assert info.image_digest == "sha256:" + "e" * 64


def test_unknown_container_triggers_rate_limited_refresh(kubelet: KubeletStandin, tls: TlsMaterial,
                                                         token_file: Path) -> None:
    kcfg = kubelet_config(kubelet, tls, token_file, refresh_s=3600.0)
    kcfg.min_refresh_interval_s = 0.3
    store = MetadataStore(store_config(kcfg, docker=False))
    store.start()
    try:
        assert store.wait_for("1" * 12, 30.0).complete  # not a pod container: complete after one refresh
        hits = kubelet.behaviour.hits
        # the pod appears; a new unknown id makes the store refresh (after the rate limit)
        kubelet.body = pod_list([PodSpec("late", "ns", POD_UID, {}, "10.0.0.3",
                                         [PodContainerSpec("c", "nginx:1.25", "2" * 64)])])
        for i in range(20):  # a burst of new containers shares refreshes
            store.get(f"{i + 3:x}".rjust(12, "0"))
        info = store.wait_for("2" * 12, 30.0)
        assert info is not None and info.k8s_pod_name == "late"
        time.sleep(0.4)  # a window in which an unlimited burst would send more lists
        assert kubelet.behaviour.hits - hits <= 3, "refreshes were not rate-limited"
        # the store starts lists at least min_refresh_interval_s apart (its own record: the
        # arrival times at the stand-in jitter with scheduling on a loaded machine)
        gaps = [b - a for a, b in itertools.pairwise(store.kubelet_attempts)]
        assert len(gaps) >= 1 and all(g >= 0.3 - 1e-3 for g in gaps), gaps
    finally:
        store.stop()


def test_periodic_refresh_updates_known_containers(kubelet: KubeletStandin, tls: TlsMaterial,
                                                   token_file: Path) -> None:
    kubelet.body = pod_list([PodSpec("p", "ns", POD_UID, {"v": "1"}, "10.0.0.3",
                                     [PodContainerSpec("c", "nginx:1.25", "4" * 64)])])
    kcfg = kubelet_config(kubelet, tls, token_file, refresh_s=0.2)
    store = MetadataStore(store_config(kcfg, docker=False))
    store.start()
    try:
        assert store.wait_for("4" * 12, 30.0).k8s_pod_labels == {"v": "1"}
        kubelet.body["items"][0]["metadata"]["labels"] = {"v": "2"}
        assert wait_until(lambda: store.get("4" * 12).k8s_pod_labels == {"v": "2"}), (
            "relabelled pod not picked up by the periodic refresh")
    finally:
        store.stop()


@pytest.mark.parametrize(("ref", "expected"), [
    ("docker.io/library/nginx@sha256:" + "a" * 64, (None, "sha256:" + "a" * 64)),
    ("docker-pullable://nginx@sha256:" + "b" * 64, (None, "sha256:" + "b" * 64)),
    ("sha256:" + "c" * 64, ("c" * 64, None)),
    ("", (None, None)),
])
def test_split_image_ref(ref: str, expected: tuple[str | None, str | None]) -> None:
    from falcopy.agent.enrichment.kubelet import split_image_ref
    assert split_image_ref(ref) == expected


def test_new_container_gets_pod_fields_by_pod_uid(kubelet: KubeletStandin, tls: TlsMaterial,
                                                  token_file: Path) -> None:
    # the kubelet lists the pod but not yet the container (its status lags the start)
    kubelet.body = pod_list([PodSpec("web-0", "prod", POD_UID, {"app": "web"}, "10.244.2.2",
                                     [PodContainerSpec("nginx", "nginx:1.25", "5" * 64)])])
    store = MetadataStore(store_config(kubelet_config(kubelet, tls, token_file, refresh_s=3600.0),
                                       docker=False))
    store.start()
    try:
        store.observe("6" * 12, "6" * 64, "containerd", pod_uid=POD_UID)
        assert wait_until(lambda: store.get("6" * 12).k8s_pod_name == "web-0")
        info = store.get("6" * 12)
        assert (info.k8s_ns_name, info.k8s_pod_uid, info.k8s_pod_labels, info.type) == (
            "prod", POD_UID, {"app": "web"}, "containerd")
        assert info.name is None and not info.complete  # the container itself is not listed yet
    finally:
        store.stop()

