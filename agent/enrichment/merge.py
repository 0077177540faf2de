"""Combine what the cgroup, the runtime and the kubelet say about one container."""

from __future__ import annotations

import copy

from falcopy.agent.enrichment.kubelet import PodContainer
from falcopy.agent.enrichment.model import HOST_CONTAINER_ID, ContainerInfo, PodMeta


def host_info() -> ContainerInfo:
    """What Falco reports for host processes: id, full id, name and type ``host``."""
    return ContainerInfo(id=HOST_CONTAINER_ID, full_id=HOST_CONTAINER_ID, type="host",
                         name="host", complete=True)


def merge(container_id: str, full_id: str, runtime_type: str, runtime: ContainerInfo | None,
          pod: PodContainer | None, complete: bool, k8smeta: PodMeta | None = None) -> ContainerInfo:
    """A new ContainerInfo; inputs are not modified (published objects stay immutable).

    The runtime is authoritative for container.*; the kubelet for k8s.* (the
    runtime's io.kubernetes.* labels are the fallback) and it names the
    container and image when no runtime socket answered.  The operator's collector
    (``k8smeta``) adds the workload objects and fills the pod facts the kubelet did
    not give (a kubelet that is unreachable or has not listed the pod yet)."""
    if runtime is not None:
        info = copy.copy(runtime)
        info.mounts = list(runtime.mounts)
        info.labels = dict(runtime.labels)
        info.k8s_pod_labels = dict(runtime.k8s_pod_labels)
    else:
        info = ContainerInfo(id=container_id, full_id=full_id, type=runtime_type)
    info.id = container_id
    if not info.full_id:
        info.full_id = full_id
    if pod is not None:
        if not info.full_id:
            info.full_id = pod.full_id
        if runtime is None and pod.runtime:
            info.type = pod.runtime
        info.k8s_ns_name = pod.ns or info.k8s_ns_name
        info.k8s_pod_name = pod.pod_name or info.k8s_pod_name
        info.k8s_pod_uid = pod.pod_uid or info.k8s_pod_uid
        info.k8s_pod_ip = pod.pod_ip or info.k8s_pod_ip
        if info.ip is None:
            info.ip = pod.pod_ip  # containers of a pod share its network namespace
        info.k8s_pod_labels = dict(pod.pod_labels)
        if info.name is None:
            info.name = pod.container_name
        if info.image is None and pod.image:
            info.image = pod.image
            info.image_repository = pod.image_repository
            info.image_tag = pod.image_tag
        if info.image_id is None:
            info.image_id = pod.image_id
        if info.image_digest is None:
            info.image_digest = pod.image_digest
    if k8smeta is not None:
        info.k8smeta = k8smeta
        info.k8s_pod_name = info.k8s_pod_name or k8smeta.pod.name
        info.k8s_pod_uid = info.k8s_pod_uid or k8smeta.pod.uid
        info.k8s_ns_name = info.k8s_ns_name or k8smeta.ns_name
        info.k8s_pod_ip = info.k8s_pod_ip or k8smeta.ip or None
        if not info.k8s_pod_labels:
            info.k8s_pod_labels = dict(k8smeta.pod.labels)
    info.complete = complete
    return info
