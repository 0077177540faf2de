"""Which rules each node runs: the operator reads the agents' Leases and counts
(the contract is described in :mod:`falcopy.distribution.lease`)."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from falcopy.operator.model import ObjKey

from falcopy.distribution.lease import ERROR_ANNOTATION, VERSION_ANNOTATION


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
