"""API-shaped workload objects (Deployment -> ReplicaSet -> Pod, Services, Namespaces)
for the collector's tests and bench."""

from __future__ import annotations

import uuid
from typing import Any


def _meta(name: str, namespace: str | None, labels: dict[str, str] | None, uid: str | None,
          owner: tuple[str, str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid or str(uuid.uuid4()), "labels": dict(labels or {})}
    if namespace is not None:
        meta["namespace"] = namespace
    if owner is not None:
        kind, oname, ouid = owner
        meta["ownerReferences"] = [{"apiVersion": "apps/v1" if kind != "ReplicationController" else "v1",
                                    "kind": kind, "name": oname, "uid": ouid, "controller": True}]
    return meta


def namespace(name: str, labels: dict[str, str] | None = None, uid: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, None, labels, uid)}


def deployment(name: str, ns: str, labels: dict[str, str] | None = None,
               uid: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, ns, labels, uid),
            "spec": {"replicas": 1}}


def replicaset(name: str, ns: str, owner: dict[str, Any] | None, labels: dict[str, str] | None = None,
               uid: str | None = None) -> dict[str, Any]:
    ref = ("Deployment", owner["metadata"]["name"], owner["metadata"]["uid"]) if owner else None
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": _meta(name, ns, labels, uid, ref),
            "spec": {"replicas": 1}}


def replication_controller(name: str, ns: str, labels: dict[str, str] | None = None,
                           uid: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": _meta(name, ns, labels, uid)}


def service(name: str, ns: str, selector: dict[str, str] | None, labels: dict[str, str] | None = None,
            uid: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns, labels, uid), "spec": spec}


def pod(name: str, ns: str, node: str, labels: dict[str, str] | None = None,
        owner: dict[str, Any] | None = None, container_ids: list[str] | None = None, ip: str = "10.1.0.7",
        uid: str | None = None) -> dict[str, Any]:
    ref = (owner["kind"], owner["metadata"]["name"], owner["metadata"]["uid"]) if owner else None
    statuses = [{"name": f"c{i}", "containerID": f"docker://{cid}", "ready": True}
                for i, cid in enumerate(container_ids or [])]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, ns, labels, uid, ref),
            "spec": {"nodeName": node, "containers": [{"name": f"c{i}", "image": "nginx:1.25"}
                                                      for i in range(len(statuses))]},
            "status": {"podIP": ip, "containerStatuses": statuses}}


_PLURALS = {"Namespace": "namespaces", "Pod": "pods", "Service": "services",
            "ReplicationController": "replicationcontrollers", "ReplicaSet": "replicasets",
            "Deployment": "deployments"}


def api_path(body: dict[str, Any]) -> str:
    """The collection URL path of an object (``/api/v1/namespaces/ns/pods``)."""
    kind, gv = body["kind"], body["apiVersion"]
    base = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
    ns = body["metadata"].get("namespace")
    return f"{base}/namespaces/{ns}/{_PLURALS[kind]}" if ns else f"{base}/{_PLURALS[kind]}"


def create(server_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the API server; returns the stored object (with the uid the server gave it)."""
    import httpx

    resp = httpx.post(server_url + api_path(body), json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def patch_labels(server_url: str, body: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    import httpx

    url = f"{server_url}{api_path(body)}/{body['metadata']['name']}"
    resp = httpx.patch(url, json={"metadata": {"labels": labels}}, timeout=10,
                       headers={"Content-Type": "application/merge-patch+json"})
    resp.raise_for_status()
    return resp.json()
