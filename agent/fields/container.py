"""container.*, k8s.pod.*/k8s.ns.name and k8smeta.pod.*/k8smeta.ns.name fields of live
syscall events (the workload objects are in :mod:`.k8smeta`), and the
proc.is_container_* probe checks: the event's container as the enrichment layer knows
it (:meth:`SyscallEvent.container`)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from falcopy.agent.fields.accessor import Factory, Simple
from falcopy.agent.fields.event import SyscallEvent

UNAVAILABLE: dict[str, str] = {
    "container.healthcheck": "the runtime clients do not report health checks",
    "container.liveness_probe": "the runtime clients do not report probes",
    "container.readiness_probe": "the runtime clients do not report probes",
    "container.cni.json": "CNI results are not read",
    "container.info": "plugin info events do not exist here",
    "k8s.pod.sandbox_id": "the kubelet /pods data carries no sandbox id",
    "k8s.pod.full_sandbox_id": "the kubelet /pods data carries no sandbox id",
    "k8s.pod.cni.json": "CNI results are not read",
    "k8smeta.pod.sandbox_id": "the kubelet /pods data carries no sandbox id",
}


def _c(attr: str) -> Simple:
    return lambda ev: getattr(ev.container(), attr)


def _container_id(ev: SyscallEvent) -> Any:
    return ev.thread.container_id or "host"


def _container_full_id(ev: SyscallEvent) -> Any:
    info = ev.container()
    return info.full_id or info.id


def _mount_str(m: Any) -> str:
    return f"{m.source}:{m.dest}:{m.mode}:{'true' if m.rw else 'false'}:{m.propagation}"


def _find_mount(ev: SyscallEvent, arg: str | None) -> Any:
    mounts = ev.container().mounts
    if arg is None:
        return None
    if arg.isdigit():
        idx = int(arg)
        return mounts[idx] if idx < len(mounts) else None
    for m in mounts:
        if m.dest == arg or posixpath.normpath(m.dest) == posixpath.normpath(arg):
            return m
    return None


def _mount_field(fn: Callable[[Any], Any]) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            m = _find_mount(ev, arg)
            return fn(m) if m is not None else None
        return get
    return factory


def _mounts(arg: str | None) -> Simple:
    return lambda ev: [_mount_str(m) for m in ev.container().mounts]


def _labels_text(labels: dict[str, str]) -> str | None:
    if not labels:
        return None
    return ", ".join(f"{k}:{v}" for k, v in labels.items())


def _label(attr: str) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            labels = getattr(ev.container(), attr)
            return labels.get(arg) if arg is not None else _labels_text(labels)
        return get
    return factory


def _labels_list(attr: str) -> Factory:
    def factory(arg: str | None) -> Simple:
        def get(ev: SyscallEvent) -> Any:
            labels = getattr(ev.container(), attr)
            return [f"{k}:{v}" for k, v in labels.items()]
        return get
    return factory


def _probe_command(attr: str) -> Simple:
    """proc.is_container_healthcheck & co: the process runs the container's health-check
    (or k8s liveness/readiness probe) command.  ContainerInfo carries the command as an
    optional ``healthcheck``/``liveness_probe``/``readiness_probe`` argv list when the
    enrichment layer knows it; without it the answer is false, as Falco's default."""
    def get(ev: SyscallEvent) -> bool:
        if ev.thread.container_id == "host":
            return False
        command = getattr(ev.container(), attr, None)
        if not command:
            return False
        t = ev.thread
        argv = [t.exe, *t.args]
        if argv == list(command):
            return True
        # docker's CMD-SHELL form runs `/bin/sh -c "<cmd>"`
        return len(command) == 1 and t.args[-1:] == [command[0]]
    return get


def _container_duration(ev: SyscallEvent) -> Any:
    start = ev.container().start_ts
    return ev.ts - start if start else None


def _k8s(attr: str) -> Simple:
    def get(ev: SyscallEvent) -> Any:
        if ev.thread.container_id == "host":
            return None
        return getattr(ev.container(), attr)
    return get


FIELDS: dict[str, Simple] = {
    "container.id": _container_id,
    "container.full_id": _container_full_id,
    "container.name": _c("name"),
    "container.image": _c("image"),
    "container.image.id": _c("image_id"),
    "container.type": lambda ev: ev.container().type or None,
    "container.privileged": _c("privileged"),
    "container.image.repository": _c("image_repository"),
    "container.image.tag": _c("image_tag"),
    "container.image.digest": _c("image_digest"),
    "container.start_ts": _c("start_ts"),
    "container.duration": _container_duration,
    "container.ip": _c("ip"),
    "container.host_pid": _c("host_pid"),
    "container.host_network": _c("host_network"),
    "container.host_ipc": _c("host_ipc"),
    "container.labels": lambda ev: _labels_text(ev.container().labels),
    "proc.is_container_healthcheck": _probe_command("healthcheck"),
    "proc.is_container_liveness_probe": _probe_command("liveness_probe"),
    "proc.is_container_readiness_probe": _probe_command("readiness_probe"),
    # k8s
    "k8s.pod.name": _k8s("k8s_pod_name"),
    "k8s.pod.uid": _k8s("k8s_pod_uid"),
    "k8s.pod.id": _k8s("k8s_pod_uid"),
    "k8s.pod.labels": lambda ev: _labels_text(ev.container().k8s_pod_labels),
    "k8s.pod.ip": _k8s("k8s_pod_ip"),
    "k8s.ns.name": _k8s("k8s_ns_name"),
    "k8smeta.pod.name": _k8s("k8s_pod_name"),
    "k8smeta.pod.uid": _k8s("k8s_pod_uid"),
    "k8smeta.pod.ip": _k8s("k8s_pod_ip"),
    "k8smeta.ns.name": _k8s("k8s_ns_name"),
}

WITH_ARG: dict[str, Factory] = {
    "container.mounts": _mounts,
    "container.mount": _mount_field(_mount_str),
    "container.mount.source": _mount_field(lambda m: m.source),
    "container.mount.dest": _mount_field(lambda m: m.dest),
    "container.mount.mode": _mount_field(lambda m: m.mode),
    "container.mount.rdwr": _mount_field(lambda m: "true" if m.rw else "false"),
    "container.mount.propagation": _mount_field(lambda m: m.propagation),
    "container.label": _label("labels"),
    "k8s.pod.label": _label("k8s_pod_labels"),
    "k8smeta.pod.label": _label("k8s_pod_labels"),
    "k8smeta.pod.labels": _labels_list("k8s_pod_labels"),
}

DIRECT: frozenset[str] = frozenset({"container.id"})
