"""The few API calls the operator makes besides kopf's watches (blocking; run in a thread)."""

from __future__ import annotations

import json
from typing import Any

from falcopy.operator.crd import GROUP, KINDS, VERSION
from falcopy.operator.model import ObjKey
from kubernetes import client
from kubernetes.client.exceptions import ApiException


def connection_info(cfg: client.Configuration) -> dict[str, Any]:
    """The same credentials for kopf (kopf.ConnectionInfo keyword arguments)."""
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    scheme, _, token = (token or "").partition(" ") if token and " " in token else ("Bearer", "", token)
    return {
        "server": cfg.host,
        "ca_path": cfg.ssl_ca_cert,
        "insecure": not cfg.verify_ssl,
        "scheme": scheme if token else None,
        "token": token or None,
        "certificate_path": cfg.cert_file,
        "private_key_path": cfg.key_file,
    }


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)

    # ---------------------------------------------------------------- configmaps
    def configmaps(self, namespace: str, names: list[str]) -> dict[str, dict[str, str] | None]:
        out: dict[str, dict[str, str] | None] = {}
        for name in names:
            try:
                out[name] = dict(self.core.read_namespaced_config_map(name, namespace).data or {})
            except ApiException as exc:
                if exc.status != 404:
                    raise
                out[name] = None
        return out

    def put_configmap(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str], exists: bool
    ) -> None:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=labels), data=data
        )
        if exists:
            self.core.replace_namespaced_config_map(name, namespace, body)
        else:
            try:
                self.core.create_namespaced_config_map(namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.core.replace_namespaced_config_map(name, namespace, body)

    # ---------------------------------------------------------------- status
    def patch_status(self, key: ObjKey, status: dict[str, Any]) -> None:
        plural = KINDS[key.kind][0]
        body = {"status": status}
        try:
            if key.namespaced:
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, key.namespace, plural, key.name, body
                )
            else:
                self.custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, key.name, body)
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile
                raise

    # ---------------------------------------------------------------- leases
    def leases(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Leases as JSON: one per node, and the client's model objects cost seconds of CPU
        per list at thousands of nodes (measured at 5,000 in the scale simulation, docs/scale.md)."""
        response = self.coordination.list_namespaced_lease(
            namespace, label_selector=selector, _preload_content=False
        )
        return list(json.loads(response.data).get("items") or [])


def list_keys(kube: Kube) -> set[ObjKey]:
    """Every FalcoRule and ClusterFalcoRule that exists now (the start-up gate)."""
    keys: set[ObjKey] = set()
    for kind, (plural, scope, _) in KINDS.items():
        listing = kube.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        for item in listing.get("items", []):
            meta = item.get("metadata") or {}
            ns = (meta.get("namespace") or "") if scope == "Namespaced" else ""
            keys.add(ObjKey(kind, ns, meta.get("name") or ""))
    return keys


def post_event(kube: Kube, key: ObjKey, uid: str, reason: str, message: str, warning: bool) -> None:
    """A Kubernetes Event on the object (``kubectl describe`` shows it)."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    namespace = key.namespace or "default"
    body = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{key.name}.", namespace=namespace),
        involved_object=client.V1ObjectReference(
            api_version=f"{GROUP}/{VERSION}",
            kind=key.kind,
            name=key.name,
            namespace=key.namespace or None,
            uid=uid or None,
        ),
        reason=reason,
        message=message[:1024],
        type="Warning" if warning else "Normal",
        source=client.V1EventSource(component="falcopy-operator"),
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )
    kube.core.create_namespaced_event(namespace, body)
