"""cgroup path -> container id, for every runtime layout Falco recognises."""

from __future__ import annotations

import os

import pytest
from falcopy.agent.state.cgroup import (
    ContainerIdResolver,
    container_id_for_pid,
    container_id_from_cgroup,
    pod_uid_from_cgroup,
)

CID = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e"
SHORT = CID[:12]
UID = "1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d"
UID_ = UID.replace("-", "_")

V1_CONTROLLERS = ("12:pids", "11:memory", "10:cpu,cpuacct", "1:name=systemd")


def v1(path: str) -> str:
    return "\n".join(f"{c}:{path}" for c in V1_CONTROLLERS) + "\n0::/\n"


def v2(path: str) -> str:
    return f"0::{path}\n"


CASES = [
    # (label, cgroup text, runtime type, pod uid)
    ("docker cgroupfs v1", v1(f"/docker/{CID}"), "docker", None),
    ("docker cgroupfs v2", v2(f"/docker/{CID}"), "docker", None),
    ("docker systemd v1", v1(f"/system.slice/docker-{CID}.scope"), "docker", None),
    ("docker systemd v2", v2(f"/system.slice/docker-{CID}.scope"), "docker", None),
    ("docker in docker", v1(f"/docker/{'a' * 64}/docker/{CID}"), "docker", None),
    ("kubelet systemd containerd burstable v2",
     v2(f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"),
     "containerd", UID),
    ("kubelet systemd containerd besteffort v1",
     v1(f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope"),
     "containerd", UID),
    ("kubelet systemd containerd guaranteed v2",
     v2(f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope"), "containerd", UID),
    ("containerd without SystemdCgroup",
     v1(f"/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{CID}"),
     "containerd", UID),
    ("kubelet cgroupfs burstable v1", v1(f"/kubepods/burstable/pod{UID}/{CID}"), "cri", UID),
    ("kubelet cgroupfs besteffort v2", v2(f"/kubepods/besteffort/pod{UID}/{CID}"), "cri", UID),
    ("kubelet cgroupfs guaranteed v1", v1(f"/kubepods/pod{UID}/{CID}"), "cri", UID),
    ("kubelet systemd cri-o v2",
     v2(f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{CID}.scope"),
     "cri-o", UID),
    ("kubelet cgroupfs cri-o v1", v1(f"/kubepods/burstable/pod{UID}/crio-{CID}"), "cri-o", UID),
    ("kubelet systemd cri-dockerd", v2(f"/kubepods.slice/kubepods-pod{UID_}.slice/docker-{CID}.scope"),
     "docker", UID),
    ("podman rootless v2",
     v2(f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope/container"),
     "podman", None),
    ("podman root v2", v2(f"/machine.slice/libpod-{CID}.scope"), "podman", None),
    ("podman cgroupfs v1", v1(f"/libpod_parent/libpod-{CID}"), "podman", None),
    ("podman split mode", v2(f"/machine.slice/libpod-payload-{CID}.scope"), "podman", None),
]


@pytest.mark.parametrize(("label", "text", "runtime", "pod_uid"), CASES, ids=[c[0] for c in CASES])
def test_container_layouts(label: str, text: str, runtime: str, pod_uid: str | None) -> None:
    assert container_id_from_cgroup(text) == (SHORT, CID, runtime), label
    assert pod_uid_from_cgroup(text) == pod_uid


HOST_CASES = [
    ("root", v1("/")),
    ("systemd init", v2("/init.scope")),
    ("user session", v2("/user.slice/user-0.slice/session-3.scope")),
    ("process_api sandbox (32 hex)", v1("/process_api/09cad971384a1882321ade6706758ced")),
    ("cri-o conmon is a host process",
     v2(f"/kubepods.slice/kubepods-pod{UID_}.slice/crio-conmon-{CID}.scope")),
    ("podman conmon", v2(f"/machine.slice/libpod-conmon-{CID}.scope")),
    ("63 hex", v1(f"/docker/{CID[:63]}")),
    ("65 hex", v1(f"/docker/{CID}a")),
    ("not hex", v1(f"/docker/{'g' * 64}")),
    ("kubepods pod-level cgroup", v1(f"/kubepods/burstable/pod{UID}")),
    ("docker service", v2("/system.slice/docker.service")),
    ("empty", ""),
]


@pytest.mark.parametrize(("label", "text"), HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_host_processes(label: str, text: str) -> None:
    assert container_id_from_cgroup(text) == ("host", "host", "host"), label


def test_first_container_line_wins_over_host_lines() -> None:
    # cgroup v1 hybrid: the unified line says "/" while the v1 controllers name the container
    text = "1:name=systemd:/\n4:memory:/docker/" + CID + "\n0::/\n"
    assert container_id_from_cgroup(text) == (SHORT, CID, "docker")


def test_uppercase_hex_is_normalised() -> None:
    assert container_id_from_cgroup(v2(f"/docker/{CID.upper()}")) == (SHORT, CID, "docker")


def test_live_host_process_is_host() -> None:
    # the test runner itself runs on the host (in a /process_api/<32 hex> cgroup here)
    assert container_id_for_pid(os.getpid()) == ("host", "host", "host")


def test_gone_process_gives_none(tmp_path) -> None:
    assert container_id_for_pid(999_999_999) is None
    assert container_id_for_pid(1, proc_root=str(tmp_path)) is None


def test_fake_proc_root(tmp_path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text(v2(f"/system.slice/docker-{CID}.scope"))
    assert container_id_for_pid(42, proc_root=str(tmp_path)) == (SHORT, CID, "docker")


def test_resolver_caches_by_cgroup_id_and_walks_tree_for_gone_process(tmp_path) -> None:
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text(v2(f"/docker/{CID}"))
    tree = tmp_path / "cgroup2"
    leaf = tree / "system.slice" / f"docker-{'b' * 64}.scope"
    leaf.mkdir(parents=True)
    (tree / "init.scope").mkdir()
    resolver = ContainerIdResolver(proc_root=str(proc), cgroup2_root=str(tree), rescan_s=0.0)
    assert resolver.resolve(7, cgroup_id=1234) == (SHORT, CID, "docker")
    (proc / "7" / "cgroup").unlink()  # the process exits: the cache by cgroup id still answers
    assert resolver.resolve(7, cgroup_id=1234) == (SHORT, CID, "docker")
    # a process already gone: its cgroup id is the inode of its cgroup v2 directory
    assert resolver.resolve(8, cgroup_id=leaf.stat().st_ino) == ("b" * 12, "b" * 64, "docker")
    assert resolver.resolve(9, cgroup_id=(tree / "init.scope").stat().st_ino) == ("host", "host", "host")
    assert resolver.resolve(10, cgroup_id=987654321) is None



def test_resolver_does_not_cache_when_v2_path_says_nothing(tmp_path) -> None:
    # a runtime using only cgroup v1: all processes share the v2 root, whose id
    # must not be remembered as this container's
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text(v1(f"/docker/{CID}"))  # ends with "0::/"
    (proc / "8").mkdir()
    (proc / "8" / "cgroup").write_text(v1("/"))
    resolver = ContainerIdResolver(proc_root=str(proc), cgroup2_root=str(tmp_path / "none"))
    assert resolver.resolve(7, cgroup_id=1) == (SHORT, CID, "docker")
    assert resolver.resolve(8, cgroup_id=1) == ("host", "host", "host")


def test_resolver_remembers_pod_uid(tmp_path) -> None:
    proc = tmp_path / "proc"
    (proc / "5").mkdir(parents=True)
    (proc / "5" / "cgroup").write_text(
        v2(f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"))
    resolver = ContainerIdResolver(proc_root=str(proc), cgroup2_root=str(tmp_path / "none"))
    assert resolver.resolve(5, cgroup_id=77) == (SHORT, CID, "containerd")
    assert resolver.pod_uid(SHORT) == UID
    assert resolver.pod_uid("0" * 12) is None


def test_container_resolver_feeds_the_store(tmp_path) -> None:
    from falcopy.agent.enrichment.attach import container_resolver
    from falcopy.agent.enrichment.config import EnrichmentConfig
    from falcopy.agent.enrichment.store import MetadataStore

    proc = tmp_path / "proc"
    for pid, path in ((5, f"/kubepods/besteffort/pod{UID}/{CID}"), (6, "/user.slice")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(v2(path))
    cfg = EnrichmentConfig(engines={})
    cfg.kubelet.enabled = False
    store = MetadataStore(cfg)  # not started: lookups are only queued
    resolve = container_resolver(store, ContainerIdResolver(proc_root=str(proc),
                                                            cgroup2_root=str(tmp_path / "none")))
    assert resolve(5, 0) == SHORT
    assert resolve(6, 0) == "host"
    assert resolve(7, 0) == ""  # gone and no cgroup id: unknown, the table keeps what it had
    info = store.get(SHORT)
    assert info is not None and (info.full_id, info.type, info.complete) == (CID, "cri", False)
    assert store._hints[SHORT][2] == UID


def test_cgroup2_root_of_the_host_through_a_mounted_proc(tmp_path) -> None:
    from falcopy.agent.state.cgroup import find_cgroup2_root

    proc = tmp_path / "host-proc"
    (proc / "1" / "root" / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (proc / "1" / "mounts").write_text("proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
    assert find_cgroup2_root(str(proc)) == f"{proc}/1/root/sys/fs/cgroup"
    # this machine's own /proc: the agent's mount table
    assert find_cgroup2_root("/proc") in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
