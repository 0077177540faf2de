"""Container and pod metadata as the rest of the agent sees it.

The process table stores each process's container id (derived from its
cgroup); field accessors ask a :class:`MetadataLookup` for the metadata of
that id.  Lookups never block: they answer with what is known now and let
the enrichment layer fetch the rest in the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from falcopy.agent.state.cgroup import HOST_CONTAINER_ID as HOST_CONTAINER_ID


@dataclass(slots=True)
class Mount:
    source: str
    dest: str
    mode: str = ""
    rw: bool = True
    propagation: str = ""


@dataclass(frozen=True, slots=True)
class ObjMeta:
    """One Kubernetes object as the k8smeta fields show it."""

    name: str
    uid: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodMeta:
    """A pod and the objects it relates to, from the operator's collector (k8smeta.*)."""

    pod: ObjMeta
    ns_name: str
    ip: str = ""
    ns: ObjMeta | None = None
    rs: ObjMeta | None = None
    deployment: ObjMeta | None = None
    rc: ObjMeta | None = None
    #: the first of the Services selecting the pod, by name (Falco's k8smeta.svc.* show one)
    svc: ObjMeta | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PodMeta:
        """The inverse of ``dataclasses.asdict`` (capture files store it that way)."""
        def obj(v: Any) -> ObjMeta | None:
            return ObjMeta(**v) if isinstance(v, dict) else None

        return cls(pod=ObjMeta(**values["pod"]), ns_name=values.get("ns_name", ""), ip=values.get("ip", ""),
                   ns=obj(values.get("ns")), rs=obj(values.get("rs")),
                   deployment=obj(values.get("deployment")), rc=obj(values.get("rc")),
                   svc=obj(values.get("svc")))


@dataclass(slots=True)
class ContainerInfo:
    #: 12 hex chars, as Falco's container.id; "host" for host processes
    id: str
    full_id: str = ""
    #: docker, containerd, cri-o, podman (Falco's container.type)
    type: str = ""
    name: str | None = None
    image: str | None = None
    image_repository: str | None = None
    image_tag: str | None = None
    image_id: str | None = None
    image_digest: str | None = None
    privileged: bool | None = None
    host_pid: bool | None = None
    host_network: bool | None = None
    host_ipc: bool | None = None
    ip: str | None = None
    start_ts: int | None = None
    #: host pid of the container's init process (inspect ``State.Pid``); None when not running
    pid: int | None = None
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    # Kubernetes (from the kubelet's /pods, or the runtime's io.kubernetes.* labels)
    k8s_ns_name: str | None = None
    k8s_pod_name: str | None = None
    k8s_pod_uid: str | None = None
    k8s_pod_ip: str | None = None
    k8s_pod_labels: dict[str, str] = field(default_factory=dict)
    #: the pod's workload metadata from the operator's collector (None: not known, or off)
    k8smeta: PodMeta | None = None
    #: False while metadata is still being fetched
    complete: bool = False


class MetadataLookup(Protocol):
    def get(self, container_id: str) -> ContainerInfo | None:
        """Metadata known now for a 12-char container id (never blocks).

        An unknown id schedules a background fetch and returns None or a
        partial ContainerInfo."""
        ...
