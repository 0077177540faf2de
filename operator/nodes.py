"""Which rules each node runs: agents report in a Lease, the operator counts.

Why a Lease per agent (``falcopy-agent-<node>`` in the release namespace):
- least privilege: agents get ``get/create/update`` on ``leases`` in one
  namespace; no write access to pods, ConfigMaps or the FalcoRules, and the
  operator needs no network path into the agents;
- liveness comes with it: ``renewTime`` tells a node that is gone (its Lease
  stops being renewed) from one that lags, so the denominator of
  ``status.nodes`` is the set of live agents, with no node list needed;
- tiny objects, one write per reload plus a renewal per period.

Annotations written by the agent: ``falcopy.io/rules-version`` (the bundle
version it has loaded; see :mod:`falcopy.operator.bundle`),
``falcopy.io/rules-error`` (the last failed reload, empty when the last one
worked) and ``falcopy.io/rules-loaded-at``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falcopy.operator.model import ObjKey

log = logging.getLogger(__name__)

VERSION_ANNOTATION = "falcopy.io/rules-version"
ERROR_ANNOTATION = "falcopy.io/rules-error"
LOADED_AT_ANNOTATION = "falcopy.io/rules-loaded-at"
STATUS_LABEL = "falcopy.io/agent-status"
LEASE_PREFIX = "falcopy-agent-"


@dataclass(frozen=True)
class NodeReport:
    node: str
    version: str
    error: str
    renewed: dt.datetime | None


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def parse_lease(lease: Any) -> NodeReport:
    annotations = _get(lease, "metadata", "annotations") or {}
    renewed = _get(lease, "spec", "renew_time") or _get(lease, "spec", "renewTime")
    if isinstance(renewed, str):
        renewed = dt.datetime.fromisoformat(renewed.replace("Z", "+00:00"))
    node = _get(lease, "spec", "holder_identity") or _get(lease, "spec", "holderIdentity") or ""
    return NodeReport(
        node=str(node),
        version=str(annotations.get(VERSION_ANNOTATION, "")),
        error=str(annotations.get(ERROR_ANNOTATION, "")),
        renewed=renewed,
    )


class VersionHistory:
    """Bundle versions the operator published -> {object: digest}: a node on an
    older bundle still runs the objects that have not changed since."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._versions: OrderedDict[str, dict[ObjKey, str]] = OrderedDict()

    def add(self, version: str, contents: dict[ObjKey, str]) -> None:
        self._versions[version] = dict(contents)
        self._versions.move_to_end(version)
        while len(self._versions) > self.keep:
            self._versions.popitem(last=False)

    def contains(self, version: str, key: ObjKey, digest: str) -> bool:
        return self._versions.get(version, {}).get(key) == digest


def live(reports: list[NodeReport], ttl: float, now: dt.datetime | None = None) -> list[NodeReport]:
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for r in reports:
        if r.renewed is None:
            continue
        renewed = r.renewed if r.renewed.tzinfo else r.renewed.replace(tzinfo=dt.UTC)
        if (now - renewed).total_seconds() <= ttl:
            out.append(r)
    return out


def node_counts(
    reports: list[NodeReport], history: VersionHistory, digests: dict[ObjKey, str]
) -> dict[ObjKey, str]:
    """``status.nodes`` per object: live agents whose loaded bundle holds the
    object's active rendering / live agents."""
    total = len(reports)
    out = {}
    for key, digest in digests.items():
        running = sum(1 for r in reports if history.contains(r.version, key, digest))
        out[key] = f"{running}/{total}"
    return out


# ---------------------------------------------------------------------------- agent side


class LeaseReporter:
    """Run by the agent: keeps ``falcopy-agent-<node>`` renewed with what it loaded.

    Writes happen in a daemon thread (the agent's event path never waits on
    the API server); a failed write is retried on the next period."""

    def __init__(
        self,
        node: str,
        namespace: str,
        *,
        period: float = 30.0,
        api_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.node = node
        self.namespace = namespace
        self.period = period
        self.name = LEASE_PREFIX + node
        self._api_factory = api_factory
        self._version = ""
        self._error = ""
        self._loaded_at = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def loaded(self, version: str) -> None:
        self._version = version
        self._error = ""
        self._loaded_at = dt.datetime.now(dt.UTC).isoformat()
        self._wake.set()

    def failed(self, error: str) -> None:
        self._error = error[:1000]
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="falcopy-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        from falcopy.operator.kube import api_client
        from kubernetes import client

        api = client.CoordinationV1Api((self._api_factory or api_client)())
        while not self._stop.is_set():
            try:
                self.write(api)
            except Exception as exc:  # the API server may be briefly away; retry next period
                log.warning("cannot update lease %s/%s: %s", self.namespace, self.name, exc)
            self._wake.wait(self.period)
            self._wake.clear()

    def body(self) -> Any:
        from kubernetes import client

        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={STATUS_LABEL: "true", "app.kubernetes.io/part-of": "falcopy"},
                annotations={
                    VERSION_ANNOTATION: self._version,
                    ERROR_ANNOTATION: self._error,
                    LOADED_AT_ANNOTATION: self._loaded_at,
                },
            ),
            spec=client.V1LeaseSpec(
                holder_identity=self.node,
                lease_duration_seconds=int(self.period * 3),
                renew_time=dt.datetime.now(dt.UTC),
            ),
        )

    def write(self, api: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        body = self.body()
        try:
            api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            api.create_namespaced_lease(self.namespace, body)
