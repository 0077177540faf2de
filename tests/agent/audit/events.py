"""Real-shaped audit.k8s.io/v1 events, as an API server with a RequestResponse policy sends them."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def audit_event(*, verb: str, resource: str, namespace: str | None = "default", name: str | None = None,
                subresource: str | None = None, user: str = "kubernetes-admin",
                groups: tuple[str, ...] = ("system:masters", "system:authenticated"),
                code: int = 200, stage: str = "ResponseComplete", uri: str | None = None,
                request_object: dict[str, Any] | None = None,
                response_object: dict[str, Any] | None = None, api_group: str = "",
                api_version: str = "v1") -> dict[str, Any]:
    if uri is None:
        prefix = f"/apis/{api_group}/{api_version}" if api_group else f"/api/{api_version}"
        uri = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
        if name:
            uri += f"/{name}"
        if subresource:
            uri += f"/{subresource}"
    object_ref: dict[str, Any] = {"resource": resource, "apiVersion": api_version}
    if api_group:
        object_ref["apiGroup"] = api_group
    if namespace:
        object_ref["namespace"] = namespace
    if name:
        object_ref["name"] = name
    if subresource:
        object_ref["subresource"] = subresource
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"00000000-0000-0000-0000-{next(_ids):012d}",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": list(groups)},
        "sourceIPs": ["10.0.0.12"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-11-28T00:10:00.120000Z",
        "stageTimestamp": "2026-11-28T00:10:00.180000Z",
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "admin"'},
    }
    if request_object is not None:
        event["requestObject"] = request_object
    if response_object is not None:
        event["responseObject"] = response_object
    return event


def pod(name: str, *, namespace: str = "default", containers: list[dict[str, Any]],
        volumes: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": containers, **spec}
    if volumes is not None:
        body["volumes"] = volumes
    request = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": namespace}, "spec": body}
    return audit_event(verb="create", resource="pods", namespace=namespace, code=201,
                       request_object=request,
                       response_object={**request, "metadata": {"name": name, "namespace": namespace,
                                                                "uid": "5d1c-" + name}})


def container(name: str, image: str, **security: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": image}
    if security:
        out["securityContext"] = security
    return out
